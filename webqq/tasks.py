"""Background coroutines owned by one object: kept referenced while they run (asyncio
holds only weak references to tasks) and cancelled together when the owner closes."""
import asyncio
from typing import Any, Awaitable, Set

__all__ = ["TaskSet"]


class TaskSet:
    """The running tasks of one owner (the daemon, the API)."""

    def __init__(self) -> None:
        self._tasks: Set["asyncio.Future[Any]"] = set()

    def spawn(self, coroutine: Awaitable[Any]) -> "asyncio.Future[Any]":
        """Run ``coroutine`` in the background; its task is kept until it ends."""
        task = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def __len__(self) -> int:
        return len(self._tasks)

    async def cancel_all(self) -> None:
        """Cancel every running task and wait until each has ended."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
