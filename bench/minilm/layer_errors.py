"""Pruning error on the 36 linear layers of all-MiniLM-L6-v2: each of tsenor's pruning
methods (magnitude, wanda, sparsegpt, alps through tsenor.prune_layer) at row-wise 2:4
and transposable 2:4, 8:16 and 16:32, plus ALPS with the EXACT mask solver as its
projection at transposable 8:16. Calibration is sequential (calibrate.prune_sequential):
the inputs of layer k come from the pruned layers before it, so every row of the table
is its own pass through the model.

Prints, in Markdown:

  - the mean over the 36 layers of the relative output error tr(ΔHΔᵀ) / tr(WHWᵀ), H the
    layer's calibration gram as measured (before damping);
  - the seconds spent in tsenor.prune_layer (the solving only; no forward pass, no
    gram), summed over the layers;
  - the targets: ALPS < SPARSEGPT < WANDA and MAGNITUDE on every pattern; ALPS at
    transposable 16:32 <= ALPS at row-wise 2:4 <= SPARSEGPT at row-wise 2:4; the mean
    errors of a NumPy reference implementation with 512 sentences (REFERENCE), to match
    or beat;
  - speed: ALPS at transposable 16:32 on every layer by the C library and by the plain
    NumPy/OpenBLAS ALPS of bench/peers/alps_numpy.py on the same W and H, the same
    thread count, in this run; the ratio of their solving times.

Every mask is checked with tsenor.check; any invalid mask or zero outside the mask makes
the exit status 1 (missed targets do not: this is a benchmark).

    python3 -m bench.minilm.layer_errors                  # 512 sentences, the full table
    python3 -m bench.minilm.layer_errors --quick          # 64 sentences
    python3 -m bench.minilm.layer_errors --threads 2      # OpenBLAS and tsenor threads

Threads: --threads T (default: OPENBLAS_NUM_THREADS, which bench/minilm sets to 1) is
given to OpenBLAS (set before NumPy is imported), to tsenor.prune_layer and to the
peer's tsenor.mask calls, so that both sides of the speed ratio use the same cores.
Needs numpy, safetensors, the data packages (bench/minilm/README.md) and the tsenor
Python package with prune_layer (make python; PYTHONPATH=build/python/site)."""
import argparse
import os
import sys
import time

ALL_PATTERNS = (  # label, n, m, mask solver (the quality table, quality_table.py, has all six)
    ("row-wise 2:4", 2, 4, "rowwise"),
    ("row-wise 8:16", 8, 16, "rowwise"),
    ("row-wise 16:32", 16, 32, "rowwise"),
    ("transposable 2:4", 2, 4, "tsenor"),
    ("transposable 8:16", 8, 16, "tsenor"),
    ("transposable 16:32", 16, 32, "tsenor"),
)
PATTERNS = tuple(p for p in ALL_PATTERNS if p[0] != "row-wise 8:16" and p[0] != "row-wise 16:32")  # this table's
METHODS = ("magnitude", "wanda", "sparsegpt", "alps")
RECONSTRUCTING = ("sparsegpt", "alps")              # the methods that refit the kept weights
EXTRA = (("alps", "transposable 8:16", "exact"),)   # (method, pattern, mask solver) rows
SPEED = ("alps", "transposable 16:32")               # the row the NumPy peer is timed on

# mean errors of a careful NumPy implementation, 512 calibration sentences
REFERENCE = {
    "row-wise 2:4": {"magnitude": "0.10", "wanda": "0.068", "sparsegpt": "0.037", "alps": "0.023"},
    "transposable 16:32": {"magnitude": "0.060", "wanda": "0.057", "sparsegpt": "0.028", "alps": "0.016"},
}


def pattern(label):
    for p in ALL_PATTERNS:
        if p[0] == label:
            return p
    raise KeyError(label)


def short_label(label):
    """"2:4r" for row-wise 2:4, "16:32t" for transposable 16:32."""
    _, n, m, solver = pattern(label)
    return "%d:%d%s" % (n, m, "r" if solver == "rowwise" else "t")


