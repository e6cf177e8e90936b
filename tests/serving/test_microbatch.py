"""The micro-batcher: concurrent submissions share a call, each gets its own result."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from serving.microbatch import MicroBatcher


def _run(coroutine):
    return asyncio.run(coroutine)


def test_concurrent_items_share_calls_and_keep_their_results():
    calls: list[list[int]] = []
    release = threading.Event()

    def handle(items: list[int]) -> list[int]:
        calls.append(list(items))
        release.wait(5)  # the first call blocks until everything else is queued
        return [i * 10 for i in items]

    async def main() -> list[int]:
        batcher = MicroBatcher(handle, max_items=4)
        batcher.start()
        first = asyncio.create_task(batcher.submit(0))
        await asyncio.sleep(0.05)  # the first call is running now
        rest = [asyncio.create_task(batcher.submit(i)) for i in range(1, 10)]
        await asyncio.sleep(0.05)
        release.set()
        results = await asyncio.gather(first, *rest)
        await batcher.stop()
        return results

    assert _run(main()) == [i * 10 for i in range(10)]
    assert calls == [[0], [1, 2, 3, 4], [5, 6, 7, 8], [9]]


def test_wait_gathers_items_arriving_within_the_window():
    calls: list[list[str]] = []

    def handle(items: list[str]) -> list[str]:
        calls.append(list(items))
        return [s.upper() for s in items]

    async def main() -> list[str]:
        batcher = MicroBatcher(handle, max_items=100, wait_seconds=0.3)
        batcher.start()
        tasks = []
        for item in "abc":
            tasks.append(asyncio.create_task(batcher.submit(item)))
            await asyncio.sleep(0.02)
        results = await asyncio.gather(*tasks)
        await batcher.stop()
        return results

    assert _run(main()) == ["A", "B", "C"]
    assert calls == [["a", "b", "c"]]


def test_a_failing_call_fails_its_items_and_the_batcher_goes_on():
    def handle(items: list[int]) -> list[int]:
        if 13 in items:
            raise RuntimeError("unlucky")
        return items

    async def main() -> tuple[BaseException | int, int]:
        batcher = MicroBatcher(handle, max_items=1)
        batcher.start()
        failed = await asyncio.gather(batcher.submit(13), return_exceptions=True)
        ok = await batcher.submit(7)
        await batcher.stop()
        return failed[0], ok

    failed, ok = _run(main())
    assert isinstance(failed, RuntimeError) and str(failed) == "unlucky"
    assert ok == 7


def test_a_cancelled_request_is_not_decided():
    seen: list[list[int]] = []

    def handle(items: list[int]) -> list[int]:
        seen.append(list(items))
        time.sleep(0.1)
        return items

    async def main() -> int:
        batcher = MicroBatcher(handle, max_items=10)
        batcher.start()
        first = asyncio.create_task(batcher.submit(1))
        await asyncio.sleep(0.02)
        gone = asyncio.create_task(batcher.submit(2))
        kept = asyncio.create_task(batcher.submit(3))
        await asyncio.sleep(0.01)
        gone.cancel()  # the client went away while queued
        await first
        result = await kept
        await batcher.stop()
        return result

    assert _run(main()) == 3
    assert seen == [[1], [3]]


def test_submit_needs_a_running_batcher():
    async def main() -> None:
        await MicroBatcher(lambda items: items, max_items=2).submit(1)

    with pytest.raises(RuntimeError, match="not running"):
        _run(main())
