#!/usr/bin/env python3
"""Plays scripted conformance transcripts against the real social-sidecar binary over real pipes.

A transcript is a JSON file: {"description", "args"?, "env"?, "fakes"?: true, "steps": [...]}. Steps:

  {"send": <json>}                      frame and send a message (any JSON, including batches)
  {"sendRaw": "<text>", "drip": true?}  send raw bytes (\\r\\n escapes allowed), optionally one byte per write
  {"sendFrames": [<json>, ...]}         several frames in a single write
  {"expect": <pattern>}                 the next frame from the sidecar matches <pattern>
  {"expectUnordered": [<pattern>...]}   the next N frames match these patterns in any order
  {"expectNothing": <ms>}               no frame arrives within <ms>
  {"closeStdin": true}                  close the sidecar's stdin (EOF)
  {"expectExit": <code>}                the process exits with <code> within 10 s
  {"expectStderr": "<regex>"}           stderr (so far, or at exit) matches <regex>
  {"signal": "SIGTERM"}                 send a signal
  {"fake": {"script": [...]}}           POST a fault script to the fake platforms (transcripts with "fakes": true)
  {"answer": <pattern>, "result": <json>}  the next frame is a server-to-client request matching <pattern>; answer it
                                        with <json> as its result (or "error": {...} instead), echoing its id

Patterns: objects match exactly (same keys) unless they contain "$partial": true; arrays match element-wise;
strings starting with "$" are matchers: $any, $string, $int, $number, $bool, $null, $timestamp (RFC 3339),
$uuid, $nonEmpty, and "$regex:<re>". Any other value matches by equality (1 and 1.0 differ: ids keep their type).
"{{fake}}" inside a sent message is replaced by the fake platforms' base URL.
"""
from __future__ import annotations

import argparse
import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")
UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


class Mismatch(Exception):
    pass


def match(pattern, actual, path="$"):
    if isinstance(pattern, str) and pattern.startswith("$"):
        checks = {
            "$any": lambda v: True,
            "$string": lambda v: isinstance(v, str),
            "$nonEmpty": lambda v: isinstance(v, str) and v != "",
            "$int": lambda v: isinstance(v, int) and not isinstance(v, bool),
            "$number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
            "$bool": lambda v: isinstance(v, bool),
            "$null": lambda v: v is None,
            "$timestamp": lambda v: isinstance(v, str) and bool(RFC3339.match(v)),
            "$uuid": lambda v: isinstance(v, str) and bool(UUID.match(v)),
        }
        if pattern.startswith("$regex:"):
            if not (isinstance(actual, str) and re.search(pattern[7:], actual)):
                raise Mismatch(f"{path}: {actual!r} does not match /{pattern[7:]}/")
            return
        if pattern in checks:
            if not checks[pattern](actual):
                raise Mismatch(f"{path}: {actual!r} is not {pattern}")
            return
    if isinstance(pattern, dict):
        if not isinstance(actual, dict):
            raise Mismatch(f"{path}: expected an object, got {actual!r}")
        partial = pattern.get("$partial", False)
        keys = {k for k in pattern if k != "$partial"}
        if not partial and set(actual) != keys:
            raise Mismatch(f"{path}: keys {sorted(actual)} != expected {sorted(keys)}")
        for key in keys:
            if key not in actual:
                raise Mismatch(f"{path}: missing key {key!r}")
            match(pattern[key], actual[key], f"{path}.{key}")
        return
    if isinstance(pattern, list):
        if not isinstance(actual, list) or len(actual) != len(pattern):
            raise Mismatch(f"{path}: expected {len(pattern)} elements, got {actual!r}")
        for index, (p, a) in enumerate(zip(pattern, actual)):
            match(p, a, f"{path}[{index}]")
        return
    if type(pattern) is not type(actual) or pattern != actual:
        raise Mismatch(f"{path}: expected {pattern!r}, got {actual!r}")


def frame(message) -> bytes:
    body = json.dumps(message, separators=(",", ":")).encode()
    return b"Content-Length: %d\r\n\r\n" % len(body) + body


