"""What `backfill` and `replay` share: the bucket, the target (deployed function or in-process), the pace."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from typing import Callable, Iterable, Iterator, Sequence, cast

from headseg.function import logs
from headseg.function.app import App
from headseg.local.wiring import build_storage, local_app
from headseg.cli._progress import progress_bar
from headseg.cli.segment import BUCKET as LOCAL_BUCKET
from headseg.ops.backfill import Item, Journal, Summary, hand_over
from headseg.function.config import LOCAL_PREFIXES, Config, Engine, env_default
from headseg.ops.invoker import Fc2Invoker, Fc3Invoker, Invoker, LocalInvoker
from headseg.function.credentials import Credentials
from headseg.function.errors import HeadsegError
from headseg.ops.ratelimit import RateLimiter
from headseg.function.storage import ObjectInfo, Storage
from headseg.ops.inventory import inventory_listing, parse_location
from headseg.ops.inventory_rows import StreamingStorage
from headseg.ops.listing import listing


APIS = ("fc3", "fc2")


def add_bucket_options(parser: argparse.ArgumentParser, listing: bool = True) -> None:
    """The bucket and where it is: OSS (the default) or a directory standing in for it; with `listing`, also
    the prefix to list and the progress bar's switch."""
    env = env_default
    parser.add_argument("--bucket", help=f"the OSS bucket (with --bucket-dir: its name, default {LOCAL_BUCKET!r})")
    parser.add_argument("--oss-endpoint", default=env("OSS_ENDPOINT", "https://oss-cn-shanghai.aliyuncs.com"))
    parser.add_argument(
        "--bucket-dir", default=env("BUCKET_DIR", ""), help="a local folder standing in for the bucket (`headseg segment --out`)"
    )
    if listing:
        parser.add_argument("--prefix", default="", help="only objects under this prefix")
        parser.add_argument("--quiet", action="store_true", help="no progress bar")
        parser.add_argument(
            "--inventory", metavar="oss://BUCKET/PATH/manifest.json",
            help="list from this OSS Bucket Inventory (as old as it is) instead of ListObjects: for buckets too large to list",
        )
        parser.add_argument(
            "--workers", type=_positive, default=1,
            help="key ranges each listing fetches at once, a page or two ahead each: more helps where pages wait "
            "on the network, not on the CPU (default: 1)",
        )


def _positive(text: str) -> int:
    number = int(text)
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, not {number}")
    return number


def lister(args: argparse.Namespace, storage: Storage, config: Config) -> Callable[[str], Iterator[ObjectInfo]]:
    """How the command lists a prefix, in key order: from `--inventory`, else `--workers` key ranges at once."""
    if not args.inventory:
        return lambda prefix: listing(storage, prefix, args.workers)
    if config.bucket_dir:
        raise SystemExit("headseg: --inventory reads an OSS Bucket Inventory; a folder (--bucket-dir) has none")
    try:
        holder, manifest = parse_location(args.inventory)
    except ValueError as exc:
        raise SystemExit(f"headseg: --inventory: {exc}") from None
    held = storage if holder == storage.bucket else build_storage(config, credentials_if(True), holder)
    return lambda prefix: inventory_listing(cast(StreamingStorage, held), manifest, prefix, bucket=storage.bucket)


def bucket(args: argparse.Namespace) -> str:
    """The bucket's name: --bucket, which a folder standing in for one (--bucket-dir) does without."""
    if args.bucket:
        return str(args.bucket)
    if args.bucket_dir:
        return LOCAL_BUCKET
    raise HeadsegError("give --bucket (the OSS bucket), or --bucket-dir (a local folder standing in for one)")


def add_options(parser: argparse.ArgumentParser) -> None:
    """The bucket, the target (the deployed function or this process) and the pace of hand-overs."""
    env = env_default
    add_bucket_options(parser)
    target = parser.add_argument_group("target: the deployed function (default) or --local")
    target.add_argument(
        "--api", default=env("FC_API", "fc3"), type=str.lower, choices=APIS,
        help="fc3: the FC 3.0 API, for the function s.yaml deploys (default); fc2: the FC 2.0 API, with --service",
    )
    target.add_argument("--fc-endpoint", default=env("FC_ENDPOINT", ""), help="default https://<ACCOUNT_ID>.cn-shanghai.fc.aliyuncs.com")
    target.add_argument("--account-id", default=env("ALIBABA_CLOUD_ACCOUNT_ID", ""))
    target.add_argument("--service", default=env("FC_SERVICE", ""), help="with --api fc2 (required there): the FC 2.0 service the function is in")
    target.add_argument("--function", default=env("FC_FUNCTION", "headseg"))
    target.add_argument("--qualifier", default=env("FC_QUALIFIER") or None)
    target.add_argument("--local", action="store_true", help="process in this process instead of invoking the function")
    target.add_argument("--engine", choices=[e.value for e in Engine], default=env("ENGINE", "cloud"), help="with --local")
    pace = parser.add_argument_group("pace")
    pace.add_argument("--qps", type=float, default=2.0, help="hand-overs per second (default: SegmentHead's 2 QPS quota)")
    pace.add_argument("--concurrency", type=int, default=4)
    pace.add_argument("--dry-run", action="store_true", help="list what would be handed over, hand over nothing")


