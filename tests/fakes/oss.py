"""A fake Alibaba Cloud OSS endpoint: the real `oss2` SDK talks to it over HTTP on 127.0.0.1.

Scope
    Path-style addressing only (`http://127.0.0.1:PORT/bucket/key`, what oss2 uses for an IP endpoint) and the
    operations headseg needs: PutObject, GetObject (ranges, `x-oss-range-behavior: standard`), HeadObject,
    DeleteObject, DeleteMultipleObjects, ListObjects (v1) and ListObjectsV2. Every request must be signed — V1 or
    V4, in the Authorization header or as a presigned URL, with or without an STS token — and each signature is
    recomputed from what arrived on the wire, the way oss2/auth.py builds it. Errors are OSS `<Error>` XML (and
    `x-oss-err` on HEAD) with an `x-oss-request-id`, so oss2 raises the same exception classes as against OSS.

Layout (moto's split)
    `ServiceError`             an OSS error answer: HTTP status, OSS code, message, extra `<Error>` fields.
    `StoredObject`, `OssState` buckets and objects; no HTTP.
    `FakeOss`                  HTTP glue: routing, signature checks, XML, test helpers, fault shortcuts.

Anything the fake does not implement (another sub-resource, a conditional or unknown `x-oss-*` header, a V2
signature, a chunked body) is answered 501 NotImplemented *and* recorded with `fail()`, so the test fails rather
than trusting an answer the real service would not give.
"""

from __future__ import annotations

import base64
import bisect
import hashlib
import hmac
import itertools
import re
import threading
import time
import uuid
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email.utils import formatdate, parsedate_to_datetime
from functools import lru_cache
from typing import Any
from urllib.parse import quote, unquote
from xml.sax.saxutils import escape

from oss2.utils import Crc64

from ._server import FakeServer, Fault, Request, Response
from .inventory import Inventory, Listed, build_inventory

DEFAULT_CONTENT_TYPE = "application/octet-stream"
CLOCK_SKEW = 15 * 60  # seconds OSS tolerates between a signed Date / x-oss-date and its clock
MAX_KEYS = 1000
OWNER_ID = "1000000000000000"
V4_ALGORITHM = "OSS4-HMAC-SHA256"
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
_CRC64 = Crc64().crc64  # oss2's own CRC-64/ECMA (a crcmod.Crc); `.new(data)` reuses its table

# Query parameters that carry a presigned URL's signature (V1 and V4); they never select an operation.
_PRESIGN_PARAMS = frozenset({
    "OSSAccessKeyId", "Expires", "Signature", "security-token",
    "x-oss-signature-version", "x-oss-credential", "x-oss-date", "x-oss-expires", "x-oss-signature",
    "x-oss-security-token", "x-oss-additional-headers",
})  # fmt: skip
# The entries of oss2's V1 sub-resource list (ProviderAuth._subresource_key_set) that the routes below accept;
# any other parameter is either not a sub-resource or makes the request unsupported.
_V1_SUBRESOURCES = frozenset({"delete", "objectMeta", "continuation-token", "security-token", "location", "lifecycle"})
_LIST_V1_PARAMS = frozenset({"prefix", "marker", "max-keys", "delimiter", "encoding-type"})
_LIST_V2_PARAMS = _LIST_V1_PARAMS - {"marker"} | {"list-type", "continuation-token", "start-after", "fetch-owner"}
_KNOWN_OSS_HEADERS = frozenset({"x-oss-date", "x-oss-content-sha256", "x-oss-security-token", "x-oss-range-behavior"})
_UNSUPPORTED_HEADERS = frozenset(
    {"if-match", "if-none-match", "if-modified-since", "if-unmodified-since", "transfer-encoding"}
)


class ServiceError(Exception):
    """An OSS error answer: HTTP status, OSS error code, message and extra `<Error>` children."""

    def __init__(self, status: int, code: str, message: str, **details: str) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status, self.code, self.message, self.details = status, code, message, details


class _Unsupported(Exception):
    """A request the fake does not implement: answered 501 and recorded as a test failure."""


def _invalid_argument(message: str, name: str, value: str) -> ServiceError:
    return ServiceError(400, "InvalidArgument", message, ArgumentName=name, ArgumentValue=value)


# -- state ------------------------------------------------------------------------------------------------------
@dataclass
class StoredObject:
    key: str
    data: bytes
    content_type: str
    last_modified: int  # epoch seconds
    metadata: dict[str, str] = field(default_factory=dict)  # full header names: x-oss-meta-*
    etag: str = field(init=False)  # uppercase hex MD5 without quotes (oss2 strips them too)
    crc64: int = field(init=False)  # CRC-64/ECMA as oss2.utils.Crc64 computes it

    def __post_init__(self) -> None:
        self.etag = hashlib.md5(self.data).hexdigest().upper()
        self.crc64 = _CRC64.new(self.data).crcValue

    @property
    def content_md5(self) -> str:
        return base64.b64encode(hashlib.md5(self.data).digest()).decode()


