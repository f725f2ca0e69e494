"""The OSS twin of the storage protocol, on oss2. Errors are translated into headseg's families here.

Each call's socket timeout comes from the budget, and a body is read in blocks against the budget's deadline,
so a trickling server cannot hold a read past it. A read that covers the whole object is verified: oss2 computes
the CRC64 of what it streams but never compares it (only `get_object_to_file` does), so `get` compares it with
OSS's `x-oss-hash-crc64ecma`, and checks the length; a mismatch or a body that breaks off is retriable, never a
verdict on the object. Every call crosses one boundary, `_translated`: whatever the HTTP stack raises while a
reply's body streams (requests, urllib3, sockets) is translated there too, for a listing as for a GET: oss2
wraps only what is raised while sending. A 404 is `ObjectNotFound` whatever its form (a HEAD's 404
has no body, so oss2 raises `NotFound`, not `NoSuchKey`). oss2's own exceptions and log lines can carry the
string-to-sign (which includes the STS token): nothing here formats them whole; only their status, code and
request id travel on.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import oss2
import requests
import urllib3
from oss2 import exceptions as oss_errors

from headseg.function.config import OssSignature
from headseg.function.credentials import Credentials
from headseg.function.errors import AccessDenied, BudgetExhausted, HeadsegError, ObjectNotFound, PermanentError, RetriableError
from headseg.function.events import normalize_etag
from headseg.function.retry import CALL_TIMEOUT, Budget
from headseg.function.storage import ObjectInfo

_TRANSIENT_CODES = frozenset({"SlowDown", "RequestTimeout", "ServiceUnavailable", "InternalError", "QpsLimitExceeded"})
_AUTH_CODES = frozenset(
    {"AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "InvalidSecurityToken", "SecurityTokenExpired"}
)
_CONTENT_RANGE = re.compile(r"bytes \d+-\d+/(\d+)")
BLOCK = 1 << 16  # a body is read this much at a time, the deadline checked between blocks


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
        session: oss2.Session | None = None,
    ) -> None:
        self.bucket = bucket
        self._auth, self._endpoint, self._region = _auth(credentials, signature), endpoint, region
        self._session = session or oss2.Session()
        self._public = oss2.Bucket(self._auth, public_endpoint or endpoint, bucket, region=region, session=self._session)
        self._internal = oss2.Bucket(self._auth, endpoint, bucket, region=region, session=self._session)

    def _client(self, budget: Budget | None) -> oss2.Bucket:
        """A client whose socket timeout ends no later than the budget (clients share one connection pool)."""
        timeout = budget.timeout(CALL_TIMEOUT) if budget else CALL_TIMEOUT
        return oss2.Bucket(
            self._auth, self._endpoint, self.bucket, region=self._region, session=self._session, connect_timeout=timeout
        )

    def get(self, key: str, length: int | None = None, budget: Budget | None = None) -> tuple[ObjectInfo, bytes]:
        headers = {"x-oss-range-behavior": "standard"}
        with _translated("GetObject", key):
            try:
                if length is None:
                    result = self._client(budget).get_object(key)
                else:
                    result = self._client(budget).get_object(key, byte_range=(0, length - 1), headers=headers)
            except oss_errors.ServerError as exc:
                if exc.status != 416:
                    raise
                return self.head(key, budget), b""  # an empty object has no byte 0
            data = _read(result, budget, key)
        match = _CONTENT_RANGE.match(result.content_range or "")
        size = int(match.group(1)) if match else len(data)
        if length is None or len(data) >= size:
            _verify(result, len(data), size, key)
        return _info(key, result, size), data

    def stream(self, key: str) -> Iterator[bytes]:
        """The whole object block by block, never held whole (an inventory's data file can be GBs). After the
        last block the bytes are verified as a whole `get`'s are: a length or CRC64 mismatch, or a body that
        breaks off, raises `RetriableError`."""
        with _translated("GetObject", key):
            result = self._client(None).get_object(key)
        received = 0
        try:
            while block := _next_block(result, key):
                received += len(block)
                yield block
        finally:
            result.resp.response.close()
        _verify(result, received, received if result.content_length is None else result.content_length, key)

    def head(self, key: str, budget: Budget | None = None) -> ObjectInfo:
        with _translated("HeadObject", key):
            result = self._client(budget).head_object(key)
        return _info(key, result, result.content_length or 0)

    def put(self, key: str, data: bytes, content_type: str, budget: Budget | None = None) -> None:
        with _translated("PutObject", key):
            self._client(budget).put_object(key, data, headers={"Content-Type": content_type})

    def delete(self, key: str, budget: Budget | None = None) -> None:
        with _translated("DeleteObject", key):
            self._client(budget).delete_object(key)

    def list(self, prefix: str, delimiter: str = "", start_after: str = "") -> Iterator[ObjectInfo]:
        with _translated("ListObjects", prefix):
            pages = oss2.ObjectIteratorV2(
                self._internal, prefix=prefix, delimiter=delimiter, start_after=start_after, max_keys=1000
            )
            for item in pages:
                if not item.is_prefix():
                    yield ObjectInfo(item.key, item.size, normalize_etag(item.etag or ""), "", item.last_modified or 0)

    # -- the bucket's own settings (headseg doctor) --------------------------------------------------------------
    def location(self) -> str:
        """The bucket's region as OSS names it (`oss-cn-shanghai`)."""
        with _translated("GetBucketLocation", self.bucket):
            return str(self._internal.get_bucket_location().location)

    def expiry_rules(self) -> Sequence[tuple[str, str, int | None]]:
        """The enabled lifecycle rules that expire objects, as (id, prefix, days; None for a date rule)."""
        with _translated("GetBucketLifecycle", self.bucket):
            try:
                rules = self._internal.get_bucket_lifecycle().rules
            except oss_errors.NoSuchLifecycle:
                return []
        return [
            (rule.id or "", rule.prefix or "", rule.expiration.days)
            for rule in rules if rule.status == oss2.models.LifecycleRule.ENABLED and rule.expiration is not None
        ]

    def add_expiry_rule(self, rule_id: str, prefix: str, days: int) -> None:
        """Add a rule expiring `prefix` after `days`, keeping every rule the bucket has."""
        with _translated("PutBucketLifecycle", self.bucket):
            try:
                rules = self._internal.get_bucket_lifecycle().rules
            except oss_errors.NoSuchLifecycle:
                rules = []
            rule = oss2.models.LifecycleRule(
                rule_id, prefix, status=oss2.models.LifecycleRule.ENABLED, expiration=oss2.models.LifecycleExpiration(days=days)
            )
            self._internal.put_bucket_lifecycle(oss2.models.BucketLifecycle([*rules, rule]))

    def signed_url(self, key: str, expires: int, public: bool = False, version_id: str = "") -> str:
        bucket = self._public if public else self._internal
        params = {"versionId": version_id} if version_id else None
        return bucket.sign_url("GET", key, expires, slash_safe=True, params=params)


#: What the HTTP stack may raise while a body streams, after oss2 has handed the response over.
_BODY_ERRORS = (requests.RequestException, urllib3.exceptions.HTTPError, OSError)


@contextmanager
def _translated(operation: str, subject: str) -> Iterator[None]:
    """The one boundary every oss2 call crosses: oss2's errors become headseg's families, and whatever the HTTP
    stack raises while oss2 reads a reply's body (a listing's XML, a lifecycle document) is retriable."""
    try:
        yield
    except oss_errors.OssError as exc:
        raise _translate(exc, operation, subject) from None
    except _BODY_ERRORS as exc:
        raise RetriableError(f"OSS {operation} {subject!r}: the reply broke off ({type(exc).__name__})", code="BodyBrokeOff") from None


def _read(result: oss2.models.GetObjectResult, budget: Budget | None, key: str) -> bytes:
    """The body, block by block; past the budget's deadline the connection is closed and the read given up."""
    blocks = []
    try:
        while block := _next_block(result, key):
            blocks.append(block)
            if budget is not None and budget.remaining() <= 0:
                raise BudgetExhausted(f"OSS GetObject {key!r}: the body did not arrive within the invocation's time")
    except HeadsegError:
        result.resp.response.close()
        raise
    return b"".join(blocks)


def _next_block(result: oss2.models.GetObjectResult, key: str) -> bytes:
    """The body's next block (b"" at its end). A body that breaks off is retriable, whatever part of the HTTP
    stack noticed."""
    try:
        return result.read(BLOCK)
    except _BODY_ERRORS as exc:
        raise RetriableError(f"OSS GetObject {key!r}: the body broke off ({type(exc).__name__})", code="BodyBrokeOff") from None


def _verify(result: oss2.models.GetObjectResult, received: int, size: int, key: str) -> None:
    """Check bytes that cover the whole object against its size and OSS's CRC64 (when it sent one)."""
    if received != size:
        raise RetriableError(
            f"OSS GetObject {key!r}: {received} bytes arrived of {size}", code="InconsistentError"
        )
    server, client = result.server_crc, result.client_crc
    if server is not None and client is not None and server != client:
        raise RetriableError(
            f"OSS GetObject {key!r}: CRC64 mismatch (the bytes were corrupted in transfer; read again)",
            code="InconsistentError",
        )


def _info(key: str, result: oss2.models.HeadObjectResult, size: int) -> ObjectInfo:
    return ObjectInfo(
        key,
        size,
        normalize_etag(result.etag or ""),
        result.content_type or "",
        result.last_modified or 0,
        result.versionid or "",
    )


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
    if isinstance(exc, oss_errors.NoSuchKey) or (exc.status == 404 and code in ("", "NoSuchKey")):
        return ObjectNotFound(f"{where}: no such object", code="NoSuchKey")
    if isinstance(exc, oss_errors.RequestError):
        return RetriableError(f"{where}: connection failed: {type(exc.exception).__name__}", code="ConnectionError")
    if isinstance(exc, oss_errors.InconsistentError):  # an upload's CRC64 did not match what OSS received
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
