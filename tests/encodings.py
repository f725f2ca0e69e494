"""Secrets in every encoding a reader undoes: hypothesis strategies that JSON- and URL-encode a value (any mix, up
to four layers), and `reappears`, which decodes text every such way and says whether a secret comes back."""

from __future__ import annotations

import json
import re
from urllib.parse import quote, quote_plus, unquote, unquote_plus

from hypothesis import strategies as st

# Credentials are ASCII without `"`, `\` or `%`; real STS tokens and secrets are base64: `+`, `/` and `=` must encode.
SECRET_CHARS = st.sampled_from("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=+/=-_.~ :&?#@!$'()*,;")
CONTEXT = st.text(st.sampled_from("abcdefgh XYZ0123456789:/?.,-()[]é"), max_size=30)
FIELDS = ["Signature", "x-oss-signature", "OSSAccessKeyId", "security-token", "x-oss-security-token", "SecurityToken",
          "x-acs-security-token", "AccessKeySecret", "access_key_secret", "Authorization", "Credential", "x-acs-signature"]
UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")


# -- encodings: what a JSON or URL layer may do to a string ---------------------------------------------------
def hex_case(text: str, upper: bool) -> str:
    """Every escape's hex digits in one case (`%2b` / `%2B`, `\\u002b` / `\\u002B`)."""
    return re.sub(r"(%)([0-9a-fA-F]{2})|(\\u)([0-9a-fA-F]{4})", lambda m: _cased(m, upper), text)


def _cased(match: re.Match[str], upper: bool) -> str:
    mark, digits = (match.group(1), match.group(2)) if match.group(1) else (match.group(3), match.group(4))
    return mark + (digits.upper() if upper else digits.lower())


def _json_char(char: str, upper: bool) -> str:
    escaped = json.dumps(char, ensure_ascii=True)[1:-1]  # astral characters: a surrogate pair
    if not escaped.startswith("\\"):
        escaped = f"\\u{ord(char):04x}"
    return hex_case(escaped, upper)


def _percent_char(char: str, upper: bool, twice: bool) -> str:
    once = "".join(f"%{byte:02x}" for byte in char.encode("utf-8"))
    return hex_case(once.replace("%", "%25") if twice else once, upper)


@st.composite
def layer(draw) -> object:
    """One encoding step as a layer takes it, as a function of the text: a JSON string's body (as json.dumps, or
    every character escaped), or percent-encoding (once, twice, form style), hex digits in either case."""
    kind = draw(st.sampled_from(["json", "json-all", "url", "url-twice", "form"]))
    upper = draw(st.booleans())
    if kind == "json":
        slash, ascii_only = draw(st.booleans()), draw(st.booleans())
        return lambda s: hex_case(json.dumps(s, ensure_ascii=ascii_only)[1:-1].replace("/", "\\/" if slash else "/"), upper)
    if kind == "json-all":  # an encoder that escapes every character (`\u0041`...)
        return lambda s: "".join(_json_char(c, upper) for c in s)
    if kind == "url":
        safe = draw(st.sampled_from(["", "/", "/+="]))
        return lambda s: hex_case(quote(s, safe=safe), upper)
    if kind == "url-twice":
        return lambda s: hex_case(quote(quote(s, safe=""), safe=""), upper)
    return lambda s: hex_case(quote_plus(s), upper)


@st.composite
def mixed(draw) -> object:
    """Each character of the secret in its own form: itself, `\\uXXXX`, `%XX` or `%25XX`, either hex case."""
    forms = draw(st.lists(st.sampled_from(["raw", "json", "pct", "pct2"]), min_size=1, max_size=4))
    cases = draw(st.lists(st.booleans(), min_size=1, max_size=3))
    chosen = {  # a bare backslash or quote next to JSON escapes would not be a JSON layer: those are always escaped
        "raw": lambda c, upper: _json_char(c, upper) if c in '\\"' else c,
        "json": lambda c, upper: _json_char(c, upper),
        "pct": lambda c, upper: _percent_char(c, upper, False),
        "pct2": lambda c, upper: _percent_char(c, upper, True),
    }
    return lambda s: "".join(chosen[forms[i % len(forms)]](c, cases[i % len(cases)]) for i, c in enumerate(s))


#: How a secret reaches a text: maybe each character in its own form, then up to two layers (at most eight decodings deep, as MAX_LAYERS).
ENCODINGS = st.tuples(st.one_of(st.none(), mixed()), st.lists(layer(), max_size=2)).map(
    lambda steps: ([steps[0]] if steps[0] else []) + steps[1]
)


def encoded(value: str, layers: list) -> str:
    for step in layers:
        value = step(value)
    return value


def _json_body(text: str) -> str | None:
    try:
        return json.loads(f'"{text}"', strict=False)
    except ValueError:
        return None


def decodings(text: str, depth: int = 8) -> set[str]:
    """`text` and every text a reader gets from it by JSON-unescaping and percent-decoding, in any order."""
    seen, frontier = {text}, {text}
    for _ in range(depth):
        frontier = {d for t in frontier for d in (unquote(t), unquote_plus(t), _json_body(t)) if d is not None} - seen
        seen |= frontier
    return seen


def reappears(secret: str, text: str) -> bool:
    return any(secret in decoded for decoded in decodings(text))
