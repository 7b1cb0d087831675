#!/usr/bin/env python3
"""The async frame sizes of a Swift binary, largest first.   usage: async-frames.py BINARY [COUNT] [NAME-FILTER]

Every call in flight holds the frames of its whole chain of async functions, allocated from its task's slabs (about
1,000 bytes each; a frame that does not fit starts a new slab). 10,000 posts in flight multiply every byte by 10,000,
so `scripts/bench memory` prints this list: a frame that grows shows up here before it shows up as RSS.

An async function's "async function pointer" (mangled name ending in `Tu`) holds two 32-bit words: the relative
address of its first part and the size of the context (frame) its caller allocates for it. Frames grow when
synchronous work is inlined into an async function (its temporaries get frame slots) and when large structs are
copied into it; see docs/performance.md.
"""
import struct
import subprocess
import sys


def load_segments(binary: str) -> list[tuple[int, int, int]]:
    """(virtual address, file offset, file size) of each LOAD segment."""
    out = subprocess.run(["readelf", "-lW", binary], capture_output=True, text=True, check=True).stdout
    segments = []
    for line in out.splitlines():
        fields = line.split()
        if fields and fields[0] == "LOAD":
            segments.append((int(fields[2], 16), int(fields[1], 16), int(fields[4], 16)))
    return segments


def frame_sizes(binary: str) -> list[tuple[int, str]]:
    segments = load_segments(binary)
    data = open(binary, "rb").read()
    symbols = subprocess.run(["nm", binary], capture_output=True, text=True, check=True).stdout.splitlines()
    found = []
    for line in symbols:
        fields = line.split()
        if len(fields) != 3 or not fields[2].endswith("Tu"):
            continue
        address = int(fields[0], 16)
        for start, offset, size in segments:
            if start <= address < start + size:
                found.append((struct.unpack_from("<I", data, offset + address - start + 4)[0], fields[2]))
                break
    demangled = subprocess.run(
        ["swift", "demangle", "--simplified"], input="\n".join(name for _, name in found), capture_output=True,
        text=True, check=True).stdout.splitlines()
    prefix = "async function pointer to "
    return sorted(((size, name.removeprefix(prefix)) for (size, _), name in zip(found, demangled)
                   if not name.startswith(prefix + "partial apply")), reverse=True)


def main() -> None:
    if len(sys.argv) < 2:
        sys.exit(__doc__.splitlines()[0])
    count = int(sys.argv[2]) if len(sys.argv) > 2 else 15
    name_filter = sys.argv[3] if len(sys.argv) > 3 else ""
    rows = [row for row in frame_sizes(sys.argv[1]) if name_filter in row[1]]
    print(f"async frames: {len(rows)} functions, {sum(size for size, _ in rows):,} bytes in all; largest:")
    for size, name in rows[:count]:
        print(f"  {size:6,d}  {name[:150]}")


if __name__ == "__main__":
    main()
