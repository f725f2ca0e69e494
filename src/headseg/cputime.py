"""CPU time: what opening and decoding an image will cost, counted from its bytes without decoding any of them.

An image's decode time grows with what its bytes can multiply at will, for a few bytes each: the scans of a
progressive JPEG (each one walks every block of its components again), the markers and chunks Pillow parses
one by one in Python, the frames it walks to count them (GIF frames, TIFF directories), a TIFF's strips or
tiles, and the pixels. `count` walks the structure of the bytes held (markers, chunks, blocks: never the
compressed data) and tallies these units; each has a rate, CPU seconds per unit, measured on this machine
(`bench/cpu_rates.py`) and taken at the fast end, so the estimate is what the work takes at least. With the
function's share of a core (VCPU) and the budget, `check` refuses what cannot finish in time: for good when
even a whole invocation is too short, for now when only this one's remaining time is.

Counting costs less than what it counts (a marker skipped here costs less than Pillow parsing it; the ratios are
in `bench/cpu_rates.py`'s report), and it ends as soon as the verdict is known, or once it took COUNT_SHARE of
the time left (what it counted by then is the estimate: still a lower bound).
"""

from __future__ import annotations

import math
import re
import struct
import time
from dataclasses import dataclass, field
from typing import Callable

from headseg import images, worker
from headseg import normalize as normalizing
from headseg.config import Config
from headseg.errors import BudgetExhausted, InvalidImage
from headseg.images import ImageInfo, jpeg_reduction
from headseg.normalize import Normalized
from headseg.retry import Budget

#: CPU seconds per unit on one core: about half of what `bench/cpu_rates.py` measures on the development machine
#: (an AMD EPYC at 2.6 GHz; measured ÷ rate 1.6 to 3.8 over three runs), so a core about twice as fast still
#: takes at least this; every CPU bomb it builds measured 1.8 to 5.1 times its estimate.
RATES: dict[str, float] = {
    "jpeg marker": 0.35e-6,  # a marker segment before the first scan: Pillow parses each in Python
    "jpeg stray byte": 25e-9,  # a byte between markers before the first scan: Pillow skips them one by one
    "jpeg scan": 0.0,  # what a scan costs is in its blocks (counted for the reason)
    "jpeg block": 3.0e-9,  # one 8x8 block visited by one scan (libjpeg walks every block of a scan's components)
    "jpeg band coefficient": 0.3e-9,  # a refinement scan also walks each block's band, coefficient by coefficient
    "png chunk": 0.85e-6,  # Pillow reads every chunk in Python (IDATs the fastest: the rate is theirs)
    "gif frame": 0.8e-6,  # counting frames walks each one's blocks in Python
    "tiff directory": 40e-6,  # counting frames reads each directory (IFD) and sets the frame up
    "tiff stored strip": 3e-6,  # an uncompressed strip or tile of the first image: Pillow decodes them one by one
    "tiff strip": 0.0,  # a compressed one, libtiff's: too cheap to tell from its pixels here
    "pixel JPEG": 2.5e-9,  # a pixel decoded (at the draft scale) and normalized: measured on grey, the cheapest
    "pixel PNG": 3.5e-9,
    "pixel GIF": 7e-9,
    "pixel TIFF": 2.5e-9,
    "pixel BMP": 3e-9,
    "pixel WEBP": 12e-9,
    "pixel HEIF": 11e-9,
}


@dataclass
class Tally:
    """Units met by a walk, and what they cost. The walk ends early (`stopped`) once they cost more than `stop`
    seconds, or at `until` (a `time.monotonic()`). On a prefix of the object (not `whole`) or stopped, what it
    counted is a lower bound (`partial`)."""

    stop: float = math.inf
    until: float = math.inf
    whole: bool = True
    counts: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    opening: float = 0.0  # of `seconds`, what opening the image costs
    stopped: bool = False

    def add(self, unit: str, count: int = 1, *, opening: bool = False) -> None:
        """Count `count` of `unit`; `opening`: opening the image walks them (Image.open, counting frames)."""
        if count <= 0:
            return
        self.counts[unit] = self.counts.get(unit, 0) + count
        cost = count * RATES[unit]
        self.seconds += cost
        if opening:
            self.opening += cost

    def enough(self) -> bool:
        """Whether the walk can end: the verdict is known, or its time is up (walks ask every `BATCH` units)."""
        self.stopped = self.stopped or self.seconds > self.stop or time.monotonic() > self.until
        return self.stopped

    @property
    def partial(self) -> bool:
        return self.stopped or not self.whole


BATCH = 1024  # units a walk counts between two questions to its tally


def count(data: bytes, fmt: str, *, whole: bool = True, stop: float = math.inf, until: float = math.inf) -> Tally:
    """The units opening and decoding an image in format `fmt` would walk through, as far as `data` shows (the
    whole object, or its first bytes: then `partial`, a lower bound). Ends early once they cost over `stop`
    seconds, or at `until` (`time.monotonic()`). Pixels are not in it (`add_pixels`)."""
    tally = Tally(stop, until, whole)
    walk = _WALKS.get(fmt)
    if walk is not None:
        try:
            walk(data, tally)
        except (IndexError, struct.error):  # a structure the bytes break off or garble: counted so far
            pass
    return tally


