"""The RAM documents and the commands `headseg ram` prints: valid JSON, s.yaml's own variables, least privilege.

Whatever bucket and prefixes s.yaml is given, the function's policy lets it write and delete only under the
output prefix, read only under the two prefixes, list only the output prefix, and call SegmentHead; a value
that would widen the grant (a RAM wildcard) is refused.
"""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from headseg.cli import main
from headseg.function.config import Config
from headseg.function.errors import ConfigError, HeadsegError
from headseg.ops import ram, syaml

ROOT = Path(__file__).resolve().parents[2]
ASSETS = ROOT / "src" / "headseg" / "ops" / "assets" / "ram"
#: What the function may do without a prefix of its own: read (objects and their versions) and list.
READS = {"oss:GetObject", "oss:GetObjectVersion"}


def s_yaml_vars(environ: dict[str, str]) -> dict:
    return syaml.render(ROOT / "s.yaml", {syaml.BUCKET_VARIABLE: "my-portraits", **environ})["vars"]


def test_every_document_is_json_and_names_only_s_yaml_variables():
    variables = s_yaml_vars({})
    used = set()
    for path in sorted(ASSETS.glob("*.json")):
        text = path.read_text()
        assert json.loads(text)["Version"] == "1", path.name
        used |= set(re.findall(r"\$\{vars\.(\w+)\}", text))
    assert used == set(ram.POLICY_VARIABLES) and used <= set(variables)
    assert {p.name for p in ASSETS.glob("*.json")} == {"function-trust.json", "function-policy.json", "trigger-trust.json"}


def test_each_role_is_trusted_by_the_service_that_assumes_it():
    for name, service in (("function-trust.json", "fc.aliyuncs.com"), ("trigger-trust.json", "oss.aliyuncs.com")):
        [statement] = ram.document(name)["Statement"]
        assert statement == {"Effect": "Allow", "Action": "sts:AssumeRole", "Principal": {"Service": [service]}}


def statements(policy: dict) -> list[tuple[str, list[str], dict]]:
    """(action, resources, condition) for every action the policy allows."""
    listed = []
    for statement in policy["Statement"]:
        assert statement["Effect"] == "Allow" and "NotAction" not in statement and "NotResource" not in statement
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        listed += [(action, resources, statement.get("Condition", {})) for action in actions]
    return listed


PREFIXES = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), min_size=1, max_size=12).map(lambda s: s + "/")
BUCKETS = st.from_regex(r"[a-z0-9][a-z0-9-]{1,20}[a-z0-9]", fullmatch=True)


@settings(max_examples=200, deadline=None)
@given(bucket=BUCKETS, input_prefix=PREFIXES, output_prefix=PREFIXES)
def test_writes_and_deletes_stay_under_the_output_prefix_whatever_s_yaml_says(bucket, input_prefix, output_prefix):
    try:
        Config.from_env({"INPUT_PREFIX": input_prefix, "OUTPUT_PREFIX": output_prefix})  # what the function accepts
        variables = s_yaml_vars({"HEADSEG_BUCKET": bucket, "HEADSEG_INPUT_PREFIX": input_prefix, "HEADSEG_OUTPUT_PREFIX": output_prefix})
        policy = ram.function_policy(variables)
    except (HeadsegError, ConfigError, ValueError):
        return  # refused before any grant is made (a looping pair, a wildcard, what YAML cannot hold)
    assert not any(c in input_prefix + output_prefix for c in "*?")
    output = f"acs:oss:*:*:{bucket}/{output_prefix}*"
    for action, resources, condition in statements(policy):
        assert "*" not in action, action  # no wildcard action
        if action.startswith("viapi-"):
            assert action == "viapi-imageseg:SegmentHead"
        elif action == "oss:ListObjects":
            assert resources == [f"acs:oss:*:*:{bucket}"] and condition == {"StringLike": {"oss:Prefix": [f"{output_prefix}*"]}}
        elif action in READS:
            assert set(resources) <= {f"acs:oss:*:*:{bucket}/{input_prefix}*", output}, (action, resources)
        else:  # a write, a delete, anything else OSS does: the output prefix only
            assert resources == [output], (action, resources)
    granted = {action for action, _, _ in statements(policy)}
    assert {"oss:PutObject", "oss:DeleteObject", "oss:GetObject", "oss:ListObjects", "viapi-imageseg:SegmentHead"} <= granted


@pytest.mark.parametrize("name, value", [("HEADSEG_INPUT_PREFIX", "in*/"), ("HEADSEG_OUTPUT_PREFIX", "out?/")])
def test_a_wildcard_in_a_prefix_is_refused_not_granted(name, value):
    with pytest.raises(ConfigError, match="without '\\*' or '\\?'"):
        ram.function_policy(s_yaml_vars({name: value}))


def test_the_commands_create_the_roles_s_yaml_names_with_their_documents(monkeypatch, capsys, tmp_path):
    """`headseg ram` prints shell lines whose JSON arguments are the documents, filled in from s.yaml and the
    .env beside it."""
    (tmp_path / "s.yaml").write_text((ROOT / "s.yaml").read_text())
    (tmp_path / ".env").write_text("HEADSEG_BUCKET=portraits-of-mine\nHEADSEG_OUTPUT_PREFIX=cutouts/\n")
    monkeypatch.delenv("HEADSEG_BUCKET", raising=False)
    monkeypatch.delenv("HEADSEG_OUTPUT_PREFIX", raising=False)
    assert main(["ram", "--s-yaml", str(tmp_path / "s.yaml")]) == 0
    lines = [shlex.split(line) for line in capsys.readouterr().out.splitlines() if not line.startswith("#")]
    assert [line[:3] for line in lines] == [["aliyun", "ram", verb] for verb in ("CreateRole", "CreatePolicy", "AttachPolicyToRole", "CreateRole", "AttachPolicyToRole")]
    options = [dict(zip(line[3::2], line[4::2])) for line in lines]
    assert options[0]["--RoleName"] == "headseg-function" and json.loads(options[0]["--AssumeRolePolicyDocument"]) == ram.document("function-trust.json")
    policy = json.loads(options[1]["--PolicyDocument"])
    assert policy == ram.function_policy(syaml.render(tmp_path / "s.yaml", syaml.environment(tmp_path / "s.yaml", {}))["vars"])
    assert "acs:oss:*:*:portraits-of-mine/cutouts/*" in json.dumps(policy)
    assert options[2] == {"--PolicyType": "Custom", "--PolicyName": options[1]["--PolicyName"], "--RoleName": "headseg-function"}
    assert options[3]["--RoleName"] == "aliyunosseventnotificationrole"
    assert json.loads(options[3]["--AssumeRolePolicyDocument"]) == ram.document("trigger-trust.json")
    assert options[4] == {"--PolicyType": "System", "--PolicyName": "AliyunFCInvocationAccess", "--RoleName": "aliyunosseventnotificationrole"}


def test_without_a_bucket_there_is_no_policy_to_print(monkeypatch, capsys):
    monkeypatch.delenv("HEADSEG_BUCKET", raising=False)
    assert main(["ram", "--s-yaml", str(ROOT / "s.yaml"), "--policy"]) == 2
    assert "HEADSEG_BUCKET" in capsys.readouterr().err
