"""`headseg cut`: rembg's shape (files or folders in, NAME-head-N.png and NAME.json flat in one folder, - for a pipe)
on the function's own checks, normalization and engine."""

from __future__ import annotations

import io
import json
import os
import shutil
import stat

import numpy as np
import pytest
from PIL import Image

from headseg.cli import main
from tests.conftest import SAMPLES, iou, sample_labels


def cut(*args: str) -> int:
    return main(["cut", *args, "--quiet"])


def test_a_folder_gives_each_head_its_png_and_each_image_its_json(tmp_path, capsys):
    out = tmp_path / "out"

    assert cut(str(SAMPLES), "-o", str(out)) == 0

    labels = sample_labels()
    expected = {f"{name.rsplit('.', 1)[0]}-head-{i}.png" for name, boxes in labels.items() for i in range(len(boxes))}
    assert {p.name for p in out.iterdir()} == expected | {f"{name.rsplit('.', 1)[0]}.json" for name in labels}
    for name, boxes in labels.items():
        stem = name.rsplit(".", 1)[0]
        record = json.loads((out / f"{stem}.json").read_text())
        assert record["source"] == str(SAMPLES / name) and record["return_form"] is None
        assert (record["width"], record["height"]) == Image.open(SAMPLES / name).size
        assert [h["file"] for h in record["heads"]] == [f"{stem}-head-{i}.png" for i in range(len(boxes))]
        assert [h["x"] for h in record["heads"]] == sorted(h["x"] for h in record["heads"])  # left to right
        for head in record["heads"]:
            box = [head["x"], head["y"], head["width"], head["height"]]
            assert max(iou(box, label) for label in boxes) >= 0.5
            cutout = Image.open(out / head["file"])
            assert cutout.mode == "RGBA" and cutout.size == (head["width"], head["height"])
            alpha = np.asarray(cutout)[..., 3]
            assert (alpha == 0).mean() > 0.05 and (alpha == 255).mean() > 0.3  # background gone, the head kept
    assert "3 image(s): 6 head(s) cut, 0 failed" in capsys.readouterr().out


def test_masks_and_a_rerun_that_finds_fewer_heads_removes_the_extra_cutouts(tmp_path):
    shutil.copy(SAMPLES / "group.jpg", tmp_path / "photo.jpg")
    assert cut(str(tmp_path / "photo.jpg"), "-o", str(tmp_path / "out")) == 0
    (tmp_path / "out" / "photo-head-9.png").write_bytes(b"someone else's")  # not listed in photo.json: kept
    shutil.copy(SAMPLES / "astronaut.jpg", tmp_path / "photo.jpg")

    assert cut(str(tmp_path / "photo.jpg"), "-o", str(tmp_path / "out"), "--return-form", "mask") == 0

    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["photo-head-0.png", "photo-head-9.png", "photo.json"]
    assert Image.open(tmp_path / "out" / "photo-head-0.png").mode == "L"
    assert json.loads((tmp_path / "out" / "photo.json").read_text())["return_form"] == "mask"


def test_failures_get_one_line_each_in_the_functions_words_and_exit_1(tmp_path, capsys):
    (tmp_path / "empty.jpg").write_bytes(b"")
    (tmp_path / "notes.txt").write_text("not a picture\n")
    (tmp_path / "tiny.png").write_bytes(_png(20, 20))
    shutil.copy(SAMPLES / "astronaut.jpg", tmp_path / "good.jpg")
    names = ["empty.jpg", "notes.txt", "tiny.png", "good.jpg", "missing.jpg"]

    status = cut(*(str(tmp_path / n) for n in names), "-o", str(tmp_path / "out"))

    captured = capsys.readouterr()
    assert status == 1
    assert captured.err.splitlines() == [
        f"{tmp_path / 'empty.jpg'}: empty file (0 bytes)",
        f"{tmp_path / 'notes.txt'}: text, not an image",
        f"{tmp_path / 'tiny.png'}: image is 20x20 px, under SegmentHead's minimum of 33x33",
        f"{tmp_path / 'missing.jpg'}: cannot read: No such file or directory",
    ]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["good-head-0.png", "good.json"]
    assert "5 image(s): 1 head(s) cut, 4 failed" in captured.out


