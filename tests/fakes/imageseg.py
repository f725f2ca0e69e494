"""A fake Alibaba Cloud imageseg endpoint: SegmentHead over the real wire protocol, with signed result URLs.

Point the real SDK at it with `Config(endpoint=fake.address, protocol="http", region_id="cn-shanghai", ...)`.
Every call is checked the way the API gateway checks it: route (`POST /`, `x-acs-action`, `x-acs-version`),
the ACS3-HMAC-SHA256 signature recomputed over all signed headers, body hash, date skew, nonce reuse and
(when configured) the STS token. Errors come back in the gateway's JSON error format, so the SDK raises
`ClientException`/`ServerException` with `.code` set.

SegmentHead then downloads `ImageURL` (127.0.0.1/localhost only), enforces the documented input limits and
"detects" heads deterministically: pixels near `MARKER_COLOUR` form the head mask, split into heads by runs of
non-empty columns (so heads stacked in the same columns count as one). Each head gets a PNG cutout (RGBA, or
an "L" mask for ReturnForm=mask) behind a signed, expiring URL served by the fake itself, OSS style.

Clocks: `x-acs-date` is checked against real time (the SDK stamps real time); `clock_offset` only moves the
clock used for result-URL expiry, so a test can let cutouts expire and still call SegmentHead again.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
import json
import secrets
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from http.client import HTTPException
from urllib.parse import quote, urlsplit
from xml.sax.saxutils import escape

from PIL import Image, ImageChops

from headseg.local import acs3

from ._server import FakeServer, Fault, Request, Response

# -- error codes and limits ---------------------------------------------------------------------------------------
DOWNLOAD_ERROR = "InvalidImage.Download"  # ImageURL could not be fetched (403/404/connection error)
INVALID_FORMAT = "InvalidImage.Format"
INVALID_SIZE = "InvalidImage.Size"
INVALID_RESOLUTION = "InvalidImage.Resolution"
INVALID_CONTENT = "InvalidImage.Content"  # undecodable or truncated
MISSING_IMAGE_URL = "MissingImageURL"
INVALID_PARAMETER = "InvalidParameter"
THROTTLING_USER = "Throttling.User"
SIGNATURE_MISMATCH = "SignatureDoesNotMatch"
INCOMPLETE_SIGNATURE = "IncompleteSignature"
ACCESS_KEY_NOT_FOUND = "InvalidAccessKeyId.NotFound"
NONCE_USED = "SignatureNonceUsed"
TIMESTAMP_EXPIRED = "InvalidTimeStamp.Expired"
TIMESTAMP_FORMAT = "InvalidTimeStamp.Format"
MISSING_TOKEN = "MissingSecurityToken"
TOKEN_MISMATCH = "InvalidSecurityToken.MismatchWithAccessKey"
ACTION_NOT_FOUND = "InvalidAction.NotFound"
INVALID_VERSION = "InvalidVersion"
SERVER_ERROR_CODES = {500: "InternalError", 503: "ServiceUnavailable"}

API_VERSION = "2019-12-30"
HOST_ID = "imageseg.cn-shanghai.aliyuncs.com"
MAX_IMAGE_BYTES = 3 * 1024 * 1024
MIN_SIDE, MAX_SIDE = 32, 2000  # exclusive: larger than 32x32, smaller than 2000x2000
ALLOWED_HOSTS = frozenset({"127.0.0.1", "localhost"})
FETCH_TIMEOUT = 5.0
MARKER_COLOUR = (255, 0, 255)
MARKER_TOLERANCE = 60  # per channel; survives JPEG artefacts, rejects the edge blend with the background
RESULT_PREFIX = "/results/"
RESULT_ACCESS_KEY = "LTAIfakeimagesegresult"

_MAGIC = {b"\xff\xd8\xff": "JPEG", b"\x89PNG\r\n\x1a\n": "PNG", b"BM": "BMP"}


class ApiError(Exception):
    """An error answer: HTTP status plus the service's error code."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status, self.code, self.message = status, code, message


def is_segment_call(request: Request) -> bool:
    """Fault matcher: SegmentHead API calls."""
    return request.method == "POST" and request.path == "/"


def is_result_download(request: Request) -> bool:
    """Fault matcher: downloads of result PNGs."""
    return request.method in ("GET", "HEAD") and request.path.startswith(RESULT_PREFIX)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None  # a 3xx becomes an HTTPError: the fake never follows a redirect off 127.0.0.1


_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirect)


