"""SegmentHead's result URLs: each cutout behind a signed URL that expires, served by the server that made it.

As the service's cutouts live on its OSS bucket: the URL is `{base}/results/{name}.png?Expires=...&
OSSAccessKeyId=...&Signature=...` (OSS's query-string signature: HMAC-SHA1 over the method, the expiry and the
path), valid `RESULT_TTL` seconds by the store's clock. A tampered, unsigned or expired URL gets OSS's XML
`AccessDenied`/`SignatureDoesNotMatch`; only the last `MAX_RESULTS` cutouts are kept.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import threading
import uuid
from typing import Callable
from urllib.parse import quote
from xml.sax.saxutils import escape

from headseg.local.acs3 import HttpRequest, Reply, request_id

RESULT_PREFIX = "/results/"
RESULT_TTL = 30 * 60
RESULT_ACCESS_KEY = "LTAIsegmentheadresults"
MAX_RESULTS = 2000


class ResultStore:
    """Cutouts by name, published and served. `base_url()`: the server's own URL; `clock`: what URLs expire by."""

    def __init__(self, base_url: Callable[[], str], clock: Callable[[], float], host_id: str) -> None:
        self.files: dict[str, bytes] = {}  # name -> PNG, oldest first
        self.ttl = RESULT_TTL
        self._base_url, self._clock, self._host_id = base_url, clock, host_id
        self._secret = secrets.token_bytes(16)
        self._lock = threading.Lock()

    def publish(self, png: bytes) -> str:
        """Keep `png`; its signed URL."""
        name = f"{uuid.uuid4().hex}.png"
        with self._lock:
            while len(self.files) >= MAX_RESULTS:
                del self.files[next(iter(self.files))]
            self.files[name] = png
        expires = int(self._clock() + self.ttl)
        signature = quote(self._signature(RESULT_PREFIX + name, expires), safe="")
        return f"{self._base_url()}{RESULT_PREFIX}{name}?Expires={expires}&OSSAccessKeyId={RESULT_ACCESS_KEY}&Signature={signature}"

    def serve(self, request: HttpRequest, authenticated: Callable[[HttpRequest], None]) -> Reply:
        """Answer a GET (or HEAD) of a result URL; `authenticated(request)` once its signature checks out."""
        query = dict(request.query)
        expires, signature = query.get("Expires", ""), query.get("Signature", "")
        if not (expires.isdigit() and signature and query.get("OSSAccessKeyId") == RESULT_ACCESS_KEY):
            return self._error(403, "AccessDenied", "You have no right to access this object because of bucket acl.")
        if self._clock() > int(expires):
            return self._error(403, "AccessDenied", "Request has expired.")
        if not hmac.compare_digest(signature, self._signature(request.path, int(expires))):
            message = "The request signature we calculated does not match the signature you provided."
            return self._error(403, "SignatureDoesNotMatch", message)
        authenticated(request)
        with self._lock:
            body = self.files.get(request.path[len(RESULT_PREFIX) :])
        if body is None:
            return self._error(404, "NoSuchKey", "The specified key does not exist.")
        return Reply(200, body, {"Content-Type": "image/png", "x-oss-request-id": request_id()})

    def _signature(self, path: str, expires: int) -> str:
        digest = hmac.new(self._secret, f"GET\n\n\n{expires}\n{path}".encode(), hashlib.sha1).digest()
        return base64.b64encode(digest).decode()

    def _error(self, status: int, code: str, message: str) -> Reply:
        """OSS's XML error format."""
        rid = request_id()
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>\n<Error>\n'
            f"  <Code>{code}</Code>\n  <Message>{escape(message)}</Message>\n"
            f"  <RequestId>{rid}</RequestId>\n  <HostId>{self._host_id}</HostId>\n</Error>\n"
        )
        return Reply(status, body.encode(), {"Content-Type": "application/xml", "x-oss-request-id": rid})