@dataclass
class BucketSettings:
    lifecycle: bytes | None = None  # the LifecycleConfiguration XML last put, or None


class OssState:
    """Buckets of objects, safe to share between the server's handler threads. Each bucket keeps its keys in a
    sorted list as well (kept in order on put and delete), so a listing page is found by bisection and costs
    O(page), not O(bucket)."""

    def __init__(self) -> None:
        self._buckets: dict[str, dict[str, StoredObject]] = {}
        self._sorted: dict[str, list[str]] = {}  # bucket -> its keys in code-point (= UTF-8 byte) order
        self._settings: dict[str, BucketSettings] = {}
        self._lock = threading.Lock()

    def create_bucket(self, name: str) -> None:
        with self._lock:
            self._buckets.setdefault(name, {})
            self._sorted.setdefault(name, [])
            self._settings.setdefault(name, BucketSettings())

    def fetch_bucket(self, name: str) -> BucketSettings:
        with self._lock:
            self._bucket(name)
            return self._settings[name]

    def lookup(self, bucket: str, key: str) -> StoredObject | None:
        with self._lock:
            return self._buckets.get(bucket, {}).get(key)

    def fetch(self, bucket: str, key: str) -> StoredObject:
        with self._lock:
            obj = self._bucket(bucket).get(key)
        if obj is None:
            raise ServiceError(404, "NoSuchKey", "The specified key does not exist.", Key=key)
        return obj

    def put(self, bucket: str, obj: StoredObject) -> None:
        with self._lock:
            objects = self._bucket(bucket)
            if obj.key not in objects:
                bisect.insort(self._sorted[bucket], obj.key)
            objects[obj.key] = obj

    def delete(self, bucket: str, key: str) -> None:
        with self._lock:
            if self._bucket(bucket).pop(key, None) is not None:
                index = self._sorted[bucket]
                del index[bisect.bisect_left(index, key)]

    def keys(self, bucket: str, prefix: str = "") -> list[str]:
        with self._lock:
            index = self._sorted.get(bucket, [])
            tail = index[bisect.bisect_left(index, prefix) :]
        return list(itertools.takewhile(lambda key: key.startswith(prefix), tail))

    def list(
        self, bucket: str, prefix: str, delimiter: str, after: str, max_keys: int
    ) -> tuple[list[tuple[str, StoredObject | None]], bool]:
        """One page of (name, object) in key order, object None for a common prefix; and whether more follow."""
        with self._lock:
            entries = _list_entries(self._sorted[bucket], self._bucket(bucket), prefix, delimiter, after)
            page = list(itertools.islice(entries, max_keys + 1))
        return page[:max_keys], len(page) > max_keys

    def _bucket(self, name: str) -> dict[str, StoredObject]:
        try:
            return self._buckets[name]
        except KeyError:
            raise ServiceError(404, "NoSuchBucket", "The specified bucket does not exist.", BucketName=name) from None


def _list_entries(
    index: list[str], objects: dict[str, StoredObject], prefix: str, delimiter: str, after: str
) -> Iterator[tuple[str, StoredObject | None]]:
    """The entries of a listing from its first name after `after`, lazily: bisection finds where to start, and
    the keys under a common prefix are skipped by bisection too (OSS rolls them up into one entry)."""
    at = max(bisect.bisect_left(index, prefix), bisect.bisect_right(index, after))
    while at < len(index) and index[at].startswith(prefix):
        key = index[at]
        cut = key.find(delimiter, len(prefix)) if delimiter else -1
        if cut < 0:
            yield key, objects[key]
            at += 1
            continue
        common = key[: cut + len(delimiter)]
        if common > after:  # a marker equal to a common prefix skips that "directory"
            yield common, None
        past = _past(common)
        at = len(index) if past is None else bisect.bisect_left(index, past, at + 1)


def _past(prefix: str) -> str | None:
    """The least string above every string that starts with `prefix`; None if there is none (`prefix` is all
    U+10FFFF, so every later string starts with it)."""
    stem = prefix.rstrip("\U0010ffff")
    return stem[:-1] + chr(ord(stem[-1]) + 1) if stem else None


# -- HTTP glue ----------------------------------------------------------------------------------------------------
def _any(request: Request) -> bool:
    return True


