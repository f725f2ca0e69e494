"""`headseg serve`: SegmentHead on 127.0.0.1, backed by the local engine, for the real SDK (or curl) to talk to offline."""

from __future__ import annotations

import argparse

EPILOG = """\
It answers what the imageseg SDK sends (set IMAGESEG_ENDPOINT=http://127.0.0.1:8080) and, unless
--verify-signatures, what a person sends with curl, no credentials needed:

  curl -X POST 'http://127.0.0.1:8080/?Action=SegmentHead&ImageURL=file:///home/me/photo.jpg'
  curl -F image=@photo.jpg http://127.0.0.1:8080/segment
  curl --data-binary @photo.jpg 'http://127.0.0.1:8080/segment?ReturnForm=mask'

The first is SegmentHead's own call: POST / with Action=SegmentHead and ImageURL (http(s), or file:// with an
absolute path), optionally ReturnForm=mask and Version=2019-12-30 (what the SDK sends; may be left out here), as
query or form fields. The others upload the image itself: a form file field, or the body.

Every form answers SegmentHead's JSON: {"RequestId": ..., "Data": {"Elements": [{"X", "Y", "Width", "Height",
"ImageURL"}]}}, heads left to right, boxes in the image's pixels, each ImageURL a cutout PNG it serves for
30 minutes (curl -o head.png URL); or an error {"Code", "Message", ...} with the service's code: an image
outside SegmentHead's input limits (the function's own) gets InvalidImage.Format, InvalidImage.Size or
InvalidImage.Resolution, naming the limit.
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "serve", help="serve the SegmentHead API locally", description=__doc__, epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument(
        "--verify-signatures",
        action="store_true",
        help="require the SDK's ACS3 signature, by ALIBABA_CLOUD_ACCESS_KEY_ID / ALIBABA_CLOUD_ACCESS_KEY_SECRET "
        "(and ALIBABA_CLOUD_SECURITY_TOKEN when set)",
    )
    parser.add_argument("--no-file-urls", action="store_true", help="refuse file:// image URLs")
    parser.add_argument("--qps", type=float, help="answer Throttling.User beyond this many calls a second (SegmentHead's quota is 2)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from headseg.local.segmenter import LocalSegmenter
    from headseg.local.serve import SegmentHeadServer

    credentials = tokens = None
    if args.verify_signatures:
        from headseg.function.credentials import Credentials

        creds = Credentials.resolve()
        credentials = {creds.access_key_id: creds.access_key_secret}
        tokens = {creds.access_key_id: creds.security_token} if creds.security_token else None
    server = SegmentHeadServer(
        (args.host, args.port), LocalSegmenter().cut, credentials, not args.no_file_urls, tokens=tokens, qps=args.qps
    )
    print(f"SegmentHead (local engine) on {server.url}: IMAGESEG_ENDPOINT={server.url}", flush=True)
    try:
        server.serve_forever()
    finally:
        server.server_close()
    return 0
