"""`headseg sheet DIR [-o sheet.png]`: one row per source: the image with its head boxes, then its cutouts.

Cutouts are drawn on a checkerboard so transparency shows; masks are shown as they are (white is head). DIR
stands in for a bucket, so the sheet goes beside it (`sheet.png` in the folder that holds DIR), never into it,
unless `-o` asks for that.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from headseg.function.errors import HeadsegError
from headseg.function.layout import SIDECAR_NAME
from headseg.function.sidecar import Sidecar

SHEET_NAME = "sheet.png"
ROW_HEIGHT = 240
GAP = 12
BOX_COLOURS = [(255, 64, 64), (64, 200, 64), (64, 128, 255), (255, 192, 0), (200, 64, 255), (0, 200, 200)]


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("sheet", help="draw a contact sheet of the results", description=__doc__)
    parser.add_argument("dir", type=Path, help="a directory bucket written by `headseg segment` or `invoke`")
    parser.add_argument("-o", "--output", type=Path, help=f"default: {SHEET_NAME} beside DIR (in the folder that holds it)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    rows = render_rows(args.dir)
    if not rows:
        raise HeadsegError(f"no {SIDECAR_NAME} under {args.dir}: run `headseg segment` first")
    sheet = stack(rows)
    output = args.output or beside(args.dir)
    output.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(output)
    print(f"{output}: {len(rows)} image(s), {sheet.width}x{sheet.height}")
    return 0


def beside(folder: Path) -> Path:
    """SHEET_NAME in the folder that holds `folder` (relative to the working directory when it is under it)."""
    path, here = folder.resolve().parent / SHEET_NAME, Path.cwd().resolve()
    return path.relative_to(here) if path.is_relative_to(here) else path


def stack(rows: list):
    """The rows one under another, GAP apart and around."""
    from PIL import Image

    width = max(row.width for row in rows) + 2 * GAP
    height = sum(row.height for row in rows) + GAP * (len(rows) + 1)
    sheet = Image.new("RGB", (width, height), (250, 250, 250))
    y = GAP
    for row in rows:
        sheet.paste(row, (GAP, y))
        y += row.height + GAP
    return sheet


def render_rows(root: Path) -> list:
    """One rendered row per sidecar under `root`, in key order."""
    rows = []
    for path in sorted(root.rglob(SIDECAR_NAME)):
        sidecar = Sidecar.from_json(path.read_bytes())
        if sidecar is not None:
            rows.append(_row(root, sidecar))
    return rows


def _row(root: Path, sidecar: Sidecar):
    from PIL import Image

    with Image.open(root / sidecar.source.key) as original:
        source = original.convert("RGB")  # boxes are in the stored pixel grid
    heads = []
    for head in sidecar.heads:
        with Image.open(root / head.key) as cutout:
            heads.append(((head.x, head.y, head.width, head.height), cutout.copy(), head.index))
    return draw_row(source, heads, f"{sidecar.source.key}: {len(sidecar.heads)} head(s)")


def draw_row(source, heads: list, caption: str):
    """One row: `source` with each head's box, then each cutout on a checkerboard framed in its box's colour;
    `heads` holds (box (x, y, width, height) in the source's pixels, cutout image, index) per head."""
    from PIL import Image, ImageDraw

    scale = ROW_HEIGHT / source.height
    thumb = source.resize((max(1, round(source.width * scale)), ROW_HEIGHT))
    draw = ImageDraw.Draw(thumb)
    for (x, y, width, height), _, index in heads:
        box = [x * scale, y * scale, (x + width) * scale, (y + height) * scale]
        draw.rectangle(box, outline=BOX_COLOURS[index % len(BOX_COLOURS)], width=3)
    tiles = [thumb]
    for _, cutout, index in heads:
        tiles.append(_on_checkerboard(cutout, ROW_HEIGHT, BOX_COLOURS[index % len(BOX_COLOURS)]))
    row = Image.new("RGB", (sum(t.width for t in tiles) + GAP * (len(tiles) - 1), ROW_HEIGHT), (250, 250, 250))
    x = 0
    for tile in tiles:
        row.paste(tile, (x, 0))
        x += tile.width + GAP
    ImageDraw.Draw(row).text((4, 4), caption, fill=(0, 0, 0))
    return row


def _on_checkerboard(cutout, height: int, frame: tuple[int, int, int]):
    from PIL import Image, ImageDraw

    scale = min(1.0, height / cutout.height) if cutout.height else 1.0
    size = (max(1, round(cutout.width * scale)), max(1, round(cutout.height * scale)))
    cutout = cutout.resize(size)
    board = Image.new("RGB", size, (255, 255, 255))
    draw = ImageDraw.Draw(board)
    cell = 10
    for y in range(0, size[1], cell):
        for x in range((y // cell) % 2 * cell, size[0], 2 * cell):
            draw.rectangle([x, y, x + cell - 1, y + cell - 1], fill=(204, 204, 204))
    if cutout.mode == "RGBA":
        board.paste(cutout, (0, 0), cutout)
    else:
        board.paste(cutout.convert("RGB"), (0, 0))
    ImageDraw.Draw(board).rectangle([0, 0, size[0] - 1, size[1] - 1], outline=frame, width=2)
    return board
