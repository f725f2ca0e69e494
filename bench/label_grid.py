"""Draw an evaluation photo for labelling by eye: `python -m bench.label_grid ID [-o grid.png]`.

The photo is shown upright (EXIF applied), at most 1000 px wide, with a grid every GRID px of the *original*
upright pixels (numbered), and the heads already in labels.json marked: green crosses for required heads,
yellow for optional ones. Labels are read off this picture, then checked on it.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bench import evalset

MAX_WIDTH = 1000


def grid(photo: evalset.Photo) -> object:
    from PIL import ImageDraw

    image = evalset.upright(photo)
    scale = min(1.0, MAX_WIDTH / image.width)
    shown = image.resize((round(image.width * scale), round(image.height * scale)))
    draw = ImageDraw.Draw(shown)
    step = 50 if max(image.size) <= 1200 else 100 if max(image.size) <= 3000 else 250
    for x in range(0, image.width, step):
        draw.line([(x * scale, 0), (x * scale, shown.height)], fill=(0, 160, 255), width=1)
        draw.text((x * scale + 2, 2), str(x), fill=(0, 160, 255))
    for y in range(0, image.height, step):
        draw.line([(0, y * scale), (shown.width, y * scale)], fill=(0, 160, 255), width=1)
        draw.text((2, y * scale + 2), str(y), fill=(0, 160, 255))
    for points, colour in ((photo.heads, (0, 255, 0)), (photo.optional, (255, 220, 0))):
        for px, py in points:
            cx, cy = px * scale, py * scale
            draw.line([(cx - 8, cy), (cx + 8, cy)], fill=colour, width=3)
            draw.line([(cx, cy - 8), (cx, cy + 8)], fill=colour, width=3)
    return shown


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.label_grid", description=__doc__.splitlines()[0])
    parser.add_argument("id", help="the photo's id in bench/evalset/sources.json")
    parser.add_argument("-o", "--out", type=Path, default=Path("grid.png"))
    args = parser.parse_args(argv)
    matches = [photo for photo in evalset.photos() if photo.id == args.id]
    if not matches:
        print(f"no photo {args.id!r} in the set", file=sys.stderr)
        return 2
    grid(matches[0]).save(args.out)  # type: ignore[attr-defined]
    print(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
