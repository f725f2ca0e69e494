"""Unit ring: the pipeline's stages over in-memory twins (a dict bucket, a scripted segmenter, a fake clock).

No HTTP and no sleeping: retries wait on the injected clock. The over-the-wire suite (test_function.py and
friends) drives the same code through the real SDKs.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import threading

import pytest

from headseg.function import logs
from headseg.function.app import App
from headseg.function.config import Config, Engine
from headseg.function.cutouts import Cutouts, Stored
from headseg.function.errors import CutoutExpired, InvalidImage, PermanentError, RetriableError, Skipped
from headseg.function.events import ObjectCreated, object_created_event
from headseg.function.handler import handle
from headseg.function.outcome import Outcome, Status
from headseg.function.inputs import guard
from headseg.function.results import Previous, Results
from headseg.function.retry import Budget
from headseg.function.segmenters import Head, Takes, max_cutout_bytes
from headseg.function.sidecar import HeadRecord, Sidecar, Source
from tests.fakes.images import portrait
from tests.twins import PNG, Clock, MemoryStorage, ScriptedSegmenter

CONFIG = Config(input_prefix="incoming/", output_prefix="heads/", engine=Engine.LOCAL, bucket_dir="-", retry_base=0.5)
KEY = "incoming/a.jpg"
FOLDER = "heads/incoming/a.jpg/"


class World:
    """An App wired to the twins, with a record to process."""

    def __init__(self, segmenter: ScriptedSegmenter | None = None, config: Config = CONFIG) -> None:
        self.storage = MemoryStorage()
        self.segmenter = segmenter or ScriptedSegmenter(boxes=[(10, 20, 30, 40), (60, 20, 30, 40)])
        self.clock = Clock()
        self.app = App(
            config,
            make_segmenter=lambda config, credentials: self.segmenter,
            make_storage=lambda config, credentials, bucket: self.storage,
            clock=self.clock,
            sleep=self.clock.sleep,
        )

    def upload(self, data: bytes, key: str = KEY) -> str:
        self.storage.put(key, data, "image/jpeg")
        self.storage.calls.clear()
        return self.storage.head(key).etag

    def process(self, key: str = KEY, etag: str | None = None, seconds: float = 60) -> Outcome:
        record = ObjectCreated("ObjectCreated:PutObject", "twin", key, etag)
        return self.app.pipeline(None).process(record, Budget.seconds(seconds, self.clock), "req-1")

    def json(self, key: str) -> dict:
        return json.loads(self.storage.objects[key][0])

    def close(self) -> None:
        self.app.close()


@pytest.fixture
def world():
    world = World()
    yield world
    world.close()


JPEG = portrait(200, 120, [(10, 20, 30, 40)])


# -- guard -----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "key, code",
    [("heads/incoming/a.jpg/head-0.png", "OutputPrefix"), ("heads/.scratch/x.jpg", "OutputPrefix"), ("elsewhere/a.jpg", "OutsideInputPrefix")],
)
def test_guard_skips_outputs_and_foreign_keys(key, code):
    with pytest.raises(Skipped) as skip:
        guard(ObjectCreated("ObjectCreated:PutObject", "b", key), CONFIG)
    assert skip.value.code == code


def test_guard_skips_a_separate_scratch_prefix():
    config = Config(input_prefix="incoming/", output_prefix="heads/", scratch_prefix="tmp/")
    with pytest.raises(Skipped) as skip:
        guard(ObjectCreated("ObjectCreated:PutObject", "b", "tmp/incoming/a.jpg/1.jpg"), config)
    assert skip.value.code == "ScratchPrefix"


# -- the whole run ---------------------------------------------------------------------------------------------
def test_a_run_writes_cutouts_then_the_sidecar_last(world):
    etag = world.upload(JPEG)
    outcome = world.process(etag=etag)
    assert (outcome.status, outcome.heads, outcome.sidecar) == (Status.DONE, 2, FOLDER + "heads.json")
    cutouts = [FOLDER + f"head-{i}-{etag[:8].lower()}.png" for i in range(2)]
    mark = f"heads/.settled/{KEY}/done.{etag}.{world.storage.head(KEY).last_modified}.2.-"
    assert sorted(world.storage.done("put")) == sorted(cutouts + [FOLDER + "heads.json", mark])
    assert world.storage.done("put")[-2:] == [FOLDER + "heads.json", mark]  # the mark after the sidecar
    sidecar = world.json(FOLDER + "heads.json")
    modified = world.storage.head(KEY).last_modified
    assert sidecar["source"] == {
        "bucket": "twin", "key": KEY, "etag": etag, "size": len(JPEG), "width": 200, "height": 120,
        "last_modified": modified, "version_id": "",
    }
    assert [(h["key"], h["x"], h["width"]) for h in sidecar["heads"]] == [(cutouts[0], 10, 30), (cutouts[1], 60, 30)]
    assert world.storage.objects[cutouts[1]][0] == PNG + b"memory://cutout/1"
    [image] = world.segmenter.inputs
    assert image.url.startswith(f"memory://twin/{KEY}?") and image.data is None  # a URL segmenter gets a URL


def test_settled_sources_are_skipped_without_segmenting(world):
    etag = world.upload(JPEG)
    world.process(etag=etag)
    again = world.process(etag=etag)
    assert (again.status, again.code) == (Status.SKIPPED, "AlreadyDone")
    assert len(world.segmenter.inputs) == 1


def test_a_new_result_removes_the_previous_results_extra_cutouts_and_error_record(world):
    etag = world.upload(JPEG)
    old = Sidecar(Source("twin", KEY, "OLD", 1), "r", None, "twin", [HeadRecord(i, FOLDER + f"head-{i}-old.png", 0, 0, 1, 1) for i in range(3)])
    world.storage.objects[FOLDER + "heads.json"] = (old.to_json(), "application/json")
    world.storage.objects[FOLDER + "error.json"] = (b"{}", "application/json")
    for head in old.heads:
        world.storage.objects[head.key] = (PNG, "image/png")
    assert world.process(etag=etag).status is Status.DONE
    assert world.storage.keys(FOLDER) == [FOLDER + f"head-{i}-{etag[:8].lower()}.png" for i in range(2)] + [FOLDER + "heads.json"]


LEFTOVERS = {  # what runs killed, abandoned or superseded can leave, by the version their name carries
    "other version's cutout": (FOLDER + "head-7-0badc0de.png", True),
    "other version's scratch copy": ("heads/.scratch/" + KEY + "/0badc0de.jpg", True),
    "scratch copy named by 0.2 (run id)": ("heads/.scratch/" + KEY + "/0badc0de-0123456789ab.png", True),
    "error record written after the success": (FOLDER + "error.json", True),
    "a subfolder's object": (FOLDER + "nested/head-0-0badc0de.png", False),
    "a name headseg never writes": (FOLDER + "notes.txt", False),
}


@pytest.mark.parametrize("leftover", list(LEFTOVERS))
@pytest.mark.parametrize("when", ["a success", "a duplicate delivery"])
def test_leftovers_of_other_versions_are_removed_once_a_result_stands(world, leftover, when):
    """Whatever carries another version's eTag in its name goes once the sidecar is written, or found standing
    by a later delivery (a kill between the sidecar and the clean-up); nothing else in the folder is touched."""
    etag = world.upload(JPEG)
    if when == "a duplicate delivery":
        assert world.process(etag=etag).status is Status.DONE
    key, removed = LEFTOVERS[leftover]
    world.storage.put(key, b"left behind", "application/octet-stream")
    mine = FOLDER + f"head-5-{etag[:8].lower()}.png"  # this version's, unnamed: a concurrent duplicate's to name
    world.storage.put(mine, PNG, "image/png")
    outcome = world.process(etag=etag)
    assert outcome.code == ("AlreadyDone" if when == "a duplicate delivery" else "")
    assert (key in world.storage.objects) is not removed and mine in world.storage.objects
    assert world.json(FOLDER + "heads.json")["source"]["etag"] == etag


def test_a_newer_upload_done_while_the_sidecar_is_written_is_never_tidied_away(world):
    """Run A checks its version is current, then its sidecar PUT is slow; meanwhile a newer upload is done by run
    B (sidecar and cutouts). A's sidecar lands over B's: A must not tidy B's cutouts away as "another version",
    and asks for the retry that settles which result stands."""
    etag = world.upload(JPEG)
    newer = portrait(200, 120, [(100, 20, 30, 40)])
    landed = iter([True])

    def slow_sidecar(operation, key):
        if (operation, key) == ("put", FOLDER + "heads.json") and next(landed, False):
            world.storage.put(KEY, newer, "image/jpeg")
            assert world.process(etag=world.storage.head(KEY).etag).status is Status.DONE  # run B, in between

    world.storage.hook = slow_sidecar
    first = world.process(etag=etag)
    assert (first.status, first.code) == (Status.RETRY, "SupersededWhileWriting")
    current = world.storage.head(KEY).etag
    b_cutouts = [key for key in world.storage.keys(FOLDER) if f"-{current[:8].lower()}." in key]
    assert b_cutouts  # B's outputs survived A's late sidecar
    assert world.process(etag=etag).status is Status.DONE  # FC's retry of A's event does the current version
    sidecar = world.json(FOLDER + "heads.json")
    assert sidecar["source"]["etag"] == current and all(h["key"] in world.storage.objects for h in sidecar["heads"])
    assert [k for k in world.storage.keys(FOLDER) if f"-{etag[:8].lower()}." in k or k.endswith("error.json")] == []


def test_a_missing_object_is_a_recorded_permanent_failure(world):
    outcome = world.process(etag="ABC")
    assert (outcome.status, outcome.code) == (Status.FAILED, "NoSuchKey")
    record = world.json(FOLDER + "error.json")
    assert record["retriable"] is False and record["source"]["etag"] == "ABC" and record["request_id"] == "req-1"


def test_transient_reads_are_retried_on_the_injected_clock(world):
    etag = world.upload(JPEG)
    failures = iter([True, True])

    def flaky(operation, key):
        if (operation, key) == ("get", KEY) and next(failures, False):
            raise RetriableError("OSS 503", code="ServiceUnavailable")

    world.storage.hook = flaky
    assert world.process(etag=etag).status is Status.DONE
    assert len(world.clock.slept) == 2 and 0.25 <= world.clock.slept[0] <= 0.5  # no real time passed


def test_a_transient_error_past_the_budget_is_recorded_as_retriable(world):
    etag = world.upload(JPEG)
    world.segmenter.on_segment = lambda image: (_ for _ in ()).throw(RetriableError("throttled", code="Throttling"))
    outcome = world.process(etag=etag, seconds=3)
    assert (outcome.status, outcome.code) == (Status.RETRY, "BudgetExhausted")
    record = world.json(FOLDER + "error.json")
    assert record["retriable"] is True and "Throttling" in record["reason"] and sum(world.clock.slept) < 3


def test_a_permanent_error_that_cannot_be_recorded_becomes_a_retry(world):
    etag = world.upload(b"\xff\xd8\xff\xe0" + b"\x00" * 40)

    def refuse(operation, key):
        if operation == "put" and key.endswith("error.json"):
            raise RetriableError("OSS 500", code="InternalError")

    world.storage.hook = refuse
    outcome = world.process(etag=etag, seconds=3)
    assert (outcome.status, outcome.code) == (Status.RETRY, "BudgetExhausted")
    assert "corrupt JPEG" in outcome.reason and "could not be written" in outcome.reason and "InternalError" in outcome.reason


UNEXPECTED = [
    ("segment", lambda image: len(None)),  # a TypeError inside a stage
    ("segment", lambda image: json.loads("[" * 100_000)),  # RecursionError from a parser
    ("segment", lambda image: {}["Data"]),  # KeyError
    ("segment", lambda image: (_ for _ in ()).throw(RuntimeError("Failed to parse the value as json format"))),
    ("put", lambda key, data: (_ for _ in ()).throw(MemoryError())),  # from storage, on the cutout's write
]


@pytest.mark.parametrize("where, raises", UNEXPECTED, ids=["TypeError", "RecursionError", "KeyError", "RuntimeError", "MemoryError"])
def test_whatever_a_stage_raises_becomes_the_records_retriable_outcome(world, caplog, where, raises):
    """The record boundary: an exception no stage classified is logged with its traceback and recorded as a
    retriable InternalError; it never escapes `process`."""
    etag = world.upload(JPEG)
    if where == "segment":
        world.segmenter.on_segment = raises
    else:
        world.storage.hook = lambda operation, key: raises(key, b"") if operation == "put" and key.endswith(".png") else None
    outcome = world.process(etag=etag)
    assert (outcome.status, outcome.code) == (Status.RETRY, "InternalError")
    record = world.json(FOLDER + "error.json")
    assert (record["code"], record["retriable"], record["source"]["etag"]) == ("InternalError", True, etag)
    assert "unexpected" in record["reason"]
    [logged] = [r for r in caplog.records if r.exc_info and "unexpected error" in r.getMessage()]
    assert logged.exc_info[0].__name__ in outcome.reason


def test_one_records_unexpected_error_never_stops_its_neighbours(world):
    """Through the handler: the first record's stage raises something nobody classified; the second record is
    still done, and the handler raises at the end so FC retries (the done record is then skipped)."""
    first, second = "incoming/first.jpg", "incoming/second.jpg"
    etags = [world.upload(JPEG, key) for key in (first, second)]
    world.segmenter.on_segment = lambda image: len(None) if first in image.url else None
    events = [object_created_event("twin", key, etag)["events"][0] for key, etag in zip((first, second), etags)]
    context = type("Context", (), {"request_id": "req-2"})()
    with pytest.raises(RetriableError, match="1 of 2 record"):
        handle(world.app, json.dumps({"events": events}), context)
    assert world.json(f"heads/{first}/error.json")["code"] == "InternalError"
    assert [h["key"] for h in world.json(f"heads/{second}/heads.json")["heads"]] == [
        f"heads/{second}/head-{i}-{etags[1][:8].lower()}.png" for i in range(2)
    ]
    world.segmenter.on_segment = lambda image: None  # the bug fixed: FC's retry redoes the first, skips the second
    assert "AlreadyDone" in handle(world.app, json.dumps({"events": events}), context)
    assert world.storage.keys(f"heads/{first}/") == [f"heads/{first}/head-{i}-{etags[0][:8].lower()}.png" for i in range(2)] + [
        f"heads/{first}/heads.json"
    ]


def test_records_past_the_invocations_time_are_retried_unread_then_done_by_the_redelivery(world):
    """150 records (over the 100 that 0.2 dropped whole), each taking 1 s of a 60 s budget: those not reached
    make no request and ask for FC's retry; the redeliveries skip what is done, and every record ends done."""
    keys = [f"incoming/{i:03}.jpg" for i in range(150)]
    events = [object_created_event("twin", key, world.upload(JPEG, key))["events"][0] for key in keys]
    world.segmenter.on_segment = lambda image: world.clock.sleep(1.0)
    context = type("Context", (), {"request_id": "req-many", "function": type("F", (), {"timeout": 61})()})()
    deliveries = 0
    while True:
        deliveries += 1
        calls = len(world.storage.calls)
        try:
            outcomes = json.loads(handle(world.app, json.dumps({"events": events}), context))["outcomes"]
            break
        except RetriableError as exc:
            assert "NotReached" in str(exc) and deliveries < 10
            reached = {key for _, key in world.storage.calls[calls:]}
            assert keys[-1] not in reached  # the records not reached were not read
    # each delivery but the last may have one record in flight when its time ran out: that one is redone
    assert deliveries > 2 and 150 <= len(world.segmenter.inputs) <= 150 + deliveries - 1
    assert all(world.json(f"heads/{key}/heads.json")["source"]["key"] == key for key in keys)
    assert {o["outcome"] for o in outcomes} == {"skipped", "done"} and len(outcomes) == 150


