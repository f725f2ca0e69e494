"""What makes two builds of the code package byte-identical, and the zip that proves it.

fc3 uploads the code only when the CRC-64 of its zip differs from the deployed one. It zips the code directory
itself (`@serverless-devs/zip`: the files `.fcignore` keeps, walked in sorted order, every entry's time set to
2023-11-01, each file's mode from `lstat`), so the zip is the same exactly when the directory holds the same
files with the same bytes and modes. A build leaves three things that differ from run to run, and each is
removed at its source rather than listed file by file:
- installer records of *when and where from*: uv's `uv_cache.json` (a timestamp) and `direct_url.json` (a local
  path) in each `.dist-info`, dropped with their RECORD lines (`drop_install_records`);
- bytecode: the source's absolute path is compiled into every `.pyc` and frozensets of strings are marshalled
  in hash order; `package.compile_bytecode` compiles with PYTHONHASHSEED=0 and the path FC runs it from
  (`/code/...`), which is also what a traceback there should show;
- file modes, which follow the builder's umask: `normalize_modes` sets 0755/0644.
`write_zip` zips the directory as fc3 does, with a fixed time, so `sha256sum` of two builds can be compared.
"""

from __future__ import annotations

import hashlib
import stat
import zipfile
from pathlib import Path

from headseg.function.errors import ConfigError

#: fc3's zipper sets every entry's modification time to this day.
FC3_ZIP_TIME = (2023, 11, 1, 0, 0, 0)
#: What an installer writes into a `.dist-info` about when and from where it installed, not what it installed.
INSTALL_RECORDS = ("uv_cache.json", "direct_url.json")


def drop_install_records(target: Path) -> None:
    """Remove INSTALL_RECORDS from every `.dist-info` in `target` and their lines from its RECORD."""
    for info in target.glob("*.dist-info"):
        present = [info / name for name in INSTALL_RECORDS if (info / name).exists()]
        if not present:
            continue
        for path in present:
            path.unlink()
        record = info / "RECORD"
        if record.is_file():
            dropped = {f"{info.name}/{path.name}" for path in present}
            lines = record.read_text(encoding="utf-8").splitlines(keepends=True)
            record.write_text("".join(line for line in lines if line.split(",", 1)[0] not in dropped), encoding="utf-8")


def normalize_modes(root: Path) -> None:
    """Directories and executable files 0755, other files 0644, under `root` (links are left as they are)."""
    for path in [root, *root.rglob("*")]:
        mode = path.lstat().st_mode
        if stat.S_ISLNK(mode):
            continue
        executable = stat.S_ISDIR(mode) or mode & (stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
        path.chmod(0o755 if executable else 0o644)


def package_files(code: Path) -> list[Path]:
    """The files fc3 zips from `code`: all but what its `.fcignore` leaves out (gitignore rules), sorted."""
    try:
        import pathspec
    except ImportError:
        raise ConfigError("reading .fcignore needs pathspec: pip install 'pathspec>=0.12'") from None
    ignore = code / ".fcignore"
    spec = pathspec.GitIgnoreSpec.from_lines(ignore.read_text(encoding="utf-8").splitlines() if ignore.is_file() else [])
    files = (path for path in code.rglob("*") if path.is_file() and not path.is_symlink())
    return sorted((path for path in files if not spec.match_file(path.relative_to(code).as_posix())), key=lambda p: p.relative_to(code).parts)


def write_zip(code: Path, out: Path) -> tuple[int, str]:
    """Zip the package in `code` into `out` the way fc3 does (its files in sorted order, a fixed time, each file's
    mode); returns the number of files and the zip's SHA-256."""
    out = out.resolve()
    files = [path for path in package_files(code) if path.resolve() != out]
    with zipfile.ZipFile(out, "w") as archive:
        for path in files:
            entry = zipfile.ZipInfo(path.relative_to(code).as_posix(), FC3_ZIP_TIME)
            entry.external_attr = (path.lstat().st_mode & 0xFFFF) << 16
            entry.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(entry, path.read_bytes(), compresslevel=9)
    digest = hashlib.sha256()
    with out.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return len(files), digest.hexdigest()
