"""Draw evaluation photos for labelling by eye: `python -m bench.label_grid ID [-o grid.png]` to label one,
`python -m bench.label_grid --check [-o check.png]` to check every label.

A photo is shown upright (EXIF applied), at most 1000 px wide, with a grid every GRID px of the *original*
upright pixels (numbered), and the heads already in labels.json marked: green crosses for required heads,
yellow for optional ones. Labels are read off the grid's numbers (not the preview's pixels), then checked:
the check sheet shows every label on a crop of the photo's own pixels around it, where a centre off its
head is plain to see even for a 15 px head.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from bench import evalset

MAX_WIDTH = 1000
CHECK_TILE = 200  # the check sheet's crops are drawn this many pixels square
CHECK_COLUMNS = 6
REQUIRED, OPTIONAL = (0, 255, 0), (255, 220, 0)


def grid(photo: evalset.Photo) -> Any:
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
    for points, colour in ((photo.heads, REQUIRED), (photo.optional, OPTIONAL)):
        for px, py in points:
            cross(draw, px * scale, py * scale, 8, colour, 3)
    return shown


def check_sheet(photos: list[evalset.Photo]) -> Any:
    """Every label of `photos` on a crop of its photo's own pixels (a fifth of the short side, at least 80
    px, drawn CHECK_TILE square), the cross in the middle, the photo and the centre written above."""
    from PIL import Image, ImageDraw

    tiles = []
    for photo in photos:
        if not photo.heads and not photo.optional:
            continue
        image = evalset.upright(photo)
        half = max(80, min(image.size) // 5) / 2
        for points, colour, mark in ((photo.heads, REQUIRED, "R"), (photo.optional, OPTIONAL, "o")):
            for x, y in points:
                tile = image.crop((int(x - half), int(y - half), int(x + half), int(y + half))).resize((CHECK_TILE, CHECK_TILE))
                draw = ImageDraw.Draw(tile)
                cross(draw, CHECK_TILE / 2, CHECK_TILE / 2, 5, colour, 2)
                draw.text((2, 2), f"{photo.id[:20]} {mark} {x:.0f},{y:.0f}", fill=colour)
                tiles.append(tile)
    rows = max(1, -(-len(tiles) // CHECK_COLUMNS))
    sheet = Image.new("RGB", (CHECK_COLUMNS * CHECK_TILE, rows * CHECK_TILE))
    for i, tile in enumerate(tiles):
        sheet.paste(tile, ((i % CHECK_COLUMNS) * CHECK_TILE, (i // CHECK_COLUMNS) * CHECK_TILE))
    return sheet


def cross(draw: Any, x: float, y: float, arm: float, colour: tuple[int, int, int], width: int) -> None:
    draw.line([(x - arm, y), (x + arm, y)], fill=colour, width=width)
    draw.line([(x, y - arm), (x, y + arm)], fill=colour, width=width)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.label_grid", description=__doc__.splitlines()[0])
    parser.add_argument("id", nargs="?", help="the photo's id in bench/evalset/sources.json")
    parser.add_argument("--check", action="store_true", help="draw every label of the set on the photos' own pixels")
    parser.add_argument("-o", "--out", type=Path)
    args = parser.parse_args(argv)
    if not args.check and not args.id:
        parser.error("name a photo, or --check")
    photos = evalset.photos()
    if args.check:
        out = args.out or Path("check.png")
        check_sheet(photos).save(out)
    else:
        matches = [photo for photo in photos if photo.id == args.id]
        if not matches:
            print(f"no photo {args.id!r} in the set", file=sys.stderr)
            return 2
        out = args.out or Path("grid.png")
        grid(matches[0]).save(out)
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