# -- prepare: the image as the segmenter takes it --------------------------------------------------------------
BIG = portrait(2600, 1200, [(100, 100, 300, 400)])


def test_a_url_segmenter_reads_a_normalized_copy_that_is_removed_after(world):
    etag = world.upload(BIG)
    world.segmenter.on_segment = lambda image: (_ for _ in ()).throw(InvalidImage("rejected", code="InvalidImage.Content"))
    assert world.process(etag=etag).code == "InvalidImage.Content"
    [scratch] = world.storage.done("delete")
    assert scratch == f"heads/.scratch/{KEY}/{etag[:8].lower()}.jpg"
    assert world.storage.done("put")[0] == scratch
    assert world.segmenter.inputs[0].url.startswith(f"memory://twin/{scratch}?")
    assert world.storage.keys("heads/.scratch/") == []


def test_a_bytes_segmenter_gets_the_normalized_bytes_and_no_copy_is_written():
    world = World(ScriptedSegmenter(boxes=[(10, 10, 100, 100)], takes=Takes.BYTES))
    try:
        etag = world.upload(BIG)
        assert world.process(etag=etag).status is Status.DONE
        [image] = world.segmenter.inputs
        assert image.data is not None and image.data[:3] == b"\xff\xd8\xff" and image.data != BIG
        assert not [key for key in world.storage.done("put") if ".scratch" in key]
        sidecar = world.json(FOLDER + "heads.json")
        assert sidecar["normalization"]["width"] == 1999
        assert sidecar["heads"][0]["width"] == round(100 * 2600 / 1999)  # mapped back to the original's pixels
    finally:
        world.close()


