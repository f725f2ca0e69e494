"""Benchmark P8's verdicts on issue 24's goals, from made-up measurements: the growth line, a measured size
preferred over the line, and each goal met or not on the figure it names."""

from __future__ import annotations

import pytest

from bench.p8_operations import Run, fit, goals, value_at


def run(objects: int, wall: float, rss_mb: float, oss: int, command: str = "status") -> Run:
    return Run(command, objects, wall, cpu=wall / 2, fakes_cpu=0.0, rss_mb=rss_mb, requests={"LIST": oss, "GET": 0, "invocations": 9})


def test_the_growth_line_goes_through_the_sizes_and_reads_off_any_other():
    line = fit([(1000, 5.0), (10_000, 41.0), (100_000, 401.0)])
    assert line.per_1000 == pytest.approx(4.0) and line.intercept == pytest.approx(1.0)
    assert line.at(10_000_000) == pytest.approx(40_001.0)


def test_a_size_that_ran_is_taken_as_measured_not_fitted():
    runs = [run(1000, 5, 50, 2), run(10_000, 41, 60, 20), run(100_000, 20, 55, 200)]
    assert value_at(runs, 100_000, "wall") == (20, True)
    assert value_at(runs[:2], 100_000, "rss_mb") == (pytest.approx(160.0), False)


def test_todays_shape_meets_no_goal_and_a_flat_listing_only_run_meets_every_one():
    today = [run(1000, 5.1, 55, 853), run(10_000, 45, 89, 8530)]
    assert [met for _, _, met in goals(today)] == [False, False, False, False]
    flat = [run(1000, 0.58, 50, 2 + 30), run(10_000, 1.3, 52, 20 + 30), run(100_000, 8.5, 59, 200 + 30)]  # 10M: 800 s
    verdicts = goals(flat)
    assert [met for _, _, met in verdicts] == [True, True, True, True]
    assert [shown for _, shown, _ in verdicts][1:3] == ["59 MB ÷ 50 MB = 1.18", "8.5 s"]


@pytest.mark.parametrize("field, value", [("oss", 233), ("rss_mb", 61), ("wall", 12.0)])
def test_each_goal_fails_on_its_own_figure(field, value):
    figures = {"wall": 8.5, "rss_mb": 59.0, "oss": 230}
    figures[field] = value
    verdicts = goals([run(1000, 0.58, 50, 32), run(100_000, figures["wall"], figures["rss_mb"], int(figures["oss"]))])
    failed = [goal for goal, _, met in verdicts if not met]
    assert len(failed) == 1 and {"oss": "requests", "rss_mb": "RSS", "wall": "10M"}[field]  # 12 s at 100k meets 30 s, not 15 min at 10M in failed[0]
