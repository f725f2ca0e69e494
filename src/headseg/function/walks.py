"""Walks: each follows one image format's structure through the bytes held (markers, chunks, directories, the
blocks a scan visits), never into compressed data, and tallies the units decoding would walk through for
`cputime`. Each costs less per unit than what the unit costs the decoder (`bench/cpu_rates.py` measures both).
A walk asks its tally every BATCH units whether it may end (the verdict known, or its time up).
"""

from __future__ import annotations

import math
import re
import struct
from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:
    from headseg.function.cputime import Tally

BATCH = 1024  # units a walk counts between two questions to its tally

_SOF = frozenset({0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF})
_SEGMENTS = frozenset(range(0xC0, 0xFF)) - _SOF - {0xD8, 0xD9, 0xDA} - set(range(0xD0, 0xD8))  # with a length
_SOS = re.compile(rb"\xff\xda")  # entropy-coded data never holds it: its FF bytes are followed by 00 or RSTn

Frame = tuple[int, int, dict[int, tuple[int, int]]]  # width, height, component id -> sampling (h, v)


def _jpeg(data: bytes, tally: Tally) -> None:
    """The marker segments before the first scan, as Pillow parses them; then every scan (SOS) and the blocks it
    visits: each block of each of its components (a refinement scan also each coefficient of its band)."""
    end, pos, frame = len(data), 2, None
    while pos + 4 <= end:
        pos, skipped = _segments(data, pos, end)
        tally.add("jpeg marker", skipped, opening=True)
        if skipped == BATCH:
            if tally.enough():
                return
        elif pos + 4 > end:
            break
        elif data[pos] != 0xFF:  # stray bytes: Pillow reads them one at a time, libjpeg warns and skips them
            following = data.find(b"\xff", pos)
            following = end if following < 0 else following
            tally.add("jpeg stray byte", following - pos, opening=True)
            pos = following
        elif data[pos + 1] in _SOF:
            frame = _jpeg_frame(data, pos + 4)
            tally.add("jpeg marker", opening=True)
            pos += 2 + (data[pos + 2] << 8 | data[pos + 3])
        elif data[pos + 1] == 0xFF:  # a fill byte
            pos += 1
        else:  # the first scan (SOS); or SOI, RSTn, EOI before any: nothing more Pillow would parse
            break
    if frame is not None and pos + 4 <= end and data[pos + 1] == 0xDA:
        _jpeg_scans(data, pos, frame, tally)


def _segments(data: bytes, pos: int, end: int) -> tuple[int, int]:
    """Skip up to BATCH marker segments from `pos` by their lengths, but no frame header and no scan: (the
    position after them, how many). The walk's hot loop: kept to a few operations a segment."""
    for skipped in range(BATCH):
        if pos + 4 > end or data[pos] != 0xFF or data[pos + 1] not in _SEGMENTS:
            return pos, skipped
        pos += 2 + (data[pos + 2] << 8 | data[pos + 3])
    return pos, BATCH


def _jpeg_frame(data: bytes, pos: int) -> Frame:
    height, width, count = struct.unpack_from(">HHB", data, pos + 1)
    components = {}
    for index in range(count):
        ident, sampling = data[pos + 6 + 3 * index], data[pos + 7 + 3 * index]
        components[ident] = (max(1, sampling >> 4), max(1, sampling & 15))
    return width, height, components


def _jpeg_scans(data: bytes, first: int, frame: Frame, tally: Tally) -> None:
    """Every SOS from `first` on. A scan's cost depends on its header alone, so each distinct header is costed
    once (a bomb repeats one)."""
    costs: dict[bytes, tuple[int, int]] = {}
    scans = blocks = coefficients = 0
    try:
        for found in _SOS.finditer(data, first):
            pos = found.start()
            if pos + 4 > len(data):
                break
            header = data[pos + 4 : pos + 2 + (data[pos + 2] << 8 | data[pos + 3])]
            cost = costs.get(header)
            if cost is None:
                cost = costs[header] = _jpeg_scan(header, frame)
            scans += 1
            blocks += cost[0]
            coefficients += cost[1]
            if scans == BATCH:
                tally.add("jpeg scan", scans)
                tally.add("jpeg block", blocks)
                tally.add("jpeg band coefficient", coefficients)
                scans = blocks = coefficients = 0
                if tally.enough():
                    return
    finally:  # what was counted since the last batch, however the walk ended
        tally.add("jpeg scan", scans)
        tally.add("jpeg block", blocks)
        tally.add("jpeg band coefficient", coefficients)