def test_a_pipe_gets_the_one_cutout_and_refuses_a_group(monkeypatch, capsysbinary):
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO((SAMPLES / "astronaut.jpg").read_bytes())))
    assert cut("-", "-o", "-") == 0
    cutout = Image.open(io.BytesIO(capsysbinary.readouterr().out))
    [label] = sample_labels()["astronaut.jpg"]
    assert cutout.mode == "RGBA" and abs(cutout.width - label[2]) < 20 and abs(cutout.height - label[3]) < 20

    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO((SAMPLES / "group.jpg").read_bytes())))
    assert cut("-", "-o", "-") == 1
    captured = capsysbinary.readouterr()
    assert captured.out == b"" and captured.err.decode() == "-: 4 heads found; -o - writes exactly one: give -o DIR for every head\n"


def test_standard_input_into_a_folder_is_named_stdin(monkeypatch, tmp_path):
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO((SAMPLES / "cameraman.png").read_bytes())))
    assert cut("-", "-o", str(tmp_path)) == 0
    record = json.loads((tmp_path / "stdin.json").read_text())
    assert record["source"] == "-" and [h["file"] for h in record["heads"]] == ["stdin-head-0.png"]


def test_cutting_a_folder_into_itself_twice_leaves_its_own_cutouts_alone(tmp_path, capsys):
    for name in ("astronaut.jpg", "cameraman.png"):
        shutil.copy(SAMPLES / name, tmp_path / name)
    shutil.copy(SAMPLES / "astronaut.jpg", tmp_path / "holiday-head-0.png")  # named like a cutout; no holiday.json
    for _ in range(2):
        assert cut(str(tmp_path), "-o", str(tmp_path)) == 0
        assert "3 image(s): 3 head(s) cut, 0 failed" in capsys.readouterr().out
    assert len(list(tmp_path.iterdir())) == 3 + 3 + 3  # the sources, a cutout and a record each


def test_two_images_that_would_share_a_name_are_refused_before_any_work(tmp_path, capsys):
    for folder, suffix in (("a", ".jpg"), ("b", ".png")):
        (tmp_path / folder).mkdir()
        shutil.copy(SAMPLES / "astronaut.jpg", tmp_path / folder / f"x{suffix}")

    assert cut(str(tmp_path / "a"), str(tmp_path / "b"), "-o", str(tmp_path / "out")) == 2

    assert "would both write x.json" in capsys.readouterr().err and not (tmp_path / "out").exists()


def test_files_are_written_with_the_users_umask(tmp_path):
    previous = os.umask(0o022)
    try:
        assert cut(str(SAMPLES / "astronaut.jpg"), "-o", str(tmp_path)) == 0
    finally:
        os.umask(previous)
    assert {p.name: stat.S_IMODE(p.stat().st_mode) for p in tmp_path.iterdir()} == {
        "astronaut-head-0.png": 0o644, "astronaut.json": 0o644,
    }


def test_a_wrong_return_form_is_refused_naming_the_valid_one(monkeypatch, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["cut", str(SAMPLES), "--return-form", "foo"])
    assert exit_.value.code == 2 and "invalid choice: 'foo' (choose from 'mask')" in capsys.readouterr().err

    monkeypatch.setenv("RETURN_FORM", "msk")
    assert main(["cut", str(SAMPLES)]) == 2
    assert "RETURN_FORM 'msk' must be mask (masks), or empty for RGBA cutouts" in capsys.readouterr().err


def _png(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), "white").save(buffer, "PNG")
    return buffer.getvalue()
