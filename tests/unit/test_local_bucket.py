"""A folder standing in for a bucket holds what the function would write there, and nothing a local command
made for a person: the README's first commands leave `out/` a bucket that `status` reads without `--bucket`."""

from __future__ import annotations

import os
from pathlib import Path

from PIL import Image

from headseg.cli import main
from tests.tooling import status_report

SAMPLES = Path(__file__).parents[1] / "samples"


def test_segment_then_sheet_leaves_the_bucket_folder_a_bucket_and_status_reads_it(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["segment", str(SAMPLES), "--out", "out", "--quiet"]) == 0
    bucket = sorted(p.relative_to("out").as_posix() for p in Path("out").rglob("*") if p.is_file())
    assert main(["sheet", "out"]) == 0
    assert capsys.readouterr().out.splitlines()[-1].startswith("sheet.png: 3 image(s), ")
    assert Image.open("sheet.png").size[1] > 3 * 240  # beside the folder, not in it
    assert sorted(p.relative_to("out").as_posix() for p in Path("out").rglob("*") if p.is_file()) == bucket

    assert main(["status", "--bucket-dir", "out", "--json", "--quiet"]) == 0  # no --bucket for a folder
    report = status_report(capsys.readouterr().out)
    assert report["bucket"] == "out"  # a folder goes by its path
    assert report["by"] == "marks"  # segment stamped the folder it began: every result in it has its mark
    assert report["counts"] == {"done": 3, "pending": 0, "stale": 0, "failed": 0, "retriable": 0, "orphans": 0, "errors": 0}


def test_the_sheet_of_the_working_folder_goes_beside_it(tmp_path, monkeypatch, capsys):
    (tmp_path / "out").mkdir()
    monkeypatch.chdir(tmp_path / "out")
    assert main(["segment", str(SAMPLES / "astronaut.jpg"), "--out", ".", "--quiet"]) == 0
    assert main(["sheet", "."]) == 0
    assert (tmp_path / "sheet.png").is_file() and not (tmp_path / "out" / "sheet.png").exists()
    assert capsys.readouterr().out.splitlines()[-1].startswith(f"{tmp_path / 'sheet.png'}: 1 image(s)")
    assert main(["sheet", ".", "-o", "mine.png"]) == 0 and os.path.isfile("mine.png")  # inside only when asked