class FakeOss(FakeServer):
    """A signature-checking OSS endpoint. `credentials`: access key id -> secret; `tokens`: access key id -> the
    STS security token that key requires. `clock_offset` (seconds) shifts the fake's clock."""

    name = "fake-oss"

    def __init__(self, credentials: dict[str, str], tokens: dict[str, str] | None = None, region: str = "cn-shanghai"):
        super().__init__()
        self.credentials = dict(credentials)
        self.tokens = dict(tokens or {})
        self.region = region
        self.clock_offset = 0.0
        self.state = OssState()

    def now(self) -> float:
        return time.time() + self.clock_offset

    # -- test helpers -----------------------------------------------------------------------------------------------
    def create_bucket(self, name: str) -> None:
        self.state.create_bucket(name)

    def put(self, bucket: str, key: str, data: bytes, content_type: str = DEFAULT_CONTENT_TYPE) -> str:
        """Store an object (creating the bucket if needed); returns its ETag (uppercase hex, no quotes)."""
        self.state.create_bucket(bucket)
        obj = StoredObject(key, bytes(data), content_type, int(self.now()))
        self.state.put(bucket, obj)
        return obj.etag

    def get(self, bucket: str, key: str) -> bytes | None:
        obj = self.state.lookup(bucket, key)
        return None if obj is None else obj.data

    def object(self, bucket: str, key: str) -> StoredObject | None:
        return self.state.lookup(bucket, key)

    def keys(self, bucket: str, prefix: str = "") -> list[str]:
        return self.state.keys(bucket, prefix)

    def delete(self, bucket: str, key: str) -> None:
        self.state.delete(bucket, key)

    def put_inventory(self, source: str, destination: str, **options: Any) -> Inventory:
        """Deliver an inventory of bucket `source` as it stands into bucket `destination`, as OSS writes one
        (`tests.fakes.inventory.build_inventory` takes the options); its `manifest_key` is what `--inventory`
        names."""
        listed = []
        for key in self.state.keys(source):
            obj = self.state.lookup(source, key)
            if obj is not None:
                listed.append(Listed(key, len(obj.data), obj.etag, obj.last_modified))
        inventory = build_inventory(listed, source=source, destination=destination, **options)
        for key, data in inventory.objects.items():
            self.put(destination, key, data, "application/json" if key.endswith(".json") else "application/gzip")
        return inventory

    def requests_by_kind(self) -> Counter[str]:
        """The requests logged so far, by kind: "LIST" for a listing page (ListObjects or ListObjectsV2), else the
        HTTP method ("GET", "HEAD", "PUT", "DELETE", "POST")."""
        return Counter("LIST" if _is_listing(entry.request) else entry.request.method for entry in self.logged())

    # -- faults -------------------------------------------------------------------------------------------------------
    @staticmethod
    def match(
        method: str | None = None, bucket: str | None = None, key: str | None = None
    ) -> Callable[[Request], bool]:
        """A fault matcher on method / bucket / decoded key (key "" is a bucket-level request such as a listing)."""

        def accepts(request: Request) -> bool:
            try:
                got_bucket, got_key = _split_path(request.path)
            except ServiceError:
                return False
            return (
                (method is None or request.method == method.upper())
                and (bucket is None or got_bucket == bucket)
                and (key is None or got_key == key)
            )

        return accepts

    # Canned answers carry `x-oss-err` as well, so a faulted HEAD still tells oss2 its code.
    def throttle(self, times: int = 1, match: Callable[[Request], bool] = _any) -> Fault:
        """503 SlowDown for the next `times` matching requests."""
        error = ServiceError(503, "SlowDown", "Please reduce your request rate.")
        return self.inject(Fault("status", match, times, response=_error_response(error, _request_id(), head=True)))

    def server_error(self, times: int = 1, match: Callable[[Request], bool] = _any) -> Fault:
        """500 InternalError for the next `times` matching requests."""
        error = ServiceError(500, "InternalError", "We encountered an internal error. Please try again.")
        return self.inject(Fault("status", match, times, response=_error_response(error, _request_id(), head=True)))

    def deny(self, times: int = 1, match: Callable[[Request], bool] = _any) -> Fault:
        """403 AccessDenied (a RAM policy without the action) for the next `times` matching requests."""
        error = ServiceError(403, "AccessDenied", "You have no right to access this object because of bucket acl.")
        return self.inject(Fault("status", match, times, response=_error_response(error, _request_id(), head=True)))

    def drop(self, times: int = 1, match: Callable[[Request], bool] = _any) -> Fault:
        return self.inject(Fault("drop", match, times))

    def delay(self, seconds: float, times: int = 1, match: Callable[[Request], bool] = _any) -> Fault:
        return self.inject(Fault("delay", match, times, seconds=seconds))

    def stall(
        self, seconds: float, times: int = 1, match: Callable[[Request], bool] = _any, after_auth: bool = True
    ) -> Fault:
        """No answer for `seconds`, then a closed connection; by default only once the signature checked out
        (a badly signed request still gets its 403), and the operation is then not performed."""
        return self.inject(Fault("stall", match, times, seconds=seconds, after_auth=after_auth))

    def trickle(
        self, seconds: float, chunk: int = 1, times: int = 1, match: Callable[[Request], bool] = _any
    ) -> Fault:
        """Serve normally, but send the body `chunk` bytes every `seconds`."""
        return self.inject(Fault("trickle", match, times, seconds=seconds, chunk=chunk))

    # -- serving --------------------------------------------------------------------------------------------------
    def handle(self, request: Request) -> Response:
        request_id = _request_id()
        head = request.method == "HEAD"
        try:
            bucket, key = _split_path(request.path)
            operation = self._route(request, bucket, key)
            self._authenticate(request, bucket, key)
            self.authenticated(request)  # an after-auth "stall" happens here
            response = operation(request, bucket, key)
        except ServiceError as error:
            response = _error_response(error, request_id, head)
        except _Unsupported as unsupported:
            self.fail(f"{request.method} {request.raw_path}: {unsupported}")
            error = ServiceError(501, "NotImplemented", f"The fake OSS does not implement {unsupported}.")
            response = _error_response(error, request_id, head)
        response.headers["x-oss-request-id"] = request_id
        return response

    def _route(self, request: Request, bucket: str, key: str) -> Callable[[Request, str, str], Response]:
        for name in request.headers:
            custom = name.startswith("x-oss-") and not name.startswith("x-oss-meta-")
            if name in _UNSUPPORTED_HEADERS or (custom and name not in _KNOWN_OSS_HEADERS):
                raise _Unsupported(f"the {name!r} header")
        params = {name for name, _ in request.query} - _PRESIGN_PARAMS
        method = request.method
        if bucket and not key:
            if method == "GET" and request.param("list-type") == "2" and params <= _LIST_V2_PARAMS:
                return self._list_objects_v2
            if method == "GET" and params <= _LIST_V1_PARAMS:
                return self._list_objects
            if method == "POST" and "delete" in params and params <= {"delete", "encoding-type"}:
                return self._delete_objects
            if method == "GET" and params == {"location"}:
                return self._get_location
            if params == {"lifecycle"} and method in ("GET", "PUT"):
                return self._get_lifecycle if method == "GET" else self._put_lifecycle
        elif bucket:
            if method == "PUT" and not params:
                return self._put_object
            if method == "GET" and not params:
                return self._get_object
            if method == "HEAD" and params <= {"objectMeta"}:
                return self._head_object
            if method == "DELETE" and not params:
                return self._delete_object
        raise _Unsupported(f"{method} on {'an object' if key else 'a bucket' if bucket else 'the service'} "
                           f"with parameters {sorted(params)}")

    # -- operations -----------------------------------------------------------------------------------------------
    def _put_object(self, request: Request, bucket: str, key: str) -> Response:
        _check_content_md5(request)
        metadata = {name: value for name, value in request.headers.items() if name.startswith("x-oss-meta-")}
        content_type = request.header("content-type") or DEFAULT_CONTENT_TYPE
        obj = StoredObject(key, request.body, content_type, int(self.now()), metadata)
        self.state.put(bucket, obj)
        headers = {"ETag": f'"{obj.etag}"', "Content-MD5": obj.content_md5, "x-oss-hash-crc64ecma": str(obj.crc64)}
        return Response(200, headers=headers)

    def _get_object(self, request: Request, bucket: str, key: str) -> Response:
        obj = self.state.fetch(bucket, key)
        headers = _object_headers(obj)
        standard = request.header("x-oss-range-behavior") == "standard"
        window = _byte_range(request.header("range"), len(obj.data), standard)
        if window is None:
            return Response(200, obj.data, headers)
        start, end = window
        headers["Content-Range"] = f"bytes {start}-{end}/{len(obj.data)}"
        return Response(206, obj.data[start : end + 1], headers)

    def _head_object(self, request: Request, bucket: str, key: str) -> Response:
        obj = self.state.fetch(bucket, key)
        return Response(200, headers={**_object_headers(obj), "Content-Length": str(len(obj.data))})

    def _delete_object(self, request: Request, bucket: str, key: str) -> Response:
        self.state.delete(bucket, key)
        return Response(204)

    def _delete_objects(self, request: Request, bucket: str, key: str) -> Response:
        if not request.header("content-md5"):
            raise ServiceError(400, "InvalidRequest", "Missing required header for this request: Content-MD5")
        _check_content_md5(request)
        encode = _encoder(request)
        malformed = ServiceError(400, "MalformedXML", "The XML you provided was not well-formed.")
        try:
            root = ET.fromstring(request.body)
        except ET.ParseError:
            raise malformed from None
        keys = [node.text or "" for node in root.findall("Object/Key")]
        if root.tag != "Delete" or not keys or len(keys) > MAX_KEYS or not all(keys):
            raise malformed
        for name in keys:
            self.state.delete(bucket, name)
        result = ET.Element("DeleteResult")
        if request.param("encoding-type"):
            _sub(result, "EncodingType", "url")
        if (root.findtext("Quiet") or "false").lower() != "true":
            for name in keys:
                _sub(_sub(result, "Deleted"), "Key", encode(name))
        return _xml_response(result)

    def _list_objects(self, request: Request, bucket: str, key: str) -> Response:
        encode = _encoder(request)
        prefix, delimiter, marker = (request.param(name) or "" for name in ("prefix", "delimiter", "marker"))
        max_keys = _max_keys(request)
        page, truncated = self.state.list(bucket, prefix, delimiter, marker, max_keys)
        fields = [("Name", bucket), ("Prefix", encode(prefix)), ("Marker", encode(marker)),
                  ("MaxKeys", str(max_keys)), ("Delimiter", encode(delimiter))]
        if request.param("encoding-type"):
            fields.append(("EncodingType", "url"))
        fields.append(("IsTruncated", str(truncated).lower()))
        if truncated:
            fields.append(("NextMarker", encode(page[-1][0])))
        return _listing_response(fields, page, encode, owner=True)

    def _get_location(self, request: Request, bucket: str, key: str) -> Response:
        self.state.fetch_bucket(bucket)
        root = ET.Element("LocationConstraint")
        root.text = f"oss-{self.region}"
        return _xml_response(root)

    def _get_lifecycle(self, request: Request, bucket: str, key: str) -> Response:
        rules = self.state.fetch_bucket(bucket).lifecycle
        if rules is None:
            raise ServiceError(404, "NoSuchLifecycle", "No Row found in Lifecycle Table.", BucketName=bucket)
        return Response(200, rules, {"Content-Type": "application/xml"})

    def _put_lifecycle(self, request: Request, bucket: str, key: str) -> Response:
        try:
            root = ET.fromstring(request.body)
        except ET.ParseError:
            raise ServiceError(400, "MalformedXML", "The XML you provided was not well-formed.") from None
        for rule in root.findall("Rule"):
            if rule.findtext("Status") not in ("Enabled", "Disabled") or rule.find("Prefix") is None:
                raise ServiceError(400, "MalformedXML", "a rule needs a Prefix and a Status of Enabled or Disabled")
        self.state.fetch_bucket(bucket).lifecycle = request.body
        return Response(200, b"")

    def lifecycle_rules(self, bucket: str) -> list[dict[str, str]]:
        """The bucket's lifecycle rules as stored (ID, Prefix, Status, Days), for the tests."""
        body = self.state.fetch_bucket(bucket).lifecycle
        if body is None:
            return []
        return [
            {"ID": r.findtext("ID") or "", "Prefix": r.findtext("Prefix") or "", "Status": r.findtext("Status") or "",
             "Days": r.findtext("Expiration/Days") or ""}
            for r in ET.fromstring(body).findall("Rule")
        ]

    def set_lifecycle(self, bucket: str, rules: list[tuple[str, str, int]]) -> None:
        """Store lifecycle rules (ID, prefix, days to expire) as OSS would hold them."""
        root = ET.Element("LifecycleConfiguration")
        for rule_id, prefix, days in rules:
            rule = ET.SubElement(root, "Rule")
            _sub(rule, "ID", rule_id)
            _sub(rule, "Prefix", prefix)
            _sub(rule, "Status", "Enabled")
            _sub(ET.SubElement(rule, "Expiration"), "Days", str(days))
        self.state.fetch_bucket(bucket).lifecycle = ET.tostring(root)

    def _list_objects_v2(self, request: Request, bucket: str, key: str) -> Response:
        encode = _encoder(request)
        prefix, delimiter, token, start_after = (
            request.param(name) or "" for name in ("prefix", "delimiter", "continuation-token", "start-after")
        )
        max_keys = _max_keys(request)
        after = _decode_token(token) if token else start_after
        page, truncated = self.state.list(bucket, prefix, delimiter, after, max_keys)
        fields = [("Name", bucket), ("Prefix", encode(prefix)), ("MaxKeys", str(max_keys)),
                  ("Delimiter", encode(delimiter))]
        if start_after:
            fields.append(("StartAfter", encode(start_after)))
        if token:
            fields.append(("ContinuationToken", encode(token)))
        if request.param("encoding-type"):
            fields.append(("EncodingType", "url"))
        fields.append(("IsTruncated", str(truncated).lower()))
        if truncated:
            fields.append(("NextContinuationToken", encode(base64.urlsafe_b64encode(page[-1][0].encode()).decode())))
        fields.append(("KeyCount", str(len(page))))
        return _listing_response(fields, page, encode, owner=request.param("fetch-owner") == "true")

    # -- signatures (mirroring oss2/auth.py) ------------------------------------------------------------------
    def _authenticate(self, request: Request, bucket: str, key: str) -> None:
        authorization = request.header("authorization")
        if authorization.startswith("OSS "):
            access_key_id, _, signature = authorization[len("OSS ") :].rpartition(":")
            date = request.header("x-oss-date") or request.header("date")
            self._check_skew(_parse_http_date(date))
            token = request.header("x-oss-security-token")
            self._verify_v1(request, bucket, key, access_key_id, signature, date, token)
        elif authorization.startswith(V4_ALGORITHM + " "):
            fields = dict(part.strip().partition("=")[::2] for part in authorization[len(V4_ALGORITHM) :].split(","))
            if not fields.get("Credential") or not fields.get("Signature"):
                raise ServiceError(400, "InvalidArgument", "Authorization header is malformed.")
            date_time = request.header("x-oss-date")
            self._check_skew(_parse_v4_date(date_time))
            credential, signature = fields["Credential"], fields["Signature"]
            additional, token = fields.get("AdditionalHeaders", ""), request.header("x-oss-security-token")
            self._verify_v4(request, bucket, key, credential, signature, date_time, additional, token)
        elif authorization:
            raise _Unsupported(f"the Authorization scheme {authorization.split()[0]!r}")
        elif request.param("x-oss-signature-version") is not None:
            self._verify_v4_url(request, bucket, key)
        elif request.param("Signature") is not None:
            expires = request.param("Expires") or ""
            if not expires.isdecimal():
                raise _invalid_argument("Expires is not a number.", "Expires", expires)
            access_key_id = request.param("OSSAccessKeyId") or ""
            token = request.param("security-token") or ""
            if self.now() > int(expires):
                raise _expired(int(expires), self.now())
            self._verify_v1(request, bucket, key, access_key_id, request.param("Signature") or "", expires, token)
        else:
            raise ServiceError(403, "AccessDenied", "You have no right to access this object because of bucket acl.")

    def _verify_v4_url(self, request: Request, bucket: str, key: str) -> None:
        if request.param("x-oss-signature-version") != V4_ALGORITHM:
            raise _invalid_argument("Unsupported signature version.", "x-oss-signature-version",
                                    request.param("x-oss-signature-version") or "")
        credential, signature, date_time, expires = (
            request.param(name) or "" for name in ("x-oss-credential", "x-oss-signature", "x-oss-date", "x-oss-expires")
        )
        if not credential or not signature:
            raise ServiceError(400, "InvalidArgument", "x-oss-credential and x-oss-signature are required.")
        if not expires.isdecimal() or not 0 < int(expires) <= 7 * 24 * 3600:
            raise _invalid_argument("x-oss-expires must be 1..604800 seconds.", "x-oss-expires", expires)
        signed_at = _parse_v4_date(date_time)
        if self.now() > signed_at + int(expires):
            raise _expired(int(signed_at) + int(expires), self.now())
        additional = request.param("x-oss-additional-headers") or ""
        token = request.param("x-oss-security-token") or ""
        self._verify_v4(request, bucket, key, credential, signature, date_time, additional, token)

    def _secret(self, access_key_id: str, token: str) -> str:
        """The secret for `access_key_id`, once the STS token matches what that key requires (none or one)."""
        secret = self.credentials.get(access_key_id)
        if secret is None or (access_key_id in self.tokens and not token):
            raise ServiceError(403, "InvalidAccessKeyId", "The OSS Access Key Id you provided does not exist in our "
                               "records.", OSSAccessKeyId=access_key_id)
        if (token or None) != self.tokens.get(access_key_id):
            raise ServiceError(403, "InvalidSecurityToken", "The security token you provided is invalid.")
        return secret

    def _check_skew(self, signed_at: float) -> None:
        if abs(self.now() - signed_at) > CLOCK_SKEW:
            raise ServiceError(403, "RequestTimeTooSkewed", "The difference between the request time and the "
                               "current time is too large.", ServerTime=formatdate(self.now(), usegmt=True))

    def _verify_v1(
        self, request: Request, bucket: str, key: str, access_key_id: str, signature: str, date: str, token: str
    ) -> None:
        secret = self._secret(access_key_id, token)
        headers = "".join(f"{name}:{value}\n" for name, value in sorted(request.headers.items())
                          if name.startswith("x-oss-"))
        subresources = sorted((name, value) for name, value in request.query if name in _V1_SUBRESOURCES)
        resource = f"/{bucket}/{key}"
        if subresources:
            resource += "?" + "&".join(f"{name}={value}" if value else name for name, value in subresources)
        string_to_sign = "\n".join(
            [request.method, request.header("content-md5"), request.header("content-type"), date, headers + resource]
        )
        digest = hmac.new(secret.encode(), string_to_sign.encode(), hashlib.sha1).digest()
        if not hmac.compare_digest(base64.b64encode(digest), signature.encode()):
            raise _signature_mismatch(access_key_id, signature, StringToSign=string_to_sign)

    def _verify_v4(
        self, request: Request, bucket: str, key: str, credential: str, signature: str, date_time: str,
        additional: str, token: str,
    ) -> None:
        access_key_id, _, scope = credential.partition("/")
        secret = self._secret(access_key_id, token)
        expected_scope = f"{date_time[:8]}/{self.region}/oss/aliyun_v4_request"
        if scope != expected_scope:
            raise _signature_mismatch(access_key_id, signature, CredentialScope=scope, ExpectedScope=expected_scope)
        extra = sorted({name.strip().lower() for name in additional.split(";") if name.strip()})
        query = sorted(
            (_v4_quote(name), _v4_quote(value)) for name, value in request.query if name != "x-oss-signature"
        )
        headers = sorted(
            (name, value) for name, value in request.headers.items()
            if name.startswith("x-oss-") or name in ("content-type", "content-md5") or name in extra
        )
        payload = request.headers.get("x-oss-content-sha256", UNSIGNED_PAYLOAD)
        if payload != UNSIGNED_PAYLOAD and payload != hashlib.sha256(request.body).hexdigest():
            raise ServiceError(400, "InvalidArgument", "x-oss-content-sha256 does not match the request body.")
        canonical_request = "\n".join([
            request.method,
            _v4_quote(f"/{bucket}/{key}", keep_slash=True),
            "&".join(f"{name}={value}" if value else name for name, value in query),
            "".join(f"{name}:{value}\n" for name, value in headers),
            ";".join(extra),
            payload,
        ])  # fmt: skip
        string_to_sign = "\n".join(
            [V4_ALGORITHM, date_time, scope, hashlib.sha256(canonical_request.encode()).hexdigest()]
        )
        signing_key = ("aliyun_v4" + secret).encode()
        for part in scope.split("/"):
            signing_key = hmac.new(signing_key, part.encode(), hashlib.sha256).digest()
        expected = hmac.new(signing_key, string_to_sign.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected.encode(), signature.encode()):
            raise _signature_mismatch(
                access_key_id, signature, CanonicalRequest=canonical_request, StringToSign=string_to_sign
            )


