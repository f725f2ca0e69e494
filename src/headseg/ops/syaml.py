"""s.yaml as Serverless Devs renders it: `${env('X')}`, `${env('X', 'default')}` and `${vars.x}` resolved (PyYAML,
ops extra), with the `.env` file beside s.yaml read the way the CLI reads it.

Measured with the real CLI (@serverless-devs/s 3.1.10, `s preview`): `${env('X')}` with X unset *or empty* stops
every command with `env('X') not found`, and `${env('X', 'd')}` gives `d` then; a `.env` beside s.yaml supplies
variables the environment does not set. `render` refuses the same way, naming the variable. `${config('AccountID')}`
and other functions are left as written: what they give is the account's, not the file's.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Mapping

from headseg.function.errors import ConfigError

#: The variable s.yaml reads the bucket from; it has no default.
BUCKET_VARIABLE = "HEADSEG_BUCKET"
_ENV = re.compile(r"\$\{env\('([A-Za-z_][A-Za-z0-9_]*)'(?:,\s*'([^']*)')?\)\}")
_VAR = re.compile(r"\$\{vars\.(\w+)\}")
_DOTENV_LINE = re.compile(r"\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_.-]*)\s*=\s*(.*?)\s*")


def environment(path: Path, environ: Mapping[str, str]) -> dict[str, str]:
    """`environ` over the `.env` file beside s.yaml (`KEY=value` lines, `export` and quotes allowed, `#` comments):
    what Serverless Devs resolves `${env(...)}` against."""
    dotenv = path.parent / ".env"
    values: dict[str, str] = {}
    if dotenv.is_file():
        for line in dotenv.read_text(encoding="utf-8").splitlines():
            match = _DOTENV_LINE.fullmatch(line)
            if match is None:
                continue
            raw = match.group(2)
            quoted = raw[:1] in ("'", '"', "`") and raw.find(raw[0], 1) > 0
            values[match.group(1)] = raw[1:raw.find(raw[0], 1)] if quoted else raw.split("#")[0].strip()
    return {**values, **environ}


def render(path: Path, environ: Mapping[str, str]) -> dict[str, Any]:
    """The whole document, rendered with `environ` standing for the environment; a variable s.yaml requires (no
    default) that is unset or empty is refused, as the CLI refuses it. Like the CLI, this resolves each value of
    the parsed YAML, so what a variable holds is never read as YAML."""
    try:
        import yaml
    except ImportError:
        raise ConfigError("reading s.yaml needs PyYAML: pip install 'headseg[ops]'") from None

    def env(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        value = environ.get(name) or default
        if value is None:
            raise ConfigError(
                f"{path} needs {name}: set it in the environment or in {path.parent / '.env'} ({name}=...); it has no default"
            )
        return value

    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(document, dict):
        raise ConfigError(f"{path} is not an s.yaml: no mapping at its top")
    variables = _resolved(document.get("vars") or {}, env, {})
    variables = _resolved(variables, env, variables)  # a variable may name another (`${vars.region}`)
    resolved: dict[str, Any] = _resolved(document, env, variables)
    return resolved


def _resolved(node: Any, env: Any, variables: Mapping[str, Any]) -> Any:
    """`node` with `${env(...)}` and (when `variables` holds it) `${vars.x}` resolved in every string; a string that
    is one `${vars.x}` alone takes the variable's value, whatever its type."""
    if isinstance(node, dict):
        return {key: _resolved(value, env, variables) for key, value in node.items()}
    if isinstance(node, list):
        return [_resolved(item, env, variables) for item in node]
    if not isinstance(node, str):
        return node
    text = _ENV.sub(env, node)
    whole = _VAR.fullmatch(text)
    if whole is not None and whole.group(1) in variables:
        return variables[whole.group(1)]
    return _VAR.sub(lambda m: str(variables[m.group(1)]) if m.group(1) in variables else m.group(0), text)


def substitute(text: str, variables: Mapping[str, Any]) -> str:
    """`text` with every `${vars.x}` replaced by s.yaml's variable `x` (an unknown one is refused)."""

    def var(match: re.Match[str]) -> str:
        if match.group(1) not in variables:
            raise ConfigError(f"${{vars.{match.group(1)}}}: s.yaml has no such variable")
        return str(variables[match.group(1)])

    return _VAR.sub(var, text)


def function_props(path: Path, environ: Mapping[str, str], resource: str = "headseg") -> dict[str, Any]:
    """The props of the fc3 resource `resource`."""
    props = (render(path, environ).get("resources") or {}).get(resource, {}).get("props")
    if not isinstance(props, dict):
        raise ConfigError(f"{path} has no resource {resource!r} with props")
    return props
