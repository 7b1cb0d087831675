#!/usr/bin/env python3
"""A slow Graph API for `scripts/bench memory`: every request is answered `{"id": "20000001_<n>"}` after HOLD ms.

HTTP/1.1 with keep-alive, one asyncio task per connection, so ten thousand held requests cost little.
Prints `ready` once listening; runs until killed, and dies with its parent.   usage: slow_graph.py PORT HOLD_MS
"""
import asyncio
import ctypes
import itertools
import signal
import sys

counter = itertools.count(1)


async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, hold: float) -> None:
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            if length:
                await reader.readexactly(length)
            await asyncio.sleep(hold)
            body = b'{"id":"20000001_%d"}' % next(counter)
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
                         % (len(body), body))
            await writer.drain()
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
        pass
    finally:
        writer.close()


async def main() -> None:
    port, hold = int(sys.argv[1]), int(sys.argv[2]) / 1000
    server = await asyncio.start_server(lambda r, w: serve(r, w, hold), "127.0.0.1", port, backlog=4096)
    print("ready", flush=True)
    async with server:
        await server.serve_forever()


PR_SET_PDEATHSIG = 1
ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


asyncio.run(main())