# -- wire helpers -------------------------------------------------------------------------------------------------
def _request_id() -> str:
    return uuid.uuid4().hex[:24].upper()


def _is_listing(request: Request) -> bool:
    bucket, _, key = request.path[1:].partition("/")
    params = {name for name, _ in request.query} - _PRESIGN_PARAMS
    return request.method == "GET" and bool(bucket) and not key and params <= _LIST_V1_PARAMS | _LIST_V2_PARAMS


def _split_path(path: str) -> tuple[str, str]:
    """`/bucket/key` (percent-encoded) -> (bucket, key), both decoded; key "" for bucket-level requests."""
    bucket, _, key = path[1:].partition("/")
    try:
        return unquote(bucket, errors="strict"), unquote(key, errors="strict")
    except UnicodeDecodeError:
        raise ServiceError(400, "InvalidURI", "Couldn't parse the specified URI.") from None


def _v4_quote(text: str, keep_slash: bool = False) -> str:
    # oss2's __v4_uri_encode: everything but A-Z a-z 0-9 _ - ~ . (and "/" in the path) as %XX of the UTF-8 bytes
    return quote(text.encode(), safe="/" if keep_slash else "")


def _parse_http_date(value: str) -> float:
    try:
        return parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError):
        raise ServiceError(403, "AccessDenied", "OSS authentication requires a valid Date.") from None


