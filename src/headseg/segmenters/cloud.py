"""The cloud segmenter: imageseg SegmentHead through the official SDK, on a signed URL of the object.

Everything SegmentHead sends is untrusted, and meets one wall whatever its shape:
- `_ask` is the one place the SDK is called: whatever the call raises becomes a headseg error there. An error
  reply is classified by the service's `Code`, never by HTTP status alone (throttling comes back as HTTP 400
  `Throttling.User`); no answer is a retriable `ConnectionError`; anything else the SDK raised while reading an
  error reply (not JSON, not an object) is a retriable `BadReply`.
- `decode_reply` and `read_reply` read the answer's body (the SDK hands it over as bytes: `_imageseg`), bounded,
  and check its shape before anything uses it: `BadReply` unless it is JSON of at most `MAX_REPLY_BYTES` and
  every value is of the type and within the bounds the API documents. (The SDK reads the whole body before
  headseg sees it and offers no public way to cap that read: what is bounded is what headseg parses and keeps.)
- Cutouts are fetched from the address `hosts.check_cutout_url` resolved and approved (`hosts.open_target`),
  size and time bounded; whatever the HTTP stack raises on the way is a retriable `ConnectionError`.
Retries are not done here but by the pipeline, against the invocation's budget.
"""

from __future__ import annotations

import http.client
import io
import json
import logging
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from headseg.config import Config, UrlMode
from headseg.credentials import Credentials
from headseg.errors import (
    AccessDenied,
    BudgetExhausted,
    CutoutExpired,
    HeadsegError,
    InvalidImage,
    PermanentError,
    RetriableError,
)
from headseg.hosts import MAX_URL_LENGTH, Resolver, check_cutout_url, open_target, system_resolve
from headseg.layout import MAX_HEADS
from headseg.retry import Budget
from headseg.segmenters import Head, Segmentation, SegmentInput, Takes, max_cutout_bytes
from headseg.tea import is_network_error

log = logging.getLogger(__name__)

MAX_CUTOUT_BYTES = 64 * 1024 * 1024  # an uncompressed RGBA PNG of 2000x2000 is 16 MB
CALL_TIMEOUT = 10.0  # the SDK's default read timeout, capped by the budget
CONNECT_TIMEOUT = 5.0
MAX_COORDINATE = 1 << 16  # SegmentHead takes images under 2000x2000: a box value past this is no box
MAX_REPLY_BYTES = 1 << 20  # an answer of MAX_HEADS heads with URLs of MAX_URL_LENGTH is under half of this
MAX_TEXT = 4096  # characters of a service's message kept in an error (it may echo a whole signed URL)
MAX_EXCERPT = 300  # characters of what the SDK raised on a reply it could not read (it quotes the whole body)

_PERMANENT_PREFIXES = ("InvalidImage", "InvalidParameter", "InvalidFile", "MissingImageURL", "InvalidUrl")
_TRANSIENT_PREFIXES = ("Throttling", "InternalError", "ServiceUnavailable", "Timeout", "ServerBusy")
_CREDENTIAL_PREFIXES = ("InvalidAccessKeyId", "SignatureDoesNotMatch", "InvalidSecurityToken", "Forbidden", "NoPermission")
_CODE = re.compile(r"[A-Za-z][A-Za-z0-9._-]{0,99}")  # the service's error codes: `InvalidImage.Download`, ...
_REQUEST_ID = re.compile(r"[\x21-\x7e]{1,128}")  # printable ASCII: it goes into logs and sidecars as it is
_BOX = ("X", "Y", "Width", "Height")


class BadReply(RetriableError):
    """SegmentHead's reply is not an answer headseg can use (not JSON, the wrong shape, values out of bounds):
    the service, or something on the way to it, misbehaved. Retried like a 5xx; an image is never judged by it."""

    code = "BadReply"


