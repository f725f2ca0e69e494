"""`headseg sheet DIR [-o sheet.png]`: one row per source: the image with its head boxes, then its cutouts.

Sources are drawn as displayed (EXIF orientation applied), as the boxes are recorded. Cutouts are drawn on a
checkerboard so transparency shows; masks are shown as they are (white is head). DIR stands in for a bucket, so
the sheet goes beside it (`sheet.png` in the folder that holds DIR), never into it, unless `-o` asks for that.
At most --per-page sources make a page: more make sheet-1.png, sheet-2.png... beside the sheet's name (a rerun
removes pages it no longer makes).
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
PER_PAGE = 20  # sources a page: 20 rows of 240 px and their gaps make a page 5,052 px tall
BOX_COLOURS = [(255, 64, 64), (64, 200, 64), (64, 128, 255), (255, 192, 0), (200, 64, 255), (0, 200, 200)]


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("sheet", help="draw a contact sheet of the results", description=__doc__)
    parser.add_argument("dir", type=Path, help="a directory bucket written by `headseg segment` or `invoke`")
    parser.add_argument("-o", "--output", type=Path, help=f"the sheet, or the name its pages take (default: {SHEET_NAME} beside DIR, in the folder that holds it)")
    parser.add_argument("--per-page", type=_at_least_one, default=PER_PAGE, help="the most sources on one page")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    sidecars = read_sidecars(args.dir)
    if not sidecars:
        raise HeadsegError(f"no {SIDECAR_NAME} under {args.dir}: run `headseg segment` first")
    output = args.output or beside(args.dir)
    pages = [sidecars[start : start + args.per_page] for start in range(0, len(sidecars), args.per_page)]
    paths = [output] if len(pages) == 1 else [page_path(output, n) for n in range(1, len(pages) + 1)]
    output.parent.mkdir(parents=True, exist_ok=True)
    for path, page in zip(paths, pages):
        sheet = stack([_row(args.dir, sidecar) for sidecar in page])  # a page at a time: memory stays a page's
        sheet.save(path)
        print(f"{path}: {len(page)} image(s), {sheet.width}x{sheet.height}")
    stale = len(pages) + 1 if len(pages) > 1 else 1
    while page_path(output, stale).is_file():  # the pages an earlier, longer sheet left
        page_path(output, stale).unlink()
        stale += 1
    return 0


def beside(folder: Path) -> Path:
    """SHEET_NAME in the folder that holds `folder` (relative to the working directory when it is under it)."""
    path, here = folder.resolve().parent / SHEET_NAME, Path.cwd().resolve()
    return path.relative_to(here) if path.is_relative_to(here) else path


def page_path(output: Path, number: int) -> Path:
    """Page `number` (from 1) of a sheet named `output`: sheet.png's pages are sheet-1.png, sheet-2.png..."""
    return output.with_name(f"{output.stem}-{number}{output.suffix}")


def _at_least_one(raw: str) -> int:
    if not raw.isdigit() or int(raw) < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of sources, at least 1, not {raw!r}")
    return int(raw)


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


def read_sidecars(root: Path) -> list[Sidecar]:
    """The sidecars under `root` that read, in key order."""
    found = (Sidecar.from_json(path.read_bytes()) for path in sorted(root.rglob(SIDECAR_NAME)))
    return [sidecar for sidecar in found if sidecar is not None]


def _row(root: Path, sidecar: Sidecar):
    from PIL import Image, ImageOps

    with Image.open(root / sidecar.source.key) as original:
        source = ImageOps.exif_transpose(original).convert("RGB")  # as displayed: the boxes are upright
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