def parse_patterns(text):
    """Pattern labels from a comma-separated list of short labels; SystemExit on an unknown one."""
    short = {short_label(lab): lab for lab, _, _, _ in ALL_PATTERNS}
    try:
        return [short[s.strip()] for s in text.split(",") if s.strip()]
    except KeyError as e:
        raise SystemExit(f"unknown pattern {e}; one of {', '.join(short)}")


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sentences", type=int, default=None, help="calibration sentences (default 512, --quick 64)")
    p.add_argument("--quick", action="store_true", help="64 calibration sentences")
    p.add_argument("--threads", type=int, default=None, help="OpenBLAS and tsenor threads (default OPENBLAS_NUM_THREADS)")
    p.add_argument("--methods", default=",".join(METHODS), help="comma-separated subset of " + ",".join(METHODS))
    p.add_argument("--patterns", default=None, help="comma-separated, of: " + ", ".join(
        short_label(lab) for lab, _, _, _ in ALL_PATTERNS) + " (e.g. 2:4r,16:32t; default: "
        + ",".join(short_label(lab) for lab, _, _, _ in PATTERNS) + ")")
    p.add_argument("--no-extra", action="store_true", help="leave out ALPS with the EXACT projection")
    p.add_argument("--no-speed", action="store_true", help="leave out the NumPy peer")
    p.add_argument("--per-layer", action="store_true", help="also print every layer's error")
    p.add_argument("--requirements", action="store_true",
                   help="print what is missing for the table (tsenor aside) and exit: nothing when all is there")
    args = p.parse_args(argv)
    if args.sentences is None:
        args.sentences = 64 if args.quick else 512
    return args


ARGS = parse_args(sys.argv[1:]) if __name__ == "__main__" else None
if ARGS is not None and ARGS.threads is not None:
    if "numpy" in sys.modules:
        raise SystemExit("layer_errors: --threads must be applied before NumPy is imported")
    os.environ["OPENBLAS_NUM_THREADS"] = str(ARGS.threads)

from . import paths  # noqa: E402  (sets OPENBLAS_NUM_THREADS=1 unless set, before NumPy)


def missing(need_tsenor=True):
    """Why the MiniLM layers cannot be pruned here, or None. Needs numpy, safetensors,
    the checkpoint and the news articles (not the TREC questions), and with need_tsenor
    the tsenor package with prune_layer."""
    try:
        import numpy  # noqa: F401
        import safetensors  # noqa: F401
    except ImportError as e:
        return f"{e.name} is not installed (pip install numpy safetensors)"
    try:
        paths.checkpoint_file("model.safetensors")
        paths.checkpoint_file("tokenizer.json")
        paths.news_zip()
    except paths.DataMissing as e:
        return str(e)
    if not need_tsenor:
        return None
    try:
        import tsenor
    except ImportError:
        return "the tsenor Python package is not importable (make python; PYTHONPATH=build/python/site)"
    if not hasattr(tsenor, "prune_layer"):
        return f"this tsenor Python package ({tsenor.__file__}) has no prune_layer"
    return None


class Row:
    """One sequential calibration of the model with one method and pattern."""

    def __init__(self, method, label, solver, threads, peer=False):
        self.method, self.label, self.solver, self.threads, self.peer = method, label, solver, threads, peer
        _, self.n, self.m, _ = pattern(label)
        self.layers = []   # dicts: name, shape, error, seconds, report, (peer_*)
        self.bad = []      # what was wrong with a mask or the weights
        self.wall = 0.0    # seconds of the sequential calibration, pruning included
        self.model = None  # the pruned model

    @property
    def name(self):
        default = "rowwise" if self.label.startswith("row-wise") else "tsenor"
        return self.method if self.solver == default else f"{self.method}, {self.solver.upper()} projection"

    def _check(self, name, what, w_new, keep):
        import numpy as np
        import tsenor
        if not tsenor.check(keep, self.n, self.m, self.solver != "rowwise"):
            self.bad.append(f"{self.name} {self.label} {name}: {what} mask is not a valid {self.n}:{self.m}")
        if np.any(w_new[~keep] != 0):
            self.bad.append(f"{self.name} {self.label} {name}: {what} weights outside the mask")

    def prune(self, name, w, h):
        import numpy as np
        import tsenor
        h32 = h.astype(np.float32)
        start = time.perf_counter()
        w_new, keep, report = tsenor.prune_layer(w, h32, self.n, self.m, method=self.method,
                                                 mask_method=self.solver, threads=self.threads)
        seconds = time.perf_counter() - start
        self._check(name, "tsenor.prune_layer", w_new, keep)
        layer = {"name": name, "shape": w.shape, "seconds": seconds, "report": report}
        if self.peer:
            from ..peers import alps_numpy
            from .calibrate import relative_output_error
            start = time.perf_counter()
            w_peer, keep_peer, info = alps_numpy.alps(w, h32, self.n, self.m, method=self.solver,
                                                      threads=self.threads)
            layer["peer_seconds"] = time.perf_counter() - start
            layer["peer_info"] = info
            layer["peer_error"] = relative_output_error(w, w_peer, h)
            self._check(name, "NumPy peer", w_peer, keep_peer)
        self.layers.append(layer)
        return w_new

    def run(self, dense, ids, within_layer="sequential", target="pruned"):
        """target "dense" (calibrate.prune_sequential) applies to the methods that refit
        the weights, SPARSEGPT and ALPS; MAGNITUDE and WANDA keep W as it is."""
        from .calibrate import prune_sequential
        if self.method not in RECONSTRUCTING:
            target = "pruned"
        self.target = target
        start = time.perf_counter()
        self.model, infos = prune_sequential(dense, ids, self.prune, within_layer=within_layer, target=target)
        self.wall = time.perf_counter() - start
        for layer, info in zip(self.layers, infos):
            assert layer["name"] == info.name
            layer["error"] = info.relative_error
        return self

    def mean(self, key="error"):
        return sum(layer[key] for layer in self.layers) / len(self.layers)

    def total(self, key="seconds"):
        return sum(layer[key] for layer in self.layers)


