"""A local directory standing in for a bucket: `<root>/<key>` holds the object, written atomically."""

from __future__ import annotations

import hashlib
import mimetypes
import os
import secrets
from collections.abc import Iterator
from pathlib import Path

from headseg.function.errors import ObjectNotFound, PermanentError
from headseg.function.retry import Budget
from headseg.function.storage import ObjectInfo


TEMPORARY_PREFIX = ".tmp-"  # a file being written; listings leave it out


class DirectoryStorage:
    """The bucket is the directory `root`; its name is the directory's name unless given."""

    def __init__(self, root: str | os.PathLike[str], bucket: str | None = None) -> None:
        self.root = Path(root).resolve()
        self.bucket = bucket or self.root.name

    def path(self, key: str) -> Path:
        """The file that holds `key`; refuses keys that would leave the root or name a folder."""
        parts = key.split("/")
        if not key or key.endswith("/") or "\x00" in key or any(p in ("", ".", "..") for p in parts):
            raise PermanentError(
                f"key {key!r} cannot be stored in a directory bucket (empty, '.' or '..' segments)",
                code="InvalidObjectName",
            )
        return self.root.joinpath(*parts)

    def get(self, key: str, length: int | None = None, budget: Budget | None = None) -> tuple[ObjectInfo, bytes]:
        path = self.path(key)
        try:
            with path.open("rb") as handle:
                data = handle.read() if length is None else handle.read(length)
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            raise ObjectNotFound(f"no object {key!r} in {self.root}") from None
        return self.head(key), data

    def head(self, key: str, budget: Budget | None = None) -> ObjectInfo:
        path = self.path(key)
        if not path.is_file():
            raise ObjectNotFound(f"no object {key!r} in {self.root}")
        digest = hashlib.md5(usedforsecurity=False)
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        stat = path.stat()
        return ObjectInfo(key, stat.st_size, digest.hexdigest().upper(), content_type, int(stat.st_mtime))

    def put(self, key: str, data: bytes, content_type: str, budget: Budget | None = None) -> None:
        path = self.path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(path, data)

    def delete(self, key: str, budget: Budget | None = None) -> None:
        """Delete the file, then the folders it leaves empty (a bucket has no empty folders)."""
        path = self.path(key)
        path.unlink(missing_ok=True)
        for folder in path.parents:
            if folder == self.root or not folder.is_relative_to(self.root):
                break
            try:
                folder.rmdir()
            except OSError:  # not empty (or gone): stop here
                break

    def list(self, prefix: str, delimiter: str = "", start_after: str = "") -> Iterator[ObjectInfo]:
        keys = []
        for dirpath, _dirs, files in os.walk(self.root):
            for name in files:
                if name.startswith(TEMPORARY_PREFIX):
                    continue
                key = Path(dirpath, name).relative_to(self.root).as_posix()
                in_folder = not (delimiter and delimiter in key[len(prefix) :])
                if key.startswith(prefix) and key > start_after and in_folder:
                    keys.append(key)
        for key in sorted(keys):
            try:
                yield self.head(key)
            except ObjectNotFound:
                continue  # deleted while listing

    def signed_url(self, key: str, expires: int, public: bool = False, version_id: str = "") -> str:
        return self.path(key).as_uri()


def write_atomically(path: Path, data: bytes) -> None:
    """Write `path` whole or not at all: a hidden temporary file beside it, renamed over it. Created with mode
    0o666 under the process's umask, as any file a program writes (tempfile.mkstemp's would be 0o600)."""
    tmp = path.with_name(f"{TEMPORARY_PREFIX}{secrets.token_hex(8)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # the kernel applies the umask
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
