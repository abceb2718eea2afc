"""A TCP proxy in front of pulsar-lite that makes every client disconnect look clean to the broker.

pulsar-lite 0.2 cleans up a connection's consumers only when the socket ends with an orderly EOF.
When a client process is SIGKILLed with unread data in its socket, the kernel sends a reset; the
broker then keeps the dead consumer registered and never redelivers its unacknowledged messages.
This proxy ends its own broker-side socket with an orderly half-close whatever happened on the
client side, and keeps reading from the broker until the broker closes, so the broker always takes
its clean path (and redelivers). It also rewrites the broker's address in lookup answers to its own,
so that clients keep talking through it. Apache Pulsar needs none of this.

Run as `python -m pagos_dev.embedded.pulsar_proxy LISTEN_PORT UPSTREAM_PORT`.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
import sys

_HEADER = struct.Struct(">II")  # total size, command size


class _Frames:
    """Splits the broker's byte stream into whole Pulsar frames, rewriting the advertised address
    inside the command part (same length, so no size field changes)."""

    def __init__(self, old: bytes, new: bytes) -> None:
        if len(old) != len(new):
            raise ValueError("the proxy and the broker must listen on ports of the same length")
        self._old, self._new = old, new
        self._buffer = bytearray()

    def feed(self, data: bytes) -> bytes:
        self._buffer += data
        out = bytearray()
        while len(self._buffer) >= _HEADER.size:
            total, command = _HEADER.unpack_from(self._buffer)
            end = 4 + total
            if len(self._buffer) < end:
                break
            frame = bytes(self._buffer[:end])
            del self._buffer[:end]
            head = frame[: 8 + command]
            if self._old in head:
                frame = head.replace(self._old, self._new) + frame[8 + command :]
            out += frame
        return bytes(out)


async def _pipe_client_to_broker(client: asyncio.StreamReader, broker: asyncio.StreamWriter) -> None:
    try:
        while data := await client.read(65536):
            broker.write(data)
            await broker.drain()
    except (ConnectionError, OSError):
        pass  # the client is gone, cleanly or not: the broker gets an orderly EOF below
    finally:
        with contextlib.suppress(OSError, RuntimeError):
            broker.write_eof()


async def _pipe_broker_to_client(broker: asyncio.StreamReader, client: asyncio.StreamWriter, frames: _Frames) -> None:
    client_alive = True
    with contextlib.suppress(ConnectionError, OSError):
        while data := await broker.read(65536):  # read to the end even with the client gone
            out = frames.feed(data)
            if client_alive and out:
                try:
                    client.write(out)
                    await client.drain()
                except (ConnectionError, OSError):
                    client_alive = False


async def _handle(
    client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter, upstream_port: int, listen_port: int
) -> None:
    try:
        broker_reader, broker_writer = await asyncio.open_connection("127.0.0.1", upstream_port)
    except OSError:
        client_writer.close()
        return
    frames = _Frames(f"127.0.0.1:{upstream_port}".encode(), f"127.0.0.1:{listen_port}".encode())
    try:
        await asyncio.gather(
            _pipe_client_to_broker(client_reader, broker_writer),
            _pipe_broker_to_client(broker_reader, client_writer, frames),
        )
    finally:
        for writer in (client_writer, broker_writer):
            writer.close()


async def serve(listen_port: int, upstream_port: int) -> None:
    server = await asyncio.start_server(
        lambda r, w: _handle(r, w, upstream_port, listen_port), "127.0.0.1", listen_port
    )
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(int(sys.argv[1]), int(sys.argv[2])))