def test_a_bytes_segmenter_gets_the_whole_object_when_it_needs_no_normalizing():
    world = World(ScriptedSegmenter(takes=Takes.BYTES))
    try:
        etag = world.upload(JPEG)
        world.process(etag=etag)
        assert world.segmenter.inputs[0].data == JPEG
    finally:
        world.close()


# -- cutouts ---------------------------------------------------------------------------------------------------
def cutouts_of(world: World, store=None) -> Cutouts:
    app = world.app
    from headseg.function.run import Run

    run = Run(Budget.seconds(60, world.clock), app.pipeline(None).policy, app._pool, world.clock.sleep)
    return Cutouts(run, world.segmenter, None, store or (lambda index, png: f"key-{index}"), size=(200, 120))


def test_expired_cutouts_call_segmenthead_once_more(world):
    world.upload(JPEG)
    expiries = iter([True, True])  # both heads of the first round

    def expire(head):
        if next(expiries, False):
            raise CutoutExpired("gone")

    world.segmenter.on_fetch = expire
    stored = cutouts_of(world).segment_and_store(lambda: None)
    assert isinstance(stored, Stored) and stored.keys == ["key-0", "key-1"] and len(world.segmenter.inputs) == 2


def test_cutouts_expiring_twice_go_to_fcs_retry_without_waiting(world):
    world.upload(JPEG)
    world.segmenter.on_fetch = lambda head: (_ for _ in ()).throw(CutoutExpired("gone"))
    with pytest.raises(CutoutExpired):
        cutouts_of(world).segment_and_store(lambda: None)
    assert len(world.segmenter.inputs) == 2 and world.clock.slept == []


