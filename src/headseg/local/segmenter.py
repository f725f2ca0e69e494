"""The local segmenter: SegmentHead's contract offline, on the engine in `headcut` (the `local` extra).

Same input, same output: RGBA cutouts cropped to each head's box (or single-channel masks for
ReturnForm=mask) with X/Y/Width/Height in input-image coordinates, left to right.
"""

from __future__ import annotations

import io
import threading
import uuid
from typing import TYPE_CHECKING, Any

from headseg.function.errors import ConfigError, InvalidImage
from headseg.function.retry import Budget
from headseg.function.segmenters import Head, Segmentation, SegmentInput, Takes

if TYPE_CHECKING:  # numpy, Pillow and the engine load with the engine, not with this module
    import numpy as np
    from PIL import Image

    from headseg.local.mattes import HeadCut

INSTALL_HINT = "the local engine needs the `local` extra: pip install 'headseg[local]'"


class LocalSegmenter:
    """Heads found and cut out on this machine; the engine (LiteRT and its models) loads on first use."""

    name = "local"
    takes = Takes.BYTES

    def __init__(self) -> None:
        self._cutter: Any = None
        self._lock = threading.Lock()

    def segment(self, image: SegmentInput, return_form: str | None, budget: Budget) -> Segmentation:
        assert image.data is not None, "the local engine takes the bytes"
        return Segmentation(request_id=f"local-{uuid.uuid4()}", heads=self.cut(image.data, return_form))

    def fetch(self, head: Head, budget: Budget) -> bytes:
        assert head.png is not None, "local heads carry their cutouts"
        return head.png

    def warm(self) -> None:
        """Build the engine (its LiteRT interpreters) before the first image."""
        self._engine()

    def cut(self, data: bytes, return_form: str | None) -> list[Head]:
        """The heads in an encoded image, each with its cutout (or mask) PNG."""
        import numpy as np
        from PIL import Image

        try:
            with Image.open(io.BytesIO(data)) as image:
                rgb = np.asarray(image.convert("RGB"))
        except (OSError, SyntaxError, ValueError) as exc:
            raise InvalidImage(f"the image cannot be decoded: {exc}", code="InvalidImage.Content") from None
        heads = []
        for cut in self._engine().cut(rgb):
            png = io.BytesIO()
            picture(rgb, cut, return_form).save(png, "PNG", compress_level=1)
            heads.append(Head(cut.x, cut.y, cut.width, cut.height, png=png.getvalue()))
        return heads

    def _engine(self) -> Any:
        with self._lock:
            if self._cutter is None:
                try:
                    from headseg.local.headcut import HeadCutter

                    self._cutter = HeadCutter()  # LiteRT is imported here
                except ImportError as exc:
                    raise ConfigError(f"{INSTALL_HINT} ({exc.name} is missing)") from None
            return self._cutter


def picture(rgb: np.ndarray, cut: HeadCut, return_form: str | None) -> Image.Image:
    """One engine cut (`headcut.HeadCut`) of an RGB array as SegmentHead returns it: the head's pixels cropped
    to its box with the matte as alpha (RGBA), or the matte alone (L) for ReturnForm=mask."""
    import numpy as np
    from PIL import Image

    alpha = Image.fromarray((cut.alpha * 255.0 + 0.5).astype(np.uint8), "L")
    if return_form == "mask":
        return alpha
    rgba = Image.fromarray(rgb[cut.y : cut.y + cut.height, cut.x : cut.x + cut.width]).convert("RGBA")
    rgba.putalpha(alpha)
    return rgba
