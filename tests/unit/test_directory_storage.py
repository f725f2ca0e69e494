import hashlib
import os
import stat

import pytest

from headseg.function.errors import ObjectNotFound, PermanentError
from headseg.local.directory import DirectoryStorage


def test_round_trip_with_unicode_and_spaces(tmp_path):
    storage = DirectoryStorage(tmp_path / "bucket")
    storage.put("incoming/团队 合影/a+b%20.jpg", b"abc", "image/jpeg")
    info, data = storage.get("incoming/团队 合影/a+b%20.jpg")
    assert data == b"abc"
    assert info.size == 3 and info.etag == hashlib.md5(b"abc").hexdigest().upper()
    assert info.content_type == "image/jpeg"
    assert storage.get("incoming/团队 合影/a+b%20.jpg", 2)[1] == b"ab"
    assert storage.bucket == "bucket"


def test_list_is_sorted_and_filtered(tmp_path):
    storage = DirectoryStorage(tmp_path)
    for key in ["b/2", "a/1", "b/1", "c"]:
        storage.put(key, b"x", "text/plain")
    assert [i.key for i in storage.list("b/")] == ["b/1", "b/2"]
    assert [i.key for i in storage.list("")] == ["a/1", "b/1", "b/2", "c"]


def test_missing_and_delete(tmp_path):
    storage = DirectoryStorage(tmp_path)
    with pytest.raises(ObjectNotFound):
        storage.get("nope")
    storage.put("k", b"1", "text/plain")
    storage.delete("k")
    storage.delete("k")  # deleting a missing object is fine
    with pytest.raises(ObjectNotFound):
        storage.head("k")


@pytest.mark.parametrize("key", ["../escape", "a/../../b", "/abs", "a//b", "dir/", ""])
def test_keys_that_would_escape_the_root_are_refused(tmp_path, key):
    storage = DirectoryStorage(tmp_path / "bucket")
    with pytest.raises(PermanentError):
        storage.put(key, b"x", "text/plain")
    assert not (tmp_path / "escape").exists()


def test_delete_removes_the_folders_it_empties_but_not_the_root(tmp_path):
    storage = DirectoryStorage(tmp_path / "bucket")
    storage.put("a/b/c.txt", b"1", "text/plain")
    storage.put("a/keep.txt", b"1", "text/plain")
    storage.delete("a/b/c.txt")
    assert not (tmp_path / "bucket" / "a" / "b").exists() and (tmp_path / "bucket" / "a" / "keep.txt").exists()
    storage.delete("a/keep.txt")
    assert (tmp_path / "bucket").is_dir() and list((tmp_path / "bucket").iterdir()) == []


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_files_are_written_with_the_users_umask(tmp_path, umask, mode):
    storage = DirectoryStorage(tmp_path / "bucket")
    previous = os.umask(umask)
    try:
        storage.put("a/new.png", b"1", "image/png")
        storage.put("a/new.png", b"2", "image/png")  # replaced: the new file's mode, not the old one's
    finally:
        os.umask(previous)
    path = tmp_path / "bucket" / "a" / "new.png"
    assert stat.S_IMODE(path.stat().st_mode) == mode and path.read_bytes() == b"2"
    assert [p.name for p in path.parent.iterdir()] == ["new.png"]  # no temporary file left
