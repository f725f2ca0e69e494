"""The `headseg` command: exit status, messages, outputs in the function's layout."""

from __future__ import annotations

import json
import re
import shutil

import pytest

import numpy as np
from PIL import Image

from headseg.cli import main
from tests.conftest import EVENTS, SAMPLES, iou, sample_labels


def test_segment_writes_the_function_layout_and_a_summary(tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["segment", str(SAMPLES), "--out", str(out), "--quiet"]) == 0
    stdout = capsys.readouterr().out
    assert "3 image(s): 3 done, 0 already done, 0 failed" in stdout
    labels = sample_labels()
    for name, boxes in labels.items():
        folder = out / "heads" / "incoming" / "samples" / name
        sidecar = json.loads((folder / "heads.json").read_text())
        assert sidecar["engine"] == "local" and sidecar["source"]["key"] == f"incoming/samples/{name}"
        assert len(sidecar["heads"]) == len(boxes)
        for head in sidecar["heads"]:
            assert (out / head["key"]).is_file()
            assert max(iou([head["x"], head["y"], head["width"], head["height"]], box) for box in boxes) >= 0.5
        assert (out / "incoming" / "samples" / name).read_bytes() == (SAMPLES / name).read_bytes()
    # a second run finds everything done
    assert main(["segment", str(SAMPLES), "--out", str(out), "--quiet"]) == 0
    assert "3 image(s): 0 done, 3 already done, 0 failed" in capsys.readouterr().out


def test_bad_files_fail_with_one_clear_line_each(tmp_path, capsys):
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0" + b"\x00" * 40)
    (tmp_path / "notes.txt").write_text("not a picture")
    (tmp_path / "tiny.png").write_bytes(_png(20, 20))
    shutil.copy(SAMPLES / "astronaut.jpg", tmp_path / "good.jpg")
    paths = [tmp_path / n for n in ("broken.jpg", "notes.txt", "tiny.png", "good.jpg", "missing.jpg")]

    status = main(["segment", *map(str, paths), "--out", str(tmp_path / "out"), "--quiet"])

    captured = capsys.readouterr()
    assert status == 1
    lines = captured.err.strip().splitlines()
    assert lines == [
        f"{tmp_path / 'broken.jpg'}: corrupt JPEG: the header cannot be read (its data does not parse)",
        f"{tmp_path / 'notes.txt'}: text, not an image",
        f"{tmp_path / 'tiny.png'}: image is 20x20 px, under SegmentHead's minimum of 33x33",
        f"{tmp_path / 'missing.jpg'}: cannot read: No such file or directory",
    ]
    assert "Traceback" not in captured.err
    assert "5 image(s): 1 done, 0 already done, 4 failed" in captured.out


def test_mask_form(tmp_path):
    assert main(["segment", str(SAMPLES / "astronaut.jpg"), "--out", str(tmp_path), "--return-form", "mask", "--quiet"]) == 0
    sidecar = json.loads((tmp_path / "heads" / "incoming" / "astronaut.jpg" / "heads.json").read_text())
    mask = Image.open(tmp_path / sidecar["heads"][0]["key"])
    assert mask.mode == "L"


def test_sheet_shows_each_source_with_its_cutouts(tmp_path, capsys):
    main(["segment", str(SAMPLES), "--out", str(tmp_path / "out"), "--quiet"])
    assert main(["sheet", str(tmp_path / "out"), "-o", str(tmp_path / "sheet.png")]) == 0
    sheet = np.asarray(Image.open(tmp_path / "sheet.png").convert("RGB"))
    assert sheet.shape[0] == 3 * 240 + 4 * 12  # one row per source
    # the first row's box outlines are drawn in the first box colour
    assert (np.abs(sheet.astype(int) - (255, 64, 64)).sum(axis=2) == 0).sum() > 100
    assert "3 image(s)" in capsys.readouterr().out


def test_sheet_on_an_empty_folder_says_what_to_do(tmp_path, capsys):
    assert main(["sheet", str(tmp_path), "-o", str(tmp_path / "s.png")]) == 2
    assert "run `headseg segment` first" in capsys.readouterr().err