class CloudSegmenter:
    """SegmentHead on Alibaba Cloud. One instance per credentials; the SDK client is built lazily. `resolve`
    answers for the cutout hosts (the system resolver; tests inject their own)."""

    name = "cloud"

    def __init__(self, config: Config, credentials: Credentials, resolve: Resolver = system_resolve) -> None:
        self._config = config
        self.takes = Takes.BYTES if config.url_mode is UrlMode.ADVANCE else Takes.URL
        self._credentials = credentials
        self._resolve = resolve
        self._client: Any = None
        self._session: Any = None  # the cutout downloads' connection pools (a urllib3 PoolManager)

    # -- SegmentHead -----------------------------------------------------------------------------------------
    def segment(self, image: SegmentInput, return_form: str | None, budget: Budget) -> Segmentation:
        from alibabacloud_imageseg20191230 import models
        from alibabacloud_tea_util.models import RuntimeOptions

        runtime = RuntimeOptions(
            read_timeout=int(budget.timeout(CALL_TIMEOUT) * 1000),
            connect_timeout=int(budget.timeout(CONNECT_TIMEOUT) * 1000),
        )
        client = self._sdk()
        if self.takes is Takes.BYTES:
            assert image.data is not None, "URL_MODE=advance uploads the bytes"
            advance = models.SegmentHeadAdvanceRequest(image_urlobject=io.BytesIO(image.data), return_form=return_form)
            reply = _ask(lambda: client.segment_head_advance(advance, runtime))
        else:
            request = models.SegmentHeadRequest(image_url=image.url, return_form=return_form)
            reply = _ask(lambda: client.segment_head_with_options(request, runtime))
        return read_reply(decode_reply(reply.get("body")))

    def warm(self) -> None:
        """The SDK's modules and client, and the download session, built before the first event needs them."""
        from alibabacloud_imageseg20191230 import models  # noqa: F401
        from alibabacloud_tea_util.models import RuntimeOptions  # noqa: F401

        self._sdk()
        self._downloads()
        self._open_sdk_session()

    def _open_sdk_session(self) -> None:
        """darabonba opens the HTTP session a client's calls go through on its first call, with an SSL context
        that parses the CA bundle (~40 ms; for plain HTTP too); open it now, under the key that call looks up.
        That cache is darabonba's own (a test checks the key): if it changes shape, this only stops saving."""
        try:
            from darabonba.core import DEFAULT_POOL_MAXSIZE, DaraCore
        except ImportError:
            return
        endpoint = urlsplit(self._config.imageseg_url)
        # darabonba keys by protocol, Host header and port; tea-openapi never sets the port, so it stays 80
        key = f"{endpoint.scheme}://{endpoint.netloc}:80:pool={DEFAULT_POOL_MAXSIZE}"
        DaraCore._get_session(session_key=key, protocol=endpoint.scheme)

    def _downloads(self) -> Any:
        if self._session is None:
            import certifi
            import urllib3

            # certifi's CAs, as requests (which fetched cutouts before) verified them
            self._session = urllib3.PoolManager(maxsize=self._config.download_workers, ca_certs=certifi.where())
        return self._session

    def _sdk(self) -> Any:
        if self._client is None:
            from alibabacloud_tea_openapi import models as open_api_models

            from headseg.segmenters._imageseg import RawSegmentHeadClient

            endpoint = urlsplit(self._config.imageseg_url)
            self._client = RawSegmentHeadClient(
                open_api_models.Config(
                    access_key_id=self._credentials.access_key_id,
                    access_key_secret=self._credentials.access_key_secret,
                    security_token=self._credentials.security_token,
                    endpoint=endpoint.netloc,
                    protocol=endpoint.scheme,
                    region_id=self._config.region,
                )
            )
        return self._client

    # -- cutouts ---------------------------------------------------------------------------------------------
    def fetch(self, head: Head, budget: Budget) -> bytes:
        """Download a temporary cutout from the address its URL's check approved: no redirects followed, size and
        time bounded, PNG checked by the caller."""
        import urllib3

        if head.png is not None:
            return head.png
        target = check_cutout_url(head.url, self._config.allowed_cutout_hosts, self._resolve)
        timeout = urllib3.Timeout(connect=budget.timeout(CONNECT_TIMEOUT), read=budget.timeout(CALL_TIMEOUT))
        limit = min(MAX_CUTOUT_BYTES, max_cutout_bytes(head))
        try:
            with open_target(self._downloads(), target, timeout) as response:
                _check_status(response.status)
                data = bytearray()
                # read1: whatever has arrived (up to 64 KiB), so the checks below run as a trickle goes on
                while block := response.read1(1 << 16, decode_content=False):
                    data += block
                    if len(data) > limit:
                        raise PermanentError(
                            f"cutout is over {limit} bytes, more than a {head.width}x{head.height} PNG can take",
                            code="CutoutTooLarge",
                        )
                    if budget.remaining() <= 0:
                        raise BudgetExhausted("cutout download: the body did not arrive within the invocation's time")
                return bytes(data)
        except (urllib3.exceptions.HTTPError, http.client.HTTPException, OSError) as exc:
            # everything the HTTP stack raises, connecting or reading the body (a reset, a broken chunk, a
            # timeout, a TLS failure): the cutout may come next time
            raise RetriableError(f"cutout download failed: {type(exc).__name__}", code="ConnectionError") from None


