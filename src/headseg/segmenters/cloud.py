"""The cloud segmenter: imageseg SegmentHead through the official SDK, on a signed URL of the object.

Errors are classified by the service's `Code`, never by HTTP status alone (throttling comes back as
HTTP 400 `Throttling.User`). Retries are not done here but by the pipeline, against the invocation's budget.
"""

from __future__ import annotations

import io
from typing import Any
from urllib.parse import urlsplit

from headseg.config import Config, UrlMode
from headseg.credentials import Credentials
from headseg.errors import AccessDenied, BudgetExhausted, CutoutExpired, HeadsegError, InvalidImage, PermanentError, RetriableError
from headseg.hosts import check_cutout_url
from headseg.retry import Budget
from headseg.segmenters import Head, Segmentation, SegmentInput, Takes, max_cutout_bytes
from headseg.tea import is_network_error

MAX_CUTOUT_BYTES = 64 * 1024 * 1024  # an uncompressed RGBA PNG of 2000x2000 is 16 MB
CALL_TIMEOUT = 10.0  # the SDK's default read timeout, capped by the budget
CONNECT_TIMEOUT = 5.0

_PERMANENT_PREFIXES = ("InvalidImage", "InvalidParameter", "InvalidFile", "MissingImageURL", "InvalidUrl")
_TRANSIENT_PREFIXES = ("Throttling", "InternalError", "ServiceUnavailable", "Timeout", "ServerBusy")
_CREDENTIAL_PREFIXES = ("InvalidAccessKeyId", "SignatureDoesNotMatch", "InvalidSecurityToken", "Forbidden", "NoPermission")


