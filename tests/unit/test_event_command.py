"""`headseg event`: an upload event for the user's own bucket and object, which the function's own parser reads
back as that object (whatever the key), and refuses to write one the function would reject."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from headseg.cli import main
from headseg.function.events import MAX_KEY_BYTES, ObjectCreated, normalize_etag, parse_event

ROOT = Path(__file__).resolve().parents[2]
KEYS = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=60)
ETAGS = st.none() | st.from_regex(r"[0-9A-F]{32}(-[0-9]{1,3})?", fullmatch=True)


@settings(max_examples=100, deadline=None)
@given(key=KEYS, etag=ETAGS, bucket=st.from_regex(r"[a-z0-9][a-z0-9-]{1,30}[a-z0-9]", fullmatch=True))
def test_the_event_names_the_bucket_and_object_the_function_then_reads(key, etag, bucket):
    with contextlib.redirect_stdout(io.StringIO()) as printed:
        code = main(["event", "--bucket", bucket, f"--key={key}", *(["--etag", f'"{etag}"'] if etag else [])])  # a key may start with -
    out = printed.getvalue()
    assert code == 0
    [record] = parse_event(out.encode("utf-8"))
    assert isinstance(record, ObjectCreated) and record.event_name == "ObjectCreated:PutObject"
    assert (record.bucket, record.key, record.etag) == (bucket, key, normalize_etag(etag) if etag else None)
    assert json.loads(out)["events"][0]["oss"]["bucket"]["arn"].endswith(f":{bucket}")


def test_the_bucket_defaults_to_the_one_s_yaml_deploys_for(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("HEADSEG_BUCKET", raising=False)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "s.yaml").write_text((ROOT / "s.yaml").read_text())
    assert main(["event", "--key", "incoming/group.jpg"]) == 2
    assert "give --bucket, or set HEADSEG_BUCKET" in capsys.readouterr().err
    (tmp_path / ".env").write_text("HEADSEG_BUCKET=portraits-of-mine\n")
    assert main(["event", "--key", "incoming/group.jpg", "--size", "122539", "-o", "my-put.json"]) == 0
    [record] = parse_event((tmp_path / "my-put.json").read_bytes())
    assert isinstance(record, ObjectCreated) and (record.bucket, record.key, record.size) == ("portraits-of-mine", "incoming/group.jpg", 122539)


def test_an_event_the_function_would_reject_is_refused(capsys):
    assert main(["event", "--bucket", "b", "--key", "k" * (MAX_KEY_BYTES + 1)]) == 2
    assert "the function would not process this event" in capsys.readouterr().err
    assert main(["event", "--bucket", "b", "--key", "k", "--size", "-1"]) == 2
