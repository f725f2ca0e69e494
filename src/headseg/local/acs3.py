"""ACS3-HMAC-SHA256, the signature of Alibaba Cloud's RPC APIs, verified server side (`headseg serve`).

The canonical request is built the way `alibabacloud_tea_openapi.utils.get_authorization` builds it:
method, path, the query sorted and quoted with `safe='~'`, every signed header as `name:value`, the signed
header names, and the SHA-256 of the body.
"""

from __future__ import annotations

import calendar
import hashlib
import hmac
import re
import time
from typing import Callable, Mapping, Sequence
from urllib.parse import quote

ALGORITHM = "ACS3-HMAC-SHA256"
REQUIRED_SIGNED_HEADERS = frozenset(
    {"host", "x-acs-date", "x-acs-content-sha256", "x-acs-signature-nonce", "x-acs-action", "x-acs-version"}
)
MAX_DATE_SKEW = 15 * 60
_AUTHORIZATION = re.compile(r"(\S+) Credential=([^,]+),SignedHeaders=([^,]+),Signature=([0-9a-f]+)")


class SignatureError(Exception):
    """The request's signature is missing, malformed or wrong; `status` and `code` are the gateway's."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def canonical_query(query: Sequence[tuple[str, str]]) -> str:
    return "&".join(f"{quote(k, safe='~')}={quote(v, safe='~')}" for k, v in sorted(dict(query).items()))


def string_to_sign(
    method: str, path: str, query: Sequence[tuple[str, str]], headers: Mapping[str, str], signed: Sequence[str],
    payload_hash: str,
) -> str:
    names = sorted(signed)
    canonical = "\n".join(
        [
            method,
            path or "/",
            canonical_query(query),
            "".join(f"{name}:{headers[name].strip()}\n" for name in names),
            ";".join(names),
            payload_hash,
        ]
    )
    return f"{ALGORITHM}\n{hashlib.sha256(canonical.encode('utf-8')).hexdigest()}"


def verify(
    method: str,
    path: str,
    query: Sequence[tuple[str, str]],
    headers: Mapping[str, str],
    body: bytes,
    secret_for: Callable[[str], str | None],
    now: Callable[[], float] = time.time,
) -> str:
    """Check the request's ACS3 signature (header names lower case); returns the caller's access key id."""
    match = _AUTHORIZATION.fullmatch(headers.get("authorization", ""))
    if match is None or match[1] != ALGORITHM:
        raise SignatureError(400, "IncompleteSignature", "The request signature does not conform to Aliyun standards.")
    access_key_id, signed, signature = match[2], match[3].split(";"), match[4]
    secret = secret_for(access_key_id)
    if secret is None:
        raise SignatureError(404, "InvalidAccessKeyId.NotFound", "Specified access key is not found.")
    unsigned = REQUIRED_SIGNED_HEADERS - set(signed)
    absent = [name for name in signed if name not in headers]
    if unsigned or absent:
        raise SignatureError(
            400, "IncompleteSignature", f"Headers not signed: {sorted(unsigned)}; signed but absent: {absent}."
        )
    payload_hash = headers["x-acs-content-sha256"]
    if payload_hash != hashlib.sha256(body).hexdigest():
        raise SignatureError(400, "SignatureDoesNotMatch", "x-acs-content-sha256 does not match the request body.")
    _check_date(headers["x-acs-date"], now())
    expected_string = string_to_sign(method, path, query, headers, signed, payload_hash)
    expected = hmac.new(secret.encode(), expected_string.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(signature, expected):
        raise SignatureError(
            400,
            "SignatureDoesNotMatch",
            f"Specified signature does not match our calculation. server string to sign is:{expected_string}",
        )
    return access_key_id


def _check_date(value: str, now: float) -> None:
    try:
        stamp = calendar.timegm(time.strptime(value, "%Y-%m-%dT%H:%M:%SZ"))
    except ValueError:
        raise SignatureError(400, "InvalidTimeStamp.Format", f"Specified time stamp {value!r} is malformed.") from None
    if abs(now - stamp) > MAX_DATE_SKEW:
        raise SignatureError(400, "InvalidTimeStamp.Expired", "Specified time stamp or date value is expired.")
