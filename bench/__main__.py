"""Run every benchmark and write bench/results.md: `python -m bench`."""

from __future__ import annotations

import platform
import sys
import time
from pathlib import Path

from bench import cutout_quality, engine_eval, local_engine, p1_handler, p2_cold_start, p3_memory, p4_package, p6_backfill, p7_deadline, p8_operations

BENCHMARKS = [
    ("P1 handler overhead", p1_handler),
    ("P2 cold start, P5 CRC cost", p2_cold_start),
    ("P3 memory", p3_memory),
    ("P4 package", p4_package),
    ("P6 backfill rate", p6_backfill),
    ("P7 deadline", p7_deadline),
    ("P8 operations at bucket scale", p8_operations),
    ("Local engine", local_engine),
    ("Local engine on the evaluation set", engine_eval),
    ("Local engine's cutouts against outlined heads", cutout_quality),
]


def main() -> int:
    sections = [
        "# Benchmark results",
        "",
        f"Written by `python -m bench` on {time.strftime('%Y-%m-%d')}, Python {platform.python_version()}, "
        f"{platform.machine()}. Every figure is a ratio measured side by side in the same run.",
    ]
    for title, module in BENCHMARKS:
        print(f"== {title}", flush=True)
        rows = module.run()
        print("\n".join(rows), flush=True)
        sections += ["", f"## {title}", "", (module.__doc__ or "").strip(), "", *rows]
    (Path(__file__).parent / "results.md").write_text("\n".join(sections) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
