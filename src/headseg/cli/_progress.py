"""The CLI's progress bars (tqdm, on stderr): a dependency of the command line, never of the function."""

from __future__ import annotations

import sys
from typing import Any, Iterable

from headseg.function.errors import ConfigError


def progress_bar(iterable: Iterable[Any] | None = None, *, total: int | None = None, unit: str, quiet: bool) -> Any:
    """A tqdm bar over `iterable` (or counted by `.update`), disabled by `quiet`."""
    try:
        from tqdm import tqdm
    except ImportError:
        raise ConfigError("the command line needs tqdm: pip install 'headseg[cli]'") from None
    return tqdm(iterable, total=total, unit=unit, disable=quiet, file=sys.stderr)
