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
import struct
import time
from dataclasses import dataclass, field

from headseg.function import images, worker
from headseg.function import normalize as normalizing
from headseg.function.config import Config
from headseg.function.errors import BudgetExhausted, InvalidImage
from headseg.function.images import ImageInfo, jpeg_reduction
from headseg.function.normalize import Normalized
from headseg.function.retry import Budget
from headseg.function.walks import WALKS

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


def count(data: bytes, fmt: str, *, whole: bool = True, stop: float = math.inf, until: float = math.inf) -> Tally:
    """The units opening and decoding an image in format `fmt` would walk through, as far as `data` shows (the
    whole object, or its first bytes: then `partial`, a lower bound). Ends early once they cost over `stop`
    seconds, or at `until` (`time.monotonic()`). Pixels are not in it (`add_pixels`)."""
    tally = Tally(stop, until, whole)
    walk = WALKS.get(fmt)
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
    first = head[: images.HEADER_BYTES]
    tally = count(first, info.format, whole=len(first) >= size)
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
