"""What a file that is not an image is, in a few words: the one home of that message, wherever it is met (the
function's examine stage on OSS or a folder, `headseg serve`, the CLI).

Said from the bytes alone: an empty file, a known non-image format (PDF, ZIP, video...), text, or else what
its first bytes are. Never from a Content-Type: OSS guesses one from the key's extension when the uploader sets
none, so an empty `photo.jpg` would be called `image/jpeg`.
"""

from __future__ import annotations

#: (offset, leading bytes, what they are): formats people upload by mistake. Images are recognized before these.
_KNOWN: tuple[tuple[int, bytes, str], ...] = (
    (0, b"%PDF-", "a PDF document"),
    (0, b"PK\x03\x04", "a ZIP archive (or an Office document)"),
    (0, b"\x1f\x8b", "gzip-compressed data"),
    (0, b"Rar!\x1a\x07", "a RAR archive"),
    (0, b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"),
    (0, b"\x00\x00\x01\x00", "an ICO icon"),
    (4, b"ftyp", "a video (MP4, QuickTime or another ISO media file)"),
    (0, b"\x1aE\xdf\xa3", "a Matroska or WebM video"),
    (0, b"ID3", "an MP3 audio file"),
)
#: How many leading bytes are looked at to tell text.
TEXT_PROBE = 4096
_TEXT_CONTROLS = frozenset("\t\n\r\f\v")


def describe(head: bytes, size: int | None = None) -> str:
    """What the object whose first bytes are `head` (and whose size is `size`, default `len(head)`) is: for
    bytes `images.sniff` recognizes as no image."""
    if (len(head) if size is None else size) == 0:
        return "empty file (0 bytes)"
    for offset, magic, what in _KNOWN:
        if head[offset : offset + len(magic)] == magic:
            return f"{what}, not an image"
    text = _as_text(head[:TEXT_PROBE], truncated=len(head) > TEXT_PROBE or (size or 0) > len(head))
    if text is not None:
        return "SVG (a vector drawing in text), not an image" if "<svg" in text.lower() else "text, not an image"
    return f"not an image: its first bytes ({head[:8].hex(' ')}) match no image format"


def _as_text(probe: bytes, truncated: bool) -> str | None:
    """`probe` as text when it reads as UTF-8 (or UTF-16 with a byte-order mark) without control characters; a
    character cut by the end of a `truncated` probe does not count against it."""
    encoding = "utf-16" if probe[:2] in (b"\xff\xfe", b"\xfe\xff") else "utf-8-sig"
    try:
        text = probe.decode(encoding)
    except UnicodeDecodeError as exc:
        if not (truncated and encoding == "utf-8-sig" and exc.start >= len(probe) - 3 and exc.reason == "unexpected end of data"):
            return None
        text = probe[: exc.start].decode(encoding)
    if not text or any(not (c.isprintable() or c in _TEXT_CONTROLS) for c in text):
        return None
    return text
