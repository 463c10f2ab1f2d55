"""A TCP proxy between the server process and PostgreSQL that can cut the database off.

The machine's PostgreSQL is shared (CI, other suites), so an outage is made here instead of
by stopping it: ``cut()`` aborts every proxied connection (the server sees the database
vanish mid-conversation) and refuses new ones until ``restore()``.
"""

import asyncio
import threading
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager
from typing import Any

from tests.faults.support import free_port


class DatabaseProxy:
    """Forward 127.0.0.1:``port`` to ``target``, in its own thread and event loop."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = free_port()
        self.is_down = False
        self.refused = 0
        self._writers: set[asyncio.StreamWriter] = set()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.Server | None = None

    def start(self) -> None:
        self._thread.start()
        self._call(self._listen())

    def stop(self) -> None:
        self._call(self._close())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    def cut(self) -> None:
        """From now on the database is unreachable: open connections drop, new ones fail."""
        self.is_down = True
        self._call(self._abort_all())

    def restore(self) -> None:
        self.is_down = False

    def _call(self, coroutine: Coroutine[Any, Any, None]) -> None:
        asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout=10)

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port)

    async def _close(self) -> None:
        await self._abort_all()
        if self._server is not None:
            self._server.close()

    async def _abort_all(self) -> None:
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.is_down:
            self.refused += 1
            writer.transport.abort()  # a reset, as from a host whose database is gone
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        self._writers |= {writer, up_writer}
        await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
        self._writers -= {writer, up_writer}


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        writer.transport.abort()


@contextmanager
def database_proxy(host: str, port: int) -> Iterator[DatabaseProxy]:
    proxy = DatabaseProxy(host, port)
    proxy.start()
    try:
        yield proxy
    finally:
        proxy.stop()
