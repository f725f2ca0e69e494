"""The README opens with the two commands, and CI runs exactly the second."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_ci_runs_the_readmes_test_command():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = readme.split("```sh\n", 1)[1].split("```", 1)[0].strip().splitlines()
    assert len(block) == 2
    main_job, tests = block
    ci = (ROOT / ".ci" / "run").read_text().strip().splitlines()[-1]
    assert ci == tests
    assert "headseg segment tests/samples" in main_job and "headseg sheet" in main_job
    assert main_job.startswith("python3 -m venv .venv && ") and tests.startswith("python3 -m venv .venv && ")
