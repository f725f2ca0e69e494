"""Races: the sidecar always describes the version current when it is written; concurrent duplicates never break
each other; an object deleted mid-way ends cleanly, whatever form OSS's 404 takes. Over the wire."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import unquote

from tests.conftest import Cloud, oss_event
from tests.fakes._server import Fault, Response
from tests.fakes.images import portrait
from tests.fakes.imageseg import is_result_download, is_segment_call

HEADS = [(40, 50, 60, 80), (170, 40, 70, 90)]


def test_a_reupload_that_finishes_first_is_never_overwritten_by_the_slow_run(cloud: Cloud):
    first = cloud.upload_portrait("incoming/a.jpg", HEADS)
    newer: dict[str, object] = {}

    def finish_the_newer_upload() -> None:
        newer["etag"] = etag = cloud.upload_portrait("incoming/a.jpg", HEADS[:1])
        newer["result"] = cloud.invoke_key("incoming/a.jpg", etag, request_id="1-newer")

    second = threading.Thread(target=finish_the_newer_upload)

    def slow_cutout_put(request) -> bool:
        # the slow run on the first version is storing its cutouts: the second version arrives and is done first
        if request.method == "PUT" and f"-{first[:8].lower()}.png" in unquote(request.path) and not second.is_alive():
            second.start()
            return True
        return False

    cloud.oss.inject(Fault("delay", slow_cutout_put, times=1, seconds=3))

    slow = cloud.invoke_key("incoming/a.jpg", first, request_id="1-slow")["outcomes"][0]
    second.join()

    assert newer["result"]["outcomes"][0]["outcome"] == "done"
    assert (slow["outcome"], slow["code"]) == ("skipped", "Superseded")
    sidecar = cloud.read_json("heads/incoming/a.jpg/heads.json")
    assert sidecar["source"]["etag"] == newer["etag"] and len(sidecar["heads"]) == 1
    assert [k for k in cloud.outputs() if k.endswith(".png")] == [sidecar["heads"][0]["key"]]  # no orphans


def test_concurrent_duplicates_of_an_image_that_needs_normalizing_both_succeed(cloud: Cloud):
    etag = cloud.upload("incoming/big.jpg", portrait(2600, 1400, [(200, 200, 400, 500)]))
    # both runs publish the version's one normalized copy; the first finishes (and removes it) while the
    # second's SegmentHead has yet to fetch it: that attempt finds it gone, and the retry publishes it again
    cloud.imageseg.inject(Fault("delay", is_segment_call, times=1, seconds=0.2))
    cloud.imageseg.inject(Fault("delay", is_segment_call, times=1, seconds=1.5))
    event = oss_event(("incoming/big.jpg", etag))
    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(lambda i: cloud.invoke(event, request_id=f"1-dup-{i}"), range(2)))

    assert [r["outcomes"][0]["outcome"] for r in results] == ["done", "done"]
    scratch_reads = cloud.oss.logged(lambda r: r.method == "GET" and ".scratch/" in unquote(r.path))
    statuses = [entry.status for entry in scratch_reads]
    assert statuses in ([200, 404, 200], [200, 200])  # the second only when the first was slower than 1.5 s
    assert len({unquote(entry.request.path) for entry in scratch_reads}) == 1  # one copy per version
    assert cloud.outputs("heads/.scratch/") == []
    assert cloud.read_json("heads/incoming/big.jpg/heads.json")["source"]["etag"] == etag


def test_an_object_deleted_mid_way_ends_cleanly_on_a_bodiless_404(cloud: Cloud):
    etag = cloud.upload_portrait("incoming/a.jpg", HEADS)
    head = cloud.oss.match(method="HEAD", key="incoming/a.jpg")

    def delete(request) -> bool:
        cloud.oss.delete("headseg-demo", "incoming/a.jpg")
        cloud.oss.script(head, [Response(404)])  # OSS's HEAD 404: no body, no error code
        return True  # then the first cutout download is served

    cloud.imageseg.inject(Fault("hook", is_result_download, hook=delete))
    outcome = cloud.invoke_key("incoming/a.jpg", etag)["outcomes"][0]
    assert (outcome["outcome"], outcome["code"]) == ("skipped", "Superseded")
    assert "deletion" in outcome["reason"]
    assert cloud.outputs() == []