@pytest.mark.parametrize("event", ["put.json", "eventbridge-put.json"])  # a native OSS trigger's, a CloudEvent
def test_invoke_runs_the_real_handler_on_an_event_file(tmp_path, capsys, monkeypatch, event):
    bucket = tmp_path / "bucket"
    (bucket / "incoming").mkdir(parents=True)
    shutil.copy(SAMPLES / "group.jpg", bucket / "incoming" / "group.jpg")
    assert main(["invoke", str(EVENTS / event), "--bucket-dir", str(bucket)]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["outcomes"][0]["outcome"] == "done" and result["outcomes"][0]["heads"] == 4
    etag = json.loads((bucket / "heads" / "incoming" / "group.jpg" / "heads.json").read_text())["source"]["etag"]
    assert sorted(p.name for p in (bucket / "heads" / "incoming" / "group.jpg").iterdir()) == [
        f"head-{i}-{etag[:8].lower()}.png" for i in range(4)
    ] + ["heads.json"]


def _png(width: int, height: int) -> bytes:
    import io

    buffer = io.BytesIO()
    Image.new("RGB", (width, height), "white").save(buffer, "PNG")
    return buffer.getvalue()


def test_the_local_engine_gets_normalized_images_and_boxes_map_back(tmp_path, capsys):
    # a 2560x2560 phone photo, stored sideways with EXIF orientation 8 (turn 90° anticlockwise to display)
    upright = Image.open(SAMPLES / "astronaut.jpg").convert("RGB").resize((2560, 2560))
    stored = upright.rotate(-90, expand=True)
    exif = stored.getexif()
    exif[0x0112] = 8
    stored.save(tmp_path / "phone.jpg", exif=exif, quality=92)

    assert main(["segment", str(tmp_path / "phone.jpg"), "--out", str(tmp_path / "out"), "--quiet"]) == 0

    sidecar = json.loads((tmp_path / "out" / "heads" / "incoming" / "phone.jpg" / "heads.json").read_text())
    assert sidecar["normalization"]["steps"] == ["EXIF orientation 8 applied", "downscaled from 2560x2560 to 1999x1999"]
    [head] = sidecar["heads"]
    label = [v * 5 for v in sample_labels()["astronaut.jpg"][0]]  # 512 -> 2560
    assert iou([head["x"], head["y"], head["width"], head["height"]], label) >= 0.5
    assert not (tmp_path / "out" / "heads" / ".scratch").exists()  # the normalized copy is gone


#: Per command, options and the default their help must show (None: any default, worded by the command).
HELP_DEFAULTS: dict[str, list[tuple[str, str | None]]] = {
    "cut": [("--output", "the current folder")],
    "segment": [("--engine", "local")],
    "invoke": [("--engine", "local"), ("--timeout", "120")],
    "sheet": [("--output", None)],
    "serve": [("--host", "127.0.0.1"), ("--port", "8080")],
    "backfill": [("--function", "headseg"), ("--engine", "cloud"), ("--concurrency", "4"), ("--oss-endpoint", "https://oss-cn-shanghai.aliyuncs.com")],
    "replay": [("--function", "headseg"), ("--concurrency", "4")],
    "doctor": [("--function", "headseg")],
    "status": [("--oss-endpoint", "https://oss-cn-shanghai.aliyuncs.com"), ("--workers", "1")],
    "migrate": [("--oss-endpoint", "https://oss-cn-shanghai.aliyuncs.com"), ("--workers", "1")],
    "package": [("--target", "src/python"), ("--code", "src")],
    "event": [("--bucket", "s.yaml's, HEADSEG_BUCKET"), ("--output", "print it")],
    "ram": [("--s-yaml", "./s.yaml")],
}


def _help(capsys, *argv: str) -> str:
    with pytest.raises(SystemExit):
        main([*argv, "--help"])
    return capsys.readouterr().out


def _option_help(text: str, option: str) -> str:
    """The help of `option` in a --help text, its lines joined."""
    blocks = re.split(r"\n(?=  -)", text.split("options:", 1)[1])
    [block] = [b for b in blocks if re.match(rf"\s*(-\w[^,]*, )?{option}\b", b)]
    return " ".join(block.split())


def test_every_commands_help_shows_its_defaults(capsys):
    commands = re.findall(r"^    (\w+)\s", _help(capsys), flags=re.M)
    assert sorted(commands) == sorted(HELP_DEFAULTS)  # a new command gets its line above
    for command, options in HELP_DEFAULTS.items():
        text = _help(capsys, command)
        assert "(default: None)" not in text and "(default: False)" not in text, command
        for option, default in options:
            shown = _option_help(text, option)
            assert (f"(default: {default})" if default else "(default: ") in shown, (command, shown)


def test_a_wrong_setting_is_refused_naming_the_valid_values(capsys, monkeypatch, tmp_path):
    with pytest.raises(SystemExit) as exit_:
        main(["segment", str(SAMPLES), "--out", str(tmp_path), "--return-form", "foo"])
    assert exit_.value.code == 2 and "invalid choice: 'foo' (choose from 'mask')" in capsys.readouterr().err
    for variable, value, words in [
        ("RETURN_FORM", "msk", "RETURN_FORM 'msk' must be mask (masks), or empty for RGBA cutouts"),
        ("ENGINE", "gpu", "ENGINE='gpu': expected one of cloud, local"),
    ]:
        monkeypatch.setenv(variable, value)
        assert main(["segment", str(SAMPLES), "--out", str(tmp_path), "--quiet"]) == 2
        assert words in capsys.readouterr().err
        monkeypatch.delenv(variable)
    assert not (tmp_path / "heads").exists()


def test_sheet_draws_a_rotated_photo_as_displayed_under_its_upright_boxes(tmp_path):
    upright = Image.open(SAMPLES / "astronaut.jpg").convert("RGB")
    stored = upright.rotate(-90, expand=True)  # stored sideways; EXIF orientation 8 turns it back for display
    exif = stored.getexif()
    exif[0x0112] = 8
    stored.save(tmp_path / "phone.jpg", exif=exif, quality=95)
    assert main(["segment", str(tmp_path / "phone.jpg"), "--out", str(tmp_path / "out"), "--quiet"]) == 0

    assert main(["sheet", str(tmp_path / "out"), "-o", str(tmp_path / "sheet.png")]) == 0

    sheet = np.asarray(Image.open(tmp_path / "sheet.png").convert("RGB")).astype(int)
    [head] = json.loads((tmp_path / "out" / "heads" / "incoming" / "phone.jpg" / "heads.json").read_text())["heads"]
    scale = 240 / upright.height
    thumb = np.asarray(upright.resize((round(upright.width * scale), 240))).astype(int)
    x0, y0 = round((head["x"] + head["width"] / 4) * scale), round((head["y"] + head["height"] / 4) * scale)
    x1, y1 = round((head["x"] + 3 * head["width"] / 4) * scale), round((head["y"] + 3 * head["height"] / 4) * scale)
    drawn = sheet[12 + y0 : 12 + y1, 12 + x0 : 12 + x1]  # the thumbnail starts GAP (12 px) in
    assert np.abs(drawn - thumb[y0:y1, x0:x1]).mean() < 12  # the head's pixels, not the sideways photo's


def test_a_long_sheet_is_paged_and_a_shorter_rerun_removes_the_pages_it_no_longer_makes(tmp_path, capsys):
    bucket = tmp_path / "bucket"
    _results(bucket, 45)

    assert main(["sheet", str(bucket), "-o", str(tmp_path / "s.png")]) == 0

    heights = [Image.open(tmp_path / f"s-{n}.png").height for n in (1, 2, 3)]
    assert heights == [20 * 240 + 21 * 12, 20 * 240 + 21 * 12, 5 * 240 + 6 * 12] and not (tmp_path / "s.png").exists()
    assert capsys.readouterr().out.count(" image(s), ") == 3
    assert main(["sheet", str(bucket), "-o", str(tmp_path / "s.png"), "--per-page", "45"]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bucket", "s.png"]
    with pytest.raises(SystemExit):
        main(["sheet", str(bucket), "--per-page", "0"])
    assert "--per-page: expected a whole number of sources, at least 1, not '0'" in capsys.readouterr().err


def _results(bucket, count: int) -> None:
    """`count` sources with a sidecar each and no head, as a directory bucket holds them."""
    from headseg.function.sidecar import Sidecar, Source

    for n in range(count):
        key = f"incoming/{n:03}.png"
        (bucket / "incoming").mkdir(parents=True, exist_ok=True)
        (bucket / "heads" / key).mkdir(parents=True)
        Image.new("RGB", (120, 90), (n, 100, 200)).save(bucket / key)
        sidecar = Sidecar(Source("local", key, "E" * 32, 1, 120, 90), "r", None, "local", [])
        (bucket / "heads" / key / "heads.json").write_bytes(sidecar.to_json())
