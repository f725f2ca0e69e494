"""What SegmentHead answers, read as untrusted input: one wall whatever its shape.

- `ask` is the one place the SDK is called: whatever the call raises becomes a headseg error there. An error
  reply is classified by the service's `Code`, never by HTTP status alone (throttling comes back as HTTP 400
  `Throttling.User`); no answer is a retriable `ConnectionError`; anything else the SDK raised while reading an
  error reply (not JSON, not an object) is a retriable `BadReply`.
- `decode_reply` and `read_reply` read the answer's body (the SDK hands it over as bytes: `_imageseg`), bounded,
  and check its shape before anything uses it: `BadReply` unless it is JSON of at most `MAX_REPLY_BYTES` and
  every value is of the type and within the bounds the API documents. (The SDK reads the whole body before
  headseg sees it and offers no public way to cap that read: what is bounded is what headseg parses and keeps.)
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from typing import Any

from headseg.function.errors import AccessDenied, HeadsegError, InvalidImage, PermanentError, RetriableError
from headseg.function.hosts import MAX_URL_LENGTH
from headseg.function.layout import MAX_HEADS
from headseg.function.segmenters import Head, Segmentation
from headseg.function.tea import is_network_error

log = logging.getLogger(__name__)

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


def ask(call: Callable[[], Any]) -> Any:
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
