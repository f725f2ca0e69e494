"""s.yaml and the code agree: handler, code directory, environment names, trigger prefix and events."""

from __future__ import annotations

import dataclasses
import importlib
import json
import re
from pathlib import Path

import pytest

from headseg.ops import syaml
from headseg.function.config import Config
from headseg.function.errors import ConfigError
from headseg.function.events import OBJECT_CREATED_KINDS

ROOT = Path(__file__).resolve().parents[2]


def rendered(environ: dict[str, str] | None = None) -> dict:
    """s.yaml with `${env('X', 'default')}` and `${vars.x}` resolved the way Serverless Devs does, for a bucket."""
    return syaml.render(ROOT / "s.yaml", {syaml.BUCKET_VARIABLE: "my-bucket", **(environ or {})})


REQUIRED = re.compile(r"\$\{env\('(\w+)'\)\}")  # a variable without a default


def test_the_bucket_is_the_one_variable_without_a_default():
    assert set(REQUIRED.findall((ROOT / "s.yaml").read_text())) == {syaml.BUCKET_VARIABLE}


@pytest.mark.parametrize("environ", [{}, {"HEADSEG_BUCKET": ""}, {"HEADSEG_INPUT_PREFIX": "uploads/"}])
def test_an_unset_or_empty_bucket_is_refused_in_one_line_naming_it(environ):
    """As the real CLI does (`env('HEADSEG_BUCKET') not found` for unset and empty alike): no default bucket."""
    with pytest.raises(ConfigError) as refused:
        syaml.render(ROOT / "s.yaml", environ)
    message = refused.value.message
    assert "HEADSEG_BUCKET" in message and "no default" in message and "\n" not in message


def test_the_bucket_flows_into_both_triggers():
    variables = rendered({"HEADSEG_BUCKET": "portraits-of-mine"})["vars"]
    assert variables["ossTrigger"]["sourceArn"].endswith(":portraits-of-mine")
    assert ":portraits-of-mine/incoming/" in variables["eventbridgeTrigger"]["triggerConfig"]["eventRuleFilterPattern"]


def test_the_dotenv_beside_s_yaml_supplies_what_the_environment_does_not(tmp_path):
    """Serverless Devs reads `.env` beside s.yaml (measured with `s preview`), so a bucket set there survives a
    new shell; the environment wins over it."""
    (tmp_path / "s.yaml").write_text((ROOT / "s.yaml").read_text())
    (tmp_path / ".env").write_text(
        "# the deploy's settings\nHEADSEG_BUCKET=from-dotenv\nexport HEADSEG_INPUT_PREFIX='uploads/'  # quoted\n"
        "HEADSEG_OUTPUT_PREFIX=cutouts/ # trailing comment\n"
    )
    props = syaml.function_props(tmp_path / "s.yaml", syaml.environment(tmp_path / "s.yaml", {}))
    assert props["triggers"][0]["sourceArn"].endswith(":from-dotenv")
    assert props["environmentVariables"]["INPUT_PREFIX"] == "uploads/" and props["environmentVariables"]["OUTPUT_PREFIX"] == "cutouts/"
    environment = syaml.environment(tmp_path / "s.yaml", {"HEADSEG_BUCKET": "from-shell"})
    assert environment["HEADSEG_BUCKET"] == "from-shell"


@pytest.fixture(scope="module")
def props() -> dict:
    return rendered()["resources"]["headseg"]["props"]


def test_handler_and_initializer_exist_in_the_code_directory(props):
    assert props["code"] == "./src" and props["runtime"] == "python3.10"
    for entry in (props["handler"], props["instanceLifecycleConfig"]["initializer"]["handler"]):
        module, function = entry.split(".")
        assert (ROOT / "src" / f"{module}.py").is_file()
        assert callable(getattr(importlib.import_module(module), function))


def test_every_environment_variable_is_read_by_the_config(props):
    names = {f.name.upper() for f in dataclasses.fields(Config)}
    env = {k: str(v) for k, v in props["environmentVariables"].items()}
    assert set(env) - {"PYTHONPATH"} <= names
    config = Config.from_env(env)  # and together they form a valid configuration
    assert config.time_margin < props["timeout"]


