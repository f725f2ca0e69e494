"""`headseg serve`'s upload form, for a person with curl rather than the SDK: POST /segment with the image itself.

    curl -F image=@photo.jpg http://127.0.0.1:8080/segment
    curl --data-binary @photo.jpg 'http://127.0.0.1:8080/segment?ReturnForm=mask'

The image is a multipart form's file field (or its field named `image`), or else the whole body; ReturnForm
comes from the query or a form field. It is served only when signatures are not checked: SegmentHead has no
such route, and the SDK never sends it.
"""

from __future__ import annotations

from email import policy
from email.message import EmailMessage
from email.parser import BytesParser

from headseg.local.acs3 import ApiError, HttpRequest

UPLOAD_PATH = "/segment"
UPLOAD_USAGE = f"POST {UPLOAD_PATH} with the image as a form file field (curl -F image=@photo.jpg) or as the body"


def read_upload(request: HttpRequest) -> tuple[bytes, dict[str, str]]:
    """The image an upload carries, and its parameters (the query's, then the form's other fields)."""
    params = dict(request.query)
    if request.headers.get("content-type", "").startswith("multipart/form-data"):
        image, fields = _form(request.headers["content-type"], request.body)
        params.update(fields)
    else:
        image = request.body
    if not image:
        raise ApiError(400, "MissingImage", f"The request carries no image: send {UPLOAD_USAGE}.")
    return image, params


def _form(content_type: str, body: bytes) -> tuple[bytes, dict[str, str]]:
    """The file of a multipart form (the first field with a file name, else the field `image`) and its other
    fields as text."""
    message = BytesParser(policy=policy.HTTP).parsebytes(f"Content-Type: {content_type}\r\n\r\n".encode() + body)
    if not isinstance(message, EmailMessage) or not message.is_multipart():
        raise ApiError(400, "InvalidParameter", f"The multipart form cannot be read: send {UPLOAD_USAGE}.")
    image: bytes | None = None
    fields: dict[str, str] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        if not isinstance(payload, bytes):
            continue
        if image is None and (part.get_filename() or name == "image"):
            image = payload
        elif isinstance(name, str):
            fields[name] = payload.decode("utf-8", "replace")
    if image is None:
        raise ApiError(400, "MissingImage", f"The form has no file field: send {UPLOAD_USAGE}.")
    return image, fields
