"""A fake peer whose answers to GETs (actor documents, objects) can be held back: to see how
many fetches the worker has waiting at once, and in which order it does things."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from aiohttp import web

from tests.fakepeer import FakePeer


@dataclass
class HoldingPeer(FakePeer):
    """GETs wait `delay` seconds (per path: `delays`), or until `gather` of them wait at once.

    `gather` is a barrier: a GET is answered only once that many GETs are waiting together
    (or after `gather_timeout` seconds, which is recorded in `gather_timeouts`: a worker that
    never has that many fetches out at once fails the test instead of hanging it)."""

    delay: float = 0.0
    delays: dict[str, float] = field(default_factory=dict)
    gather: int = 0
    gather_timeout: float = 20.0
    in_flight: int = 0
    max_in_flight: int = 0
    gather_timeouts: int = 0
    statuses: dict[str, int] = field(default_factory=dict)  # path -> an error status answered

    def __post_init__(self):
        super().__post_init__()
        self._arrived = asyncio.Condition()
        self._waiting = 0

    @web.middleware
    async def _hostile(self, request: web.Request, handler):
        if request.method != "GET":
            return await super()._hostile(request, handler)
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            await asyncio.sleep(self.delays.get(request.path, self.delay))
            if self.gather:
                await self._barrier()
            if request.path in self.statuses:
                return web.Response(status=self.statuses[request.path])
            return await super()._hostile(request, handler)
        finally:
            self.in_flight -= 1

    async def _barrier(self) -> None:
        async with self._arrived:
            self._waiting += 1
            if self._waiting >= self.gather:
                self._waiting = 0
                self._arrived.notify_all()
                return
            try:
                await asyncio.wait_for(self._arrived.wait(), self.gather_timeout)
            except TimeoutError:
                self.gather_timeouts += 1
                self._waiting = max(0, self._waiting - 1)
