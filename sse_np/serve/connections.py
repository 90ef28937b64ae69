"""uvicorn's HTTP protocols with a client timeout and a connection cap (``--client-timeout``, ``--max-connections``).

uvicorn closes an idle keep-alive connection after ``timeout_keep_alive``, but any byte received
cancels that timer, and a connection that never completes its first request has none: 20k
connections sending nothing, or half a header line every few seconds (slowloris), hold the
server's file descriptors until ``/health`` can no longer connect. Here each connection has a
deadline: ``client_timeout`` seconds from its start, or from its previous response, to send a
whole request (head and body). Trickled bytes do not move it. A request being answered is never
cut. At ``max_connections`` a new connection evicts the connection idle the longest (no request
being answered), so a flood of idle connections cannot lock out a new client; if every
connection is busy, the new one is closed.

uvicorn is told the class by import string (``sse_np.serve.connections:GuardedH11``), so worker
processes find it too; :func:`configure` sets the limits in each process before it serves.
"""

from __future__ import annotations

import asyncio
import resource
from collections import OrderedDict
from typing import Any, ClassVar

from uvicorn.protocols.http.h11_impl import H11Protocol

from .config import DEFAULT_CLIENT_TIMEOUT, DEFAULT_MAX_CONNECTIONS

FD_MARGIN = 128  # descriptors beyond the connections: model files, the log, the event loop, threads


class Limits:
    client_timeout = DEFAULT_CLIENT_TIMEOUT
    max_connections = DEFAULT_MAX_CONNECTIONS
    # connection -> its deadline's timer; oldest deadline first (the eviction order)
    open: ClassVar[OrderedDict[Any, asyncio.TimerHandle | None]] = OrderedDict()
    evicted = 0
    timed_out = 0


def configure(client_timeout: float, max_connections: int) -> None:
    """Set the limits of this process's connections, and make room for them in its descriptor limit."""
    Limits.client_timeout, Limits.max_connections = client_timeout, max_connections
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    needed = max_connections + FD_MARGIN
    if soft != resource.RLIM_INFINITY and soft < needed:
        if hard != resource.RLIM_INFINITY and hard < needed:
            raise ValueError(
                f"--max-connections {max_connections} needs {needed} file descriptors, the hard limit is {hard} "
                f"(raise it with ulimit -Hn, or lower --max-connections to {max(1, hard - FD_MARGIN)})"
            )
        resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))


class Guarded:
    """Mixin over a uvicorn HTTP protocol: the client deadline and the connection cap."""

    transport: asyncio.Transport
    cycle: Any
    loop: asyncio.AbstractEventLoop

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)  # type: ignore[misc]
        if len(Limits.open) >= Limits.max_connections and not _evict_one():
            transport.abort()  # every connection is answering a request: no room
            return
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        timer = Limits.open.pop(self, None)
        if timer is not None:
            timer.cancel()
        super().connection_lost(exc)  # type: ignore[misc]

    def on_response_complete(self) -> None:
        super().on_response_complete()  # type: ignore[misc]
        if not self.transport.is_closing():
            self._arm()  # a new deadline for the next request on this connection

    def busy(self) -> bool:
        """Answering a request whose body has all arrived (the client has done its part)."""
        cycle = self.cycle
        return cycle is not None and not cycle.response_complete and not cycle.more_body

    def _arm(self) -> None:
        timer = Limits.open.pop(self, None)
        if timer is not None:
            timer.cancel()
        Limits.open[self] = self.loop.call_later(Limits.client_timeout, self._expire)

    def _expire(self) -> None:
        Limits.open[self] = None
        if not self.busy() and not self.transport.is_closing():
            Limits.timed_out += 1
            self.transport.abort()  # no response: the client never finished a request


def _evict_one() -> bool:
    """Close the connection whose deadline is oldest among those not answering a request."""
    for conn in Limits.open:
        if not conn.busy():
            Limits.evicted += 1
            conn.transport.abort()  # connection_lost (called soon) takes it out of Limits.open
            timer = Limits.open.pop(conn)
            if timer is not None:
                timer.cancel()
            return True
    return False


class GuardedH11(Guarded, H11Protocol):
    """uvicorn's h11 protocol, guarded."""


try:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
except ImportError:  # httptools not installed (the serve extra installs it)
    GuardedAuto: type = GuardedH11
else:

    class GuardedHttpTools(Guarded, HttpToolsProtocol):
        """uvicorn's httptools protocol, guarded."""

    GuardedAuto = GuardedHttpTools
