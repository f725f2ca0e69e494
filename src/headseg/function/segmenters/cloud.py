"""The cloud segmenter: imageseg SegmentHead through the official SDK, on a signed URL of the object.

Everything SegmentHead sends is untrusted, and meets one wall whatever its shape:
- the SDK call and its answer go through `replies` (`ask`, `decode_reply`, `read_reply`): whatever the call
  raises becomes a headseg error, and the answer is bounded and shape-checked before anything uses it;
- cutouts are fetched from the address `hosts.check_cutout_url` resolved and approved (`hosts.open_target`),
  size and time bounded; whatever the HTTP stack raises on the way is a retriable `ConnectionError`.
Retries are not done here but by the pipeline, against the invocation's budget.
"""

from __future__ import annotations

import http.client
import io
import logging
from typing import Any
from urllib.parse import urlsplit

from headseg.function.config import Config, UrlMode
from headseg.function.credentials import Credentials
from headseg.function.errors import BudgetExhausted, CutoutExpired, PermanentError, RetriableError
from headseg.function.hosts import Resolver, check_cutout_url, open_target, system_resolve
from headseg.function.retry import CALL_TIMEOUT, CONNECT_TIMEOUT, Budget
from headseg.function.segmenters import Head, Segmentation, SegmentInput, Takes, max_cutout_bytes
from headseg.function.segmenters.replies import ask, decode_reply, read_reply

log = logging.getLogger(__name__)

MAX_CUTOUT_BYTES = 64 * 1024 * 1024  # an uncompressed RGBA PNG of 2000x2000 is 16 MB


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
            reply = ask(lambda: client.segment_head_advance(advance, runtime))
        else:
            request = models.SegmentHeadRequest(image_url=image.url, return_form=return_form)
            reply = ask(lambda: client.segment_head_with_options(request, runtime))
        return read_reply(decode_reply(reply.get("body")))

    def warm(self) -> None:
        """The SDK's modules and client, and the download session, built before the first event needs them. (The
        SDK's own HTTP session darabonba opens on the client's first call, an SSL context parsing a CA bundle:
        the first event pays that, ~20 ms over HTTP and ~40 over HTTPS, as darabonba offers no public way to open
        it sooner.)"""
        from alibabacloud_imageseg20191230 import models  # noqa: F401
        from alibabacloud_tea_util.models import RuntimeOptions  # noqa: F401

        self._sdk()
        self._downloads()

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

            from headseg.function.segmenters._imageseg import RawSegmentHeadClient

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
                # BytesIO hands its buffer over as the result (getvalue() copies nothing while no view is held):
                # a download holds its cutout once, as the in-flight budget counts it (a bytearray made bytes
                # held it twice)
                data = io.BytesIO()
                # read1: whatever has arrived (up to 64 KiB), so the checks below run as a trickle goes on
                while block := response.read1(1 << 16, decode_content=False):
                    data.write(block)
                    if data.tell() > limit:
                        raise PermanentError(
                            f"cutout is over {limit} bytes, more than a {head.width}x{head.height} PNG can take",
                            code="CutoutTooLarge",
                        )
                    if budget.remaining() <= 0:
                        raise BudgetExhausted("cutout download: the body did not arrive within the invocation's time")
                return data.getvalue()
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