def test_the_most_decisive_error_of_several_heads_wins(world):
    world.upload(JPEG)

    def mixed(head):
        raise RetriableError("flaky", code="HTTP503") if head.url.endswith("0") else PermanentError("bad", code="CutoutRedirect")

    world.segmenter.on_fetch = mixed
    with pytest.raises(PermanentError) as error:
        cutouts_of(world).segment_and_store(lambda: None)
    assert error.value.code == "CutoutRedirect"


def test_a_cutout_that_is_not_a_png_is_retried(world):
    world.upload(JPEG)
    bad = iter([True])
    original = world.segmenter.fetch
    world.segmenter.fetch = lambda head, budget: b"<html>" if next(bad, False) else original(head, budget)
    assert cutouts_of(world).segment_and_store(lambda: None).keys == ["key-0", "key-1"]
    assert len(world.clock.slept) == 1


def test_a_run_superseded_while_storing_removes_its_cutouts(world):
    etag = world.upload(JPEG)
    world.segmenter.on_segment = lambda image: world.storage.put(KEY, JPEG + b"v2", "image/jpeg")
    outcome = world.process(etag=etag)
    assert (outcome.status, outcome.code) == (Status.SKIPPED, "Superseded")
    assert world.storage.keys("heads/") == []


# -- results ---------------------------------------------------------------------------------------------------
def test_results_remove_quietly_when_storage_refuses(world, caplog):
    world.storage.hook = lambda operation, key: (_ for _ in ()).throw(PermanentError("no", code="AccessDenied"))
    cutouts_of(world)  # builds the pipeline
    from headseg.function.run import Run

    run = Run(Budget.seconds(5, world.clock), world.app.pipeline(None).policy, world.app._pool, world.clock.sleep)
    Results(run, world.storage, CONFIG.layout(KEY)).tidy(Sidecar(Source("b", KEY, "E", 1), "", None, "x", []), Previous(error_exists=True))
    assert "could not write the mark" in caplog.text and "could not delete a leftover object" in caplog.text


