"""`headseg cut IMAGE... [-o DIR]`: each head of each image as its own PNG, flat in one folder, as rembg does.

For an image NAME.jpg it writes NAME-head-0.png, NAME-head-1.png... (left to right; RGBA cutouts, or masks with
--return-form mask) and NAME.json: the source, its size and each head's file and box. It runs the function's own
checks, normalization and offline engine, so an image is refused, or cut, exactly as an upload would be.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from headseg.cli._progress import progress_bar
from headseg.function.config import RETURN_FORMS, env_default
from headseg.function.errors import HeadsegError
from headseg.local.directory import write_atomically

if TYPE_CHECKING:  # the engine loads when the command runs, not when the command line is built
    from headseg.local.direct import Cut, DirectCutter

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".heic", ".heif"})
STDIO = "-"
STDIN_NAME = "stdin"

EPILOG = """\
IMAGE is a file, a folder (the images directly in it, by extension; cutouts this command wrote there are left
out) or - for standard input (written as stdin-head-N.png and stdin.json). DIR is created if need be.

  headseg cut photo.jpg                 photo-head-0.png ... and photo.json in the current folder
  headseg cut photos/ -o heads/         the same for every image in photos/, all in heads/
  headseg cut - -o - < in.jpg > out.png a pipe: the cutout PNG on standard output (exactly one head, else
                                        it fails); -o - takes exactly one image and writes no JSON

NAME.json: {"source": IMAGE, "width": W, "height": H, "return_form": null or "mask", "heads": [{"file":
"NAME-head-0.png", "x": X, "y": Y, "width": W, "height": H}, ...], "normalization": what was done so the engine
would take the image, or null}. Boxes are in the image's pixels as displayed (EXIF orientation applied, full
size); a cutout is at the resolution the engine worked at (at most 1999 px a side, as SegmentHead).
A rerun replaces NAME's files, removing cutouts of heads no longer found.