# -- state ------------------------------------------------------------------------------------------------------------
class FakeImageseg(FakeServer):
    """SegmentHead behind a verifying gateway. `credentials`: access key id -> secret; `tokens`: access key id ->
    the STS token it must present."""

    name = "imageseg"

    def __init__(self, credentials: dict[str, str], tokens: dict[str, str] | None = None) -> None:
        super().__init__()
        self.credentials = dict(credentials)
        self.tokens = dict(tokens or {})
        self.qps_limit: float | None = None  # token bucket (burst = max(1, qps)); beyond it: Throttling.User
        self.clock_offset = 0.0  # seconds added to the result-URL clock
        self.result_ttl = 1800
        self.fetched_urls: list[str] = []
        self.results: dict[str, bytes] = {}  # result file name -> PNG bytes
        self._state = threading.Lock()
        self._nonces: set[tuple[str, str]] = set()
        self._bucket: tuple[float, float] | None = None  # (tokens, monotonic time)
        self._qps_throttled = 0
        self._throttle_faults: list[Fault] = []
        self._url_secret = secrets.token_bytes(16)

    def now(self) -> float:
        """The clock result URLs expire by."""
        return time.time() + self.clock_offset

    @property
    def calls(self) -> int:
        """SegmentHead requests received, whatever their answer."""
        return len(self.logged(is_segment_call))

    @property
    def served(self) -> int:
        """SegmentHead calls answered 200 (the billed ones)."""
        return sum(1 for entry in self.logged(is_segment_call) if entry.status == 200)

    @property
    def throttled(self) -> int:
        """SegmentHead calls answered with a throttling error (unbilled): QPS limit plus `throttle()` faults."""
        with self._state:
            return self._qps_throttled + sum(fault.hits for fault in self._throttle_faults)

    # -- fault helpers (on top of `inject`) ---------------------------------------------------------------------
    def throttle(
        self, times: int = 1, *, status: int = 400, code: str = THROTTLING_USER, retry_after_ms: int | None = None
    ) -> Fault:
        """The next `times` calls are throttled (gateway style: 400 Throttling.User; or e.g. 429 "Throttling").
        `retry_after_ms` adds `x-acs-retry-after`, which makes the SDK raise ThrottlingException."""
        headers = {"x-acs-retry-after": str(retry_after_ms)} if retry_after_ms else {}
        response = _error_response(status, code, "Request was denied due to user flow control.", headers)
        fault = self.inject(Fault("status", is_segment_call, times, response))
        with self._state:
            self._throttle_faults.append(fault)
        return fault

    def server_error(self, times: int = 1, status: int = 500, code: str | None = None) -> Fault:
        """The next `times` calls fail with 500 InternalError / 503 ServiceUnavailable (or the given code)."""
        code = code or SERVER_ERROR_CODES.get(status, "InternalError")
        response = _error_response(status, code, "The request has failed due to a temporary failure of the server.")
        return self.inject(Fault("status", is_segment_call, times, response))

    def invalid_image(self, times: int = 1, code: str = INVALID_CONTENT) -> Fault:
        """The next `times` calls reject the image whatever it is."""
        response = _error_response(400, code, "The image cannot be processed.")
        return self.inject(Fault("status", is_segment_call, times, response))

    def slow(self, seconds: float, times: int = 1) -> Fault:
        """The next `times` calls are answered only after `seconds` (set a short SDK read_timeout to time out)."""
        return self.inject(Fault("delay", is_segment_call, times, seconds=seconds))

    def drop(self, times: int = 1) -> Fault:
        """The next `times` calls get their connection closed without an answer."""
        return self.inject(Fault("drop", is_segment_call, times))

    def stall(
        self, seconds: float, times: int = 1, *, match: Callable[[Request], bool] = is_segment_call,
        after_auth: bool = True,
    ) -> Fault:
        """The next `times` calls get no answer for `seconds`, then a closed connection; by default only once the
        gateway accepted them (signature, token, nonce), and SegmentHead then never runs. `match=is_result_download`
        stalls cutout downloads instead (after their URL signature checked out)."""
        return self.inject(Fault("stall", match, times, seconds=seconds, after_auth=after_auth))

    def trickle(
        self, seconds: float, chunk: int = 1, times: int = 1, *, match: Callable[[Request], bool] = is_segment_call
    ) -> Fault:
        """The next `times` answers (calls, or with `match=is_result_download` cutouts) send their body `chunk`
        bytes every `seconds`."""
        return self.inject(Fault("trickle", match, times, seconds=seconds, chunk=chunk))

    # -- HTTP glue ----------------------------------------------------------------------------------------------
    def handle(self, request: Request) -> Response:
        if is_result_download(request):
            return self._serve_result(request)
        if not is_segment_call(request):
            self.fail(f"no route for {request.method} {request.raw_path}")
            return _error_response(404, ACTION_NOT_FOUND, "Specified api is not found, please check your url.")
        try:
            return _json_response(200, self._segment_head(request), {})
        except ApiError as err:
            return _error_response(err.status, err.code, err.message)

    def _segment_head(self, request: Request) -> dict:
        self._check_action(request)
        access_key_id = self._verify_signature(request)
        self._check_token(request, access_key_id)
        self._use_nonce(access_key_id, request.header("x-acs-signature-nonce"))
        self.authenticated(request)  # an after-auth "stall" happens here
        if not self._take_qps_token():
            raise ApiError(400, THROTTLING_USER, "Request was denied due to user flow control.")
        image_url = request.param("ImageURL")
        if not image_url:
            raise ApiError(400, MISSING_IMAGE_URL, "ImageURL is mandatory for this action.")
        image = _decode(self._download(image_url))
        mask, boxes = find_heads(image)
        as_mask = request.param("ReturnForm") == "mask"
        elements = [self._publish(image, mask, box, as_mask) for box in boxes]
        return {"RequestId": _request_id(), "Data": {"Elements": elements}}

    def _download(self, url: str) -> bytes:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not url.isascii():
            raise ApiError(400, INVALID_PARAMETER, f"ImageURL must be an http(s) URL without Chinese characters: {url}")
        if parts.hostname not in ALLOWED_HOSTS:
            self.fail(f"SegmentHead was asked to fetch a non-local ImageURL: {url}")
            raise ApiError(400, DOWNLOAD_ERROR, f"Failed to download the image: host {parts.hostname} refused.")
        with self._state:
            self.fetched_urls.append(url)
        try:
            with _OPENER.open(url, timeout=FETCH_TIMEOUT) as reply:
                return reply.read()  # all of it, as the service does, before judging the size
        except (urllib.error.URLError, HTTPException, OSError) as exc:
            raise ApiError(400, DOWNLOAD_ERROR, f"Failed to download the image from ImageURL: {exc}") from exc

    def _publish(self, image: Image.Image, mask: Image.Image, box: tuple[int, int, int, int], as_mask: bool) -> dict:
        x, y, width, height = box
        area = (x, y, x + width, y + height)
        alpha = mask.crop(area)
        if as_mask:
            cutout = alpha
        else:
            cutout = image.crop(area).convert("RGBA")
            cutout.putalpha(alpha)
        png = io.BytesIO()
        cutout.save(png, "PNG", compress_level=0)  # the real service's cutouts are uncompressed too
        name = f"{uuid.uuid4().hex}.png"
        with self._state:
            self.results[name] = png.getvalue()
        return {"X": x, "Y": y, "Width": width, "Height": height, "ImageURL": self._result_url(name)}

    def _result_url(self, name: str) -> str:
        expires = int(self.now() + self.result_ttl)
        signature = quote(self._result_signature(RESULT_PREFIX + name, expires), safe="")
        query = f"Expires={expires}&OSSAccessKeyId={RESULT_ACCESS_KEY}&Signature={signature}"
        return f"{self.url}{RESULT_PREFIX}{name}?{query}"

    def _result_signature(self, path: str, expires: int) -> str:
        digest = hmac.new(self._url_secret, f"GET\n\n\n{expires}\n{path}".encode(), hashlib.sha1).digest()
        return base64.b64encode(digest).decode()

    def _serve_result(self, request: Request) -> Response:
        expires, signature = request.param("Expires", ""), request.param("Signature", "")
        if not (expires.isdigit() and signature and request.param("OSSAccessKeyId") == RESULT_ACCESS_KEY):
            return _oss_error(403, "AccessDenied", "You have no right to access this object because of bucket acl.")
        if self.now() > int(expires):
            return _oss_error(403, "AccessDenied", "Request has expired.")
        if not hmac.compare_digest(signature, self._result_signature(request.path, int(expires))):
            message = "The request signature we calculated does not match the signature you provided."
            return _oss_error(403, SIGNATURE_MISMATCH, message)
        self.authenticated(request)
        with self._state:
            body = self.results.get(request.path[len(RESULT_PREFIX) :])
        if body is None:
            return _oss_error(404, "NoSuchKey", "The specified key does not exist.")
        return Response(200, body, {"Content-Type": "image/png", "x-oss-request-id": _request_id()})

    # -- signature check ----------------------------------------------------------------------------------------
    def _check_action(self, request: Request) -> None:
        action, version = request.header("x-acs-action"), request.header("x-acs-version")
        if action != "SegmentHead":
            self.fail(f"unexpected action {action!r}: {request.method} {request.raw_path}")
            raise ApiError(404, ACTION_NOT_FOUND, f"Specified api is not found: {action}.")
        if version != API_VERSION:
            self.fail(f"unexpected version {version!r} for SegmentHead")
            raise ApiError(400, INVALID_VERSION, "Specified parameter Version is not valid.")

    def _verify_signature(self, request: Request) -> str:
        """Recompute the ACS3 signature over the signed headers; returns the caller's access key id."""
        try:
            return acs3.verify(
                request.method, request.path, request.query, request.headers, request.body, self.credentials.get
            )
        except acs3.SignatureError as err:
            raise ApiError(err.status, err.code, err.message) from err

    def _check_token(self, request: Request, access_key_id: str) -> None:
        expected, token = self.tokens.get(access_key_id), request.header("x-acs-security-token")
        if expected is not None and not token:
            raise ApiError(400, MISSING_TOKEN, "SecurityToken is mandatory for this action.")
        if token and token != expected:
            raise ApiError(400, TOKEN_MISMATCH, "Specified SecurityToken mismatch with the AccessKey.")

    def _use_nonce(self, access_key_id: str, nonce: str) -> None:
        with self._state:
            if (access_key_id, nonce) in self._nonces:
                raise ApiError(400, NONCE_USED, "Specified signature nonce was used already.")
            self._nonces.add((access_key_id, nonce))

    def _take_qps_token(self) -> bool:
        if self.qps_limit is None:
            return True
        with self._state:
            capacity, now = max(1.0, self.qps_limit), time.monotonic()
            tokens, then = self._bucket or (capacity, now)
            tokens = min(capacity, tokens + (now - then) * self.qps_limit)
            allowed = tokens >= 1.0
            self._bucket = (tokens - 1.0 if allowed else tokens, now)
            self._qps_throttled += not allowed
            return allowed