def _parse_v4_date(value: str) -> float:
    try:
        return datetime.strptime(value, "%Y%m%dT%H%M%SZ").replace(tzinfo=timezone.utc).timestamp()
    except ValueError:
        raise ServiceError(403, "AccessDenied", "OSS V4 authentication requires a valid x-oss-date.") from None


def _signature_mismatch(access_key_id: str, provided: str, **details: str) -> ServiceError:
    return ServiceError(
        403, "SignatureDoesNotMatch",
        "The request signature we calculated does not match the signature you provided. "
        "Check your key and signing method.",
        OSSAccessKeyId=access_key_id, SignatureProvided=provided, **details,
    )  # fmt: skip


def _expired(expires: int, now: float) -> ServiceError:
    return ServiceError(403, "AccessDenied", "Request has expired.", Expires=formatdate(expires, usegmt=True),
                        ServerTime=formatdate(now, usegmt=True))


def _check_content_md5(request: Request) -> None:
    sent = request.header("content-md5")
    if sent and sent != base64.b64encode(hashlib.md5(request.body).digest()).decode():
        raise ServiceError(400, "InvalidDigest", "The Content-MD5 you specified was invalid.")


def _byte_range(header: str, size: int, standard: bool) -> tuple[int, int] | None:
    """The inclusive (start, end) a Range header selects, or None for the whole object (200).

    Like OSS: a malformed, multi-part or reversed range is ignored. Without `x-oss-range-behavior: standard` a
    range reaching past the end or starting beyond it is ignored too; with it the end is clamped and a range
    starting beyond the end is 416 InvalidRange.
    """
    match = re.fullmatch(r"bytes=(\d*)-(\d*)", header.strip())
    if match is None or match.group(1) == match.group(2) == "":
        return None
    first, last = match.groups()
    if first:
        start, end = int(first), int(last) if last else size - 1
        if end < start:
            return None
        satisfiable, overreach = start < size, end >= size
    else:  # a suffix: the last N bytes
        start, end = max(size - int(last), 0), size - 1
        satisfiable, overreach = int(last) > 0 and size > 0, int(last) > size
    if not satisfiable and standard:
        raise ServiceError(416, "InvalidRange", "The requested range cannot be satisfied.",
                           RangeRequested=header, ActualObjectSize=str(size))
    if not satisfiable or (overreach and not standard):
        return None
    return start, min(end, size - 1)


