"""Slow HTTP/1.1 backend for scripts/soak-transport: `GET /slow?ms=N` answers "ok" after N ms.

nginx proxies to it over keep-alive connections; asyncio keeps thousands of waits cheap.
Usage: slow_backend.py PORT  (exits when stdin closes)
"""
import asyncio
import sys
import urllib.parse

RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 3\r\n\r\nok\n"


async def serve(reader, writer):
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            target = lines[0].split(" ")[1]
            length = 0
            for line in lines[1:]:
                if line.lower().startswith("content-length:"):
                    length = int(line.split(":", 1)[1])
            if length:
                await reader.readexactly(length)
            query = urllib.parse.parse_qs(urllib.parse.urlsplit(target).query)
            await asyncio.sleep(int(query.get("ms", ["100"])[0]) / 1000)
            writer.write(RESPONSE)
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


async def main():
    server = await asyncio.start_server(serve, "127.0.0.1", int(sys.argv[1]), backlog=1024)
    loop = asyncio.get_running_loop()
    stdin_closed = loop.run_in_executor(None, sys.stdin.read)
    async with server:
        await stdin_closed


asyncio.run(main())