def quoted_at_most(value, quoted):
    """value matches or beats a number quoted to its last digit: it rounds to at most it."""
    digits = len(quoted.split(".")[1]) if "." in quoted else 0
    return value < float(quoted) + 0.5 * 10.0 ** -digits


def targets(rows):
    """[(met, line)] for the targets whose rows ran."""
    def get(method, label):
        r = rows.get((method, label, "rowwise" if label.startswith("row-wise") else "tsenor"))
        return r.mean() if r else None

    out = []
    for label, _, _, _ in ALL_PATTERNS:
        e = {mth: get(mth, label) for mth in METHODS}
        if None in e.values():
            continue
        met = e["alps"] < e["sparsegpt"] < min(e["wanda"], e["magnitude"])
        out.append((met, f"ALPS < SPARSEGPT < WANDA, MAGNITUDE at {label}: {e['alps']:.4f} < {e['sparsegpt']:.4f} "
                         f"< {e['wanda']:.4f}, {e['magnitude']:.4f}"))
    a16, a24, s24 = get("alps", "transposable 16:32"), get("alps", "row-wise 2:4"), get("sparsegpt", "row-wise 2:4")
    if None not in (a16, a24, s24):
        out.append((a16 <= a24 <= s24, f"ALPS T16:32 <= ALPS row-wise 2:4 <= SPARSEGPT row-wise 2:4: "
                                       f"{a16:.4f} <= {a24:.4f} <= {s24:.4f}"))
    for label, refs in REFERENCE.items():
        for method, quoted in refs.items():
            e = get(method, label)
            if e is not None:
                out.append((quoted_at_most(e, quoted), f"{method} at {label} matches or beats the NumPy reference "
                                                       f"{quoted}: {e:.4f}"))
    return out


def load_average():
    try:
        return "%.2f %.2f %.2f" % os.getloadavg()
    except OSError:
        return "unknown"


def print_tables(rows, labels, sentences, tokens, threads):
    def cell(r, key):
        if r is None:
            return ""
        return f"{r.mean():.4f}" if key == "error" else f"{r.total():.2f}"

    names = []
    for r in rows.values():
        if r.name not in names:
            names.append(r.name)
    for key, title in (("error", "mean relative error over the 36 layers"),
                       ("seconds", "seconds in tsenor.prune_layer, 36 layers")):
        print(f"\n{title} (sequential calibration, {sentences} sentences, {tokens} tokens, threads {threads}):\n")
        print("| method | " + " | ".join(labels) + " |")
        print("| --- |" + " ---: |" * len(labels))
        for name in names:
            cells = [cell(next((r for r in rows.values() if r.name == name and r.label == label), None), key)
                     for label in labels]
            print(f"| {name} | " + " | ".join(cells) + " |")


def print_speed(row, threads):
    import numpy as np
    c, peer = row.total("seconds"), row.total("peer_seconds")
    c_proj = sum(layer["report"].projection_seconds for layer in row.layers)
    p_proj = sum(layer["peer_info"]["projection_seconds"] for layer in row.layers)
    c_its = [layer["report"].iterations for layer in row.layers]
    p_its = [layer["peer_info"]["iterations"] for layer in row.layers]
    print(f"\nspeed: ALPS at {row.label}, the same 36 (W, H) in this run, {threads} thread(s) on both sides:\n")
    print("| | seconds | in the projection | ADMM iterations (mean, max) | mean error |")
    print("| --- | ---: | ---: | ---: | ---: |")
    print(f"| tsenor.prune_layer (C) | {c:.2f} | {c_proj:.2f} ({100 * c_proj / c:.0f}%) | "
          f"{np.mean(c_its):.1f}, {max(c_its)} | {row.mean():.4f} |")
    print(f"| NumPy/OpenBLAS peer | {peer:.2f} | {p_proj:.2f} ({100 * p_proj / peer:.0f}%) | "
          f"{np.mean(p_its):.1f}, {max(p_its)} | {row.mean('peer_error'):.4f} |")
    print(f"\nspeed-up of the C library over the NumPy peer (peer seconds / C seconds): {peer / c:.2f}x "
          f"(target >= 2x); the C library's total {c:.2f} s (target <= 10 s)")
    by_kind = {}
    for layer in row.layers:
        kind = layer["name"].split(".", 3)[3].rsplit(".weight", 1)[0]
        k = by_kind.setdefault(kind, [layer["shape"], 0.0, 0.0])
        k[1] += layer["seconds"]
        k[2] += layer["peer_seconds"]
    print("\n| layer kind (6 each) | shape | C s | peer s | ratio |\n| --- | --- | ---: | ---: | ---: |")
    for kind, (shape, cs, ps) in by_kind.items():
        print(f"| {kind} | {shape[0]}x{shape[1]} | {cs:.2f} | {ps:.2f} | {ps / cs:.2f} |")


