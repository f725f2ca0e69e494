"""Sorting more rows than memory should hold: an external merge sort with bounded memory.

Rows (tuples, ordered as tuples) arrive in any order and are gathered `run_rows` at a time; each full chunk is
sorted and spilled to a run file in a private temporary folder. A chunk that starts after the last run's last
row extends that run instead of starting a new one, so rows that arrive already in order make one run, and
rows that fit in one chunk make none. The runs are merged with `heapq.merge`, at most `fan_in` at once (more
are merged into longer runs first), each read a batch at a time: at most `run_rows` rows are held while rows
arrive, and about as many while they are merged (a batch of `run_rows // fan_in` from each open run), whatever
the total. Runs are pickled batches of rows: written and read back by this process only.
"""

from __future__ import annotations

import heapq
import pickle
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import ExitStack
from pathlib import Path
from types import TracebackType
from typing import IO, Any

FAN_IN = 64  # runs merged at once (each an open file)

Row = tuple[Any, ...]


class ExternalSort:
    """`extend` with rows, then iterate `merged()` once. Use it as a context manager: leaving it removes the
    temporary folder (made in `spill_dir`, or the system's, at the first spill), read to the end or not."""

    def __init__(self, run_rows: int, spill_dir: str | None = None, fan_in: int = FAN_IN) -> None:
        if run_rows < 1 or fan_in < 2:
            raise ValueError("run_rows must be at least 1 and fan_in at least 2")
        self.run_rows, self.fan_in, self.batch = run_rows, fan_in, max(1, run_rows // fan_in)
        self.spilled = 0  # run files written, those of intermediate merges included
        self._spill_dir = spill_dir
        self._folder: tempfile.TemporaryDirectory[str] | None = None
        self._rows: list[Row] = []
        self._runs: list[Path] = []
        self._last: Row = ()  # the last row of the last run, which a chunk starting after it extends

    def __enter__(self) -> ExternalSort:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None) -> None:
        if self._folder is not None:
            self._folder.cleanup()

    def extend(self, rows: Iterable[Row]) -> None:
        for row in rows:
            self._rows.append(row)
            if len(self._rows) >= self.run_rows:
                self._spill()

    def merged(self) -> Iterator[Row]:
        """Every row, in order."""
        if not self._runs:  # everything fit in memory
            self._rows.sort()
            yield from self._rows
            return
        self._spill()
        runs = self._runs
        while len(runs) > self.fan_in:
            runs = [self._write(self._merge(runs[i : i + self.fan_in])) for i in range(0, len(runs), self.fan_in)]
        yield from self._merge(runs)

    def _spill(self) -> None:
        if not self._rows:
            return
        self._rows.sort()
        if self._runs and self._last < self._rows[0]:
            with self._runs[-1].open("ab") as handle:
                self._dump(self._rows, handle)
        else:
            self._runs.append(self._write(self._rows))
        self._last, self._rows = self._rows[-1], []

    def _write(self, rows: Iterable[Row]) -> Path:
        if self._folder is None:
            self._folder = tempfile.TemporaryDirectory(prefix="headseg-sort-", dir=self._spill_dir)
        self.spilled += 1
        path = Path(self._folder.name) / f"run-{self.spilled}"
        with path.open("wb") as handle:
            self._dump(rows, handle)
        return path

    def _dump(self, rows: Iterable[Row], handle: IO[bytes]) -> None:
        batch: list[Row] = []
        for row in rows:
            batch.append(row)
            if len(batch) == self.batch:
                pickle.dump(batch, handle, pickle.HIGHEST_PROTOCOL)
                batch = []
        if batch:
            pickle.dump(batch, handle, pickle.HIGHEST_PROTOCOL)

    def _merge(self, runs: list[Path]) -> Iterator[Row]:
        """The runs' rows in order; each run's file is removed once read."""
        with ExitStack() as stack:
            yield from heapq.merge(*(_read_run(stack.enter_context(run.open("rb"))) for run in runs))
        for run in runs:
            run.unlink()


def _read_run(handle: IO[bytes]) -> Iterator[Row]:
    while True:
        try:
            batch = pickle.load(handle)  # a run this process wrote (`ExternalSort._dump`)
        except EOFError:
            return
        yield from batch
