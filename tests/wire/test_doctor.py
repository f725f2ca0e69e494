"""`headseg doctor`: a correct deployment passes; each broken one fails with the right line and fix. The real
alibabacloud_fc20230330 and oss2 against the fake FC 3.0 (ACS3-signed reads) and the fake OSS."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from headseg.ops import syaml
from headseg.cli import main
from tests.conftest import ACCESS_KEY_ID, ACCESS_KEY_SECRET, BUCKET, SECURITY_TOKEN, Cloud

ROOT = Path(__file__).resolve().parents[2]
EVENTS = ["oss:ObjectCreated:PutObject", "oss:ObjectCreated:PostObject", "oss:ObjectCreated:CompleteMultipartUpload", "oss:ObjectCreated:CopyObject"]
ARN = f"acs:oss:cn-shanghai:1234567890:{BUCKET}"
ROLE = "acs:ram::1234567890:role/aliyunosseventnotificationrole"


@pytest.fixture
def deployed(cloud: Cloud, fake_fc3, monkeypatch):
    """The fakes as `s deploy` of this repository's s.yaml would leave them, and the tooling's keys."""
    monkeypatch.setenv("HEADSEG_BUCKET", BUCKET)
    props = syaml.function_props(ROOT / "s.yaml", {"HEADSEG_BUCKET": BUCKET})
    fake_fc3.add_function(
        "headseg", runtime=props["runtime"], handler=props["handler"], timeout=props["timeout"], memorySize=props["memorySize"],
        environmentVariables={  # as deployed, but reaching the fakes
            **{k: str(v) for k, v in props["environmentVariables"].items()},
            "OSS_ENDPOINT": cloud.oss.url, "IMAGESEG_ENDPOINT": cloud.imageseg.url,
        },
        role=props["role"],
        instanceLifecycleConfig=props["instanceLifecycleConfig"],
    )
    [trigger] = props["triggers"]
    fake_fc3.add_trigger("headseg", trigger["triggerName"], "oss", trigger["triggerConfig"], sourceArn=ARN, invocationRole=ROLE)
    fake_fc3.async_configs["headseg"] = {"maxAsyncRetryAttempts": 3, "destinationConfig": {"onFailure": {"destination": "acs:mns:cn-shanghai:1:/queues/f/messages"}}}
    fake_fc3.add_function("thumbnails")  # another function of the account, on another prefix of the bucket
    fake_fc3.add_trigger("thumbnails", "t", "oss", {"events": EVENTS, "filter": {"key": {"prefix": "thumbs/"}}}, sourceArn=ARN, invocationRole=ROLE)
    cloud.oss.set_lifecycle(BUCKET, [("logs", "logs/", 30), ("scratch", "heads/.scratch/", 1)])
    cloud.configure(
        ALIBABA_CLOUD_ACCESS_KEY_ID=ACCESS_KEY_ID, ALIBABA_CLOUD_ACCESS_KEY_SECRET=ACCESS_KEY_SECRET, ALIBABA_CLOUD_SECURITY_TOKEN=SECURITY_TOKEN,
    )
    cloud.fc3 = fake_fc3
    cloud.oss.put(BUCKET, "heads/.settled.json", json.dumps({"prefixes": ["incoming/"]}).encode())  # `headseg migrate` ran
    return cloud


def doctor(cloud: Cloud, capsys, *extra: str) -> tuple[int, dict[str, dict[str, str]]]:
    code = main([
        "doctor", "--bucket", BUCKET, "--oss-endpoint", cloud.oss.url, "--fc-endpoint", cloud.fc3.url,
        "--s-yaml", str(ROOT / "s.yaml"), "--json", *extra,
    ])
    return code, {check["name"]: check for check in json.loads(capsys.readouterr().out)}


def test_a_correct_deployment_passes_every_check(deployed, capsys):
    code, checks = doctor(deployed, capsys)
    assert {name: c["level"] for name, c in checks.items()} == {
        name: "pass" for name in ("function", "prefixes", "trigger", "no loop", "async", "bucket", "output", "lifecycle", "marks")
    }
    assert code == 0
    assert deployed.oss.keys(BUCKET, "heads/") == ["heads/.settled.json"]  # the write probe was removed
    deployed.fc3.check()


def test_the_checklist_reads_as_lines(deployed, capsys):
    deployed.fc3.triggers["headseg"].clear()
    code = main(["doctor", "--bucket", BUCKET, "--oss-endpoint", deployed.oss.url, "--fc-endpoint", deployed.fc3.url, "--s-yaml", str(ROOT / "s.yaml")])
    lines = capsys.readouterr().out.splitlines()
    assert code == 1
    assert lines[0] == "PASS  function   headseg: python3.10, index.handler, 120 s, 512 MB"
    [trigger] = [i for i, line in enumerate(lines) if line.startswith("FAIL  trigger")]
    assert lines[trigger + 1].startswith("      fix: deploy s.yaml's trigger")


@pytest.mark.parametrize(
    "breakage, name, level, words",
    [
        ("no trigger", "trigger", "fail", "no trigger on headseg-demo watches INPUT_PREFIX 'incoming/'"),
        ("wrong prefix", "trigger", "fail", "(on this bucket: portraits ('uploads/'))"),
        ("missing role", "trigger", "fail", "portraits: no invocation role"),
        ("fewer events", "trigger", "warn", "does not fire on CompleteMultipartUpload, CopyObject"),
        ("looping trigger", "no loop", "fail", "cover OUTPUT_PREFIX 'heads/': thumbnails/t ('')"),
        ("no async config", "async", "warn", "events that exhaust their retries are dropped"),
        ("no failure destination", "async", "warn", "3 retries, no onFailure destination"),
        ("unwritable output", "output", "fail", "cannot write and delete under 'heads/'"),
        ("no lifecycle rule", "lifecycle", "fail", "no lifecycle rule expires the scratch prefix 'heads/.scratch/'"),
        ("rule on the results", "lifecycle", "warn", "rule 'all' expires 'heads/': the results too"),
        ("other timeout", "function", "fail", "timeout is 60, s.yaml sets 120"),
        ("looping prefixes", "prefixes", "fail", "infinite loop"),
        ("no function", "function", "fail", "no function 'headseg' in FC 3.0"),
        ("trigger on another bucket", "trigger", "fail", "no trigger on headseg-demo watches INPUT_PREFIX 'incoming/': portraits watches old-portraits/incoming/"),
    ],
)
def test_each_broken_setup_fails_with_its_line(deployed, capsys, breakage, name, level, words):
    fc3, oss = deployed.fc3, deployed.oss
    portraits = fc3.triggers["headseg"][0]
    config = json.loads(portraits["triggerConfig"])
    if breakage == "no trigger":
        fc3.triggers["headseg"].clear()
    elif breakage == "wrong prefix":
        config["filter"]["key"]["prefix"] = "uploads/"
    elif breakage == "missing role":
        portraits["invocationRole"] = ""
    elif breakage == "fewer events":
        config["events"] = EVENTS[:2]
    elif breakage == "looping trigger":
        fc3.triggers["thumbnails"][0]["triggerConfig"] = json.dumps({"events": EVENTS, "filter": {"key": {"prefix": ""}}})
    elif breakage == "no async config":
        del fc3.async_configs["headseg"]
    elif breakage == "no failure destination":
        fc3.async_configs["headseg"] = {"maxAsyncRetryAttempts": 3}
    elif breakage == "unwritable output":
        oss.deny(times=5, match=lambda r: r.method == "PUT" and "heads" in r.path)
    elif breakage == "no lifecycle rule":
        oss.set_lifecycle(BUCKET, [("logs", "logs/", 30)])
    elif breakage == "rule on the results":
        oss.set_lifecycle(BUCKET, [("all", "heads/", 7)])
    elif breakage == "other timeout":
        fc3.functions["headseg"]["timeout"] = 60
    elif breakage == "looping prefixes":
        fc3.functions["headseg"]["environmentVariables"]["OUTPUT_PREFIX"] = "incoming/heads/"
    elif breakage == "no function":
        del fc3.functions["headseg"]
    elif breakage == "trigger on another bucket":  # deployed before HEADSEG_BUCKET changed: a redeploy kept its sourceArn
        portraits["sourceArn"] = "acs:oss:cn-shanghai:1234567890:old-portraits"
    portraits["triggerConfig"] = json.dumps(config)
    code, checks = doctor(deployed, capsys)
    assert checks[name]["level"] == level and words in checks[name]["message"], checks[name]
    assert checks[name]["fix"]
    assert code == (1 if level == "fail" else 0)
    others = {n: c["level"] for n, c in checks.items() if n != name}
    assert set(others.values()) <= {"pass"}, others  # the breakage shows where it is, and only there


def test_a_trigger_left_on_the_old_bucket_is_named_with_the_commands_that_move_it(deployed, capsys):
    """fc3's UpdateTrigger cannot change sourceArn, so `s deploy` after a new HEADSEG_BUCKET leaves the trigger on
    the old bucket: the fix is to remove it and deploy again, never "deploy s.yaml's trigger"."""
    deployed.fc3.triggers["headseg"][0]["sourceArn"] = "acs:oss:cn-shanghai:1234567890:old-portraits"
    code, checks = doctor(deployed, capsys)
    assert code == 1 and checks["trigger"]["level"] == "fail"
    assert "`s remove --trigger portraits`, then `s deploy`" in checks["trigger"]["fix"], checks["trigger"]


def test_the_bucket_s_yaml_names_is_the_one_checked(deployed, capsys, monkeypatch, tmp_path):
    """s.yaml's bucket comes from the environment or the `.env` beside it, as Serverless Devs reads it; one other
    than --bucket fails the trigger check, and with neither, --bucket stands for it."""
    monkeypatch.delenv("HEADSEG_BUCKET")
    (tmp_path / "s.yaml").write_text((ROOT / "s.yaml").read_text())
    arguments = ["doctor", "--bucket", BUCKET, "--oss-endpoint", deployed.oss.url, "--fc-endpoint", deployed.fc3.url, "--json"]
    assert main([*arguments, "--s-yaml", str(tmp_path / "s.yaml")]) == 0
    assert {c["name"]: c["level"] for c in json.loads(capsys.readouterr().out)}["trigger"] == "pass"
    (tmp_path / ".env").write_text("HEADSEG_BUCKET=new-portraits\n")
    assert main([*arguments, "--s-yaml", str(tmp_path / "s.yaml")]) == 1
    [trigger] = [c for c in json.loads(capsys.readouterr().out) if c["name"] == "trigger"]
    assert trigger["level"] == "fail" and trigger["message"] == f"s.yaml names bucket 'new-portraits', not '{BUCKET}'"
    assert "--bucket new-portraits" in trigger["fix"]


def test_fix_adds_the_scratch_rule_and_keeps_the_others(deployed, capsys):
    deployed.oss.set_lifecycle(BUCKET, [("logs", "logs/", 30)])
    code, checks = doctor(deployed, capsys, "--fix")
    assert code == 0 and checks["lifecycle"]["level"] == "pass" and "added rule 'headseg-scratch'" in checks["lifecycle"]["message"]
    assert deployed.oss.lifecycle_rules(BUCKET) == [
        {"ID": "logs", "Prefix": "logs/", "Status": "Enabled", "Days": "30"},
        {"ID": "headseg-scratch", "Prefix": "heads/.scratch/", "Status": "Enabled", "Days": "1"},
    ]
    assert doctor(deployed, capsys)[1]["lifecycle"]["level"] == "pass"


def test_an_eventbridge_trigger_passes_too(deployed, capsys):
    props = syaml.function_props(ROOT / "s.yaml", {"HEADSEG_BUCKET": BUCKET})
    bridge = syaml.render(ROOT / "s.yaml", {"HEADSEG_BUCKET": BUCKET})["vars"]["eventbridgeTrigger"]
    pattern = bridge["triggerConfig"]["eventRuleFilterPattern"].replace("${config('AccountID')}", "1234567890")
    deployed.fc3.triggers["headseg"] = []
    deployed.fc3.add_trigger("headseg", bridge["triggerName"], "eventbridge", {**bridge["triggerConfig"], "eventRuleFilterPattern": pattern})
    code, checks = doctor(deployed, capsys)
    assert checks["trigger"]["level"] == "pass" and "(eventbridge)" in checks["trigger"]["message"], checks["trigger"]
    assert code == 0 and props["environmentVariables"]["INPUT_PREFIX"] in checks["trigger"]["message"]


def test_unreachable_services_are_lines_not_tracebacks(deployed, capsys):
    code = main(["doctor", "--bucket", BUCKET, "--oss-endpoint", "http://127.0.0.1:9", "--fc-endpoint", "http://127.0.0.1:9", "--json"])
    out, err = capsys.readouterr()
    checks = {c["name"]: c for c in json.loads(out)}
    assert code == 1 and "Traceback" not in err
    assert checks["function"]["level"] == "fail" and "cannot reach http://127.0.0.1:9" in checks["function"]["message"]
    assert checks["bucket"]["level"] == "fail" and checks["bucket"]["fix"].startswith("check --oss-endpoint")


def test_refused_credentials_say_so(deployed, capsys, monkeypatch):
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET", "wrong")
    code, checks = doctor(deployed, capsys)
    assert code == 1 and checks["function"]["level"] == "fail" and "SignatureNotMatch" in checks["function"]["message"]
    assert "wrong" not in json.dumps(checks)


def test_call_segmenthead_hands_the_portrait_over_as_the_function_would(deployed, capsys):
    code, checks = doctor(deployed, capsys, "--call-segmenthead")
    assert code == 0 and checks["segmenthead"]["level"] == "pass", checks["segmenthead"]
    # the fake marks heads by colour, so it finds none in a real photo: the check is that the service answered
    assert re.fullmatch(r"URL_MODE=internal: \d+ head\(s\) in the bundled portrait \(one billed call\)", checks["segmenthead"]["message"])
    [url] = deployed.imageseg.fetched_urls  # one call, on a URL signed for the function's OSS endpoint
    assert url.split("?")[0].startswith(deployed.oss.url) and "heads/.scratch/.headseg-doctor-" in url
    assert "x-oss-signature=" in url
    assert deployed.oss.keys(BUCKET) == ["heads/.settled.json"]  # the portrait was removed


def test_call_segmenthead_fails_when_the_service_cannot_fetch_the_functions_url(deployed, capsys):
    deployed.fc3.functions["headseg"]["environmentVariables"]["OSS_ENDPOINT"] = "http://127.0.0.1:9"  # say, internal only
    code, checks = doctor(deployed, capsys, "--call-segmenthead")
    check = checks["segmenthead"]
    assert code == 1 and check["level"] == "fail" and "InvalidImage.Download" in check["message"], check
    assert "URL_MODE=public or advance" in check["fix"]
    assert "x-oss-signature" not in check["message"] and ACCESS_KEY_SECRET not in json.dumps(checks)
    assert deployed.oss.keys(BUCKET) == ["heads/.settled.json"]


def test_a_prefix_without_a_stamp_is_stamped_by_fix_when_nothing_predates_marks_and_else_sent_to_migrate(deployed, capsys):
    deployed.oss.delete(BUCKET, "heads/.settled.json")
    code, checks = doctor(deployed, capsys)
    assert checks["marks"]["level"] == "warn" and "doctor --fix" in checks["marks"]["fix"] and code == 0
    code, checks = doctor(deployed, capsys, "--fix")
    assert checks["marks"]["level"] == "pass" and "nothing to migrate" in checks["marks"]["message"]
    assert json.loads(deployed.oss.get(BUCKET, "heads/.settled.json") or b"")["prefixes"] == ["incoming/"]

    deployed.oss.delete(BUCKET, "heads/.settled.json")
    deployed.oss.put(BUCKET, "heads/incoming/old.jpg/heads.json", b"{}")  # a result of 0.2
    code, checks = doctor(deployed, capsys, "--fix")
    assert checks["marks"]["level"] == "warn" and checks["marks"]["fix"] == f"run `headseg migrate --bucket {BUCKET} --prefix incoming/` once"
    assert deployed.oss.get(BUCKET, "heads/.settled.json") is None