class CloudSegmenter:
    """SegmentHead on Alibaba Cloud. One instance per credentials; the SDK client is built lazily."""

    name = "cloud"

    def __init__(self, config: Config, credentials: Credentials) -> None:
        self._config = config
        self.takes = Takes.BYTES if config.url_mode is UrlMode.ADVANCE else Takes.URL
        self._credentials = credentials
        self._client: Any = None
        self._session: Any = None

    # -- SegmentHead -----------------------------------------------------------------------------------------
    def segment(self, image: SegmentInput, return_form: str | None, budget: Budget) -> Segmentation:
        from alibabacloud_imageseg20191230 import models
        from alibabacloud_tea_util.models import RuntimeOptions
        from Tea.exceptions import TeaException

        runtime = RuntimeOptions(
            read_timeout=int(budget.timeout(CALL_TIMEOUT) * 1000),
            connect_timeout=int(budget.timeout(CONNECT_TIMEOUT) * 1000),
        )
        client = self._sdk()
        try:
            if self.takes is Takes.BYTES:
                assert image.data is not None, "URL_MODE=advance uploads the bytes"
                advance = models.SegmentHeadAdvanceRequest(image_urlobject=io.BytesIO(image.data), return_form=return_form)
                response = client.segment_head_advance(advance, runtime)
            else:
                request = models.SegmentHeadRequest(image_url=image.url, return_form=return_form)
                response = client.segment_head_with_options(request, runtime)
        except TeaException as exc:
            raise classify(exc) from None  # its text can hold the signed URL: only the code and message travel
        body = response.body
        elements = (body.data.elements if body.data else None) or []
        heads = [Head(x=e.x, y=e.y, width=e.width, height=e.height, url=e.image_url) for e in elements]
        return Segmentation(request_id=body.request_id or "", heads=heads)

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
        import requests

        if self._session is None:
            self._session = requests.Session()
        return self._session

    def _sdk(self) -> Any:
        if self._client is None:
            from alibabacloud_imageseg20191230.client import Client
            from alibabacloud_tea_openapi import models as open_api_models

            endpoint = urlsplit(self._config.imageseg_url)
            self._client = Client(
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
        """Download a temporary cutout from an allowed host: no redirects followed, size and time bounded, PNG
        checked by the caller."""
        import requests

        if head.png is not None:
            return head.png
        if not head.url:
            raise PermanentError("SegmentHead returned a head without a cutout URL", code="NoCutoutURL")
        check_cutout_url(head.url, self._config.allowed_cutout_hosts)
        try:
            with self._downloads().get(
                head.url, allow_redirects=False, stream=True, timeout=(CONNECT_TIMEOUT, budget.timeout(CALL_TIMEOUT))
            ) as response:
                if response.status_code in (403, 404):
                    raise CutoutExpired(f"cutout URL answered HTTP {response.status_code}: expired or gone")
                if response.is_redirect:  # only the URL the service returned, never where it points to
                    raise PermanentError(
                        f"cutout URL answered a redirect (HTTP {response.status_code}); not followed",
                        code="CutoutRedirect",
                    )
                if response.status_code >= 500 or response.status_code == 429:
                    raise RetriableError(f"cutout download: HTTP {response.status_code}", code=f"HTTP{response.status_code}")
                if response.status_code != 200:
                    raise PermanentError(f"cutout download: HTTP {response.status_code}", code=f"HTTP{response.status_code}")
                # BytesIO hands its buffer over as the result (getvalue() copies nothing while no view is held):
                # a download holds its cutout once, as the in-flight budget counts it (a bytearray made bytes
                # held it twice)
                data = io.BytesIO()
                limit = min(MAX_CUTOUT_BYTES, max_cutout_bytes(head))
                for block in response.iter_content(1 << 16):
                    data.write(block)
                    if data.tell() > limit:
                        raise PermanentError(
                            f"cutout is over {limit} bytes, more than a {head.width}x{head.height} PNG can take",
                            code="CutoutTooLarge",
                        )
                    if budget.remaining() <= 0:
                        raise BudgetExhausted("cutout download: the body did not arrive within the invocation's time")
                return data.getvalue()
        except requests.RequestException as exc:
            raise RetriableError(f"cutout download failed: {type(exc).__name__}", code="ConnectionError") from None


def classify(exc: Exception) -> HeadsegError:
    """Turn an SDK exception into a permanent or retriable headseg error, by the service's error code.

    The SDK wraps whatever its request raised in an `UnretryableException`: a network failure is retriable;
    anything else is a bug, re-raised as it is.
    """
    inner = getattr(exc, "inner_exception", None)
    if inner is not None and not is_network_error(inner) and not getattr(inner, "code", None):
        raise inner
    code = getattr(exc, "code", None) or ""
    message = str(getattr(exc, "message", "") or "")
    data = getattr(exc, "data", None)
    request_id = data.get("RequestId", "") if isinstance(data, dict) else ""
    status = getattr(exc, "status_code", None) or getattr(exc, "statusCode", None)
    detail = f"SegmentHead {code or type(exc).__name__}: {message}" + (f" (request id {request_id})" if request_id else "")
    if "Download" in code:
        # the object was just read, so the service failing to fetch it is a hiccup on its way (or, when every
        # image fails like this, a URL the service cannot reach): retry, never give the upload up for this
        return RetriableError(
            detail + "; if every image fails like this, the service cannot reach the URL: try URL_MODE=public",
            code=code,
        )
    if code.startswith(_PERMANENT_PREFIXES):
        return InvalidImage(detail, code=code)
    if code.startswith(_TRANSIENT_PREFIXES) or (isinstance(status, int) and status >= 500):
        return RetriableError(detail, code=code or f"HTTP{status}")
    if code.startswith(_CREDENTIAL_PREFIXES):
        return AccessDenied(detail + "; check the credentials and that imageseg is activated", code=code)
    if code:
        return PermanentError(detail, code=code)
    # no service code: the request never got an answer (connection refused, reset, timed out)
    return RetriableError(f"SegmentHead call failed: {type(inner or exc).__name__}", code="ConnectionError")
