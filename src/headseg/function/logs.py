"""One JSON log line per event, with secrets and URL signatures scrubbed from every line (and, by `scrub`, from
every JSON record headseg writes) in whatever JSON or URL encoding they appear (`Scrubber`), and no character in
a line that a reader could take for a line break.

Library modules log with `logging.getLogger(__name__)` and pass structured fields as
`extra={"fields": {...}}`; `configure()` installs the JSON formatter once, at the entry point. Two things travel
with the work, in its context: fields bound with `bound(...)` (the request id, the record's key) join every line
logged in it, and secrets bound with `scrubbing(...)` (the invocation's credentials) are redacted from every line
logged and every text `scrub`bed in it. Both reach pool threads that run in a copy of the context (`Run.submit`,
`retry.within`) and the worker's forked children, and end with the block: no invocation sees another's.
"""

from __future__ import annotations

import bisect
import contextvars
import functools
import json
import logging
import re
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Iterable, Iterator, Mapping

#: Query parameters and header-like fields whose values are credentials or signatures (matched in lower case).
_SECRET_FIELDS = (
    r"Signature|x-oss-signature|OSSAccessKeyId|x-oss-credential|security-token|x-oss-security-token|"
    r"SecurityToken|x-acs-security-token|AccessKeySecret|access_key_secret|Authorization|policy|"
    r"StringToSign|CanonicalRequest|x-acs-signature|Credential"
).lower()
#: A secret field's name, its separator (`=`, `:`, a JSON key's `": "`; spaces may be a form's `+`) and its value
#: (group 1), up to a delimiter or an escape's backslash (a value behind a JSON escape is found whole one decoding on).
_SECRET_PARAM = re.compile(
    rf"(?:{_SECRET_FIELDS})\\?[\"']?[\s+]*[=:](?:\s|\+(?=\\?[\"']))*\\?[\"']?([^&\s\"'\\,;)}}]+)"
)
#: One escape a JSON string or a URL may hold: a run of \uXXXX (surrogate pairs), a short JSON escape, a run of %XX
#: (UTF-8). A form's `+` for a space is left as it is (it may be a literal `+`): patterns take either.
_ESCAPE = re.compile(r"\\(?:u[0-9a-fA-F]{4}(?:\\u[0-9a-fA-F]{4})*|[\"\\/bfnrt])|%[0-9a-fA-F]{2}(?:%[0-9a-fA-F]{2})*")
_SHORT_ESCAPES = {"\"": "\"", "\\": "\\", "/": "/", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}
_ASCII_LOWER = {c: c + 32 for c in range(ord("A"), ord("Z") + 1)}
MAX_LAYERS = 8  # layers of escapes undone in turn: JSON in URL in JSON..., far deeper than any service nests
MIN_SECRET = 4  # shorter values would redact ordinary words
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


class Scrubber:
    """Redacts known secrets, and the values of credential and signature fields, in whatever encoding they appear.

    Matching is done on the text as given and on each decoding of it: every pass undoes one layer of JSON string
    escapes (`\\uXXXX` in either case, `\\/`, `\\"`, ...) and of URL encoding (`%XX` in either case, UTF-8 runs), until
    nothing is left to undo (or MAX_LAYERS). A secret JSON-escaped, percent-encoded once or
    twice, any per-character mix of those, and any stack of JSON and URL layers over it is restored on some pass
    (each layer escapes the backslashes and percent signs of the ones below, so undoing both kinds at once never
    pairs an escape wrongly); the stretch of the original text it came from, whole escapes at its edges, is what
    gets redacted. Secrets and field names match ignoring ASCII case; a `+` and a space in a secret match either.
    Immutable, so safe to call from any thread: `with_secrets` makes another.
    """

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        #: The values redacted (those shorter than MIN_SECRET are ignored), each once.
        self.secrets: tuple[str, ...] = tuple(dict.fromkeys(s for s in secrets if s and len(s) >= MIN_SECRET))
        ordered = sorted(self.secrets, key=len, reverse=True)  # of two that overlap, the longer wins
        alternatives = ("".join("[ +]" if c in " +" else re.escape(c) for c in _lower(s)) for s in ordered)
        self._pattern = re.compile("|".join(alternatives)) if ordered else None

    def with_secrets(self, secrets: Iterable[str]) -> "Scrubber":
        """A scrubber that redacts these values as well as this one's."""
        return Scrubber((*self.secrets, *secrets))

    def __call__(self, text: str) -> str:
        pattern = self._pattern
        spans: list[tuple[int, int]] = []
        layers: list[_Layer] = []  # each one decoding further than the one before
        current = text
        while True:
            for start, end in _spans(current, pattern):
                for layer in reversed(layers):
                    start, end = layer.source(start, end)
                spans.append((start, end))
            decoded = _Layer.undo(current) if len(layers) < MAX_LAYERS else None
            if decoded is None:
                return _replaced(text, spans)
            layers.append(decoded)
            current = decoded.text