def _object_headers(obj: StoredObject) -> dict[str, str]:
    return {
        "Content-Type": obj.content_type,
        "ETag": f'"{obj.etag}"',
        "Last-Modified": formatdate(obj.last_modified, usegmt=True),
        "Accept-Ranges": "bytes",
        "x-oss-object-type": "Normal",
        "x-oss-storage-class": "Standard",
        "x-oss-hash-crc64ecma": str(obj.crc64),
        **obj.metadata,
    }


def _encoder(request: Request) -> Callable[[str], str]:
    """How names are written into a listing: url-encoded when the request asks `encoding-type=url`."""
    encoding = request.param("encoding-type") or ""
    if encoding not in ("", "url"):
        raise _invalid_argument("Invalid Encoding Method specified in Request", "encoding-type", encoding)
    return (lambda text: quote(text, safe="/")) if encoding else (lambda text: text)


def _max_keys(request: Request) -> int:
    raw = request.param("max-keys") or "100"
    if not raw.isdecimal() or not 1 <= int(raw) <= MAX_KEYS:
        raise _invalid_argument(f"max-keys must be 1..{MAX_KEYS}.", "max-keys", raw)
    return int(raw)


def _decode_token(token: str) -> str:
    try:
        return base64.urlsafe_b64decode(token.encode()).decode()
    except (ValueError, UnicodeError):
        raise _invalid_argument("The continuation token provided is incorrect.", "continuation-token", token) from None


