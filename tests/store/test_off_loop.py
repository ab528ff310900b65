"""store.off_loop: requests' store work on a few threads of its own (fullstory_emulator/store)."""

from __future__ import annotations

import asyncio
import contextvars
import threading

from fullstory_emulator.store import STORE_THREADS, off_loop

WHO: contextvars.ContextVar[str] = contextvars.ContextVar("who", default="nobody")


def test_the_work_runs_on_a_few_threads_in_the_callers_context():
    async def main() -> list[tuple[str, str]]:
        seen: list[tuple[str, str]] = []

        def work(n: int) -> None:
            seen.append((WHO.get(), threading.current_thread().name))

        async def request(n: int) -> None:
            WHO.set(f"request {n}")  # a request's own context, as the clock's held reading is
            await off_loop(work, n)

        await asyncio.gather(*(request(n) for n in range(64)))
        return seen

    seen = asyncio.run(main())
    assert sorted(who for who, _ in seen) == sorted(f"request {n}" for n in range(64))
    threads = {name for _, name in seen}
    assert len(threads) <= STORE_THREADS and all(n.startswith("store") for n in threads)


def test_a_cancelled_caller_waits_for_its_work_to_end():
    """As with anyio's threads: a transaction is never left running behind a request that
    is gone (its journal entry, recorded after, would come before the work's end)."""
    began, release = threading.Event(), threading.Event()

    def work() -> str:
        began.set()
        release.wait(10)
        return "done"

    async def main() -> tuple[bool, bool]:
        task = asyncio.create_task(off_loop(work))
        await asyncio.get_running_loop().run_in_executor(None, began.wait, 10)
        task.cancel()
        await asyncio.sleep(0)  # the cancellation is delivered; the work still runs
        for _ in range(5):
            await asyncio.sleep(0)
        pending = not task.done()
        release.set()
        try:
            await task
        except asyncio.CancelledError:
            return pending, True
        return pending, False

    pending, cancelled = asyncio.run(main())
    assert pending and cancelled
