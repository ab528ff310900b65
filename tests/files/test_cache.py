"""The file cache (fullstory_emulator/files/cache.py): made once, kept within its budget, remade
alike."""

from __future__ import annotations

import contextlib
import os
import threading
import time
from pathlib import Path

import pytest

from fullstory_emulator.files.cache import FileCache, FileTooLarge


class Maker:
    """Counts how often a file is made."""

    def __init__(self, data: bytes, pause: float = 0) -> None:
        self.data, self.pause, self.calls = data, pause, 0

    def __call__(self):  # type: ignore[no-untyped-def]
        self.calls += 1
        time.sleep(self.pause)
        yield self.data[:3]
        yield self.data[3:]


def read(cache: FileCache, key: str, make: Maker) -> bytes:
    opened = cache.open(key, make)
    try:
        data = opened.file.read()
        assert len(data) == opened.size
        return data
    finally:
        opened.close()


def test_a_file_is_made_once_then_read(tmp_path):
    cache, make = FileCache(tmp_path, 1000), Maker(b"hello world")
    assert read(cache, "k", make) == read(cache, "k", make) == b"hello world"
    assert make.calls == 1 and cache.contains("k")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["k.gz"]  # no part file left


def test_threads_wanting_the_same_file_wait_for_one_maker(tmp_path):
    cache, make = FileCache(tmp_path, 1000), Maker(b"slow file", pause=0.3)
    results: list[bytes] = []
    threads = [
        threading.Thread(target=lambda: results.append(read(cache, "k", make))) for _ in range(4)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [b"slow file"] * 4 and make.calls == 1


def test_least_recently_used_files_go_first_and_come_back_alike(tmp_path):
    cache = FileCache(tmp_path, 25)
    makers = {key: Maker(key.encode() * 10) for key in "abc"}
    for key in "ab":
        read(cache, key, makers[key])
    old = time.time() - 60
    os.utime(tmp_path / "a.gz", (old, old))
    read(cache, "b", makers["b"])  # a hit: b is recent
    read(cache, "c", makers["c"])  # 30 bytes > 25: the least recently used go
    assert not cache.contains("a") and cache.contains("c")
    assert read(cache, "a", makers["a"]) == b"a" * 10 and makers["a"].calls == 2


def test_a_reader_keeps_an_evicted_file(tmp_path):
    cache = FileCache(tmp_path, 20)  # room for one of these
    opened = cache.open("k", Maker(b"still readable"))
    read(cache, "other", Maker(b"evicts the first"))
    assert not cache.contains("k")
    assert opened.file.read() == b"still readable"
    opened.close()


def test_a_failed_make_leaves_nothing(tmp_path):
    cache = FileCache(tmp_path, 1000)

    def broken():  # type: ignore[no-untyped-def]
        yield b"half"
        raise RuntimeError("generator failed")

    with contextlib.suppress(RuntimeError):
        cache.open("k", broken)
    assert list(tmp_path.iterdir()) == []
    assert read(cache, "k", Maker(b"whole")) == b"whole"


def test_kept_files_survive_a_new_cache_and_stale_parts_are_removed(tmp_path):
    read(FileCache(tmp_path, 1000), "k", Maker(b"kept"))
    dead = tmp_path / ".k.gz.999999999.1.part"  # a pid that cannot run
    dead.write_bytes(b"half")
    live = tmp_path / f".k.gz.{os.getpid()}.1.part"
    live.write_bytes(b"being written")
    again = FileCache(tmp_path, 1000)
    make = Maker(b"new")
    assert read(again, "k", make) == b"kept" and make.calls == 0
    assert not dead.exists() and live.exists()


def test_a_temporary_cache_removes_its_folder():
    cache = FileCache(None, 1000)
    folder = cache.directory
    read(cache, "k", Maker(b"x"))
    assert Path(folder).is_dir()
    cache.close()
    assert not Path(folder).exists()


class Endless:
    """A file of `chunks` chunks of ten bytes, noting how many were taken and whether it was
    stopped (as a worker pool's blocks are cancelled)."""

    def __init__(self, chunks: int) -> None:
        self.chunks, self.taken, self.calls, self.stopped = chunks, 0, 0, False

    def __call__(self):  # type: ignore[no-untyped-def]
        self.calls += 1
        try:
            for _ in range(self.chunks):
                self.taken += 1
                yield b"0123456789"
        finally:
            self.stopped = self.taken < self.chunks


def test_a_file_larger_than_the_cache_stops_at_its_size_and_is_not_made_again(tmp_path):
    cache, make = FileCache(tmp_path, 25), Endless(1000)
    with pytest.raises(FileTooLarge) as first:
        cache.open("k", make)
    assert first.value.found and first.value.max_bytes == 25
    assert make.taken == 3 and make.stopped  # 30 bytes > 25: no more was made
    assert [p.name for p in tmp_path.iterdir()] == ["k.too-large"]  # no file, no part
    with pytest.raises(FileTooLarge) as again:
        cache.open("k", make)
    assert not again.value.found and make.calls == 1  # answered from the marker
    with pytest.raises(FileTooLarge):  # a new cache of the same size remembers it
        FileCache(tmp_path, 25).open("k", make)
    assert make.calls == 1
    assert read(cache, "other", Maker(b"fits")) == b"fits"  # other files are kept as before


def test_a_larger_cache_makes_a_file_that_outgrew_a_smaller_one(tmp_path):
    with pytest.raises(FileTooLarge):
        FileCache(tmp_path, 25).open("k", Endless(5))
    larger, make = FileCache(tmp_path, 50), Endless(5)
    opened = larger.open("k", make)
    assert opened.size == 50 and make.calls == 1
    opened.close()
    assert [p.name for p in tmp_path.iterdir()] == ["k.gz"]  # the marker is gone


def test_a_file_evicted_by_another_download_just_before_it_is_opened_is_still_served(tmp_path):
    """Another download's eviction (here a second cache on the same folder with no room, as a
    worker process sharing the data dir has) runs just before every open of this cache: the
    file is served all the same, made again when the kept one went."""
    cache = FileCache(tmp_path, 1000)
    other = FileCache(tmp_path, 0)
    opens = 0

    def open_after_an_eviction(path):  # type: ignore[no-untyped-def]
        nonlocal opens
        opens += 1
        other._evict()  # unlinks every kept file
        return FileCache._open(path)

    cache._open = open_after_an_eviction  # type: ignore[method-assign]
    make = Maker(b"made here")
    assert read(cache, "k", make) == b"made here"
    assert read(cache, "k", make) == b"made here"  # the kept one went again: made again
    assert make.calls == 2 and opens >= 2
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".part")] == []


def test_many_threads_making_and_evicting_all_get_their_files(tmp_path):
    """A cache with room for about one file, and threads wanting seven files at once: every
    reader gets its whole file, whatever the others evict meanwhile."""
    cache = FileCache(tmp_path, 3000)
    files = {str(i): bytes([65 + i]) * (2000 + 100 * i) for i in range(7)}
    got: list[tuple[str, bytes]] = []
    failures: list[BaseException] = []
    start = threading.Barrier(12)

    def download(n: int) -> None:
        start.wait()
        for round_ in range(20):
            key = str((n + round_) % 7)
            try:
                got.append((key, read(cache, key, Maker(files[key]))))
            except BaseException as exc:  # reported below, with the thread's others
                failures.append(exc)

    threads = [threading.Thread(target=download, args=(n,)) for n in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []
    assert len(got) == 240 and all(data == files[key] for key, data in got)
