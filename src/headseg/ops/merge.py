"""One order for two listings: sources, and the results (or marks) kept in a folder named after each source.

Both listings come in key order, but a source's folder sorts by `key + "/"`, not by `key`: "a" < "a-b" while
"a-b/" < "a/", and a folder's entries interleave with its subfolders' ("a/b/x" between "a/error.json" and
"a/heads.json"). So both sides are put in the order of `rank` (where a folder ends), each by a stack of keys
that are prefixes of one another, at most as deep as a key is long, never by holding a listing; then merged.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from headseg.function.storage import ObjectInfo


def rank(key: str) -> str:
    """The order of the merge: where a source's results folder sorts (its key, "/", then past any name)."""
    return key + "/\U0010ffff"


def ranked(infos: Iterable[ObjectInfo]) -> Iterator[ObjectInfo]:
    """Objects listed in key order, put in `rank` order: a key is held while the keys that follow it extend it
    by a character up to "/" (they rank before it); each held key is a prefix of the next, so few are held."""
    held: list[ObjectInfo] = []
    for info in infos:
        while held and not _extends(info.key, held[-1].key):
            yield held.pop()
        held.append(info)
    while held:
        yield held.pop()


def _extends(key: str, base: str) -> bool:
    return key.startswith(base) and len(key) > len(base) and key[len(base)] <= "/"


Group = tuple[str, list[ObjectInfo]]  # (source key, the results or marks listed in its folder)


def grouped(infos: Iterable[ObjectInfo], root: str, skip: tuple[str, ...]) -> Iterator[Group]:
    """Results (or marks) listed in key order, by source (the key's folder past `root`), in `rank` order: a
    folder ends when the listing leaves it, its subfolders' entries interleaved. Keys under `skip` are passed."""
    open_: list[Group] = []
    for info in infos:
        if info.key.startswith(skip):
            continue
        source, slash, _ = info.key[len(root) :].rpartition("/")
        if not slash or not source:
            continue  # not in a source's folder (the stamp, a stray object)
        while open_ and source != open_[-1][0] and not source.startswith(open_[-1][0] + "/"):
            yield open_.pop()
        if open_ and open_[-1][0] == source:
            open_[-1][1].append(info)
        else:
            open_.append((source, [info]))
    while open_:
        yield open_.pop()


def merged(sources: Iterator[ObjectInfo], groups: Iterator[Group]) -> Iterator[tuple[str, ObjectInfo | None, list[ObjectInfo]]]:
    """(key, the source or None, its results) for every key either side has, in `rank` order."""
    end = ("\U0010ffff" * 2,)  # ranks after any key's
    source, group = next(sources, None), next(groups, None)
    left = rank(source.key) if source is not None else end[0]
    right = rank(group[0]) if group is not None else end[0]
    while source is not None or group is not None:
        if left < right:
            assert source is not None
            yield source.key, source, []
            source = next(sources, None)
            left = rank(source.key) if source is not None else end[0]
        elif right < left:
            assert group is not None
            yield group[0], None, group[1]
            group = next(groups, None)
            right = rank(group[0]) if group is not None else end[0]
        else:
            assert source is not None and group is not None
            yield source.key, source, group[1]
            source, group = next(sources, None), next(groups, None)
            left = rank(source.key) if source is not None else end[0]
            right = rank(group[0]) if group is not None else end[0]