CREATION_EVENTS = {"PutObject", "PostObject", "CompleteMultipartUpload", "CopyObject"}  # not Append, not Symlink


def test_the_trigger_watches_the_input_prefix_and_every_creation_event(props):
    [trigger] = props["triggers"]
    assert trigger["triggerType"] == "oss"
    assert trigger["triggerConfig"]["filter"]["key"]["prefix"] == props["environmentVariables"]["INPUT_PREFIX"]
    events = {e.removeprefix("oss:ObjectCreated:") for e in trigger["triggerConfig"]["events"]}
    assert events == CREATION_EVENTS and events <= OBJECT_CREATED_KINDS
    assert trigger["invocationRole"].endswith(":role/aliyunosseventnotificationrole")
    assert trigger["sourceArn"].startswith("acs:oss:cn-shanghai:")


def test_the_eventbridge_alternative_filters_on_source_types_and_the_input_prefix():
    config = rendered({"HEADSEG_BUCKET": "photos", "HEADSEG_INPUT_PREFIX": "uploads/"})
    trigger = config["vars"]["eventbridgeTrigger"]
    assert trigger["triggerType"] == "eventbridge" and trigger["triggerConfig"]["triggerEnable"] is True
    pattern = json.loads(trigger["triggerConfig"]["eventRuleFilterPattern"])
    assert pattern["source"] == ["acs.oss"]
    assert {t.removeprefix("oss:ObjectCreated:") for t in pattern["type"]} == CREATION_EVENTS
    [subject] = pattern["subject"]
    assert re.fullmatch(r"acs:oss:cn-shanghai:\$\{config\('AccountID'\)\}:photos/uploads/", subject["prefix"])
    assert trigger["triggerConfig"]["eventSinkConfig"]["deliveryOption"]["eventSchema"] == "CloudEvents"
    # its CloudEvents are what headseg parses (events/eventbridge-*.json)
    assert config["vars"]["ossTrigger"]["triggerConfig"]["events"] == pattern["type"]


def test_no_prop_fc3_standard_runtimes_do_not_support(props):
    assert "instanceConcurrency" not in props  # FC 3.0 standard runtimes run one request per instance


def test_explicit_resources_and_async_retries(props):
    assert props["memorySize"] >= 512 and props["timeout"] > 3  # fc3 defaults to a 3 s timeout
    assert props["logConfig"] == "auto"
    assert 0 <= props["asyncInvokeConfig"]["maxAsyncRetryAttempts"] <= 8
    assert props["environmentVariables"]["PYTHONPATH"] == "/code/python"


def test_the_pre_deploy_action_builds_the_dependencies_into_the_pythonpath(props):
    [action] = rendered()["resources"]["headseg"]["actions"]["pre-deploy"]
    assert action["path"] == "./src"
    assert action["run"] == "python3 -m headseg.ops.package --target python --code . --runtime python3.10"


@pytest.mark.parametrize("runtime", ["python3.10", "python3.12"])
def test_the_runtime_variable_picks_the_runtime_and_the_package_it_builds(runtime):
    from headseg.ops import package

    resource = rendered({"HEADSEG_RUNTIME": runtime})["resources"]["headseg"]
    assert resource["props"]["runtime"] == runtime
    [action] = resource["actions"]["pre-deploy"]
    assert action["run"].endswith(f"--runtime {runtime}") and runtime.removeprefix("python") in package.RUNTIMES


def test_prefixes_from_the_environment_flow_into_trigger_and_function():
    props = rendered({"HEADSEG_INPUT_PREFIX": "uploads/", "HEADSEG_OUTPUT_PREFIX": "cutouts/"})["resources"]["headseg"]["props"]
    assert props["triggers"][0]["triggerConfig"]["filter"]["key"]["prefix"] == "uploads/"
    assert props["environmentVariables"]["OUTPUT_PREFIX"] == "cutouts/"