def main(args):
    if args.requirements:
        reason = missing(need_tsenor=False)
        if reason:
            print(reason)
        return 0
    reason = missing()
    if reason:
        print(f"skipped: the MiniLM layer table: {reason}")
        return 0
    import numpy as np
    import tsenor
    from . import data
    from .model import MiniLM
    from .tokenizer import Tokenizer

    threads = args.threads if args.threads is not None else int(os.environ.get("OPENBLAS_NUM_THREADS", "1"))
    methods = [s.strip() for s in args.methods.split(",") if s.strip()]
    if set(methods) - set(METHODS):
        raise SystemExit(f"unknown method(s): {', '.join(sorted(set(methods) - set(METHODS)))}")
    labels = parse_patterns(args.patterns) if args.patterns else [p[0] for p in PATTERNS]
    plan = [(mth, lab, pattern(lab)[3]) for lab in labels for mth in methods]
    if not args.no_extra:
        plan += [x for x in EXTRA if x[0] in methods and x[1] in labels]

    tok, dense = Tokenizer.from_file(), MiniLM.load()
    ids = tok.encode_all(data.calibration(args.sentences), max_length=128)
    tokens = sum(len(i) for i in ids)
    print(f"MiniLM layer errors: {args.sentences} calibration sentences ({tokens} tokens), threads {threads}, "
          f"tsenor {tsenor.__version__}, numpy {np.__version__}, load average {load_average()}")
    rows = {}
    start = time.perf_counter()
    for method, label, solver in plan:
        peer = not args.no_speed and (method, label) == SPEED and solver == "tsenor"
        row = Row(method, label, solver, threads, peer).run(dense, ids)
        rows[(method, label, solver)] = row
        extra = f", NumPy peer {row.total('peer_seconds'):.2f} s (mean error {row.mean('peer_error'):.4f})" if peer else ""
        print(f"  {row.name:<26} {label:<19} mean error {row.mean():.4f}  pruner {row.total():7.2f} s  "
              f"row {row.wall:6.1f} s{extra}", flush=True)
        if args.per_layer:
            for layer in row.layers:
                more = f" peer {layer['peer_error']:.5f}" if peer else ""
                print(f"    {layer['name']:<46} {layer['error']:.5f} {layer['seconds']:.3f} s "
                      f"it {layer['report'].iterations}{more}")
    print_tables(rows, labels, args.sentences, tokens, threads)
    checks = targets(rows)
    if checks:
        print("\ntargets" + ("" if args.sentences == 512 else f" (the reference numbers are for 512 sentences; "
                                                             f"this run has {args.sentences})") + ":\n")
        for met, line in checks:
            print(f"- {'met' if met else 'MISSED'}: {line}")
        print(f"\n{sum(m for m, _ in checks)} of {len(checks)} targets met")
    for method, label, solver in EXTRA:
        a, b = rows.get((method, label, solver)), rows.get((method, label, "tsenor"))
        if a is not None and b is not None:
            print(f"\n{method} at {label}, {solver.upper()} against TSENOR as the projection: mean error "
                  f"{a.mean():.5f} against {b.mean():.5f} ({100 * (a.mean() / b.mean() - 1):+.2f}%), "
                  f"{a.total():.2f} s against {b.total():.2f} s in the pruner")
    speed = rows.get((SPEED[0], SPEED[1], "tsenor"))
    if speed is not None and speed.peer:
        print_speed(speed, threads)
    bad = [b for r in rows.values() for b in r.bad]
    masks = sum(len(r.layers) * (2 if r.peer else 1) for r in rows.values())
    for b in bad:
        print("FAIL", b)
    print(f"\n{masks - len(bad)} of {masks} masks valid (tsenor.check) with zeros outside them; "
          f"{time.perf_counter() - start:.0f} s in all, load average {load_average()}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(ARGS))
