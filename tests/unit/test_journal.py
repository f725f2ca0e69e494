"""Backfill's journal: whatever a kill or a crash left at its end, a resume reads every whole entry, says in one
warning which line it skipped, hands that object over again, and cuts that line off before it records what it
hands over next, so the run after it reads that back and has nothing to warn about."""

from __future__ import annotations

import json
import logging

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from headseg.cli import main
from headseg.function.errors import HeadsegError
from headseg.ops.backfill import Journal

LOGGER = "headseg.ops.backfill"
keys = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=12)  # any text a key may be
etags = st.text("0123456789ABCDEF", min_size=32, max_size=32)


def warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == LOGGER and r.levelno == logging.WARNING]


def resume_after_cut(path, caplog, entries: list[tuple[str, str]], cut: int | None, zeros: int, mid: bytes = b"") -> None:
    """Write `entries`, keep the journal's first `cut` bytes (None: up to the middle of `mid`'s first occurrence),
    pad it with `zeros` NUL bytes, then resume: every whole entry is read, the torn line named in one warning,
    and what the resumed run adds is read back by the run after it, with no warning."""
    path.unlink(missing_ok=True)
    caplog.clear()
    written = Journal(path)
    for key, etag in entries:
        written.add(key, etag, "handle")
    whole = path.read_bytes()
    cut = whole.index(mid) + len(mid) // 2 if cut is None else cut
    path.write_bytes(whole[:cut] + b"\0" * zeros)  # a kill mid-write, then a crash that kept the size, not the data
    ends = [i for i, byte in enumerate(whole) if byte == ord("\n")]  # entry n's line ends at ends[n]
    kept = {entries[n] for n, end in enumerate(ends) if end < cut or (end == cut and not zeros)}
    torn = zeros > 0 or cut not in (0, *ends, *(end + 1 for end in ends))  # a line that is not a whole entry

    with caplog.at_level(logging.WARNING, logger=LOGGER):
        resumed = Journal(path)

    assert resumed.seen == kept  # the torn entry's object is not in it: it is handed over again
    line = whole[:cut].count(b"\n") + 1
    assert warnings(caplog) == ([f"{path}: line {line} is not a whole journal entry (a run stopped while writing "
                                 "it?): skipped, so its object is handed over again"] if torn else [])  # fmt: skip
    resumed.add("incoming/next.jpg", "F" * 32, "handle")  # the resumed run's first hand-over
    caplog.clear()
    assert Journal(path).seen == kept | {("incoming/next.jpg", "F" * 32)}  # read back by the run after it
    assert warnings(caplog) == []  # the torn line was cut off: said once, not on every run


ENTRIES = [("incoming/a.jpg", "A" * 32), ("incoming/Ärger ☃.jpg", "B" * 32)]


@pytest.mark.parametrize("mid, zeros", [
    (b'"etag"', 0),  # mid-JSON
    ("Ä".encode(), 0),  # mid-UTF-8: the first byte of a two-byte character
    ("☃".encode(), 0),  # and of a three-byte one
    (b'"etag"', 512),  # mid-JSON, then zeros where the crash lost the data
    (b"\n", 4096),  # a whole first line, then zeros
])  # fmt: skip
def test_a_torn_tail_is_skipped_said_and_handed_over_again(tmp_path, caplog, mid, zeros):
    resume_after_cut(tmp_path / "journal.jsonl", caplog, ENTRIES, None, zeros, mid)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(entries=st.lists(st.tuples(keys, etags), min_size=1, max_size=5, unique=True), data=st.data(),
       zeros=st.sampled_from([0, 0, 1, 3, 4, 37, 4096]))  # fmt: skip
def test_a_journal_cut_anywhere_and_padded_with_zeros_resumes_every_whole_entry(tmp_path, caplog, entries, data, zeros):
    size = sum(len(json.dumps({"key": k, "etag": e, "handle": "handle"}, ensure_ascii=False).encode()) + 1 for k, e in entries)
    resume_after_cut(tmp_path / "journal.jsonl", caplog, entries, data.draw(st.integers(0, size), label="cut"), zeros)


@pytest.mark.parametrize("tail", [
    b'{"key": "incoming/b.jpg"}',  # valid JSON, but no entry: a line the journal never wrote
    b'{"key": "incoming/b.jpg", "etag": 7}', b"[]", b"12", b"null", b'"text"',
    '{"key": "incoming/b.jpg", "etag": "B"}'.encode("utf-16-le"),  # an entry, but not UTF-8 as the journal writes
    b"\xef\xbb\xbf" + b'{"key": "incoming/b.jpg", "etag": "B"}',  # behind a byte-order mark
    b"[" * 100_000,  # deeper than the parser goes
    b"\xff\xfe\0\0",
])  # fmt: skip
def test_a_line_of_another_shape_is_skipped_and_said(tmp_path, caplog, tail):
    path = tmp_path / "journal.jsonl"
    path.write_bytes(json.dumps({"key": "incoming/a.jpg", "etag": "A", "handle": "h"}).encode() + b"\n" + tail + b"\n")
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        assert Journal(path).seen == {("incoming/a.jpg", "A")}
    [warning] = warnings(caplog)
    assert warning.startswith(f"{path}: line 2 is not a whole journal entry")


def test_a_journal_that_cannot_be_read_stops_the_command_with_one_line(tmp_path, capsys):
    with pytest.raises(HeadsegError, match=f"^cannot read the journal {tmp_path}: Is a directory"):
        Journal(tmp_path)
    assert main(["backfill", "--bucket", "b", "--journal", str(tmp_path), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"headseg backfill: cannot read the journal {tmp_path}: Is a directory") and err.count("\n") == 1