def _spans(text: str, secrets: re.Pattern[str] | None) -> Iterator[tuple[int, int]]:
    """Where, in `text` itself, the `secrets` and the secret fields' values are."""
    lowered = _lower(text)
    if secrets is not None:
        yield from (match.span() for match in secrets.finditer(lowered))
    at = 0
    while (match := _SECRET_PARAM.search(lowered, at)) is not None:
        start = match.start()
        if start and (lowered[start - 1].isalnum() or lowered[start - 1] == "_"):  # inside a longer word
            at = start + 1
            continue
        yield match.span(1)
        at = match.end()


@dataclass(frozen=True)
class _Layer:
    """A text with one layer of escapes undone, and where each undone escape came from in the text below it.
    Outside the escapes, characters map one to one."""

    text: str
    starts: list[int]  # where each undone escape begins in `text`, ascending
    pieces: list[tuple[int, int, int, int]]  # (start, end) in `text`, (start, end) of the escape in the text below

    @classmethod
    def undo(cls, below: str) -> _Layer | None:
        """`below` with its JSON escapes and percent-escapes undone, or None when it holds none."""
        parts: list[str] = []
        starts: list[int] = []
        pieces: list[tuple[int, int, int, int]] = []
        done = length = 0  # where the escapes undone so far end: in `below`, and in the text being built
        for match in _ESCAPE.finditer(below):
            at, end = match.span()
            decoded = _unescape(match.group())
            start = length + at - done
            length = start + len(decoded)
            parts += (below[done:at], decoded)
            starts.append(start)
            pieces.append((start, length, at, end))
            done = end
        if not pieces:
            return None
        parts.append(below[done:])
        return cls("".join(parts), starts, pieces)

    def source(self, start: int, end: int) -> tuple[int, int]:
        """The span of the text below that `text[start:end]` was decoded from (whole escapes at its edges)."""
        return self._below(start, False), self._below(end - 1, True)

    def _below(self, position: int, after: bool) -> int:
        index = bisect.bisect_right(self.starts, position) - 1
        if index < 0:
            return position + after
        _, end, below_start, below_end = self.pieces[index]
        if position < end:  # inside an escape: all of it
            return below_end if after else below_start
        return below_end + (position - end) + after


@functools.lru_cache(maxsize=1024)  # the same few escapes (%2F, \/, \") recur line after line
def _unescape(escape: str) -> str:
    if escape[0] == "%":
        return bytes.fromhex(escape.replace("%", "")).decode("utf-8", "surrogateescape")
    if escape[1] == "u":
        units = "".join(chr(int(escape[i + 2 : i + 6], 16)) for i in range(0, len(escape), 6))
        return units.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "surrogatepass")
    return _SHORT_ESCAPES[escape[1]]


def _lower(text: str) -> str:
    """`text` with ASCII letters in lower case, every character where it was."""
    return text.lower() if text.isascii() else text.translate(_ASCII_LOWER)


def _replaced(text: str, spans: list[tuple[int, int]]) -> str:
    """`text` with each of `spans` replaced by REDACTED (spans that overlap or touch become one)."""
    merged: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    out: list[str] = []
    done = 0
    for start, end in merged:
        out += (text[done:start], REDACTED)
        done = end
    out.append(text[done:])
    return "".join(out)


NO_SECRETS = Scrubber()  # outside any `scrubbing` block: secret fields by name only (immutable, as every Scrubber)
_scrubber: contextvars.ContextVar[Scrubber] = contextvars.ContextVar("headseg_scrubber", default=NO_SECRETS)


@contextmanager
def scrubbing(secrets: Iterable[str]) -> Iterator[None]:
    """Redact `secrets` by value, besides those of an enclosing block, from every line logged and every text
    `scrub`bed in this context (and in copies of it) until the block ends: one invocation's credentials."""
    token = _scrubber.set(_scrubber.get().with_secrets(secrets))
    try:
        yield
    finally:
        _scrubber.reset(token)


def hide(secrets: Iterable[str]) -> None:
    """Redact `secrets` as `scrubbing` does, from now until this context ends: a command's credentials
    (`headseg.cli.main` runs each command in a context of its own)."""
    _scrubber.set(_scrubber.get().with_secrets(secrets))


def scrubber() -> Scrubber:
    """The scrubber of this context: secret fields by name, and the secrets bound here by value."""
    return _scrubber.get()


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """`text` with signature/credential fields and any of `secrets` redacted, in any JSON or URL encoding."""
    return Scrubber(secrets)(text)


def scrub(text: str) -> str:
    """`text` as every log line is written: secret fields redacted by name, and the secrets bound in this
    context (`scrubbing`) by value, in whatever JSON or URL encoding they appear."""
    return _scrubber.get()(text)


class JsonFormatter(logging.Formatter):
    """Formats a record as one JSON object on one line; fields from `extra={"fields": ...}` become top-level keys.
    The line is scrubbed as `scrub` does, with the secrets bound in the context that logs it (handlers format in
    the logging thread), and every character a reader could take for a line break (C1 controls, U+2028/U+2029)
    or cannot encode (a lone surrogate) is written as its JSON escape."""

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
        text = json.dumps(line, ensure_ascii=False, default=str)  # escapes C0 controls, quotes and backslashes
        return scrub(_UNSAFE_IN_LINE.sub(lambda m: f"\\u{ord(m.group()):04x}", text))


_UNSAFE_IN_LINE = re.compile("[\x7f-\x9f\u2028\u2029\ud800-\udfff]")
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
