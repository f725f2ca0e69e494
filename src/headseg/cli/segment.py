"""`headseg segment PATH... --out DIR`: the function's job on local files, DIR standing in for the bucket.

Each input is copied into DIR under `incoming/` and run through the same pipeline as in the cloud, so DIR
ends up with exactly the function's layout: `heads/incoming/<name>/head-N.png` and `heads.json`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from urllib.parse import urlsplit

from headseg.local.wiring import local_app
from headseg.cli._progress import progress_bar
from headseg.function.config import LOCAL_PREFIXES, RETURN_FORMS, Config, Engine, env_default
from headseg.function.app import App
from headseg.function.credentials import Credentials
from headseg.function.errors import ConfigError, HeadsegError
from headseg.function.events import ObjectCreated
from headseg.function.outcome import Outcome, Status
from headseg.function.pipeline import Pipeline
from headseg.function.retry import Budget
from headseg.local.directory import DirectoryStorage
from headseg.ops.standing import stamp

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".heic", ".heif"})
INPUT_PREFIX = LOCAL_PREFIXES["INPUT_PREFIX"]
OUTPUT_PREFIX = LOCAL_PREFIXES["OUTPUT_PREFIX"]
BUCKET = "local"
PER_IMAGE_SECONDS = 300.0
LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})
PLACEHOLDER_KEY = "headseg-serve-placeholder"


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("segment", help="cut out the heads of local images", description=__doc__)
    parser.add_argument("paths", nargs="+", type=Path, help="image files or folders (searched recursively)")
    parser.add_argument("--out", required=True, type=Path, help="output folder (a directory bucket)")
    parser.add_argument("--engine", choices=[e.value for e in Engine], default=env_default("ENGINE", "local"))
    parser.add_argument(
        "--return-form", type=str.lower, choices=RETURN_FORMS, default=env_default("RETURN_FORM") or None,
        help="mask: single-channel masks instead of RGBA cutouts (env RETURN_FORM)",
    )
    parser.add_argument(
        "--imageseg-endpoint",
        default=env_default("IMAGESEG_ENDPOINT"),
        help="with --engine cloud: SegmentHead's endpoint, e.g. http://127.0.0.1:8080 for `headseg serve` (which, "
        "without --verify-signatures, needs no ALIBABA_CLOUD_ACCESS_KEY_ID)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    inputs = collect(args.paths)
    if not inputs:
        print("headseg segment: no input files found", file=sys.stderr)
        return 2
    config = Config.from_env({}, defaults=LOCAL_PREFIXES, overrides={  # checked as the function checks them
        "ENGINE": args.engine, "RETURN_FORM": args.return_form or "", "BUCKET_DIR": str(args.out),
        "IMAGESEG_ENDPOINT": args.imageseg_endpoint,
    })
    storage = DirectoryStorage(args.out, BUCKET)
    if next(iter(storage.list(config.output_prefix)), None) is None:  # no result before marks: `status` lists marks
        stamp(storage, config, "")
    app = local_app(config)
    pipeline = app.pipeline(credentials_for(app))
    failures: list[tuple[Path, str]] = []
    done = already = 0
    try:
        with progress_bar(inputs, unit="image", quiet=args.quiet) as progress:
            for path, key in progress:
                progress.set_postfix_str(path.name, refresh=False)
                outcome = _process(pipeline, storage, path, key)
                if isinstance(outcome, str):
                    failures.append((path, outcome))
                elif outcome.status is Status.DONE:
                    done += 1
                elif outcome.code == "AlreadyDone":
                    already += 1
                else:  # a file named on the command line that is skipped (not an image) counts as failed
                    failures.append((path, outcome.reason))
    finally:
        app.close()
    for path, reason in failures:
        print(f"{path}: {reason}", file=sys.stderr)
    print(
        f"{len(inputs)} image(s): {done} done, {already} already done, {len(failures)} failed; "
        f"results in {args.out / OUTPUT_PREFIX}"
    )
    return 1 if failures else 0


def credentials_for(app: App) -> Credentials | None:
    """The environment's credentials, when the engine needs some; without them, against a SegmentHead on this
    machine (`headseg serve`), a placeholder key: a server that does not verify signatures takes any."""
    try:
        return app.credentials(None)
    except ConfigError:
        if urlsplit(app.config.imageseg_url).hostname not in LOOPBACK:
            raise
        return Credentials(PLACEHOLDER_KEY, PLACEHOLDER_KEY)


def _process(pipeline: Pipeline, storage: DirectoryStorage, path: Path, key: str) -> Outcome | str:
    """The outcome of one file, or why it could not even be read."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        return f"cannot read: {exc.strerror or exc}"
    stored = storage.path(key)
    if not (stored.is_file() and stored.read_bytes() == data):  # the same file again is no new version
        storage.put(key, data, "application/octet-stream")
    record = ObjectCreated("ObjectCreated:PutObject", BUCKET, key)
    return pipeline.process(record, Budget.seconds(PER_IMAGE_SECONDS))


def collect(paths: list[Path]) -> list[tuple[Path, str]]:
    """(file, key) for each input: files as given, folders searched for images, keys unique and stable."""
    found: list[tuple[Path, str]] = []
    for path in paths:
        if path.is_dir():
            for file in sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES):
                found.append((file, INPUT_PREFIX + file.relative_to(path.parent).as_posix()))
        else:
            found.append((path, INPUT_PREFIX + path.name))
    seen: dict[str, Path] = {}
    for file, key in found:
        if key in seen and seen[key] != file:
            raise HeadsegError(f"{file} and {seen[key]} would both be stored as {key}: rename one")
        seen[key] = file
    return found