def _jpeg_scan(header: bytes, frame: Frame) -> tuple[int, int]:
    """(blocks, band coefficients) one scan visits; (0, 0) for a header that does not parse."""
    width, height, components = frame
    if not components or not header or len(header) < 4 + 2 * header[0]:
        return 0, 0
    h_max = max(h for h, _ in components.values())
    v_max = max(v for _, v in components.values())
    count = header[0]
    start, stop, approximation = header[1 + 2 * count], header[2 + 2 * count], header[3 + 2 * count]
    blocks = 0
    for ident in header[1 : 1 + 2 * count : 2]:
        h, v = components.get(ident, (1, 1))
        blocks += math.ceil(math.ceil(width * h / h_max) / 8) * math.ceil(math.ceil(height * v / v_max) / 8)
    refinement = approximation >> 4 and start > 0  # an AC refinement scan walks each block's band too
    return blocks, blocks * max(0, stop - start + 1) if refinement else 0


def _png(data: bytes, tally: Tally) -> None:
    """Every chunk: Pillow reads each in Python (opening: those before the first IDAT)."""
    end, pos, chunks, opening = len(data), 8, 0, True
    try:
        while pos + 8 <= end:
            if opening and data.startswith(b"IDAT", pos + 4):
                tally.add("png chunk", chunks, opening=True)
                chunks, opening = 0, False
            chunks += 1
            if data.startswith(b"IEND", pos + 4):
                break
            pos += 12 + (data[pos] << 24 | data[pos + 1] << 16 | data[pos + 2] << 8 | data[pos + 3])
            if chunks == BATCH:
                tally.add("png chunk", chunks, opening=opening)
                chunks = 0
                if tally.enough():
                    return
    finally:
        tally.add("png chunk", chunks, opening=opening)


def _gif(data: bytes, tally: Tally) -> None:
    """Every frame (an image descriptor): counting frames walks each one in Python."""
    end, pos, frames = len(data), 13, 0
    if data[10] & 0x80:  # the global colour table
        pos += 3 << ((data[10] & 7) + 1)
    try:
        while pos < end:
            block = data[pos]
            if block == 0x2C:  # an image: its descriptor, local colour table, LZW code size, then sub-blocks
                flags = data[pos + 9]
                pos += 11 + ((3 << ((flags & 7) + 1)) if flags & 0x80 else 0)
                frames += 1
                if frames == BATCH:
                    tally.add("gif frame", frames, opening=True)
                    frames = 0
                    if tally.enough():
                        return
            elif block == 0x21:  # an extension: label, then sub-blocks
                pos += 2
            else:  # the trailer, or garbage
                break
            size = data[pos] if pos < end else 0
            while size:  # sub-blocks, up to the empty one
                pos += 1 + size
                size = data[pos] if pos < end else 0
            pos += 1
    finally:
        tally.add("gif frame", frames, opening=True)


def _tiff(data: bytes, tally: Tally) -> None:
    """The directory chain (each one a frame Pillow reads to count them) and the first image's strips or tiles.
    A chain that loops ends where it would come back (as Pillow's does)."""
    order = "<" if data[:2] == b"II" else ">"
    (offset,) = struct.unpack_from(order + "I", data, 4)
    seen = bytearray(len(data) // 8 + 1)  # a bit for each offset: no set of millions of ints
    directories = 0
    try:
        while offset and offset + 2 <= len(data) and not seen[offset >> 3] & (1 << (offset & 7)):
            seen[offset >> 3] |= 1 << (offset & 7)
            (entries,) = struct.unpack_from(order + "H", data, offset)
            directories += 1
            if directories == 1:
                tally.add(*_tiff_strips(data, order, offset + 2, entries))
            if directories % BATCH == 0:
                tally.add("tiff directory", BATCH, opening=True)
                if tally.enough():
                    return
            (offset,) = struct.unpack_from(order + "I", data, offset + 2 + 12 * entries)
    finally:
        tally.add("tiff directory", directories % BATCH, opening=True)


def _tiff_strips(data: bytes, order: str, first: int, entries: int) -> tuple[str, int]:
    """The unit and the number of strips (StripOffsets) or tiles (TileOffsets) the directory at `first` lists:
    stored ones Pillow decodes one by one in Python ("tiff stored strip"), others libtiff does ("tiff strip")."""
    strips, compression = 0, 1
    for index in range(min(entries, (len(data) - first) // 12)):
        tag, kind, values = struct.unpack_from(order + "HHI", data, first + 12 * index)
        if tag in (273, 324):  # StripOffsets, TileOffsets
            strips = max(strips, values)
        elif tag == 259:  # Compression: a SHORT, in the entry itself
            (compression,) = struct.unpack_from(order + "H", data, first + 12 * index + 8)
    return ("tiff stored strip" if compression == 1 else "tiff strip"), strips


#: The walk of each format `cputime.count` knows (others: pixels only).
WALKS: dict[str, Callable[[bytes, "Tally"], None]] = {"JPEG": _jpeg, "PNG": _png, "GIF": _gif, "TIFF": _tiff}
