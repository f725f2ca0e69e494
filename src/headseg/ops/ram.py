"""The two RAM roles s.yaml names, as `aliyun ram` commands ready to run: `headseg ram`.

The documents are files in `ops/assets/ram/`: a trust policy per role (FC assumes the function's role, OSS the
trigger's) and the function's policy, whose `${vars.bucket}`, `${vars.inputPrefix}` and `${vars.outputPrefix}`
are s.yaml's own variables, filled in from s.yaml as Serverless Devs renders it, so the grant always names the
bucket and prefixes the deploy uses. The function may read the input and output prefixes (and list the output
one), write and delete only under the output prefix, and call SegmentHead; the trigger's role gets FC's system
policy AliyunFCInvocationAccess (fc:InvokeFunction), the policy fc3 attaches to the role it makes itself. Role
names come from s.yaml's `role` and the OSS trigger's `invocationRole`. A value holding a RAM wildcard (`*`, `?`)
would widen the grant, so it is refused.
"""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Mapping

from headseg.function.errors import ConfigError
from headseg.ops import syaml

TRIGGER_SYSTEM_POLICY = "AliyunFCInvocationAccess"
#: The s.yaml variables the function's policy names.
POLICY_VARIABLES = ("bucket", "inputPrefix", "outputPrefix")


def document(name: str) -> Any:
    """A policy document of `ops/assets/ram/`, parsed (placeholders left as written)."""
    return json.loads((resources.files("headseg.ops") / "assets" / "ram" / name).read_text(encoding="utf-8"))


def function_policy(variables: Mapping[str, Any]) -> Any:
    """The function's policy with s.yaml's `variables` filled in; a wildcard in one of them is refused."""
    for name in POLICY_VARIABLES:
        value = str(variables.get(name, ""))
        if not value or "*" in value or "?" in value:
            raise ConfigError(f"s.yaml's {name} is {value!r}: a RAM policy needs it non-empty and without '*' or '?'")
    return _filled(document("function-policy.json"), variables)


def _filled(node: Any, variables: Mapping[str, Any]) -> Any:
    if isinstance(node, str):
        return syaml.substitute(node, variables)
    if isinstance(node, list):
        return [_filled(item, variables) for item in node]
    if isinstance(node, dict):
        return {key: _filled(value, variables) for key, value in node.items()}
    return node


@dataclass(frozen=True)
class Roles:
    """The role names s.yaml gives the function and its OSS trigger ("" when it names none)."""

    function: str
    trigger: str


def roles(props: Mapping[str, Any]) -> Roles:
    """The roles named in s.yaml's function props (`role`, the OSS trigger's `invocationRole`)."""

    def name(arn: Any) -> str:
        return str(arn or "").rpartition(":role/")[2]

    oss = [t for t in props.get("triggers") or [] if isinstance(t, dict) and t.get("triggerType") == "oss"]
    return Roles(name(props.get("role")), name(oss[0].get("invocationRole")) if oss else "")


def commands(path: Path, environ: Mapping[str, str]) -> list[str]:
    """The `aliyun ram` commands that create s.yaml's roles with their policies, one shell line each (comments
    say what each group does)."""
    rendered = syaml.render(path, environ)
    props = syaml.function_props(path, environ)
    names = roles(props)
    if not names.function:
        raise ConfigError(f"{path} names no function role (props.role): nothing to create")
    policy = function_policy(rendered.get("vars") or {})

    def compact(value: Any) -> str:
        return shlex.quote(json.dumps(value, separators=(",", ":")))

    lines = [
        f"# {names.function}: FC assumes it; it reads the input and output prefixes, writes only the output one, calls SegmentHead",
        f"aliyun ram CreateRole --RoleName {names.function} --AssumeRolePolicyDocument {compact(document('function-trust.json'))}",
        f"aliyun ram CreatePolicy --PolicyName {names.function}-policy --PolicyDocument {compact(policy)}",
        f"aliyun ram AttachPolicyToRole --PolicyType Custom --PolicyName {names.function}-policy --RoleName {names.function}",
    ]
    if names.trigger:
        lines += [
            f"# {names.trigger}: OSS assumes it to invoke the function",
            f"aliyun ram CreateRole --RoleName {names.trigger} --AssumeRolePolicyDocument {compact(document('trigger-trust.json'))}",
            f"aliyun ram AttachPolicyToRole --PolicyType System --PolicyName {TRIGGER_SYSTEM_POLICY} --RoleName {names.trigger}",
        ]
    return lines
