"""What a file that is not an image is called, from its bytes: one message wherever it is met."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from headseg.function import images, nonimage
from headseg.function.errors import InvalidImage


@pytest.mark.parametrize(
    "data, size, words",
    [
        (b"", 0, "empty file (0 bytes)"),
        (b"not a picture\n", None, "text, not an image"),
        ("我的照片\r\n".encode("utf-16"), None, "text, not an image"),
        (b"\xef\xbb\xbfname,x,y\n", None, "text, not an image"),
        (b"<!DOCTYPE html><html><body>404</body></html>", None, "text, not an image"),
        (b'<svg xmlns="http://www.w3.org/2000/svg"/>', None, "SVG (a vector drawing in text), not an image"),
        (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj", None, "a PDF document, not an image"),
        (b"PK\x03\x04" + b"\x00" * 40, None, "a ZIP archive (or an Office document), not an image"),
        (b"\x00\x00\x00\x18ftypmp42", None, "a video (MP4, QuickTime or another ISO media file), not an image"),
        (b"\x00\x01\x02\x03\xfe", None, "not an image: its first bytes (00 01 02 03 fe) match no image format"),
    ],
)
def test_a_non_image_is_called_what_it_is(data, size, words):
    assert nonimage.describe(data, size) == words


def test_text_cut_inside_a_character_by_a_partial_read_is_still_text():
    head = ("é" * 5000).encode()[: nonimage.TEXT_PROBE + 1]  # the probe ends inside a two-byte character
    assert nonimage.describe(head, 10_000) == "text, not an image"


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=64) | st.text(max_size=64).map(str.encode))
def test_any_bytes_that_are_no_image_get_one_line_of_words(data):
    if images.sniff(data) is not None:
        return
    words = nonimage.describe(data)
    assert words and "\n" not in words and "Content-Type" not in words
    assert words == "empty file (0 bytes)" if not data else words.endswith("not an image") or "match no image format" in words
    with pytest.raises(InvalidImage) as error:  # `headseg serve` and the function word it alike
        images.read_header(data, complete=True)
    assert error.value.message == words
