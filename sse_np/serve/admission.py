"""``--max-bytes-in-flight``: request bytes being read, parsed and encoded at once, in arrival order.

Encoding peaks at a multiple of a body's size (texts as str, token ids, vectors, the float JSON
answer), so bounding the bytes admitted bounds the server's memory: four 28 MiB requests at once
no longer add up their peaks; the later ones wait for the earlier ones' answers. Small bodies (up
to ``SMALL_BODY``, 64 KiB) skip the queue: at most ``--max-connections`` of them exist at once,
and a few large requests must not hold up ``/health``-sized work.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncIterator


class ByteBudget:
    """An asyncio counting semaphore in bytes, first come first served; a request larger than the
    whole budget runs alone."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0
        self.waiting: deque[tuple[int, asyncio.Future[None]]] = deque()

    @contextlib.asynccontextmanager
    async def hold(self, size: int) -> AsyncIterator[None]:
        size = min(size, self.limit)
        if self.waiting or self.used + size > self.limit:
            turn: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self.waiting.append((size, turn))
            try:
                await turn
            except asyncio.CancelledError:  # the client left while waiting
                if turn.done() and not turn.cancelled():  # granted just before: give it back
                    self._release(size)
                raise
        else:
            self.used += size
        try:
            yield
        finally:
            self._release(size)

    def _release(self, size: int) -> None:
        self.used -= size
        while self.waiting:
            want, turn = self.waiting[0]
            if turn.cancelled():
                self.waiting.popleft()
                continue
            if self.used + want > self.limit:
                break
            self.waiting.popleft()
            self.used += want
            turn.set_result(None)
