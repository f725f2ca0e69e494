"""The evaluation set's scoring rule and its fetcher (archives of each kind, checked by hash), offline."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import tarfile
import zipfile

import pytest

from bench import evalset
from bench.engine_eval import interval, score


def test_a_box_finds_the_head_whose_centre_it_holds_and_at_most_one():
    heads = ((50, 50), (60, 55))  # two centres close together
    assert score([(40, 40, 30, 30)], heads, ()) == (1, 0)  # one box, one head found, the other missed
    assert score([(40, 40, 30, 30), (55, 50, 10, 10)], heads, ()) == (2, 0)


def test_boxes_on_nothing_are_false_and_on_optional_heads_are_neither():
    assert score([(0, 0, 10, 10)], (), ()) == (0, 1)
    assert score([(0, 0, 10, 10)], (), ((5, 5),)) == (0, 0)
    assert score([(40, 40, 30, 30), (42, 42, 26, 26)], ((50, 50),), ()) == (1, 0)  # a duplicate on the head is not false


def test_the_recall_interval_is_wilsons():
    assert interval(0, 10) == pytest.approx((0.0, 0.2775), abs=1e-4)  # none found: still up to 0.28
    assert interval(10, 10) == pytest.approx((0.7225, 1.0), abs=1e-4)
    assert interval(35, 39) == pytest.approx((0.7642, 0.9594), abs=1e-4)  # one head is 2.6 points of recall
    assert interval(0, 0) == (0.0, 1.0)


def photo(archive: str, data: bytes, member: str, blob: bytes) -> evalset.Photo:
    return evalset.Photo(
        id="p", archive=archive, archive_sha256=hashlib.sha256(data).hexdigest(), member=member,
        sha256=hashlib.sha256(blob).hexdigest(), licence="CC0", kinds=("negative",), heads=(), optional=(),
    )


def tar_of(member: str, blob: bytes) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as tar:
        info = tarfile.TarInfo(member)
        info.size = len(blob)
        tar.addfile(info, io.BytesIO(blob))
    return out.getvalue()


def deb_of(data_tar: bytes) -> bytes:
    def entry(name: str, body: bytes) -> bytes:
        header = f"{name + '/':<16}{0:<12}{0:<6}{0:<6}{100644:<8}{len(body):<10}`\n".encode()
        return header + body + (b"\n" if len(body) % 2 else b"")

    return b"!<arch>\n" + entry("debian-binary", b"2.0\n") + entry("control.tar.xz", b"x") + entry("data.tar.gz", data_tar)


@pytest.mark.parametrize("kind", ["whl", "tar.gz", "deb"])
def test_fetch_takes_the_member_out_of_each_kind_of_archive_and_checks_both_hashes(tmp_path, kind):
    blob = b"\xff\xd8 a photo"
    if kind == "whl":
        out = io.BytesIO()
        with zipfile.ZipFile(out, "w") as z:
            z.writestr("pkg/data/photo.jpg", blob)
        data, member = out.getvalue(), "pkg/data/photo.jpg"
    elif kind == "tar.gz":
        data, member = tar_of("pkg-1.0/photo.jpg", blob), "pkg-1.0/photo.jpg"
    else:
        data, member = deb_of(tar_of("./usr/share/backgrounds/photo.jpg", blob)), "usr/share/backgrounds/photo.jpg"
    archive = tmp_path / f"pkg.{kind}"
    archive.write_bytes(data)
    cache = tmp_path / "cache"
    assert evalset.fetch(photo(archive.as_uri(), data, member, blob), cache) == blob
    archive.unlink()  # the cached copy serves from now on
    assert evalset.fetch(photo(archive.as_uri(), data, member, blob), cache) == blob
    with pytest.raises(RuntimeError, match="SHA-256"):
        evalset.fetch(photo(archive.as_uri(), data, member, b"another photo"), cache)


def test_the_check_sheet_shows_each_label_on_its_photos_own_pixels(tmp_path, monkeypatch):
    from PIL import Image

    from bench.label_grid import CHECK_TILE, REQUIRED, check_sheet

    picture = Image.new("RGB", (1000, 800), (0, 0, 0))
    picture.paste((255, 255, 255), (890, 90, 910, 110))  # a 20 px "head" at (900, 100), past a 1000 px preview's scale
    blob = io.BytesIO()
    picture.save(blob, "PNG")
    data = tar_of("pkg-1.0/photo.png", blob.getvalue())
    archive = tmp_path / "pkg.tar.gz"
    archive.write_bytes(data)
    monkeypatch.setenv("HEADSEG_EVAL_CACHE", str(tmp_path / "cache"))
    labelled = photo(archive.as_uri(), data, "pkg-1.0/photo.png", blob.getvalue())
    sheet = check_sheet([dataclasses.replace(labelled, heads=((900.0, 100.0),)), labelled])
    assert sheet.size == (6 * CHECK_TILE, CHECK_TILE)  # one crop: the photo without labels adds none
    middle = CHECK_TILE // 2
    assert sheet.getpixel((middle, middle)) == REQUIRED  # the cross on the label
    assert sheet.getpixel((middle + 10, middle + 10)) == (255, 255, 255)  # the head around it, at 160 px a side
    assert sheet.getpixel((middle + 40, middle + 40)) == (0, 0, 0)
