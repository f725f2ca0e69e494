"""The OSS twin of the storage protocol, on oss2. Errors are translated into headseg's families here.

oss2's own exceptions and log lines can carry the string-to-sign (which includes the STS token): nothing here
formats them whole; only their status, code and request id travel on.
"""

from __future__ import annotations

import re
from typing import Iterator

import oss2
from oss2 import exceptions as oss_errors

from headseg.config import OssSignature
from headseg.credentials import Credentials
from headseg.errors import AccessDenied, HeadsegError, ObjectNotFound, PermanentError, RetriableError
from headseg.events import normalize_etag
from headseg.storage import ObjectInfo

_TRANSIENT_CODES = frozenset({"SlowDown", "RequestTimeout", "ServiceUnavailable", "InternalError", "QpsLimitExceeded"})
_AUTH_CODES = frozenset(
    {"AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "InvalidSecurityToken", "SecurityTokenExpired"}
)
_CONTENT_RANGE = re.compile(r"bytes \d+-\d+/(\d+)")


class OssStorage:
    """One OSS bucket through oss2; `public_endpoint` is used only to sign public URLs."""

    def __init__(
        self,
        bucket: str,
        *,
        endpoint: str,
        credentials: Credentials,
        region: str,
        signature: OssSignature = OssSignature.V4,
        public_endpoint: str | None = None,
        timeout: float = 10.0,
        session: oss2.Session | None = None,
    ) -> None:
        self.bucket = bucket
        auth = _auth(credentials, signature)
        options = dict(region=region, connect_timeout=timeout, session=session or oss2.Session())
        self._bucket = oss2.Bucket(auth, endpoint, bucket, **options)
        self._public = oss2.Bucket(auth, public_endpoint, bucket, **options) if public_endpoint else self._bucket

    def get(self, key: str, length: int | None = None) -> tuple[ObjectInfo, bytes]:
        headers = {"x-oss-range-behavior": "standard"}
        try:
            if length is None:
                result = self._bucket.get_object(key)
            else:
                result = self._bucket.get_object(key, byte_range=(0, length - 1), headers=headers)
            data = result.read()
        except oss_errors.ServerError as exc:
            if exc.status == 416:  # an empty object has no byte 0
                return self.head(key), b""
            raise _translate(exc, "GetObject", key) from None
        except oss_errors.OssError as exc:
            raise _translate(exc, "GetObject", key) from None
        match = _CONTENT_RANGE.match(result.content_range or "")
        size = int(match.group(1)) if match else len(data)
        return ObjectInfo(key, size, normalize_etag(result.etag or ""), result.content_type or ""), data

    def head(self, key: str) -> ObjectInfo:
        try:
            result = self._bucket.head_object(key)
        except oss_errors.OssError as exc:
            raise _translate(exc, "HeadObject", key) from None
        return ObjectInfo(key, result.content_length or 0, normalize_etag(result.etag or ""), result.content_type or "")

    def put(self, key: str, data: bytes, content_type: str) -> None:
        try:
            self._bucket.put_object(key, data, headers={"Content-Type": content_type})
        except oss_errors.OssError as exc:
            raise _translate(exc, "PutObject", key) from None

    def delete(self, key: str) -> None:
        try:
            self._bucket.delete_object(key)
        except oss_errors.OssError as exc:
            raise _translate(exc, "DeleteObject", key) from None

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        try:
            for item in oss2.ObjectIteratorV2(self._bucket, prefix=prefix, max_keys=1000):
                yield ObjectInfo(item.key, item.size, normalize_etag(item.etag or ""), "")
        except oss_errors.OssError as exc:
            raise _translate(exc, "ListObjects", prefix) from None

    def signed_url(self, key: str, expires: int, public: bool = False) -> str:
        bucket = self._public if public else self._bucket
        return bucket.sign_url("GET", key, expires, slash_safe=True)


def _auth(credentials: Credentials, signature: OssSignature) -> object:
    if signature is OssSignature.V4:
        provider = oss2.credentials.StaticCredentialsProvider(
            credentials.access_key_id, credentials.access_key_secret, credentials.security_token
        )
        return oss2.ProviderAuthV4(provider)
    if credentials.security_token:
        return oss2.StsAuth(credentials.access_key_id, credentials.access_key_secret, credentials.security_token)
    return oss2.Auth(credentials.access_key_id, credentials.access_key_secret)


def _translate(exc: oss_errors.OssError, operation: str, key: str) -> HeadsegError:
    """Map an oss2 error to headseg's families without carrying its details (they may hold the token)."""
    code = getattr(exc, "code", "") or ""
    where = f"OSS {operation} {key!r}"
    request = f" (request id {exc.request_id})" if getattr(exc, "request_id", "") else ""
    if isinstance(exc, oss_errors.NoSuchKey):
        return ObjectNotFound(f"{where}: no such object", code="NoSuchKey")
    if isinstance(exc, oss_errors.RequestError):
        return RetriableError(f"{where}: connection failed: {type(exc.exception).__name__}", code="ConnectionError")
    if isinstance(exc, oss_errors.InconsistentError):
        return RetriableError(f"{where}: CRC64 mismatch in transfer{request}", code="InconsistentError")
    status = exc.status
    if status >= 500 or status == 429 or code in _TRANSIENT_CODES:
        return RetriableError(f"{where}: HTTP {status} {code}{request}", code=code or f"HTTP{status}")
    if code in _AUTH_CODES:
        return AccessDenied(
            f"{where}: HTTP {status} {code}{request}: check the function role's RAM policy and credentials",
            code=code,
        )
    return PermanentError(f"{where}: HTTP {status} {code}{request}", code=code or f"HTTP{status}")
