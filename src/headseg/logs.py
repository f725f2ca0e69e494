"""One JSON log line per event, with secrets and URL signatures scrubbed from every line (and, by `scrub`, from
every JSON record headseg writes).

Library modules log with `logging.getLogger(__name__)` and pass structured fields as
`extra={"fields": {...}}`; `configure()` installs the JSON formatter once, at the entry point. Fields bound
with `bound(...)` (the request id, the record's key) join every line logged in that context, including lines
from pool threads that run in a copy of it (`Run.submit`).
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import sys
import time
from contextlib import contextmanager
from types import MappingProxyType
from typing import Any, Iterable, Iterator, Mapping
from urllib.parse import quote

#: Query parameters and header-like fields whose values are credentials or signatures.
_SECRET_FIELDS = (
    r"Signature|x-oss-signature|OSSAccessKeyId|x-oss-credential|security-token|x-oss-security-token|"
    r"SecurityToken|x-acs-security-token|AccessKeySecret|access_key_secret|Authorization|policy|"
    r"StringToSign|CanonicalRequest|x-acs-signature|Credential"
)
_SECRET_PARAM = re.compile(rf"(?i)\b({_SECRET_FIELDS})([=:]\s*)(\"?)[^&\s\"',;)}}]+")
REDACTED = "***"
_bound: contextvars.ContextVar[Mapping[str, Any]] = contextvars.ContextVar("headseg_log_fields", default=MappingProxyType({}))


@contextmanager
def bound(**fields: Any) -> Iterator[None]:
    """Add `fields` to every line logged in this context (and in copies of it) until the block ends."""
    token = _bound.set({**_bound.get(), **fields})
    try:
        yield
    finally:
        _bound.reset(token)


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """`text` with signature/credential parameters and any of `secrets` replaced by ***."""
    text = _SECRET_PARAM.sub(lambda m: f"{m.group(1)}{m.group(2)}{m.group(3)}{REDACTED}", text)
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, REDACTED)
    return text


def scrub(text: str) -> str:
    """`text` as every log line is written: signatures redacted by pattern, and the credentials known to this
    instance by value (raw, and URL-encoded once and twice, as they appear in signed URLs)."""
    return redact(text, _formatter.secrets)


def _forms(secret: str) -> list[str]:
    once = quote(secret, safe="")
    return list(dict.fromkeys([secret, once, quote(once, safe=""), quote(secret, safe="/")]))


class JsonFormatter(logging.Formatter):
    """Formats a record as one JSON object; fields from `extra={"fields": ...}` become top-level keys."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self.secrets: list[str] = list(secrets)

    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        line.update(_bound.get())
        line.update(getattr(record, "fields", {}) or {})
        if record.exc_info and record.exc_info[0] is not None:
            line["error_type"] = record.exc_info[0].__name__
            line["traceback"] = self.formatException(record.exc_info)
        return redact(json.dumps(line, ensure_ascii=False, default=str), self.secrets)


_formatter = JsonFormatter()
_formatter.converter = time.gmtime


def configure(level: str = "INFO") -> JsonFormatter:
    """Format every root handler's lines as JSON (adding a stderr handler if there is none) and quiet the
    SDKs' chatty loggers. On FC the runtime's own handler is reused, so each line is written once.

    oss2 logs every server error at INFO with its string-to-sign, which contains the STS token.
    """
    root = logging.getLogger()
    if not root.handlers:
        root.addHandler(logging.StreamHandler(sys.stderr))
    for handler in root.handlers:
        handler.setFormatter(_formatter)
    root.setLevel(level)
    for noisy in ("oss2", "urllib3", "alibabacloud", "darabonba", "Tea"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    return _formatter


def add_secrets(secrets: Iterable[str]) -> None:
    """Scrub these values, in each form a URL gives them, from every line and written record from now on."""
    for secret in secrets:
        for form in _forms(secret) if secret else ():
            if form not in _formatter.secrets:
                _formatter.secrets.append(form)
