"""Listing a prefix in key order (a stand-in until the parallel lister lands)."""

from __future__ import annotations

from collections.abc import Iterator

from headseg.function.storage import ObjectInfo, Storage


def listing(storage: Storage, prefix: str, workers: int = 1, start_after: str = "") -> Iterator[ObjectInfo]:
    """Every object under `prefix`, in key order."""
    return storage.list(prefix)
