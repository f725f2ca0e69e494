"""The imageseg SDK's client, handing SegmentHead's reply body over as the bytes that came.

The SDK's models map a reply lossily: `from_map` reads any falsy value as an empty object, so `"Data": []` or
`"Elements": ""` would read as an answer without heads. `replies.read_reply` reads the body instead. The advance
variant (`segment_head_advance`) calls `segment_head_with_options` once its upload is done, so overriding that
one public method serves both URL modes; the request is the one the SDK's own method sends (same action,
version, query, signature), through the SDK's public `call_api`. Imported lazily: the SDK's import is heavy.
"""

from __future__ import annotations

from typing import Any

from alibabacloud_imageseg20191230 import models
from alibabacloud_imageseg20191230.client import Client
from alibabacloud_openapi_util.client import Client as OpenApiUtilClient
from alibabacloud_tea_openapi import models as open_api_models
from alibabacloud_tea_util.models import RuntimeOptions


class RawSegmentHeadClient(Client):
    """The imageseg client whose SegmentHead answers `{"body": bytes, "headers": ..., "statusCode": ...}`; error
    replies raise as they do with the SDK's own method."""

    def segment_head_with_options(self, request: models.SegmentHeadRequest, runtime: RuntimeOptions) -> dict[str, Any]:
        fields = (("ImageURL", request.image_url), ("ReturnForm", request.return_form))
        query = OpenApiUtilClient.query({name: value for name, value in fields if value is not None})
        params = open_api_models.Params(
            action="SegmentHead",
            version="2019-12-30",
            protocol="HTTPS",
            pathname="/",
            method="POST",
            auth_type="AK",
            style="RPC",
            req_body_type="formData",
            body_type="byte",
        )
        return self.call_api(params, open_api_models.OpenApiRequest(query=query), runtime)