def test_a_failure_is_marked_and_its_mark_replaced_by_the_results_and_a_lost_mark_is_rewritten(world):
    """Every settled version leaves one mark, the latest: a failure's, then the success's; a duplicate delivery
    of a version settled without its mark (a run killed between the record and the mark) writes it."""
    marks = lambda: [key.rpartition("/")[2] for key in world.storage.keys(f"heads/.settled/{KEY}/")]  # noqa: E731
    etag = world.upload(b"not an image")
    assert world.process(etag=etag).status is Status.FAILED
    modified = world.storage.head(KEY).last_modified
    assert marks() == [f"failed.{etag}.{modified}.0.InvalidImage.NotImage"]
    world.storage.delete(f"heads/.settled/{KEY}/" + marks()[0])
    assert world.process(etag=etag).code == "AlreadyFailed" and len(marks()) == 1
    etag = world.upload(JPEG)
    assert world.process(etag=etag).status is Status.DONE
    assert marks() == [f"done.{etag}.{world.storage.head(KEY).last_modified}.2.-"]
    world.storage.delete(f"heads/.settled/{KEY}/" + marks()[0])
    assert world.process(etag=etag).code == "AlreadyDone" and len(marks()) == 1


@pytest.mark.parametrize("failing", ["list", "delete"])
def test_unfinished_tidying_asks_for_the_retry_that_finishes_it_and_never_records_an_error(world, caplog, failing):
    etag = world.upload(JPEG)
    world.storage.put(FOLDER + "error.json", b"{}", "application/json")  # an earlier attempt's record: must go
    world.storage.put(FOLDER + "head-0-0badcafe.png", b"png", "image/png")  # another version's cutout: must go
    world.storage.hook = lambda operation, key: (_ for _ in ()).throw(RetriableError("OSS 503", code="ServiceUnavailable")) if operation == failing else None

    first = world.process(etag=etag)

    assert (first.status, first.code) == (Status.RETRY, "TidyIncomplete")
    assert world.storage.objects.get(FOLDER + "error.json", (b"{}",))[0] == b"{}"  # no record of this failure
    assert FOLDER + "heads.json" in world.storage.objects
    world.storage.hook = lambda operation, key: None
    second = world.process(etag=etag)  # FC's retry: the result stands and the tidying ends
    assert (second.status, second.code) == (Status.SKIPPED, "AlreadyDone")
    assert sorted(k.rsplit("/", 1)[1] for k in world.storage.keys(FOLDER)) == ["head-0-" + etag[:8].lower() + ".png", "head-1-" + etag[:8].lower() + ".png", "heads.json"]


