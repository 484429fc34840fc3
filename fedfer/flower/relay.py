"""A TCP relay that counts the bytes of every connection it forwards: the wire, below Flower's counts.

Why: the SuperLink counts the protobuf messages of its Fleet API (`flwr ls`, network-traffic) and
fedfer counts the serialized Flower messages; neither sees what a connection really carries — TLS
records, HTTP/2 and gRPC framing, the polls and heartbeats between messages, the FAB download. Put
this relay between the SuperNodes and the SuperLink and it counts that. It does not terminate TLS:
the bytes pass through unread, so the SuperNodes still verify the SuperLink's certificate, which
names the host both listen on. TCP/IP headers are not counted (the kernel's, not the connection's).

    with CountingRelay() as relay:
        node_address = relay.route("127.0.0.1:9092")  # the SuperNodes dial this instead
        ...
        relay.bytes_to_target, relay.bytes_from_target
"""

from __future__ import annotations

import asyncio
import threading
from types import TracebackType

CHUNK = 1 << 16


class CountingRelay:
    """Listens on `host` (a free port) and forwards each connection to the address given to `route`,
    in a thread of its own, from `__enter__` to `__exit__`."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.host = host
        self.port = 0
        self.target: tuple[str, int] | None = None
        self.bytes_to_target = 0  # client → target: what the SuperNodes sent
        self.bytes_from_target = 0  # target → client: what the SuperLink sent
        self.connections = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.base_events.Server | None = None

    def route(self, target: str) -> str:
        """Forward new connections to `target` (host:port); returns the address to dial instead."""
        host, port = target.rsplit(":", 1)
        self.target = (host, int(port))
        return f"{self.host}:{self.port}"

    def __enter__(self) -> CountingRelay:
        self._thread.start()
        self._server = asyncio.run_coroutine_threadsafe(
            asyncio.start_server(self._forward, self.host, 0), self._loop
        ).result()
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        async def close() -> None:
            assert self._server is not None
            self._server.close()
            tasks = asyncio.all_tasks() - {asyncio.current_task()}
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(close(), self._loop).result()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()

    async def _forward(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        if self.target is None:
            client_writer.close()
            return
        self.connections += 1
        try:
            target_reader, target_writer = await asyncio.open_connection(*self.target)
        except OSError:
            client_writer.close()
            return
        await asyncio.gather(
            self._pipe(client_reader, target_writer, upstream=True),
            self._pipe(target_reader, client_writer, upstream=False),
            return_exceptions=True,
        )

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, upstream: bool) -> None:
        try:
            while chunk := await reader.read(CHUNK):
                if upstream:
                    self.bytes_to_target += len(chunk)
                else:
                    self.bytes_from_target += len(chunk)
                writer.write(chunk)
                await writer.drain()
        finally:
            writer.close()
