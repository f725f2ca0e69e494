"""`headseg status --html`: one self-contained page of a Status: when it was made, each class with its count and
meaning, failures with reasons, the first keys of every class not done, thumbnails of recent cutouts.

Nothing in the page points anywhere: thumbnails are embedded PNGs made from the stored cutouts, keys and
reasons are escaped text, and a Content-Security-Policy forbids loading anything. No URL, signed or not, and
no credential is ever written into it. Its size is bounded whatever the bucket holds: at most `status.SHOWN`
keys a class, each class saying how many more there are and the command that prints them all.
"""

from __future__ import annotations

import base64
import html
import io

from headseg.function.errors import HeadsegError
from headseg.ops.status import CLASSES, MEANINGS, Status
from headseg.function.storage import Storage

THUMBNAIL_PX = 96
DETAIL_CHARS = 200  # of a failure's reason beside its key
LISTED = ("pending", "failed", "retriable", "stale", "orphans", "errors")  # the keys the page lists, class by class
MAX_CUTOUT_BYTES = 16 * 1024 * 1024  # larger objects under the output prefix are not cutouts headseg wrote

_STYLE = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 2rem; color: #222; }
table { border-collapse: collapse; margin: 1rem 0; }
td, th { padding: 0.25rem 0.75rem; border-bottom: 1px solid #ddd; text-align: left; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
ul.keys { font: 12px/1.5 ui-monospace, monospace; padding-left: 1.2rem; word-break: break-all; }
ul.keys span { font-family: system-ui, sans-serif; color: #666; }
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


def render(status: Status, thumbnails: list[tuple[str, str]], made_at: str, list_command: str) -> str:
    """The page: `thumbnails` are (source key, data URI) of recent cutouts; `made_at` is when the survey ended
    (ISO 8601, UTC); `list_command` prints every key of a class when CLASS in it is replaced by the class."""
    e = html.escape
    names = (*CLASSES, "orphans", *(("errors",) if status.count("errors") else ()))
    counts = "".join(
        f"<tr><th>{name}</th><td class=n>{status.count(name)}</td><td>{e(MEANINGS[name])}</td></tr>" for name in names
    )
    failures = "".join(
        f"<tr><th>{e(code)}</th><td class=n>{failure.count}</td><td>"
        + "<br>".join(f"{e(reason)} ({n})" for reason, n in failure.reasons.most_common())
        + (f"<br><span>(reasons of {failure.sampled} read)</span>" if failure.sampled < failure.count else "")
        + "</td></tr>"
        for code, failure in status.failures_by_count()
    )
    keys = "".join(_keys(status, name, list_command) for name in LISTED if status.count(name))
    figures = "".join(f'<figure><img alt="" src="{uri}"><figcaption>{e(key)}</figcaption></figure>' for key, uri in thumbnails)
    title = e(f"headseg status: {status.bucket}/{status.prefix}")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; img-src data:; style-src 'unsafe-inline'">
<title>{title}</title><style>{_STYLE}</style></head>
<body><h1>{title}</h1>
<p>Made <time id="made" datetime="{e(made_at)}">{e(made_at.replace("T", " ").replace("Z", " UTC"))}</time>:
{status.sources} sources, {status.records_read} result records read.</p>
<h2>Where every upload stands</h2><table id="counts">{counts}</table>
<h2>Failures</h2>{f'<table id="failures"><tr><th>code</th><th>sources</th><th>reasons</th></tr>{failures}</table>' if failures else "<p>None.</p>"}
<h2>Keys not done</h2>{keys or "<p>None: every upload is done.</p>"}
<h2>Recent cutouts</h2><div class="thumbs" id="thumbnails">{figures or "<p>None yet.</p>"}</div>
</body></html>
"""


def _keys(status: Status, name: str, list_command: str) -> str:
    """One class's first keys, each with its detail, then how many more and the command that lists them all."""
    e = html.escape
    shown = status.first(name)
    items = "".join(
        f"<li>{e(key)}" + (f" <span>{e(_cut(detail))}</span>" if detail else "") + "</li>" for key, detail in shown
    )
    rest = status.count(name) - len(shown)
    command = e(list_command.replace("CLASS", name))
    more = f"… and {rest} more. " if rest else ""
    return (
        f'<section id="keys-{name}"><h3>{name} ({status.count(name)})</h3><ul class="keys">{items}</ul>'
        f"<p>{more}<code>{command}</code> prints all {status.count(name)}, one a line "
        "(<code>--json</code>: every key not done, a JSON document a line).</p></section>"
    )


def _cut(text: str) -> str:
    return text if len(text) <= DETAIL_CHARS else text[:DETAIL_CHARS] + "…"
