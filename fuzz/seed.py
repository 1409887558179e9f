#!/usr/bin/env python3
"""Writes the fuzz seed corpus: (TABLE_MAP, event) pairs cut from real binlogs.

Input format of the `events` target: event type byte, u16 LE TABLE_MAP length, TABLE_MAP
body, event body (bodies without header and checksum).
    python3 fuzz/seed.py        # from the repo root; writes fuzz/corpus/events/seed*
"""
import glob
import os
import struct

root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
out = os.path.join(root, "fuzz", "corpus", "events")
os.makedirs(out, exist_ok=True)
files = sorted(glob.glob(os.path.join(root, "fixtures", "mariadb-10.11", "*", "*-bin.0*")))
files += sorted(glob.glob(os.path.join(root, "fixtures", "binlogs", "*", "*")))
n = 0
for path in files:
    data = open(path, "rb").read()
    if data[:4] != b"\xfebin":
        continue
    pos, last_map, crc = 4, None, 0
    while pos + 19 <= len(data) and n < 1000:
        _ts, typ, _sid, size, _logpos, _flags = struct.unpack("<IBIIIH", data[pos:pos + 19])
        if size < 19 or pos + size > len(data):
            break
        if typ == 15:  # FORMAT_DESCRIPTION: is there a CRC32 after each event?
            crc = 4 if data[pos + size - 5] == 1 else 0
        body = data[pos + 19:pos + size - crc]
        if typ == 19:
            last_map = body
        elif last_map is not None:
            with open(os.path.join(out, f"seed{n:04d}"), "wb") as f:
                f.write(bytes([typ]) + struct.pack("<H", len(last_map)) + last_map + body)
            n += 1
        pos += size
print(f"{n} seeds in {out}")
