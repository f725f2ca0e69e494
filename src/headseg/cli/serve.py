"""`headseg serve`: SegmentHead on 127.0.0.1, backed by the local engine, for the real SDK to talk to offline."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("serve", help="serve the SegmentHead API locally", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument(
        "--verify-signatures",
        action="store_true",
        help="check ACS3 signatures against ALIBABA_CLOUD_ACCESS_KEY_ID / ALIBABA_CLOUD_ACCESS_KEY_SECRET",
    )
    parser.add_argument("--no-file-urls", action="store_true", help="refuse file:// image URLs")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from headseg.local.segmenter import LocalSegmenter
    from headseg.local.serve import SegmentHeadServer

    credentials = None
    if args.verify_signatures:
        from headseg.function.credentials import Credentials

        creds = Credentials.resolve()
        credentials = {creds.access_key_id: creds.access_key_secret}
    server = SegmentHeadServer((args.host, args.port), LocalSegmenter().cut, credentials, not args.no_file_urls)
    print(f"SegmentHead (local engine) on {server.url}: IMAGESEG_ENDPOINT={server.url}", flush=True)
    try:
        server.serve_forever()
    finally:
        server.server_close()
    return 0
