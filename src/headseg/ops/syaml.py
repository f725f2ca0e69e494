"""s.yaml as Serverless Devs renders it: `${env('X', 'default')}` and `${vars.x}` resolved (PyYAML, ops extra).

`${config('AccountID')}` and other functions are left as written: what they give is the account's, not the file's.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Mapping

from headseg.function.errors import ConfigError

_ENV = re.compile(r"\$\{env\('([A-Z_]+)',\s*'([^']*)'\)\}")
_VAR = re.compile(r"\$\{vars\.(\w+)\}")


def render(path: Path, environ: Mapping[str, str]) -> dict[str, Any]:
    """The whole document, rendered with `environ` standing for the environment."""
    try:
        import yaml
    except ImportError:
        raise ConfigError("reading s.yaml needs PyYAML: pip install 'headseg[ops]'") from None
    text = _ENV.sub(lambda m: environ.get(m.group(1), m.group(2)), path.read_text(encoding="utf-8"))
    variables = yaml.safe_load(text).get("vars") or {}
    document = yaml.safe_load(_VAR.sub(lambda m: str(variables[m.group(1)]), text))
    if not isinstance(document, dict):
        raise ConfigError(f"{path} is not an s.yaml: no mapping at its top")
    return document


def function_props(path: Path, environ: Mapping[str, str], resource: str = "headseg") -> dict[str, Any]:
    """The props of the fc3 resource `resource`."""
    props = (render(path, environ).get("resources") or {}).get(resource, {}).get("props")
    if not isinstance(props, dict):
        raise ConfigError(f"{path} has no resource {resource!r} with props")
    return props