def test_a_looping_prefix_pair_in_s_yaml_would_be_refused():
    props = rendered({"HEADSEG_INPUT_PREFIX": "photos/", "HEADSEG_OUTPUT_PREFIX": "photos/heads/"})["resources"]["headseg"]["props"]
    with pytest.raises(Exception, match="infinite loop"):
        Config.from_env({k: str(v) for k, v in props["environmentVariables"].items()})


def test_the_code_package_leaves_metadata_and_tests_out_and_keeps_the_bytecode():
    ignored = [line for line in (ROOT / "src" / ".fcignore").read_text().splitlines() if line and not line.startswith("#")]
    assert {"*.egg-info/", "tests/", ".env"} <= set(ignored)  # Serverless Devs reads src/.env too: it must not ship
    # the pre-deploy step compiles for the runtime (FC's /code is read-only): nothing may drop what it wrote
    assert not [pattern for pattern in ignored if "pyc" in pattern]


# What fc3 accepts, from the fc3 component's JSON schema (devsapp/fc3 src/schema.json, read at commit 0c2a220).
# fc3 only logs violations at debug level and drops unknown props, so a misspelled prop would vanish silently.
FC3_FUNCTION_PROPS = {
    "asyncInvokeConfig", "code", "cpu", "customContainerConfig", "customDNS", "customRuntimeConfig", "description",
    "diskSize", "endpoint", "environmentVariables", "functionName", "gpuConfig", "handler", "instanceConcurrency",
    "instanceLifecycleConfig", "internetAccess", "layers", "logConfig", "memorySize", "nasConfig", "ossMountConfig",
    "region", "role", "runtime", "timeout", "tracingConfig", "triggers", "vpcBinding", "vpcConfig",
}  # fmt: skip
FC3_TRIGGER_KEYS = {"description", "invocationRole", "qualifier", "sourceArn", "triggerConfig", "triggerName", "triggerType"}
FC3_OSS_EVENTS = {
    "oss:ObjectCreated:" + kind
    for kind in ("*", "AppendObject", "CompleteMultipartUpload", "CopyObject", "InitiateMultipartUpload", "PostObject",
                 "PutObject", "PutSymlink", "UploadPart", "UploadPartCopy")
}  # fmt: skip
FC3_EVENTBRIDGE_REQUIRED = {
    "asyncInvocationType", "eventRuleFilterPattern", "eventSinkConfig", "eventSourceConfig", "runOptions", "triggerEnable"
}  # fmt: skip


def test_every_prop_is_one_fc3_knows_with_a_value_it_accepts(props):
    assert set(props) <= FC3_FUNCTION_PROPS, set(props) - FC3_FUNCTION_PROPS
    assert {"functionName", "region", "runtime", "code", "handler"} <= set(props)
    assert props["memorySize"] % 64 == 0 and 128 <= props["memorySize"] <= 32768
    assert 1 <= props["timeout"] <= 86400
    assert set(props["instanceLifecycleConfig"]) <= {"initializer", "preStop"}
    assert set(props["instanceLifecycleConfig"]["initializer"]) <= {"handler", "timeout"}
    assert set(props["asyncInvokeConfig"]) <= {"destinationConfig", "maxAsyncEventAgeInSeconds", "maxAsyncRetryAttempts"}


def test_both_triggers_are_shaped_as_fc3_expects():
    variables = rendered()["vars"]
    for trigger in (variables["ossTrigger"], variables["eventbridgeTrigger"]):
        assert set(trigger) <= FC3_TRIGGER_KEYS and {"triggerConfig", "triggerName", "triggerType"} <= set(trigger)
    oss = variables["ossTrigger"]["triggerConfig"]
    assert set(oss) == {"events", "filter"} and set(oss["events"]) <= FC3_OSS_EVENTS
    assert set(oss["filter"]["key"]) == {"prefix", "suffix"}
    eventbridge = variables["eventbridgeTrigger"]["triggerConfig"]
    assert FC3_EVENTBRIDGE_REQUIRED <= set(eventbridge)
    assert {"eventSourceParameters", "eventSourceType"} <= set(eventbridge["eventSourceConfig"])
    assert "deliveryOption" in eventbridge["eventSinkConfig"]