def config_for(args: argparse.Namespace) -> Config:
    """The function's settings from the environment (INPUT_PREFIX, OUTPUT_PREFIX, ...) under the options."""
    where = {"BUCKET_DIR": args.bucket_dir} if args.bucket_dir else {"OSS_ENDPOINT": args.oss_endpoint}
    engine = {"ENGINE": args.engine} if "engine" in args else {}
    return Config.from_env(defaults=LOCAL_PREFIXES, overrides={**engine, **where})


def wire(args: argparse.Namespace) -> tuple[Config, Storage, Invoker, App]:
    """Config, the bucket's storage and the invoker the arguments ask for."""
    logs.configure(env_default("LOG_LEVEL", "WARNING"))
    if not args.local:
        check_target(args)
    config, credentials, app = open_app(args, needs_credentials=not args.local)
    pipeline = app.pipeline(credentials)
    storage = pipeline.storage_for(bucket(args))
    if args.local:
        return config, storage, LocalInvoker(pipeline), app
    assert credentials is not None
    endpoint = args.fc_endpoint or (args.account_id and f"https://{args.account_id}.{config.region}.fc.aliyuncs.com")
    if not endpoint:
        raise SystemExit("headseg: give --fc-endpoint or --account-id (or ALIBABA_CLOUD_ACCOUNT_ID), or use --local")
    if args.api == "fc2":
        return config, storage, Fc2Invoker(endpoint, credentials, args.service, args.function, args.qualifier), app
    return config, storage, Fc3Invoker(endpoint, credentials, args.function, args.qualifier, region=config.region), app


def open_app(args: argparse.Namespace, needs_credentials: bool = False) -> tuple[Config, Credentials | None, App]:
    """The Config the options describe, the credentials it (or the caller) needs, and an App over them."""
    config = config_for(args)
    return config, credentials_if(config.needs_credentials or needs_credentials), local_app(config)


def resolve_credentials() -> Credentials:
    """The environment's credentials, their secrets kept out of the command's log lines from now on."""
    resolved = Credentials.resolve()
    logs.hide(resolved.secrets())
    return resolved


def credentials_if(needed: bool) -> Credentials | None:
    """`resolve_credentials()` when `needed`, else None."""
    return resolve_credentials() if needed else None


def check_target(args: argparse.Namespace) -> None:
    """The deployed function's address is consistent: FC 2.0 needs a service, FC 3.0 has none."""
    if args.api not in APIS:  # FC_API, which argparse does not check against the choices
        raise SystemExit(f"headseg: --api (FC_API) must be one of {', '.join(APIS)}, not {args.api!r}")
    if args.api == "fc2" and not args.service:
        raise SystemExit("headseg: --api fc2 needs --service (FC_SERVICE): the FC 2.0 service the function is in")
    if args.api == "fc3" and args.service:
        raise SystemExit(
            f"headseg: --service (FC_SERVICE) {args.service!r} is an FC 2.0 service: add --api fc2 to invoke an FC 2.0 "
            "function, or drop it for the FC 3.0 function s.yaml deploys (FC 2.0's function f in service s is the "
            "FC 3.0 function s$f)"
        )


def interruptible() -> threading.Event:
    """An event set by Ctrl-C: in-flight hand-overs finish, nothing new starts."""
    stop = threading.Event()
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, lambda *_: stop.set())
    return stop


def execute(
    args: argparse.Namespace,
    items_for: Callable[[Config, Storage, Summary], Sequence[Item] | Iterable[Item]],
    journal: Journal,
    verb: str,
    unique: bool = False,
) -> int:
    """Wire, hand the items over at the asked pace with a progress bar (an ETA when they are counted), report."""
    config, storage, invoker, app = wire(args)
    summary = Summary()
    try:
        items = items_for(config, storage, summary)
        total = len(items) if isinstance(items, Sequence) else None
        with progress_bar(total=total, unit="object", quiet=args.quiet) as bar:
            hand_over(
                items, invoker, RateLimiter(args.qps), journal, summary, args.concurrency, interruptible(), args.dry_run,
                bar.update, unique,
            )
    finally:
        app.close()
    return report(summary, f"would be {verb}" if args.dry_run else ("processed" if args.local else verb))


def report(summary: Summary, verb: str) -> int:
    for line in summary.failures.lines():
        print(line, file=sys.stderr)
    print(summary.line(verb))
    return 1 if summary.failures.count else (130 if summary.interrupted else 0)
