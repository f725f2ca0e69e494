"""Generated test images for the imageseg fake: plain backgrounds with heads drawn in the fake's marker colour,
and `ImageHost`, a server that hands them out by URL.

Nothing binary lives in the repository; tests build what they need, in whatever format Pillow can write
(JPEG/PNG/BMP for valid input; GIF, WEBP and friends to exercise the format check).
"""

from __future__ import annotations

import io

from PIL import Image, ImageDraw

from ._server import FakeServer, Request, Response
from .imageseg import MARKER_COLOUR

__all__ = ["BODY_COLOUR", "MARKER_COLOUR", "ImageHost", "portrait"]

BODY_COLOUR = (40, 90, 200)  # far from the marker in every channel that matters: never detected as a head


def portrait(
    width: int,
    height: int,
    heads: list[tuple[int, int, int, int]],
    fmt: str = "JPEG",
    background: tuple[int, int, int] = (235, 235, 235),
    body: bool = True,
) -> bytes:
    """Encoded image bytes (`fmt`: a Pillow format name). Each (x, y, w, h) box holds a filled ellipse in
    MARKER_COLOUR, the "head"; with `body`, a wider BODY_COLOUR rectangle runs from just below it to the bottom."""
    image = Image.new("RGB", (width, height), background)
    draw = ImageDraw.Draw(image)
    if body:  # all bodies first, so none paints over a neighbour's head
        for x, y, w, h in heads:
            top = y + h + h // 10
            if top < height:
                draw.rectangle((x - w // 4, top, x + w + w // 4 - 1, height - 1), fill=BODY_COLOUR)
    for x, y, w, h in heads:
        draw.ellipse((x, y, x + w - 1, y + h - 1), fill=MARKER_COLOUR)
    out = io.BytesIO()
    image.save(out, fmt, **({"quality": 95} if fmt == "JPEG" else {}))
    return out.getvalue()


class ImageHost(FakeServer):
    """Serves input images by path; anything else is a 404 (tests use that on purpose)."""

    name = "image-host"

    def __init__(self) -> None:
        super().__init__()
        self.files: dict[str, bytes] = {}

    def put(self, name: str, data: bytes) -> str:
        self.files[f"/{name}"] = data
        return f"{self.url}/{name}"

    def handle(self, request: Request) -> Response:
        if request.method == "GET" and request.path in self.files:
            return Response(200, self.files[request.path], {"Content-Type": "application/octet-stream"})
        return Response(404, b"<Error><Code>NoSuchKey</Code></Error>", {"Content-Type": "application/xml"})