def _request_id() -> str:
    return str(uuid.uuid4()).upper()


def _json_response(status: int, body: dict, headers: dict[str, str]) -> Response:
    headers = {"Content-Type": "application/json;charset=utf-8", "x-acs-request-id": body["RequestId"], **headers}
    return Response(status, json.dumps(body).encode(), headers)


def _error_response(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> Response:
    body = {
        "RequestId": _request_id(),
        "HostId": HOST_ID,
        "Code": code,
        "Message": message,
        "Recommend": f"https://api.aliyun.com/troubleshoot?q={code}&product=imageseg",
    }
    return _json_response(status, body, headers or {})


def _oss_error(status: int, code: str, message: str) -> Response:
    request_id = _request_id()
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n<Error>\n'
        f"  <Code>{code}</Code>\n  <Message>{escape(message)}</Message>\n"
        f"  <RequestId>{request_id}</RequestId>\n  <HostId>{HOST_ID}</HostId>\n</Error>\n"
    )
    return Response(status, body.encode(), {"Content-Type": "application/xml", "x-oss-request-id": request_id})


# -- detection --------------------------------------------------------------------------------------------------------
def _decode(data: bytes) -> Image.Image:
    """Apply SegmentHead's input limits and fully decode the image."""
    if len(data) > MAX_IMAGE_BYTES:
        raise ApiError(400, INVALID_SIZE, f"The image is larger than {MAX_IMAGE_BYTES} bytes.")
    fmt = next((name for magic, name in _MAGIC.items() if data.startswith(magic)), None)
    if fmt is None:
        raise ApiError(400, INVALID_FORMAT, "The image format is not supported: use JPEG, PNG or BMP.")
    try:
        image = Image.open(io.BytesIO(data), formats=[fmt])
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise ApiError(400, INVALID_CONTENT, f"The image cannot be decoded: {exc}") from exc
    width, height = image.size
    if not (MIN_SIDE < width < MAX_SIDE and MIN_SIDE < height < MAX_SIDE):
        message = f"The image is {width}x{height}: each side must be over {MIN_SIDE} and under {MAX_SIDE} pixels."
        raise ApiError(400, INVALID_RESOLUTION, message)
    try:
        image.load()
    except (OSError, SyntaxError, ValueError) as exc:
        raise ApiError(400, INVALID_CONTENT, f"The image cannot be decoded: {exc}") from exc
    return image.convert("RGB")


def find_heads(image: Image.Image) -> tuple[Image.Image, list[tuple[int, int, int, int]]]:
    """The head mask ("L", 0/255) and one (x, y, width, height) box per run of non-empty columns, left to right."""
    near = [band.point(_near_table(value)) for band, value in zip(image.split(), MARKER_COLOUR)]
    mask = ImageChops.darker(ImageChops.darker(near[0], near[1]), near[2])
    width, height = mask.size
    # Column profile: the float mean of each column is > 0 exactly where the column has a mask pixel.
    profile = mask.convert("F").resize((width, 1), Image.Resampling.BOX)
    columns = profile.point(lambda value: value * 4096).convert("L").tobytes() + b"\0"
    boxes, start = [], None
    for x, value in enumerate(columns):
        if value and start is None:
            start = x
        elif not value and start is not None:
            left, top, right, bottom = mask.crop((start, 0, x, height)).getbbox()
            boxes.append((start + left, top, right - left, bottom - top))
            start = None
    return mask, boxes


def _near_table(value: int) -> list[int]:
    return [255 if abs(level - value) <= MARKER_TOLERANCE else 0 for level in range(256)]
