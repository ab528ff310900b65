"""Worker processes that make export blocks on every core.

The pool starts on first use and is shared by all exports of the process; each export keeps at
most two blocks per worker in flight, so memory stays flat however large the file. Workers are
spawned (never forked: the server runs threads) and leave when the process that started them
goes, even if it was killed; a server that stops closes the pool first (`close`), which releases
its queues' semaphores (else Python's resource tracker warns of them leaking).
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import time
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor

from .export import Block, ExportJob, Maker

_maker: Maker | None = None


def _start_worker(parent: int) -> None:
    global _maker
    _maker = Maker()
    # Ctrl-C in a terminal reaches the whole process group: the parent stops its pool, and a
    # worker interrupted on its own would only print a traceback.
    signal.signal(signal.SIGINT, signal.SIG_IGN)

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1)
        os._exit(0)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def _make_block(job: ExportJob, index: int) -> Block:
    assert _maker is not None
    return _maker.block(job, index)


class BlockPool:
    """`workers` processes making blocks; `blocks(job)` yields the job's blocks in order."""

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self._executor: ProcessPoolExecutor | None = None
        self._lock = threading.Lock()

    def _pool(self) -> ProcessPoolExecutor:
        with self._lock:
            if self._executor is None:
                self._executor = ProcessPoolExecutor(
                    self.workers,
                    mp_context=multiprocessing.get_context("spawn"),
                    initializer=_start_worker,
                    initargs=(os.getpid(),),
                )
            return self._executor

    def blocks(self, job: ExportJob) -> Iterator[Block]:
        pool = self._pool()
        count = job.blocks()
        ahead = 2 * self.workers
        pending: deque[Future[Block]] = deque()
        submitted = 0
        try:
            while submitted < count or pending:
                while submitted < count and len(pending) < ahead:
                    pending.append(pool.submit(_make_block, job, submitted))
                    submitted += 1
                yield pending.popleft().result()
        finally:
            for future in pending:
                future.cancel()

    def close(self) -> None:
        with self._lock:
            if self._executor is not None:
                self._executor.shutdown(wait=True, cancel_futures=True)
                self._executor = None