def _check_status(status: int) -> None:
    """Raise for a cutout download's HTTP status unless it is 200."""
    if status in (403, 404):
        raise CutoutExpired(f"cutout URL answered HTTP {status}: expired or gone")
    if 300 <= status < 400:  # only the URL the service returned, never where it points to
        raise PermanentError(f"cutout URL answered a redirect (HTTP {status}); not followed", code="CutoutRedirect")
    if status >= 500 or status == 429:
        raise RetriableError(f"cutout download: HTTP {status}", code=f"HTTP{status}")
    if status != 200:
        raise PermanentError(f"cutout download: HTTP {status}", code=f"HTTP{status}")


def _ask(call: Callable[[], Any]) -> Any:
    """`call()`, one SDK call: whatever it raises becomes a headseg error here, and nowhere else.

    Only the SDK's method runs in here (its request and reply objects are built outside), so a bug of
    headseg's own still surfaces as itself.
    """
    from Tea.exceptions import TeaException

    try:
        return call()
    except TeaException as exc:
        raise classify(exc) from None  # its text can hold the signed URL: only the code and message travel
    except Exception as exc:  # noqa: BLE001 - what the SDK raised reading a reply it could not parse
        raise unreadable(exc) from None


def classify(exc: Exception) -> HeadsegError:
    """Turn an SDK exception into a permanent or retriable headseg error, by the service's error code.

    An error reply raises `ClientException`/`ServerException`/`ThrottlingException`, its body in `.data`. The SDK
    wraps whatever else its request raised in an `UnretryableException` (`.inner_exception`): a network failure
    is retriable, anything else (a body that is not JSON, or not an object) is a `BadReply`. Only a code of the
    service's grammar counts: an error reply without one is a `BadReply` (4xx) or a retriable `HTTP5xx`.
    """
    inner = getattr(exc, "inner_exception", None)
    if inner is not None and not getattr(inner, "code", None):
        if is_network_error(inner):  # the request never got an answer (connection refused, reset, timed out)
            return RetriableError(f"SegmentHead call failed: {type(inner).__name__}", code="ConnectionError")
        return unreadable(inner)
    data = getattr(exc, "data", None)
    data = data if isinstance(data, dict) else {}
    code = _first_string(data.get("Code"), data.get("code"), getattr(exc, "code", None))
    code = code if _CODE.fullmatch(code) and code != "None" else ""  # tea-openapi formats a missing Code as 'None'
    message = _text(_first_string(data.get("Message"), data.get("message"), getattr(exc, "message", None)))
    request_id = _first_string(data.get("RequestId"), data.get("requestId"))
    request_id = request_id if _REQUEST_ID.fullmatch(request_id) else ""
    status = getattr(exc, "status_code", None) or getattr(exc, "statusCode", None)
    status = status if type(status) is int else None
    detail = f"SegmentHead {code or f'HTTP {status}'}: {message}" + (f" (request id {request_id})" if request_id else "")
    if "Download" in code:
        # the object was just read, so the service failing to fetch it is a hiccup on its way (or, when every
        # image fails like this, a URL the service cannot reach): retry, never give the upload up for this
        return RetriableError(
            detail + "; if every image fails like this, the service cannot reach the URL: try URL_MODE=public",
            code=code,
        )
    if code.startswith(_PERMANENT_PREFIXES):
        return InvalidImage(detail, code=code)
    if code.startswith(_TRANSIENT_PREFIXES) or (status is not None and status >= 500):
        return RetriableError(detail, code=code or f"HTTP{status}")
    if code.startswith(_CREDENTIAL_PREFIXES):
        return AccessDenied(detail + "; check the credentials and that imageseg is activated", code=code)
    if code:
        return PermanentError(detail, code=code)
    return BadReply(f"SegmentHead answered HTTP {status} without an error code: {message}")


def unreadable(exc: BaseException) -> BadReply:
    """What the SDK raised reading a reply (`RuntimeError` for an error body that is not JSON, `RecursionError`
    for one nested too deep, `AttributeError` for one that is not an object) as a `BadReply`."""
    log.warning("SegmentHead's reply could not be read", extra={"fields": {"sdk_error": type(exc).__name__}})
    return BadReply(f"SegmentHead's reply could not be read ({type(exc).__name__}: {_text(exc, MAX_EXCERPT)})")


