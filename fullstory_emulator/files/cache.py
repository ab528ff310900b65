"""Finished export files on disk: made once, then served with a length, ranges and resumes.

A file is named by its job's key (a digest of everything its bytes depend on), so a file kept
in `--data-dir` is still right after a restart, and an evicted file is remade byte-identically.
The cache holds at most `max_bytes`; the least recently used files go first. A file that is
being read is never disturbed by eviction: it is unlinked, and its readers keep their open
descriptor. A file just made is opened before it is renamed into place, so another download's
eviction (or another process's, sharing the data dir) can never unlink it between its making and
its opening; a kept file that is evicted just before it is opened is made again. One thread
makes a given file while others wanting it wait; worker processes sharing a data dir may each
make it, writing to their own temporary name and renaming.

A file that grows past `max_bytes` on its own is never kept: it could only be evicted at once
and made again by every download. Making it stops there (`FileTooLarge`), and a marker
(`<key>.too-large`, holding the cache size it outgrew) answers later requests at once, until
the cache is made larger.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import threading
import weakref
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

SUFFIX = ".gz"
TOO_LARGE = ".too-large"


class FileTooLarge(Exception):
    """The file is larger than the whole cache, so it is not kept; `found` says whether this
    call found it out (by making the file up to the cache's size) or a marker recalled it."""

    def __init__(self, key: str, max_bytes: int, *, found: bool) -> None:
        super().__init__(f"export file {key} is larger than the file cache ({max_bytes} bytes)")
        self.key, self.max_bytes, self.found = key, max_bytes, found


@dataclass
class OpenFile:
    """A cached file opened for reading, and its size."""

    file: BinaryIO
    size: int

    def close(self) -> None:
        self.file.close()


@dataclass
class _Making:
    """The lock of one file's making, and how many threads want that file."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    wanted: int = 0


class FileCache:
    def __init__(self, directory: Path | None, max_bytes: int) -> None:
        if directory is None:
            directory = Path(tempfile.mkdtemp(prefix="fullstory-emulator-files-"))
            self._cleanup = weakref.finalize(self, shutil.rmtree, directory, ignore_errors=True)
        directory.mkdir(parents=True, exist_ok=True)
        self.directory = directory
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._making: dict[str, _Making] = {}  # by key, while any thread wants that file
        self._remove_stale_parts()

    def path(self, key: str) -> Path:
        return self.directory / f"{key}{SUFFIX}"

    def open(self, key: str, make: Callable[[], Iterable[bytes]]) -> OpenFile:
        """The file `key`, made from `make()`'s chunks first if it is not kept. Blocks."""
        path = self.path(key)
        with self._lock:
            making = self._making.get(key)
            if making is None:
                making = self._making[key] = _Making()
            making.wanted += 1
        try:
            with making.lock:
                try:
                    opened = self._open(path)
                except FileNotFoundError:  # not kept, or evicted since: (re)made
                    self._check_not_too_large(key)
                    try:
                        opened = self._write(path, make())
                    except FileTooLarge:
                        self._marker(key).write_text(str(self.max_bytes), encoding="ascii")
                        raise
                    self._evict()
                else:
                    with contextlib.suppress(FileNotFoundError):  # evicted meanwhile: still open
                        os.utime(path)  # recently used
        finally:
            with self._lock:  # the last thread wanting the file forgets its lock
                making.wanted -= 1
                if not making.wanted:
                    del self._making[key]
        return opened

    def contains(self, key: str) -> bool:
        return self.path(key).exists()

    def _marker(self, key: str) -> Path:
        return self.directory / f"{key}{TOO_LARGE}"

    def _check_not_too_large(self, key: str) -> None:
        """Raise FileTooLarge if the file is known to outgrow a cache of this size; forget a
        marker left under a smaller cache (the file may fit now)."""
        marker = self._marker(key)
        try:
            outgrown = int(marker.read_text(encoding="ascii"))
        except (OSError, ValueError):
            return
        if outgrown >= self.max_bytes:
            raise FileTooLarge(key, self.max_bytes, found=False)
        marker.unlink(missing_ok=True)

    def close(self) -> None:
        """Remove a temporary cache's folder (a --data-dir cache is kept)."""
        cleanup = getattr(self, "_cleanup", None)
        if cleanup is not None:
            cleanup()

    @staticmethod
    def _open(path: Path) -> OpenFile:
        file = path.open("rb")
        return OpenFile(file, os.fstat(file.fileno()).st_size)

    def _write(self, path: Path, chunks: Iterable[bytes]) -> OpenFile:
        """Write the file under a temporary name, open it, then rename it into place: the open
        file is the one made, whoever evicts it from then on. Stop (FileTooLarge) as soon as it
        passes max_bytes, so that it never takes more than the cache's room on disk."""
        part = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.part")
        source = iter(chunks)
        written = 0
        try:
            with part.open("wb") as out:
                for chunk in source:
                    written += len(chunk)
                    if written > self.max_bytes:
                        raise FileTooLarge(
                            path.name.removesuffix(SUFFIX), self.max_bytes, found=True
                        )
                    out.write(chunk)
            opened = self._open(part)
            try:
                os.replace(part, path)
            except BaseException:
                opened.close()
                raise
            return opened
        finally:
            close = getattr(source, "close", None)
            if close is not None:  # a generator stopped early: its workers' blocks are cancelled
                close()
            part.unlink(missing_ok=True)

    def _evict(self) -> None:
        """Drop least recently used files until the kept ones fit in max_bytes."""
        entries = []
        for entry in os.scandir(self.directory):
            if entry.name.endswith(SUFFIX) and not entry.name.startswith("."):
                try:
                    stat = entry.stat()
                except FileNotFoundError:
                    continue
                entries.append((stat.st_mtime_ns, stat.st_size, entry.path))
        total = sum(size for _, size, _ in entries)
        for _, size, name in sorted(entries):
            if total <= self.max_bytes:
                break
            Path(name).unlink(missing_ok=True)
            total -= size

    def _remove_stale_parts(self) -> None:
        """Remove half-written files left by processes that no longer run."""
        for entry in os.scandir(self.directory):
            if not (entry.name.startswith(".") and entry.name.endswith(".part")):
                continue
            try:
                pid = int(entry.name.split(".")[-3])
                os.kill(pid, 0)
            except (ValueError, IndexError, ProcessLookupError):
                Path(entry.path).unlink(missing_ok=True)
            except PermissionError:
                pass
