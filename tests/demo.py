"""The function end to end on this machine, no cloud account: `python tests/demo.py [--out DIR]`.

Starts the wire-level fakes of OSS and imageseg on 127.0.0.1, uploads generated portraits for the objects
that `events/*.json` name, runs the real `index.handler` (real oss2 and imageseg SDKs, signed requests) on
each event, and mirrors the bucket into DIR (default `out/demo`), a directory bucket you can browse.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "src"), str(ROOT)]

from tests.fakes.images import portrait  # noqa: E402
from tests.fakes.imageseg import FakeImageseg  # noqa: E402
from tests.fakes.oss import FakeOss  # noqa: E402

KEY_ID, SECRET = "LTAI5tDemoKeyForFakes", "demo-secret-never-leaves-127.0.0.1"
SAMPLES = {  # source key -> (size, head boxes, format)
    "incoming/group.jpg": ((640, 420), [(60, 70, 90, 120), (250, 50, 100, 130), (450, 80, 85, 115)], "JPEG"),
    "incoming/portrait.png": ((360, 480), [(120, 90, 120, 160)], "PNG"),
    "incoming/duo.bmp": ((480, 320), [(80, 60, 90, 120), (300, 70, 80, 110)], "BMP"),
    "incoming/团队 合影/张 三.jpg": ((400, 300), [(150, 60, 100, 130)], "JPEG"),
}
EVENTS = ["put.json", "post.json", "multi-record.json", "unicode-key.json", "not-image.json", "output-prefix.json"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="out/demo", help="directory bucket to mirror the results into")
    args = parser.parse_args()
    with FakeOss({KEY_ID: SECRET}) as oss, FakeImageseg({KEY_ID: SECRET}) as imageseg:
        bucket = json.loads((ROOT / "events" / "put.json").read_text())["events"][0]["oss"]["bucket"]["name"]
        for key, (size, heads, fmt) in SAMPLES.items():
            oss.put(bucket, key, portrait(*size, heads, fmt=fmt), content_type=f"image/{fmt.lower()}")
        oss.put(bucket, "incoming/notes.txt", b"not a portrait\n", content_type="text/plain")
        os.environ.update(
            INPUT_PREFIX="incoming/", OUTPUT_PREFIX="heads/", OSS_ENDPOINT=oss.url, IMAGESEG_ENDPOINT=imageseg.url,
            ALIBABA_CLOUD_ACCESS_KEY_ID=KEY_ID, ALIBABA_CLOUD_ACCESS_KEY_SECRET=SECRET, LOG_LEVEL="WARNING",
        )
        import index

        for name in EVENTS:
            result = json.loads(index.handler((ROOT / "events" / name).read_bytes(), None))
            for outcome in result["outcomes"]:
                detail = f"{outcome['heads']} heads" if outcome["outcome"] == "done" else outcome.get("reason", "")
                print(f"events/{name:<20} {outcome['key']:<40} {outcome['outcome']:<8} {detail}")
        out = Path(args.out) / bucket
        shutil.rmtree(out, ignore_errors=True)
        for key in oss.keys(bucket):
            path = out.joinpath(*key.split("/"))
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(oss.get(bucket, key) or b"")
        print(f"\nSegmentHead calls: {imageseg.calls}; bucket mirrored into {out}/ :")
        for key in oss.keys(bucket, "heads/"):
            print("  " + key)
        sidecar = json.loads(oss.get(bucket, "heads/incoming/group.jpg/heads.json") or b"{}")
        print("\nheads/incoming/group.jpg/heads.json:")
        print(json.dumps({k: sidecar[k] for k in ("source", "heads")}, ensure_ascii=False, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