def add_pixels(tally: Tally, info: ImageInfo, max_side: int) -> Tally:
    """`tally` with the pixels the decoder outputs: a JPEG to be downscaled is decoded at 1/2, 1/4 or 1/8
    (`normalize`'s draft), anything else at full size."""
    pixels = info.width * info.height
    scale = min(1.0, max_side / max(*info.upright_size, 1))
    if info.format == "JPEG" and scale < 1:
        wanted = (math.ceil(info.width * scale), math.ceil(info.height * scale))
        reduction = jpeg_reduction((info.width, info.height), wanted)
        pixels = -(-info.width // reduction) * -(-info.height // reduction)
    tally.add(f"pixel {info.format}", pixels)
    return tally


# -- walks: each follows one format's structure through the bytes held, never into compressed data; each costs
# -- less per unit than what the unit costs the decoder (bench/cpu_rates.py measures both) -----------------------
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


_WALKS: dict[str, Callable[[bytes, Tally], None]] = {"JPEG": _jpeg, "PNG": _png, "GIF": _gif, "TIFF": _tiff}


# -- the check ---------------------------------------------------------------------------------------------------
#: What a reason names, when there are more than this many: unit, (threshold, words).
_NAMED = {"jpeg scan": (1, "scans"), "jpeg marker": (1000, "markers"), "jpeg stray byte": (100_000, "stray bytes"),
          "png chunk": (1000, "chunks"), "gif frame": (1, "frames"), "tiff directory": (1, "directories"),
          "tiff stored strip": (1000, "strips or tiles"), "tiff strip": (1000, "strips or tiles")}


def describe(info: ImageInfo, tally: Tally) -> str:
    """The image and the counts that matter, for a reason: e.g. "progressive JPEG 2000x2000 with 20010 scans"."""
    return f"{'progressive ' if info.progressive else ''}{info.format} {info.width}x{info.height}{_listed(tally)}"


def _listed(tally: Tally) -> str:
    named = [f"{tally.counts[unit]} {words}" for unit, (least, words) in _NAMED.items() if tally.counts.get(unit, 0) > least]
    return (" with at least " if tally.partial else " with ") + ", ".join(named) if named else ""


def check(seconds: float, what: str, budget: Budget, vcpu: float, doing: str = "decode and normalize") -> None:
    """Refuse work of `seconds` CPU seconds (on one core) that cannot finish within the budget at `vcpu` cores:
    `InvalidImage` (DecodeTime, permanent) when even the whole work budget of an invocation is too short (a
    verdict of the function's timeout and VCPU settings, as the memory gate's is of its memory),
    `BudgetExhausted` (retriable) when only this invocation's remaining time is."""
    needed = seconds / min(vcpu, 1.0)  # one decode runs on one core
    if needed > budget.total:
        raise InvalidImage(
            f"{what} needs at least {needed:.1f} s to {doing} at VCPU={vcpu:g}, over the {budget.total:.1f} s "
            "the function's timeout allows (less TIME_MARGIN): raise timeout in s.yaml (or cpu, and VCPU with "
            "it), or upload a simpler image",
            code="InvalidImage.DecodeTime",
        )
    if needed > budget.remaining():
        raise BudgetExhausted(
            f"{what} needs at least {needed:.1f} s to {doing} at VCPU={vcpu:g}, and {budget.remaining():.1f} s "
            "of the invocation are left"
        )


# -- the steps, bounded -----------------------------------------------------------------------------------------
def check_head(info: ImageInfo, head: bytes, size: int, budget: Budget, config: Config) -> None:
    """Refuse from the object's first bytes (`size`: the object's) an image whose decoding cannot finish in time,
    before the whole object is read. Counting them is cheap: they are at most HEADER_BYTES."""
    tally = count(head[: images.HEADER_BYTES], info.format, whole=len(head) >= size)
    add_pixels(tally, info, config.max_image_side)
    check(tally.seconds, describe(info, tally), budget, config.vcpu)


def read_header(data: bytes, budget: Budget, config: Config) -> ImageInfo:
    """`images.read_header` of the whole object, in a worker killed at the deadline; refused first when opening
    the image (the markers, chunks, frames it walks) cannot finish in time."""

    def job() -> ImageInfo:
        fmt = images.sniff(data) or "image"
        stop, until = _limits(budget, config)
        tally = count(data, fmt, stop=stop, until=until)
        check(tally.opening, f"{fmt} of {len(data)} bytes{_listed(tally)}", budget, config.vcpu, doing="open")
        return images.read_header(data, complete=True)

    return worker.run(job, budget, "read the image's header")


def normalize(data: bytes, info: ImageInfo, budget: Budget, config: Config) -> Normalized:
    """`normalize.normalize` in a worker killed at the deadline; refused first when what the whole object shows
    cannot finish in time."""

    def job() -> Normalized:
        stop, until = _limits(budget, config)
        tally = add_pixels(count(data, info.format, stop=stop, until=until), info, config.max_image_side)
        check(tally.seconds, describe(info, tally), budget, config.vcpu)
        return normalizing.normalize(data, config.limits)

    return worker.run(job, budget, "normalize the image")


#: Of the time left, what a count may take at most (in the worker): then what it counted is the estimate.
COUNT_SHARE = 0.75


def _limits(budget: Budget, config: Config) -> tuple[float, float]:
    """How far a count goes (stop, until): until its cost is over what the whole work budget allows (the
    verdict is known), or for at most COUNT_SHARE of the time left."""
    return budget.total * min(config.vcpu, 1.0), time.monotonic() + COUNT_SHARE * budget.remaining()
