#!/usr/bin/env python3
"""Seeded mutation fuzzer for the sidecar's framing and message decoding, run against the real binary over pipes.

Each input is a mutation of a valid frame or batch (bit flips, insertions, deletions, splices, truncation, absurd
Content-Length values, deep nesting, bad UTF-8, huge numbers, odd ids). Inputs stream into one long-lived process;
every `--probe-every` inputs a `health` probe (after filler that completes any half-read body) must be answered
within `--probe-timeout` seconds: that catches hangs and lost synchronisation. At the end the process must still be
alive, and its resident memory must stay under `--max-rss-mb`. Prints one summary line; exits non-zero on any crash,
hang or memory growth.

  python3 Tests/Fuzz/fuzz_protocol.py --inputs 1000000 --seed 1      # the benchmark run
"""
from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MAX_FRAME = 64 * 1024

SEEDS = [
    {"jsonrpc": "2.0", "id": 1, "method": "health"},
    {"jsonrpc": "2.0", "id": "abc", "method": "metrics/snapshot"},
    {"jsonrpc": "2.0", "method": "$/cancelRequest", "params": {"id": 5}},
    {"jsonrpc": "2.0", "id": 2, "method": "breaker/status"},
    {"jsonrpc": "2.0", "id": 3, "method": "breaker/reset", "params": {"platform": "facebook"}},
    {"jsonrpc": "2.0", "id": 4, "method": "facebook/post",
     "params": {"credentialRef": "x", "customerId": "c", "agentId": "a", "text": "hi", "imageUrls": ["ftp://x"]}},
    {"jsonrpc": "2.0", "id": 5, "method": "whatsapp/send", "params": {"to": "+1", "text": ""}},
    {"jsonrpc": "2.0", "id": "s1", "result": {"accessToken": "t", "accountId": "1"}},
    {"jsonrpc": "2.0", "id": 6, "error": {"code": -1, "message": "x"}},
    [{"jsonrpc": "2.0", "id": 7, "method": "health"}, {"jsonrpc": "2.0", "method": "initialized"}, 1],
    {"jsonrpc": "2.0", "id": 8, "method": "initialize", "params": {"config": {"retry": {"maxAttempts": 99}}}},
]
INTERESTING = [b"-1", b"0", b"1e999", b"-0", b"9223372036854775808", b"1.5", b"null", b"true", b"\"\"", b"[]",
               b"{}", b"\"\\ud800\"", b"\xff\xfe", b"\xc3\x28", b"\"\\u0000\"", b"[" * 300, b"{\"a\":" * 300]
HEADERS = [b"Content-Length: %d\r\n\r\n", b"content-length: %d\r\nContent-Type: application/json; charset=utf8\r\n\r\n",
           b"Content-Length:%d\r\n\r\n", b"Content-Length: %d\r\nX: y\r\n\r\n"]


def frame(body: bytes, rng: random.Random) -> bytes:
    header = rng.choice(HEADERS)
    roll = rng.random()
    if roll < 0.03:
        return b"Content-Length: %d\r\n\r\n" % rng.choice([MAX_FRAME + 1, 2**31, 2**63 - 1]) + body
    if roll < 0.06:
        return b"Content-Length: " + rng.choice([b"-5", b"abc", b"", b"1 2", b"0x10", b"\xff"]) + b"\r\n\r\n" + body
    if roll < 0.08:
        return b"Content-Length: %d\r\nContent-Length: %d\r\n\r\n" % (len(body), len(body) + 1) + body
    if roll < 0.10:
        return body + b"\n"  # unframed
    return header % len(body) + body


def mutate(data: bytes, rng: random.Random) -> bytes:
    data = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        choice = rng.random()
        if not data:
            data += rng.choice(INTERESTING)
        elif choice < 0.25:
            index = rng.randrange(len(data))
            data[index] ^= 1 << rng.randrange(8)
        elif choice < 0.45:
            index = rng.randrange(len(data) + 1)
            data[index:index] = rng.choice(INTERESTING)
        elif choice < 0.6:
            start = rng.randrange(len(data))
            del data[start:start + rng.randint(1, 8)]
        elif choice < 0.7:
            data = data[:rng.randrange(len(data) + 1)]
        elif choice < 0.85:
            index = rng.randrange(len(data) + 1)
            data[index:index] = bytes([rng.randrange(256)])
        else:
            other = json.dumps(rng.choice(SEEDS)).encode()
            cut = rng.randrange(len(data) + 1)
            data = data[:cut] + other[rng.randrange(len(other) + 1):]
    return bytes(data)


def make_input(rng: random.Random) -> bytes:
    body = json.dumps(rng.choice(SEEDS)).encode()
    if rng.random() < 0.8:
        body = mutate(body, rng)
    out = frame(body, rng)
    if rng.random() < 0.05:
        out = mutate(out, rng)  # mutate the header too
    return out


