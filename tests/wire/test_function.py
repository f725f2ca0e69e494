"""The function end to end: the real handler, the real oss2 and imageseg SDKs, fake servers over HTTP."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

from headseg.function.errors import ConfigError, RetriableError
from tests.conftest import BUCKET, Cloud, load_event, oss_event, png_image
from tests.fakes._server import Fault, Response
from tests.fakes.imageseg import is_result_download, is_segment_call
from tests.fakes.oss import FakeOss

HEADS = [(40, 50, 60, 80), (170, 40, 70, 90), (300, 60, 50, 70)]


def log_lines(caplog) -> list[dict]:
    return [json.loads(line) for line in caplog.text.splitlines() if line.startswith("{")]


def test_several_heads_become_cutouts_and_a_sidecar(cloud: Cloud, caplog):
    etag = cloud.upload_portrait("incoming/group.jpg", HEADS)

    result = cloud.invoke_key("incoming/group.jpg", etag)

    assert [o["outcome"] for o in result["outcomes"]] == ["done"]
    folder = "heads/incoming/group.jpg/"
    suffix = etag[:8].lower()
    assert cloud.outputs() == [folder + f"head-{i}-{suffix}.png" for i in range(3)] + [folder + "heads.json"]
    modified = cloud.oss.object(BUCKET, "incoming/group.jpg").last_modified
    assert cloud.marks() == [f"incoming/group.jpg/done.{etag}.{modified}.3.-"]  # how it settled, for the tooling
    sidecar = cloud.read_json(folder + "heads.json")
    assert sidecar["schema_version"] == 1
    modified = cloud.oss.object(BUCKET, "incoming/group.jpg").last_modified
    assert sidecar["source"] == {
        "bucket": BUCKET, "key": "incoming/group.jpg", "etag": etag, "size": len(cloud.read("incoming/group.jpg")),
        "width": 400, "height": 300, "last_modified": modified, "version_id": "",
    }
    assert sidecar["request_id"] and sidecar["engine"] == "cloud" and sidecar["return_form"] is None
    for i, (head, (x, y, w, h)) in enumerate(zip(sidecar["heads"], HEADS)):
        assert head["index"] == i and head["key"] == folder + f"head-{i}-{suffix}.png"
        assert abs(head["x"] - x) <= 2 and abs(head["y"] - y) <= 2
        assert abs(head["width"] - w) <= 3 and abs(head["height"] - h) <= 3
        cutout = png_image(cloud.read(head["key"]))
        assert cutout.mode == "RGBA" and cutout.size == (head["width"], head["height"])
        assert cutout.getpixel((0, 0))[3] == 0  # corner of the ellipse's box: background, transparent
        assert cutout.getpixel((cutout.width // 2, cutout.height // 2))[3] == 255
        assert cloud.oss.object(BUCKET, head["key"]).content_type == "image/png"
    assert set(sidecar["timings_ms"]) >= {"read", "segment", "cutouts"}
    # the sidecar is the last write of a result, then its mark
    puts = [unquote(e.request.path) for e in cloud.oss.logged(lambda r: r.method == "PUT")]
    assert puts[-2].endswith("/heads.json") and "/.settled/" in puts[-1] and len(puts) == 5
    [line] = [line for line in log_lines(caplog) if line.get("outcome")]
    assert line["request_id"] == "1-test" and line["key"] == "incoming/group.jpg" and line["heads"] == 3
    assert line["outcome"] == "done" and line["timings_ms"]["total"] > 0


def test_internal_url_mode_gives_segmenthead_a_signed_url_on_the_oss_endpoint(cloud: Cloud):
    etag = cloud.upload_portrait("incoming/a.jpg", HEADS[:1])
    cloud.invoke_key("incoming/a.jpg", etag)
    [url] = cloud.imageseg.fetched_urls
    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}" == cloud.oss.url
    assert "x-oss-signature=" in parts.query and "x-oss-expires=60" in parts.query


def test_public_url_mode_signs_on_the_public_endpoint(cloud: Cloud):
    public = cloud.oss.url.replace("127.0.0.1", "localhost")
    cloud.configure(URL_MODE="public", OSS_PUBLIC_ENDPOINT=public)
    etag = cloud.upload_portrait("incoming/a.jpg", HEADS[:1])
    assert cloud.invoke_key("incoming/a.jpg", etag)["outcomes"][0]["outcome"] == "done"
    [url] = cloud.imageseg.fetched_urls
    assert url.startswith(public + f"/{BUCKET}/incoming/a.jpg?")


def test_signature_v1_works_end_to_end(cloud: Cloud):
    cloud.configure(OSS_SIGNATURE="v1")
    etag = cloud.upload_portrait("incoming/a.jpg", HEADS[:2])
    assert cloud.invoke_key("incoming/a.jpg", etag)["outcomes"][0]["heads"] == 2
    [url] = cloud.imageseg.fetched_urls
    assert "Signature=" in url and "security-token=" in url


def test_mask_form_writes_single_channel_masks(cloud: Cloud):
    cloud.configure(RETURN_FORM="mask")
    etag = cloud.upload_portrait("incoming/a.png", HEADS[:2], fmt="PNG")
    cloud.invoke_key("incoming/a.png", etag)
    sidecar = cloud.read_json("heads/incoming/a.png/heads.json")
    assert sidecar["return_form"] == "mask"
    for head in sidecar["heads"]:
        mask = png_image(cloud.read(head["key"]))
        assert mask.mode == "L" and mask.getpixel((0, 0)) == 0 and mask.getpixel((mask.width // 2, mask.height // 2)) == 255


def test_no_heads_is_a_success_with_an_empty_sidecar(cloud: Cloud):
    etag = cloud.upload_portrait("incoming/landscape.bmp", [], fmt="BMP")
    result = cloud.invoke_key("incoming/landscape.bmp", etag)
    assert result["outcomes"][0]["outcome"] == "done" and result["outcomes"][0]["heads"] == 0
    assert cloud.read_json("heads/incoming/landscape.bmp/heads.json")["heads"] == []
    assert cloud.outputs() == ["heads/incoming/landscape.bmp/heads.json"]


def test_a_duplicate_event_is_skipped_without_calling_segmenthead(cloud: Cloud):
    etag = cloud.upload_portrait("incoming/a.jpg", HEADS)
    cloud.invoke_key("incoming/a.jpg", etag)
    puts = len(cloud.oss.logged(lambda r: r.method == "PUT"))

    second = cloud.invoke_key("incoming/a.jpg", etag)

    assert second["outcomes"][0]["outcome"] == "skipped" and second["outcomes"][0]["code"] == "AlreadyDone"
    assert cloud.imageseg.calls == 1
    assert len(cloud.oss.logged(lambda r: r.method == "PUT")) == puts


def test_throttling_then_success(cloud: Cloud, caplog):
    cloud.imageseg.throttle(times=2)
    etag = cloud.upload_portrait("incoming/a.jpg", HEADS[:1])
    result = cloud.invoke_key("incoming/a.jpg", etag)
    assert result["outcomes"][0]["outcome"] == "done"
    assert (cloud.imageseg.calls, cloud.imageseg.served, cloud.imageseg.throttled) == (3, 1, 2)
    retries = [line for line in log_lines(caplog) if line["message"] == "retrying"]
    assert [line["error"] for line in retries] == ["Throttling.User", "Throttling.User"]


@pytest.mark.parametrize("status", [500, 503])
def test_server_errors_are_retried(cloud: Cloud, status):
    cloud.imageseg.server_error(times=1, status=status)
    etag = cloud.upload_portrait("incoming/a.jpg", HEADS[:1])
    assert cloud.invoke_key("incoming/a.jpg", etag)["outcomes"][0]["outcome"] == "done"
    assert cloud.imageseg.calls == 2


def test_a_dropped_connection_is_retried(cloud: Cloud):
    cloud.imageseg.drop(times=1)
    etag = cloud.upload_portrait("incoming/a.jpg", HEADS[:1])
    assert cloud.invoke_key("incoming/a.jpg", etag)["outcomes"][0]["outcome"] == "done"


def test_throttling_past_the_budget_raises_so_fc_retries(cloud: Cloud, caplog):
    cloud.imageseg.throttle(times=1000)
    etag = cloud.upload_portrait("incoming/a.jpg", HEADS[:1])

    with pytest.raises(RetriableError) as error:
        cloud.invoke_key("incoming/a.jpg", etag, timeout=3)  # 3 s timeout - 1 s margin

    assert "Function Compute retries" in error.value.message
    assert 2 <= cloud.imageseg.calls <= 6
    record = cloud.read_json("heads/incoming/a.jpg/error.json")
    assert record["retriable"] is True and record["code"] == "BudgetExhausted" and record["source"]["etag"] == etag
    assert "Throttling.User" in record["reason"]
    assert cloud.read("heads/incoming/a.jpg/heads.json") is None
    [line] = [line for line in log_lines(caplog) if line.get("outcome")]
    assert line["outcome"] == "retry" and line["code"] == "BudgetExhausted"

    # FC retries later, the quota is free again: the retry completes the work and clears the error record
    cloud.imageseg.clear_faults()
    assert cloud.invoke_key("incoming/a.jpg", etag)["outcomes"][0]["outcome"] == "done"
    assert cloud.read("heads/incoming/a.jpg/error.json") is None


def test_an_image_segmenthead_rejects_is_recorded_and_not_retried(cloud: Cloud):
    cloud.imageseg.invalid_image(times=1, code="InvalidImage.Content")
    etag = cloud.upload_portrait("incoming/a.jpg", HEADS[:1])

    result = cloud.invoke_key("incoming/a.jpg", etag)

    outcome = result["outcomes"][0]
    assert outcome["outcome"] == "failed" and outcome["code"] == "InvalidImage.Content"
    assert outcome["sidecar"] == "heads/incoming/a.jpg/error.json"
    record = cloud.read_json("heads/incoming/a.jpg/error.json")
    assert record["retriable"] is False and record["code"] == "InvalidImage.Content" and record["source"]["etag"] == etag
    assert record["request_id"] == "1-test"  # the FC invocation that failed
    assert cloud.imageseg.calls == 1
    # the same event again: already failed for this eTag, not re-billed
    again = cloud.invoke_key("incoming/a.jpg", etag)["outcomes"][0]
    assert again["outcome"] == "skipped" and again["code"] == "AlreadyFailed"
    assert cloud.imageseg.calls == 1


def test_a_corrupt_object_fails_permanently_before_segmenthead(cloud: Cloud):
    etag = cloud.upload("incoming/broken.jpg", b"\xff\xd8\xff\xe0" + b"\x00garbage" * 10)
    outcome = cloud.invoke_key("incoming/broken.jpg", etag)["outcomes"][0]
    assert outcome["outcome"] == "failed" and outcome["code"] == "InvalidImage.Corrupt"
    assert "corrupt JPEG" in outcome["reason"]
    assert cloud.imageseg.calls == 0
    assert cloud.read_json("heads/incoming/broken.jpg/error.json")["code"] == "InvalidImage.Corrupt"


def test_an_image_too_small_for_segmenthead_fails_with_a_clear_reason(cloud: Cloud):
    etag = cloud.upload_portrait("incoming/x.png", [], size=(20, 400), fmt="PNG")
    outcome = cloud.invoke_key("incoming/x.png", etag)["outcomes"][0]
    assert outcome["outcome"] == "failed" and outcome["code"] == "InvalidImage.Resolution"
    assert outcome["reason"] == "image is 20x400 px, under SegmentHead's minimum of 33x33"
    assert cloud.imageseg.calls == 0


def test_a_missing_object_fails_with_no_such_key(cloud: Cloud):
    outcome = cloud.invoke_key("incoming/gone.jpg", "ABC")["outcomes"][0]
    assert outcome["outcome"] == "failed" and outcome["code"] == "NoSuchKey"


def test_not_an_image_fails_for_good_and_its_record_settles_it(cloud: Cloud):
    event = load_event("not-image.json")
    cloud.upload("incoming/notes.txt", b"hello", "text/plain")
    result = cloud.invoke(json.dumps(event).encode())
    outcome = result["outcomes"][0]
    assert outcome["outcome"] == "failed" and outcome["code"] == "InvalidImage.NotImage"
    assert "not an image" in outcome["reason"] and cloud.imageseg.calls == 0
    record = cloud.read_json("heads/incoming/notes.txt/error.json")
    assert record["code"] == "InvalidImage.NotImage" and record["retriable"] is False
    assert cloud.outputs() == ["heads/incoming/notes.txt/error.json"]
    [mark] = cloud.marks()
    assert mark.startswith("incoming/notes.txt/failed.") and mark.endswith(".0.InvalidImage.NotImage")
    again = cloud.invoke(json.dumps(event).encode())["outcomes"][0]  # a redelivery reads the record, not the object
    assert again["outcome"] == "skipped" and again["code"] == "AlreadyFailed"


def test_an_object_under_the_output_prefix_is_skipped_without_any_request(cloud: Cloud):
    result = cloud.invoke((Path(__file__).parents[2] / "events" / "output-prefix.json").read_bytes())
    assert result["outcomes"][0]["code"] == "OutputPrefix"
    assert cloud.oss.requests == [] and cloud.imageseg.calls == 0


def test_a_url_encoded_key_is_found_in_its_decoded_form(cloud: Cloud):
    etag = cloud.upload_portrait("incoming/团队 合影/张 三.jpg", HEADS[:1])
    result = cloud.invoke((Path(__file__).parents[2] / "events" / "encoded-key.json").read_bytes())
    outcome = result["outcomes"][0]
    assert outcome["outcome"] == "done" and outcome["key"] == "incoming/团队 合影/张 三.jpg"
    sidecar = cloud.read_json("heads/incoming/团队 合影/张 三.jpg/heads.json")
    assert sidecar["source"]["etag"] == etag and len(sidecar["heads"]) == 1


def test_a_batch_of_eventbridge_cloudevents_processes_every_record(cloud: Cloud):
    batch = load_event("eventbridge-batch.json")
    for event, fmt in zip(batch, ["JPEG", "PNG"]):
        obj = event["data"]["oss"]["object"]
        obj["eTag"] = cloud.upload_portrait(obj["key"], HEADS[:2], fmt=fmt)
    result = cloud.invoke(json.dumps(batch).encode())
    assert [(o["outcome"], o["key"], o["heads"]) for o in result["outcomes"]] == [
        ("done", "incoming/one.jpg", 2), ("done", "incoming/two.png", 2)
    ]
    assert cloud.read_json("heads/incoming/two.png/heads.json")["source"]["etag"] == batch[1]["data"]["oss"]["object"]["eTag"]


def test_a_multi_record_event_processes_every_record(cloud: Cloud):
    event = load_event("multi-record.json")
    for record, fmt in zip(event["events"], ["JPEG", "PNG", "BMP"]):
        key = record["oss"]["object"]["key"]
        record["oss"]["object"]["eTag"] = cloud.upload_portrait(key, HEADS[:2], fmt=fmt)
    result = cloud.invoke(json.dumps(event).encode())
    assert [o["outcome"] for o in result["outcomes"]] == ["done"] * 3
    assert cloud.imageseg.calls == 3


def test_one_transient_record_makes_the_event_retry_and_the_retry_skips_the_done_ones(cloud: Cloud):
    good = cloud.upload_portrait("incoming/good.jpg", HEADS[:1])
    cloud.oss.server_error(times=100, match=cloud.oss.match(method="GET", key="incoming/bad.jpg"))
    event = oss_event(("incoming/good.jpg", good), ("incoming/bad.jpg", "ABC"))
    with pytest.raises(RetriableError):
        cloud.invoke(event, timeout=3)
    cloud.oss.clear_faults()
    bad = cloud.upload_portrait("incoming/bad.jpg", HEADS[:1])
    retry = cloud.invoke(oss_event(("incoming/good.jpg", good), ("incoming/bad.jpg", bad)))
    assert [o["outcome"] for o in retry["outcomes"]] == ["skipped", "done"]
    assert cloud.imageseg.calls == 2


def test_expired_cutout_urls_call_segmenthead_again(cloud: Cloud):
    expired = Response(403, b"<Error><Code>AccessDenied</Code><Message>Request has expired.</Message></Error>")
    cloud.imageseg.inject(Fault("status", is_result_download, times=1, response=expired))
    etag = cloud.upload_portrait("incoming/a.jpg", HEADS[:2])
    assert cloud.invoke_key("incoming/a.jpg", etag)["outcomes"][0]["outcome"] == "done"
    assert cloud.imageseg.calls == 2
    assert len(cloud.read_json("heads/incoming/a.jpg/heads.json")["heads"]) == 2


def test_a_new_upload_replaces_the_outputs_and_removes_stale_cutouts(cloud: Cloud):
    first = cloud.upload_portrait("incoming/a.jpg", HEADS)
    cloud.invoke_key("incoming/a.jpg", first)
    second = cloud.upload_portrait("incoming/a.jpg", HEADS[:1])
    assert second != first
    cloud.invoke_key("incoming/a.jpg", second)
    assert cloud.outputs() == [f"heads/incoming/a.jpg/head-0-{second[:8].lower()}.png", "heads/incoming/a.jpg/heads.json"]
    assert cloud.read_json("heads/incoming/a.jpg/heads.json")["source"]["etag"] == second


def test_credentials_from_environment_when_the_context_has_none(cloud: Cloud):
    from tests.conftest import ACCESS_KEY_ID, ACCESS_KEY_SECRET, SECURITY_TOKEN, fc_context

    cloud.configure(
        ALIBABA_CLOUD_ACCESS_KEY_ID=ACCESS_KEY_ID,
        ALIBABA_CLOUD_ACCESS_KEY_SECRET=ACCESS_KEY_SECRET,
        ALIBABA_CLOUD_SECURITY_TOKEN=SECURITY_TOKEN,
    )
    etag = cloud.upload_portrait("incoming/a.jpg", HEADS[:1])
    context = fc_context(credentials=None)  # python3.12: credentials only in the environment
    result = json.loads(cloud.function.handler(oss_event(("incoming/a.jpg", etag)), context))
    assert result["outcomes"][0]["outcome"] == "done"


def test_wrong_credentials_are_retriable_with_a_hint(cloud: Cloud):
    from tests.conftest import FcCredentials, fc_context

    etag = cloud.upload_portrait("incoming/a.jpg", HEADS[:1])
    context = fc_context(credentials=FcCredentials(access_key_secret="wrong-secret-value"))
    with pytest.raises(RetriableError):
        cloud.function.handler(oss_event(("incoming/a.jpg", etag)), context)
    # refused credentials are not retried inside the invocation: one request per read, then FC's retry
    assert len(cloud.oss.logged(lambda r: r.method == "GET")) <= 3
    assert all(entry.status == 403 for entry in cloud.oss.logged())


def test_a_looping_config_refuses_to_start(cloud: Cloud, caplog):
    cloud.configure(OUTPUT_PREFIX="incoming/heads/")
    with pytest.raises(ConfigError) as error:
        cloud.function.initialize(None)
    assert "infinite loop" in error.value.message
    [line] = [line for line in log_lines(caplog) if line["message"] == "refusing to start"]
    assert "OUTPUT_PREFIX 'incoming/heads/' overlaps INPUT_PREFIX 'incoming/'" in line["reason"]
    with pytest.raises(ConfigError):
        cloud.function.handler(oss_event(("incoming/a.jpg", "A")), None)
    assert cloud.oss.requests == []


@pytest.mark.parametrize("raw", [b"", b"not json", b'{"events": "nope"}', b'{"events": [{"eventName": "ObjectCreated:PutObject"}]}'])
def test_malformed_events_are_rejected_with_a_clear_log_line(cloud: Cloud, caplog, raw):
    result = cloud.invoke(raw)
    rejection = result["outcomes"][0] if "outcomes" in result else result  # a bad record is rejected alone
    assert rejection["outcome"] == "rejected" and rejection["reason"]
    [line] = [line for line in log_lines(caplog) if line.get("outcome")]
    assert line["outcome"] == "rejected" and line["level"] == "ERROR" and "Traceback" not in caplog.text


def test_no_secret_or_signature_reaches_the_logs(cloud: Cloud, caplog):
    from tests.conftest import ACCESS_KEY_SECRET, SECURITY_TOKEN

    cloud.configure(LOG_LEVEL="DEBUG")
    cloud.imageseg.throttle(times=1)
    etag = cloud.upload_portrait("incoming/a.jpg", HEADS[:1])
    cloud.invoke_key("incoming/a.jpg", etag)
    # services echo the URL they were given in error messages: a signed URL, with the token in it
    echo = {"Code": "InvalidImage.Content", "Message": f"cannot decode {cloud.imageseg.fetched_urls[0]}"}
    cloud.imageseg.inject(Fault("status", lambda r: True, times=1, response=Response(400, json.dumps(echo).encode())))
    etag = cloud.upload_portrait("incoming/b.jpg", HEADS[:1])
    cloud.invoke_key("incoming/b.jpg", etag)
    text = caplog.text
    assert "InvalidImage.Content" in text and "cannot decode http://" in text
    for secret in (ACCESS_KEY_SECRET, SECURITY_TOKEN):
        assert secret not in text
    assert "x-oss-signature=" not in text.replace("x-oss-signature=***", "")
    assert "x-oss-security-token=" not in text.replace("x-oss-security-token=***", "")
    assert cloud.read_json("heads/incoming/b.jpg/error.json")["reason"].count("x-oss-signature=***") == 1


def test_segmenthead_failing_to_download_the_image_is_retried_not_given_up(cloud: Cloud):
    # the fake OSS fails SegmentHead's fetch once: the service reports a download error
    cloud.oss.server_error(times=1, match=lambda r: "x-oss-signature" in r.raw_path)
    etag = cloud.upload_portrait("incoming/a.jpg", HEADS[:1])
    assert cloud.invoke_key("incoming/a.jpg", etag)["outcomes"][0]["outcome"] == "done"
    assert cloud.imageseg.calls == 2


def test_a_crash_between_cutouts_and_sidecar_leaves_no_sidecar_and_the_retry_completes(cloud: Cloud):
    etag = cloud.upload_portrait("incoming/a.jpg", HEADS)
    sidecar_put = cloud.oss.match(method="PUT", key="heads/incoming/a.jpg/heads.json")
    cloud.oss.server_error(times=100, match=sidecar_put)
    with pytest.raises(RetriableError):
        cloud.invoke_key("incoming/a.jpg", etag, timeout=3)
    written = [k for k in cloud.outputs() if k.endswith(".png")]
    assert len(written) == 3 and cloud.read("heads/incoming/a.jpg/heads.json") is None  # not taken for done
    cloud.oss.clear_faults()
    assert cloud.invoke_key("incoming/a.jpg", etag)["outcomes"][0]["outcome"] == "done"
    assert sorted(k for k in cloud.outputs() if k.endswith(".png")) == sorted(written)  # the same set, no duplicates


def test_a_permanent_error_that_cannot_be_recorded_is_retried(cloud: Cloud):
    etag = cloud.upload("incoming/broken.jpg", b"\xff\xd8\xff\xe0" + b"\x00" * 30)
    cloud.oss.server_error(times=100, match=cloud.oss.match(method="PUT", key="heads/incoming/broken.jpg/error.json"))
    with pytest.raises(RetriableError):
        cloud.invoke_key("incoming/broken.jpg", etag, timeout=3)
    cloud.oss.clear_faults()
    assert cloud.invoke_key("incoming/broken.jpg", etag)["outcomes"][0]["outcome"] == "failed"
    assert cloud.read_json("heads/incoming/broken.jpg/error.json")["code"] == "InvalidImage.Corrupt"


def test_a_run_superseded_by_a_newer_upload_removes_its_cutouts(cloud: Cloud):
    first = cloud.upload_portrait("incoming/a.jpg", HEADS)
    # the object is replaced while SegmentHead is working on the first version
    newer = {}

    def replace(request) -> bool:
        newer["etag"] = cloud.upload_portrait("incoming/a.jpg", HEADS[:1])
        return True  # then SegmentHead answers, on the first version

    cloud.imageseg.inject(Fault("hook", is_segment_call, hook=replace))
    outcome = cloud.invoke_key("incoming/a.jpg", first)["outcomes"][0]
    # the run read the first eTag; by the time its cutouts are stored the object is another one
    assert outcome["outcome"] == "skipped" and outcome["code"] == "Superseded"
    assert not [k for k in cloud.outputs() if k.endswith(".png")] and cloud.read("heads/incoming/a.jpg/heads.json") is None
    assert cloud.invoke_key("incoming/a.jpg", newer["etag"])["outcomes"][0]["outcome"] == "done"
    sidecar = cloud.read_json("heads/incoming/a.jpg/heads.json")
    assert sidecar["source"]["etag"] == newer["etag"] and len(sidecar["heads"]) == 1
    assert [k for k in cloud.outputs() if k.endswith(".png")] == [sidecar["heads"][0]["key"]]


def test_cutout_urls_are_never_followed_elsewhere(cloud: Cloud):
    elsewhere = FakeOss({})  # a host the cutout URL redirects to: it must see no request
    elsewhere.start()
    try:
        redirect = Response(302, b"", {"Location": f"{elsewhere.url}/steal"})
        cloud.imageseg.inject(Fault("status", is_result_download, times=10, response=redirect))
        etag = cloud.upload_portrait("incoming/a.jpg", HEADS[:1])
        outcome = cloud.invoke_key("incoming/a.jpg", etag)["outcomes"][0]
        assert outcome["outcome"] == "failed" and outcome["code"] == "CutoutRedirect"
        assert elsewhere.requests == []
    finally:
        elsewhere.stop()


def test_a_key_escaping_a_directory_bucket_writes_nothing_outside(tmp_path, capsys):
    from headseg.cli import main

    bucket = tmp_path / "bucket"
    (bucket / "incoming").mkdir(parents=True)
    event = tmp_path / "event.json"
    event.write_text(oss_event(("incoming/../../escape.jpg", None)).decode())
    assert main(["invoke", str(event), "--bucket-dir", str(bucket)]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["outcomes"][0]["outcome"] == "failed" and result["outcomes"][0]["code"] == "InvalidObjectName"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bucket", "event.json"]