def _listing_response(fields: Iterable[tuple[str, str]], page: list[tuple[str, StoredObject | None]],
                      encode: Callable[[str], str], owner: bool) -> Response:
    """A `ListBucketResult`: `fields`, then a `Contents` per object and a `CommonPrefixes` per common prefix. Written
    as text (ElementTree's elements cost ~20 ms for a page of 1 000)."""
    parts = ["<?xml version='1.0' encoding='utf-8'?>\n<ListBucketResult>"]
    parts += [_element(tag, text) for tag, text in fields]
    owner_xml = f"<Owner><ID>{OWNER_ID}</ID><DisplayName>{OWNER_ID}</DisplayName></Owner>" if owner else ""
    for name, obj in page:
        if obj is not None:
            parts.append(
                f"<Contents>{_element('Key', encode(name))}<LastModified>{_iso_time(obj.last_modified)}</LastModified>"
                f"<ETag>&quot;{obj.etag}&quot;</ETag><Type>Normal</Type><Size>{len(obj.data)}</Size>"
                f"<StorageClass>Standard</StorageClass>{owner_xml}</Contents>"
            )
    parts += [f"<CommonPrefixes>{_element('Prefix', encode(name))}</CommonPrefixes>" for name, o in page if o is None]
    parts.append("</ListBucketResult>")
    return Response(200, "".join(parts).encode(), {"Content-Type": "application/xml"})


def _element(tag: str, text: str) -> str:
    return f"<{tag}>{escape(text)}</{tag}>"


@lru_cache(maxsize=1024)
def _iso_time(epoch: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(epoch))


def _sub(parent: ET.Element, tag: str, text: str | None = None) -> ET.Element:
    node = ET.SubElement(parent, tag)
    node.text = text
    return node


def _xml_response(root: ET.Element) -> Response:
    return Response(200, ET.tostring(root, encoding="utf-8", xml_declaration=True), {"Content-Type": "application/xml"})


def _error_response(error: ServiceError, request_id: str, head: bool) -> Response:
    """OSS's `<Error>` body; HEAD answers have no body, so OSS repeats it base64-encoded in `x-oss-err`."""
    root = ET.Element("Error")
    fields = {"Code": error.code, "Message": error.message, "RequestId": request_id, "HostId": "127.0.0.1"}
    for tag, text in {**fields, **error.details}.items():
        _sub(root, tag, text)
    body = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    headers = {"Content-Type": "application/xml", "x-oss-request-id": request_id}
    if head:
        headers["x-oss-err"] = base64.b64encode(body).decode()
    return Response(error.status, body, headers)
