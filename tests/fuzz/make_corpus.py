#!/usr/bin/env python3
"""Writes the seed corpus of tests/fuzz/ (committed; rerun only to change the seeds):
small valid safetensors files (F32/BF16/U8, metadata, empty, grams files), .npy arrays (v1/v2,
C and Fortran order), a sharded index, and the hostile inputs of tests/test_cli.py."""
import json
import os
import struct
import sys

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(here, ".."))
sys.argv = [sys.argv[0], "build"]
import test_cli  # noqa: E402  (its HOSTILE table and its independent writer)

out = os.path.join(here, "corpus")
os.makedirs(out, exist_ok=True)


def put(name, data):
    with open(os.path.join(out, name), "wb") as f:
        f.write(data)


def st(entries, meta=None):
    header, body, off = {}, b"", 0
    if meta is not None:
        header["__metadata__"] = meta
    for name, (dt, shape, raw) in entries.items():
        header[name] = {"dtype": dt, "shape": shape, "data_offsets": [off, off + len(raw)]}
        off += len(raw)
        body += raw
    h = json.dumps(header).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    return struct.pack("<Q", len(h)) + h + body


put("st_f32_matrix", st({"w": ("F32", [4, 4], struct.pack("<16f", *range(16)))}, {"format": "pt"}))
put("st_bf16_u8", st({"a": ("BF16", [2, 4], b"\x80\x3f" * 8), "m": ("U8", [4], b"\x01\x00\x01\x00")}))
put("st_empty_header", st({}))
put("st_zero_size", st({"z": ("F16", [0, 4], b""), "s": ("I64", [], b"\x07" + b"\0" * 7)}))
put("st_escapes", st({"na\u00efve \"q\" \U0001F600": ("U8", [1], b"\x01")}))  # json.dumps writes \u escapes
# grams files (tsenor prune --gram): a valid one, a wrong shape, a wrong dtype, a rank-1 gram
put("grams_ok", st({"l.weight": ("F32", [4, 4], struct.pack("<16f", *[float(i == j) for i in range(4) for j in range(4)])),
                    "m.weight": ("F32", [2, 2], struct.pack("<4f", 2, 1, 1, 2))}, {"calibration_tokens": "8"}))
put("grams_bad", st({"l.weight": ("F32", [4, 2], b"\0" * 32), "m.weight": ("F64", [2, 2], b"\0" * 32),
                     "v.weight": ("F32", [4], b"\0" * 16)}))
npy_v1 = b"\x93NUMPY\x01\x00" + struct.pack("<H", 118) + b"{'descr': '<f4', 'fortran_order': False, 'shape': (2, 4), }".ljust(117) + b"\n"
put("npy_v1_f4", npy_v1 + struct.pack("<8f", *range(8)))
npy_v2 = b"\x93NUMPY\x02\x00" + struct.pack("<I", 116) + b"{'descr': '<f2', 'fortran_order': True, 'shape': (4, 2), }".ljust(115) + b"\n"
put("npy_v2_f2_fortran", npy_v2 + b"\x00\x3c" * 8)
put("npy_u1_vector", b"\x93NUMPY\x01\x00" + struct.pack("<H", 118) + b"{'descr': '|u1', 'fortran_order': False, 'shape': (3,), }".ljust(117) + b"\n" + b"\1\0\1")
put("index", json.dumps({"metadata": {"total_size": 64, "x": [1, 2.5e3, None, True]},
                         "weight_map": {"a.weight": "model-00001-of-00002.safetensors",
                                        "b.weight": "model-00002-of-00002.safetensors"}}).encode())
for name, data in test_cli.HOSTILE.items():
    put("hostile_" + name, data)
print("wrote %d seeds to %s" % (len(os.listdir(out)), out))