def decode_reply(body: object) -> object:
    """A reply's body (bytes) as JSON: `BadReply` when it is over `MAX_REPLY_BYTES`, not JSON, or nested deeper
    than the parser goes (it raises `RecursionError` rather than exhaust the stack)."""
    if not isinstance(body, bytes):
        raise BadReply("SegmentHead's reply has no body")
    if len(body) > MAX_REPLY_BYTES:
        raise BadReply(f"SegmentHead's reply is {len(body)} bytes, more than an answer of {MAX_HEADS} heads takes")
    try:
        return json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise BadReply(f"SegmentHead's reply is not JSON headseg can read ({type(exc).__name__})") from None


def read_reply(body: object) -> Segmentation:
    """The heads of a SegmentHead answer (its JSON body), its shape checked before anything uses it; `BadReply`
    otherwise.

    A `RequestId` (every answer of the API has one), at most `MAX_HEADS` elements, each with `X`, `Y`, `Width`,
    `Height` integers (not booleans) within `MAX_COORDINATE` and an `ImageURL` string of at most
    `MAX_URL_LENGTH`. No `Data` or no `Elements` is an answer without heads. One bad element makes the whole reply
    bad: elements come from one serializer in one reply, so one of them broken means none can be trusted, and
    dropping it would settle the image as done without a head for good, where a retry costs one call. (Boxes of
    the right type that make no sense in the image are `cutouts.valid_heads`' business: dropped or clamped.)
    """
    if not isinstance(body, dict):
        raise BadReply("SegmentHead's reply has no body")
    request_id = body.get("RequestId")
    if not (isinstance(request_id, str) and _REQUEST_ID.fullmatch(request_id)):
        raise BadReply(f"SegmentHead's reply has no usable RequestId ({_kind(request_id)})")
    data = body.get("Data")
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise BadReply(f"SegmentHead's reply has a Data that is {_kind(data)}, not an object")
    elements = data.get("Elements")
    if elements is None:
        elements = []
    if not isinstance(elements, list):
        raise BadReply(f"SegmentHead's reply has Elements that are {_kind(elements)}, not a list")
    if len(elements) > MAX_HEADS:
        raise BadReply(f"SegmentHead's reply lists {len(elements)} heads, more than the {MAX_HEADS} headseg can store")
    return Segmentation(request_id=request_id, heads=[_head(index, element) for index, element in enumerate(elements)])


def _head(index: int, element: object) -> Head:
    if not isinstance(element, dict):
        raise BadReply(f"SegmentHead's reply has an element {index} that is {_kind(element)}, not an object")
    box = []
    for name in _BOX:
        value = element.get(name)
        if type(value) is not int or not -MAX_COORDINATE <= value <= MAX_COORDINATE:
            raise BadReply(f"SegmentHead's reply has element {index}'s {name} {_kind(value)}, not an integer within {MAX_COORDINATE}")
        box.append(value)
    url = element.get("ImageURL")
    if not (isinstance(url, str) and 0 < len(url) <= MAX_URL_LENGTH):
        raise BadReply(f"SegmentHead's reply has element {index}'s ImageURL {_kind(url)}, not a URL of at most {MAX_URL_LENGTH} characters")
    x, y, width, height = box
    return Head(x=x, y=y, width=width, height=height, url=url)


def _kind(value: object) -> str:
    """A short, safe description of an untrusted value for a message: small numbers as they are, else the type."""
    if type(value) is int and abs(value) < 10**12:
        return str(value)
    if isinstance(value, str):
        return f"a string of {len(value)} characters"
    return "missing" if value is None else f"a {type(value).__name__}"


def _first_string(*values: object) -> str:
    return next((value for value in values if isinstance(value, str) and value), "")


def _text(value: str | BaseException, limit: int = MAX_TEXT) -> str:
    """An untrusted text (or an exception's) for a message: at most `limit` characters, control characters
    escaped."""
    if isinstance(value, BaseException):
        try:
            value = str(value)
        except Exception:  # noqa: BLE001 - an exception whose text cannot even be made
            value = type(value).__name__
    cut = value[:limit] + ("..." if len(value) > limit else "")
    return cut if cut.isprintable() else cut.encode("unicode_escape").decode("ascii")
