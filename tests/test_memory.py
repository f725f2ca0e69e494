"""Memory: what an accepted input costs to decode is estimated from its header and must fit the function's
memory with margin; what cannot fit is refused before any pixel is decoded, with the limit and the remedy."""

from __future__ import annotations

from tests.conftest import Cloud
from tests.corpus import png_claiming


def test_an_image_too_costly_to_decode_at_this_memory_is_refused_from_its_header(cloud: Cloud):
    etag = cloud.upload("incoming/huge.png", png_claiming(10_000, 10_000), "image/png")  # exactly MAX_PIXELS
    outcome = cloud.invoke_key("incoming/huge.png", etag)["outcomes"][0]  # FC's context: 512 MB
    assert (outcome["outcome"], outcome["code"]) == ("failed", "InvalidImage.DecodeCost")
    assert "at 512 MB function memory (MEMORY_FRACTION=0.6)" in outcome["reason"]
    assert "raise memorySize in s.yaml" in outcome["reason"]
    assert cloud.read_json("heads/incoming/huge.png/error.json")["code"] == "InvalidImage.DecodeCost"
    assert cloud.imageseg.calls == 0


def test_more_memory_lets_the_same_image_past_the_gate(cloud: Cloud):
    cloud.configure(MEMORY_MB="4096")
    etag = cloud.upload("incoming/huge.png", png_claiming(10_000, 10_000), "image/png")
    outcome = cloud.invoke_key("incoming/huge.png", etag)["outcomes"][0]
    assert outcome["code"] == "InvalidImage.Corrupt"  # decoded (its pixel data is a stub), not refused unread
