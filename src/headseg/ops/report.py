"""`headseg status --html`: one self-contained page of a Status (counts, failures with reasons, thumbnails).

Nothing in the page points anywhere: thumbnails are embedded PNGs made from the stored cutouts, keys and
reasons are escaped text, and a Content-Security-Policy forbids loading anything. No URL, signed or not, and
no credential is ever written into it.
"""

from __future__ import annotations

import base64
import html
import io

from headseg.function.errors import HeadsegError
from headseg.ops.status import CLASSES, Status
from headseg.function.storage import Storage

THUMBNAIL_PX = 96
MAX_CUTOUT_BYTES = 16 * 1024 * 1024  # larger objects under the output prefix are not cutouts headseg wrote

_STYLE = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 2rem; color: #222; }
table { border-collapse: collapse; margin: 1rem 0; }
td, th { padding: 0.25rem 0.75rem; border-bottom: 1px solid #ddd; text-align: left; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
.thumbs { display: flex; flex-wrap: wrap; gap: 0.5rem; }
figure { margin: 0; width: 120px; font-size: 11px; word-break: break-all; }
figure img { width: 96px; height: 96px; object-fit: contain; background: repeating-conic-gradient(#eee 0 25%, #fff 0 50%) 0 0 / 12px 12px; }
"""


def thumbnail(storage: Storage, key: str) -> str | None:
    """A cutout as a small embedded PNG (`data:` URI), or None when it is gone or not an image."""
    from PIL import Image

    try:
        info = storage.head(key)
        if info.size > MAX_CUTOUT_BYTES:
            return None
        with Image.open(io.BytesIO(storage.get(key)[1])) as image:
            image.thumbnail((THUMBNAIL_PX, THUMBNAIL_PX))
            out = io.BytesIO()
            image.save(out, "PNG")
    except (HeadsegError, OSError, ValueError):
        return None
    return "data:image/png;base64," + base64.b64encode(out.getvalue()).decode("ascii")


def render(status: Status, thumbnails: list[tuple[str, str]]) -> str:
    """The page: `thumbnails` are (source key, data URI) of recent cutouts."""
    e = html.escape
    names = (*CLASSES, "orphans", *(("errors",) if status.errors else ()))
    counts = "".join(f"<tr><th>{name}</th><td class=n>{status.count(name)}</td></tr>" for name in names)
    failures = "".join(
        f"<tr><th>{e(code)}</th><td class=n>{len(failure.keys)}</td><td>"
        + "<br>".join(f"{e(reason)} ({n})" for reason, n in failure.reasons.most_common())
        + "</td></tr>"
        for code, failure in status.failures_by_count()
    )
    figures = "".join(f'<figure><img alt="" src="{uri}"><figcaption>{e(key)}</figcaption></figure>' for key, uri in thumbnails)
    title = e(f"headseg status: {status.bucket}/{status.prefix}")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; img-src data:; style-src 'unsafe-inline'">
<title>{title}</title><style>{_STYLE}</style></head>
<body><h1>{title}</h1>
<p>{sum(status.count(n) for n in CLASSES)} sources, {status.sidecars_read} result records read.</p>
<h2>Where every upload stands</h2><table id="counts">{counts}</table>
<h2>Failures</h2>{f'<table id="failures"><tr><th>code</th><th>sources</th><th>reasons</th></tr>{failures}</table>' if failures else "<p>None.</p>"}
<h2>Recent cutouts</h2><div class="thumbs" id="thumbnails">{figures or "<p>None yet.</p>"}</div>
</body></html>
"""