Exit status: 0 when every image was cut (finding no head is no failure), 1 when any failed (one line each on
standard error, in the function's words), 2 when the command line is wrong.
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "cut", help="cut out the heads of images into a folder, as rembg does", description=__doc__, epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("images", nargs="+", metavar="IMAGE", help="image files, folders, or - for standard input")
    parser.add_argument("-o", "--output", default=".", metavar="DIR", help="where the files go, - for standard output (default: the current folder)")
    parser.add_argument(
        "--return-form", type=str.lower, choices=RETURN_FORMS, default=env_default("RETURN_FORM") or None,
        help="mask: single-channel masks instead of RGBA cutouts (env RETURN_FORM)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(run=run)


@dataclass(frozen=True)
class Input:
    """An image to cut: where it comes from (a file, or None for standard input) and the NAME its outputs take."""

    path: Path | None
    name: str

    @property
    def shown(self) -> str:
        return STDIO if self.path is None else str(self.path)

    def read(self) -> bytes:
        return sys.stdin.buffer.read() if self.path is None else self.path.read_bytes()


def run(args: argparse.Namespace) -> int:
    from headseg.local.direct import DirectCutter

    inputs = collect(args.images)
    if not inputs:
        raise HeadsegError("no images found in " + ", ".join(args.images))
    to_stdout = args.output == STDIO
    if to_stdout and len(inputs) != 1:
        raise HeadsegError(f"-o - writes one cutout to standard output: give exactly one image, not {len(inputs)}")
    folder = Path(args.output)
    failures: list[tuple[str, str]] = []
    heads = 0
    with DirectCutter(args.return_form) as cutter:
        with progress_bar(inputs, unit="image", quiet=args.quiet or len(inputs) == 1) as progress:
            for item in progress:
                outcome = cut_one(cutter, item, None if to_stdout else folder)
                if isinstance(outcome, str):
                    failures.append((item.shown, outcome))
                else:
                    heads += outcome
    for shown, reason in failures:
        print(f"{shown}: {reason}", file=sys.stderr)
    if not to_stdout:
        print(f"{len(inputs)} image(s): {heads} head(s) cut, {len(failures)} failed; files in {folder}")
    return 1 if failures else 0


def cut_one(cutter: DirectCutter, item: Input, folder: Path | None) -> int | str:
    """How many heads `item` has, written to `folder` (None: standard output); or why it failed."""
    from headseg.local.direct import CutFailed

    try:
        data = item.read()
    except OSError as exc:
        return f"cannot read: {exc.strerror or exc}"
    try:
        cut = cutter.cut(data)
        if folder is None:
            write_stdout(cut)
        else:
            write_files(folder, item, cut)
    except CutFailed as failed:
        return failed.reason
    except OSError as exc:
        return f"cannot write: {exc.strerror or exc}" + (f" ({exc.filename})" if exc.filename else "")
    return len(cut.heads)


def write_stdout(cut: Cut) -> None:
    """The one head's PNG on standard output; `CutFailed` when there is not exactly one."""
    from headseg.local.direct import CutFailed

    if len(cut.heads) != 1:
        found = "no head" if not cut.heads else f"{len(cut.heads)} heads"
        raise CutFailed(f"{found} found; -o - writes exactly one: give -o DIR for every head")
    sys.stdout.buffer.write(cut.heads[0][1])
    sys.stdout.buffer.flush()


def write_files(folder: Path, item: Input, cut: Cut) -> None:
    """NAME-head-N.png for each head, then NAME.json; cutouts an earlier run wrote for NAME and this one did not
    are removed."""
    folder.mkdir(parents=True, exist_ok=True)
    files = [f"{item.name}-head-{head.index}.png" for head, _ in cut.heads]
    for file, (_, png) in zip(files, cut.heads):
        write_atomically(folder / file, png)
    record = folder / f"{item.name}.json"
    earlier = written_before(record, item.name)
    document = {
        "source": item.shown,
        "width": cut.width,
        "height": cut.height,
        "return_form": cut.return_form,
        "heads": [
            {"file": file, "x": head.x, "y": head.y, "width": head.width, "height": head.height}
            for file, (head, _) in zip(files, cut.heads)
        ],
        "normalization": cut.normalization,
    }
    write_atomically(record, (json.dumps(document, ensure_ascii=False, indent=2) + "\n").encode())
    for stale in earlier - set(files):
        (folder / stale).unlink(missing_ok=True)


def written_before(record: Path, name: str) -> set[str]:
    """The cutout files an earlier NAME.json lists (only names this command gives NAME's cutouts)."""
    try:
        document = json.loads(record.read_bytes())
        listed = {head["file"] for head in document["heads"]}
    except (OSError, ValueError, KeyError, TypeError):
        return set()
    own = re.compile(re.escape(name) + r"-head-\d+\.png")
    return {file for file in listed if isinstance(file, str) and own.fullmatch(file)}


def collect(arguments: list[str]) -> list[Input]:
    """The images to cut, each with the NAME its outputs take; two inputs that would share a NAME are refused."""
    found: list[Input] = []
    for argument in arguments:
        path = Path(argument)
        if argument == STDIO:
            found.append(Input(None, STDIN_NAME))
        elif path.is_dir():
            found.extend(Input(file, file.stem) for file in sorted(path.iterdir()) if is_image_file(file))
        else:
            found.append(Input(path, path.stem))
    names: dict[str, Input] = {}
    for item in found:
        if item.name in names and names[item.name] != item:
            raise HeadsegError(
                f"{item.shown} and {names[item.name].shown} would both write {item.name}.json: cut them into different "
                "folders (-o) or rename one"
            )
        names[item.name] = item
    return list(names.values())


def is_image_file(path: Path) -> bool:
    """An image in a folder: a file with an image's extension, and not a cutout this command wrote there."""
    if not path.is_file() or path.suffix.lower() not in IMAGE_SUFFIXES:
        return False
    own = re.fullmatch(r"(.+)-head-\d+\.png", path.name)
    return own is None or path.name not in written_before(path.with_name(f"{own.group(1)}.json"), own.group(1))
