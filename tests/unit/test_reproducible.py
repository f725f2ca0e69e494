"""The package zip depends on the files' paths, bytes and modes only, as fc3's does: never on when or in which order
they were written, nor on what .fcignore leaves out; the install records that differ per build are dropped."""

from __future__ import annotations

import os
import random
import tempfile
import zipfile
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from headseg.ops import reproducible

NAMES = st.text(alphabet="abcdefgh_", min_size=1, max_size=6)
TREES = st.dictionaries(
    st.lists(NAMES, min_size=1, max_size=3).map(lambda parts: "/".join(parts) + ".py"), st.binary(max_size=64), min_size=1, max_size=8
).filter(lambda tree: not any(other.startswith(name.removesuffix(".py") + "/") for name in tree for other in tree))


def write_tree(root: Path, tree: dict[str, bytes], order: list[str], mtime: float) -> None:
    for name in order:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(tree[name])
        path.chmod(0o644)
        os.utime(path, (mtime, mtime))


@settings(max_examples=40, deadline=None)
@given(tree=TREES, seed=st.integers(0, 2**16), mtimes=st.tuples(st.floats(1e8, 2e9), st.floats(1e8, 2e9)))
def test_two_writes_of_the_same_files_zip_alike_whatever_their_times_and_order(tree, seed, mtimes):
    order = sorted(tree)
    shuffled = order[:]
    random.Random(seed).shuffle(shuffled)
    with tempfile.TemporaryDirectory() as first, tempfile.TemporaryDirectory() as second:
        write_tree(Path(first) / "code", tree, order, mtimes[0])
        write_tree(Path(second) / "code", tree, shuffled, mtimes[1])
        one = reproducible.write_zip(Path(first) / "code", Path(first) / "package.zip")
        two = reproducible.write_zip(Path(second) / "code", Path(second) / "package.zip")
        assert one == two and one[0] == len(tree)
        with zipfile.ZipFile(Path(first) / "package.zip") as archive:
            entries = archive.infolist()
            assert [e.filename for e in entries] == sorted(tree, key=lambda name: name.split("/"))
            assert {e.date_time for e in entries} == {reproducible.FC3_ZIP_TIME}
            assert all(archive.read(e) == tree[e.filename] for e in entries)


def test_a_changed_byte_or_mode_changes_the_zip_and_what_fcignore_leaves_out_is_not_in_it(tmp_path):
    code = tmp_path / "code"
    write_tree(code, {"index.py": b"print(1)\n", "headseg/ops/tool.py": b"x = 1\n", "python/lib.py": b"y = 2\n"}, ["index.py", "headseg/ops/tool.py", "python/lib.py"], 1e9)
    (code / ".fcignore").write_text("headseg/ops/\n")
    count, digest = reproducible.write_zip(code, code / "package.zip")  # a zip written inside the code is not zipped
    with zipfile.ZipFile(code / "package.zip") as archive:
        assert archive.namelist() == [".fcignore", "index.py", "python/lib.py"] and count == 3
    (code / "package.zip").unlink()
    (code / "python" / "lib.py").write_bytes(b"y = 3\n")
    assert reproducible.write_zip(code, tmp_path / "b.zip")[1] != digest
    (code / "python" / "lib.py").write_bytes(b"y = 2\n")
    assert reproducible.write_zip(code, tmp_path / "c.zip")[1] == digest
    (code / "python" / "lib.py").chmod(0o600)  # fc3 records each file's mode
    assert reproducible.write_zip(code, tmp_path / "d.zip")[1] != digest


def test_modes_follow_executability_not_the_umask(tmp_path):
    (tmp_path / "pkg").mkdir(mode=0o700)
    (tmp_path / "pkg" / "mod.py").write_text("")
    (tmp_path / "pkg" / "mod.py").chmod(0o600)
    (tmp_path / "pkg" / "ext.so").write_text("")
    (tmp_path / "pkg" / "ext.so").chmod(0o700)
    reproducible.normalize_modes(tmp_path / "pkg")
    modes = {p.name: p.stat().st_mode & 0o777 for p in [tmp_path / "pkg", *(tmp_path / "pkg").iterdir()]}
    assert modes == {"pkg": 0o755, "mod.py": 0o644, "ext.so": 0o755}


def test_install_records_are_dropped_with_their_record_lines(tmp_path):
    info = tmp_path / "six-1.17.0.dist-info"
    info.mkdir()
    kept = ["six-1.17.0.dist-info/METADATA,sha256=abc,10\n", "six.py,sha256=def,20\n", "six-1.17.0.dist-info/RECORD,,\n"]
    (info / "uv_cache.json").write_text('{"timestamp": 1}')
    (info / "direct_url.json").write_text('{"url": "file:///tmp/headseg-wheels-x/six.whl"}')
    (info / "METADATA").write_text("Name: six\n")
    (info / "RECORD").write_text(
        kept[0] + "six-1.17.0.dist-info/uv_cache.json,sha256=ghi,16\n" + kept[1] + "six-1.17.0.dist-info/direct_url.json,sha256=jkl,9\n" + kept[2]
    )
    untouched = tmp_path / "oss2-2.19.1.dist-info"
    untouched.mkdir()
    (untouched / "RECORD").write_text("oss2/api.py,sha256=x,1\n")
    reproducible.drop_install_records(tmp_path)
    assert sorted(p.name for p in info.iterdir()) == ["METADATA", "RECORD"]
    assert (info / "RECORD").read_text() == "".join(kept)
    assert (untouched / "RECORD").read_text() == "oss2/api.py,sha256=x,1\n"