def test_no_failure_after_the_sidecar_leaves_an_error_record_beside_it_not_even_a_bug(world):
    etag = world.upload(JPEG)
    world.storage.hook = lambda operation, key: (_ for _ in ()).throw(ValueError("a bug")) if operation == "list" else None

    outcome = world.process(etag=etag)

    assert (outcome.status, outcome.code) == (Status.RETRY, "InternalError")
    assert FOLDER + "heads.json" in world.storage.objects and FOLDER + "error.json" not in world.storage.objects


# -- log context -----------------------------------------------------------------------------------------------
def test_every_line_of_a_record_carries_its_request_id_and_key_even_from_pool_threads(world, caplog):
    logs.configure()
    etag = world.upload(JPEG)
    once = iter([True])

    def flaky_cutout_put(operation, key):
        if operation == "put" and key.endswith(".png") and next(once, False):
            raise RetriableError("OSS 503", code="ServiceUnavailable")

    world.storage.hook = flaky_cutout_put
    context = type("Context", (), {"request_id": "req-ctx"})()
    with caplog.at_level(logging.INFO):
        handle(world.app, json.dumps(object_created_event("twin", KEY, etag)), context)
    lines = [json.loads(line) for line in caplog.text.splitlines() if line.startswith("{")]
    [retrying] = [line for line in lines if line["message"] == "retrying"]
    assert retrying["request_id"] == "req-ctx" and retrying["key"] == KEY and retrying["call"].startswith("write ")
    assert all(line.get("request_id") == "req-ctx" for line in lines)