class Sidecar:
    def __init__(self, binary: str, args: list[str], env: dict[str, str]):
        self.process = subprocess.Popen(
            [binary, *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            env={**os.environ, **env})
        self.frames: queue.Queue = queue.Queue()
        self.stderr = bytearray()
        self.raw_stdout = bytearray()
        threading.Thread(target=self._read_stdout, daemon=True).start()
        threading.Thread(target=self._read_stderr, daemon=True).start()

    def _read_stdout(self):
        buffer = b""
        while True:
            chunk = self.process.stdout.read1(65536)
            if not chunk:
                self.frames.put(None)
                return
            self.raw_stdout += chunk
            buffer += chunk
            while True:
                end = buffer.find(b"\r\n\r\n")
                if end < 0:
                    break
                headers = buffer[:end].decode("ascii", "replace").split("\r\n")
                if not headers[0].startswith("Content-Length: "):
                    self.frames.put(("violation", f"first header line is {headers[0]!r}"))
                length = None
                for line in headers:
                    name, _, value = line.partition(":")
                    if name.lower() == "content-length":
                        length = int(value.strip())
                if length is None or len(buffer) < end + 4 + length:
                    break
                body = buffer[end + 4:end + 4 + length]
                buffer = buffer[end + 4 + length:]
                try:
                    self.frames.put(("frame", json.loads(body.decode("utf-8"))))
                except ValueError as error:
                    self.frames.put(("violation", f"frame is not JSON: {error}: {body[:200]!r}"))

    def _read_stderr(self):
        while True:
            chunk = self.process.stderr.read1(65536)
            if not chunk:
                return
            self.stderr += chunk

    def write(self, data: bytes, drip: bool = False):
        if drip:
            for index in range(len(data)):
                self.process.stdin.write(data[index:index + 1])
                self.process.stdin.flush()
        else:
            self.process.stdin.write(data)
            self.process.stdin.flush()

    def next_frame(self, timeout: float):
        try:
            item = self.frames.get(timeout=timeout)
        except queue.Empty:
            raise Mismatch(f"no frame within {timeout:.1f} s") from None
        if item is None:
            raise Mismatch("stdout closed while a frame was expected")
        kind, value = item
        if kind == "violation":
            raise Mismatch(value)
        return value

    def stop(self):
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()


def substitute(value, variables):
    text = json.dumps(value)
    for name, replacement in variables.items():
        text = text.replace("{{" + name + "}}", replacement)
    return json.loads(text)


def run_transcript(path: Path, binary: str, timeout: float) -> None:
    spec = json.loads(path.read_text())
    variables = {}
    fake = None
    if spec.get("fakes"):
        sys.path.insert(0, str(ROOT / "Tests" / "Fakes"))
        from fake_platforms import FakePlatforms  # noqa: PLC0415

        fake = FakePlatforms()
        fake.start()
        variables["fake"] = fake.base_url
    sidecar = Sidecar(binary, spec.get("args", []), spec.get("env", {}))
    try:
        for number, step in enumerate(spec["steps"], 1):
            try:
                play(step, sidecar, fake, variables, timeout)
            except Mismatch as error:
                raise Mismatch(f"step {number} {json.dumps(step)[:160]}: {error}") from None
    finally:
        sidecar.stop()
        if fake:
            fake.stop()


def play(step, sidecar: Sidecar, fake, variables, timeout):
    if "send" in step:
        sidecar.write(frame(substitute(step["send"], variables)), drip=step.get("drip", False))
    elif "sendFrames" in step:
        sidecar.write(b"".join(frame(substitute(m, variables)) for m in step["sendFrames"]))
    elif "sendRaw" in step:
        sidecar.write(step["sendRaw"].encode("utf-8"), drip=step.get("drip", False))
    elif "expect" in step:
        match(step["expect"], sidecar.next_frame(timeout))
    elif "expectUnordered" in step:
        remaining = list(step["expectUnordered"])
        for _ in range(len(remaining)):
            actual = sidecar.next_frame(timeout)
            for index, pattern in enumerate(remaining):
                try:
                    match(pattern, actual)
                except Mismatch:
                    continue
                del remaining[index]
                break
            else:
                raise Mismatch(f"unexpected frame {json.dumps(actual)[:300]}")
    elif "expectNothing" in step:
        try:
            item = sidecar.frames.get(timeout=step["expectNothing"] / 1000)
        except queue.Empty:
            return
        if item is not None:
            raise Mismatch(f"expected no frame, got {json.dumps(item[1])[:300]}")
    elif "closeStdin" in step:
        sidecar.process.stdin.close()
    elif "signal" in step:
        sidecar.process.send_signal(getattr(signal, step["signal"]))
    elif "expectExit" in step:
        try:
            code = sidecar.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            raise Mismatch("process did not exit within 10 s") from None
        if code != step["expectExit"]:
            raise Mismatch(f"exit code {code}, expected {step['expectExit']}")
    elif "expectStderr" in step:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if re.search(step["expectStderr"], sidecar.stderr.decode("utf-8", "replace")):
                return
            time.sleep(0.02)
        raise Mismatch(f"stderr does not match /{step['expectStderr']}/: {sidecar.stderr[-600:]!r}")
    elif "fake" in step:
        fake.script(step["fake"]["script"])
    elif "answer" in step:
        request = sidecar.next_frame(timeout)
        match(step["answer"], request)
        if "id" not in request:
            raise Mismatch(f"expected a request with an id, got {json.dumps(request)[:200]}")
        reply = {"jsonrpc": "2.0", "id": request["id"]}
        if "error" in step:
            reply["error"] = step["error"]
        else:
            reply["result"] = substitute(step.get("result"), variables)
        sidecar.write(frame(reply))
    else:
        raise Mismatch(f"unknown step {step}")


def default_binary() -> str:
    for candidate in (ROOT / ".build/release/social-sidecar", ROOT / ".build/debug/social-sidecar"):
        if candidate.exists():
            return str(candidate)
    raise SystemExit("no social-sidecar binary: run `swift build -c release` first or set SOCIAL_SIDECAR_BIN")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("transcripts", nargs="*", help="transcript files (default: all)")
    parser.add_argument("--binary", default=os.environ.get("SOCIAL_SIDECAR_BIN") or None)
    parser.add_argument("--timeout", type=float, default=5.0, help="seconds to wait for each expected frame")
    options = parser.parse_args()
    binary = options.binary or default_binary()
    paths = [Path(p) for p in options.transcripts] or sorted((Path(__file__).parent / "transcripts").glob("*.json"))
    passed = failed = 0
    for path in paths:
        started = time.monotonic()
        try:
            run_transcript(path, binary, options.timeout)
        except Mismatch as error:
            failed += 1
            print(f"FAIL {path.stem}: {error}")
        else:
            passed += 1
            print(f"ok   {path.stem} ({(time.monotonic() - started) * 1000:.0f} ms)")
    print(f"conformance: {passed} passed, {failed} failed")
    return 1 if failed or not passed else 0


if __name__ == "__main__":
    sys.exit(main())