def binary() -> str:
    for candidate in (os.environ.get("SOCIAL_SIDECAR_BIN"), ROOT / ".build/release/social-sidecar",
                      ROOT / ".build/debug/social-sidecar"):
        if candidate and Path(candidate).exists():
            return str(candidate)
    raise SystemExit("no social-sidecar binary: run `scripts/build-release`")


class Target:
    def __init__(self) -> None:
        self.process = subprocess.Popen([binary(), "--log-level", "error"], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        self.lock = threading.Condition()
        self.seen_probes: set[str] = set()
        self.frames = 0
        self.buffer = b""
        threading.Thread(target=self._drain, daemon=True).start()

    def _drain(self) -> None:
        while True:
            chunk = self.process.stdout.read1(1 << 20)
            if not chunk:
                with self.lock:
                    self.lock.notify_all()
                return
            with self.lock:
                self.buffer = (self.buffer + chunk)[-4096:] if b"probe-" not in chunk else self.buffer + chunk
                while b"probe-" in self.buffer:
                    start = self.buffer.index(b"probe-")
                    end = self.buffer.find(b'"', start)
                    if end < 0:
                        break
                    self.seen_probes.add(self.buffer[start:end].decode())
                    self.buffer = self.buffer[end:]
                self.lock.notify_all()

    def send(self, data: bytes) -> None:
        self.process.stdin.write(data)

    def probe(self, name: str, timeout: float) -> bool:
        body = json.dumps({"jsonrpc": "2.0", "id": name, "method": "health"}).encode()
        # Filler completes any body the decoder is waiting for (bounded by maxFrameBytes), then a clean frame.
        self.send(b"\r\n" * (MAX_FRAME // 2 + 8) + b"Content-Length: %d\r\n\r\n" % len(body) + body)
        self.process.stdin.flush()
        deadline = time.monotonic() + timeout
        with self.lock:
            while name not in self.seen_probes:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self.process.poll() is not None:
                    return False
                self.lock.wait(min(remaining, 0.2))
        return True

    def rss_mb(self) -> float:
        with open(f"/proc/{self.process.pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
        return 0.0


def run(inputs: int, seed: int, probe_every: int, probe_timeout: float, max_rss_mb: float) -> int:
    rng = random.Random(seed)
    target = Target()
    init = json.dumps({"jsonrpc": "2.0", "id": "init", "method": "initialize",
                       "params": {"config": {"limits": {"maxFrameBytes": MAX_FRAME}}}}).encode()
    target.send(b"Content-Length: %d\r\n\r\n" % len(init) + init)
    started = time.monotonic()
    rss_start = None
    peak = 0.0
    sent_bytes = 0
    problems = []
    batch = bytearray()
    for number in range(1, inputs + 1):
        data = make_input(rng)
        batch += data
        sent_bytes += len(data)
        if len(batch) > 1 << 16:
            try:
                target.send(bytes(batch))
            except BrokenPipeError:
                problems.append(f"the sidecar closed stdin after input {number} (crash?)")
                break
            batch.clear()
        if number % probe_every == 0:
            target.send(bytes(batch))
            batch.clear()
            if not target.probe(f"probe-{number}", probe_timeout):
                code = target.process.poll()
                problems.append(f"no answer to a health probe after input {number}"
                                + (f" (process exited with {code})" if code is not None else " (hang)"))
                break
            rss = target.rss_mb()
            rss_start = rss if rss_start is None else rss_start
            peak = max(peak, rss)
    if not problems:
        target.send(bytes(batch))
        if not target.probe("probe-final", probe_timeout):
            problems.append("no answer to the final health probe")
    elapsed = time.monotonic() - started
    code = target.process.poll()
    if code is not None and not problems:
        problems.append(f"the sidecar exited with {code}")
    if peak > max_rss_mb:
        problems.append(f"peak RSS {peak:.1f} MB over the {max_rss_mb:.0f} MB bound")
    target.process.kill()
    target.process.wait()
    print(f"fuzz: {inputs} inputs ({sent_bytes / 1e6:.1f} MB) seed {seed} in {elapsed:.1f} s "
          f"({inputs / elapsed:,.0f} inputs/s); RSS {rss_start or 0:.1f} MB after first probe, peak {peak:.1f} MB; "
          f"{'OK' if not problems else 'FAILED: ' + '; '.join(problems)}")
    return 1 if problems else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inputs", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--probe-every", type=int, default=20_000)
    parser.add_argument("--probe-timeout", type=float, default=10.0)
    parser.add_argument("--max-rss-mb", type=float, default=64.0)
    options = parser.parse_args()
    return run(options.inputs, options.seed, options.probe_every, options.probe_timeout, options.max_rss_mb)


if __name__ == "__main__":
    sys.exit(main())