# -- read: the event's key as given, or URL-decoded ------------------------------------------------------------
@pytest.mark.parametrize("owner", ["incoming/a+b.jpg", "incoming/a b.jpg"])
def test_when_raw_and_decoded_keys_both_exist_the_one_with_the_events_etag_wins(world, owner):
    etags = {key: world.upload(portrait(200, 120, [(10, 20, 30, 40)], background=shade), key)
             for key, shade in (("incoming/a+b.jpg", (200, 200, 200)), ("incoming/a b.jpg", (100, 100, 100)))}
    outcome = world.process("incoming/a+b.jpg", etag=etags[owner])
    assert (outcome.status, outcome.key) == (Status.DONE, owner)
    assert world.json(f"heads/{owner}/heads.json")["source"]["etag"] == etags[owner]


def test_the_in_flight_budget_counts_a_downloads_transfer_buffers_beside_its_png(world):
    world.segmenter.boxes = [(0, 0, 20, 20), (20, 0, 20, 20)]
    etag = world.upload(JPEG)
    both = threading.Barrier(2)
    overlapped = []

    def meet(head):  # the two downloads meet here only if the budget lets them run at once
        try:
            both.wait(timeout=0.5)
            overlapped.append(head)
        except threading.BrokenBarrierError:
            pass

    world.segmenter.on_fetch = meet
    png_bound = max_cutout_bytes(Head(0, 0, 20, 20))
    room = 2 * png_bound + 1000  # both PNGs fit, not with what their transfers hold
    tight = World(world.segmenter, dataclasses.replace(CONFIG, memory_fraction=2 * room / (512 * 2**20)))
    try:
        tight.storage = world.storage
        assert tight.process(etag=etag).heads == 2
        assert overlapped == []
    finally:
        tight.close()


def test_impossible_boxes_are_dropped_and_overhanging_ones_clamped(world, caplog):
    world.segmenter.boxes = [(10, 20, 0, 40), (500, 500, 10, 10), (180, 100, 40, 40), (-5, 20, 30, 40)]
    etag = world.upload(JPEG)  # 200x120
    assert world.process(etag=etag).heads == 2
    boxes = [(h["x"], h["y"], h["width"], h["height"]) for h in world.json(FOLDER + "heads.json")["heads"]]
    assert boxes == [(180, 100, 20, 20), (0, 20, 25, 40)]
    assert caplog.text.count("dropped a head") == 2 and caplog.text.count("clamped a head") == 2


def test_cutouts_in_flight_stay_within_their_byte_budget(world):
    world.segmenter.boxes = [(i * 20, 0, 20, 20) for i in range(6)]  # each at most 20*20*4 + 20 + 64 KiB
    etag = world.upload(JPEG)
    busy, peak = [0], [0]
    lock = threading.Lock()

    def count(head):
        with lock:
            busy[0] += 1
            peak[0] = max(peak[0], busy[0])
        threading.Event().wait(0.01)  # a pause, not a clock: other downloads start in it if the budget lets them
        with lock:
            busy[0] -= 1

    world.segmenter.on_fetch = count
    # 512 MB * 0.0003 / 2 ≈ 80 KiB in flight: room for one such cutout at a time
    tight = World(world.segmenter, dataclasses.replace(CONFIG, memory_fraction=0.0003))
    try:
        tight.storage = world.storage
        assert tight.process(etag=etag).heads == 6
        assert peak[0] == 1
    finally:
        tight.close()
