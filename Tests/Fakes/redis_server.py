"""A real `redis-server` (Debian's package, installed by scripts/setup) on a free loopback port: the shared store of
the multi-replica tests and soak. Without persistence by default; `persistent=True` writes an append-only file
fsynced on every write (as production should run it), so a restart keeps the records. `stop()` kills it like a crash;
`start()` brings it back on the same port."""
from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time


class RedisServer:
    def __init__(self, persistent: bool = False) -> None:
        self.persistence = (["--appendonly", "yes", "--appendfsync", "always",
                             "--dir", tempfile.mkdtemp(prefix="redis-data-")] if persistent else ["--appendonly", "no"])
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.process: subprocess.Popen | None = None
        self.start()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}"

    def start(self) -> None:
        executable = shutil.which("redis-server") or "/usr/bin/redis-server"
        self.process = subprocess.Popen(
            [executable, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", *self.persistence,
             "--loglevel", "warning", "--logfile", ""], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.02)
        raise RuntimeError(f"redis-server did not start on port {self.port}")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def command(self, *args: str) -> bytes:
        """Sends one inline command and returns its reply: the payload of a bulk string, else the reply line."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=2) as connection:
            connection.sendall(" ".join(args).encode() + b"\r\n")
            reply = b""
            while b"\r\n" not in reply:
                reply += connection.recv(65536)
            header, _, rest = reply.partition(b"\r\n")
            if not header.startswith(b"$"):
                return header
            size = int(header[1:])
            while len(rest) < size + 2:
                rest += connection.recv(65536)
            return rest[:size]

    def __enter__(self) -> "RedisServer":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
