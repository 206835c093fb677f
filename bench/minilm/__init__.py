"""all-MiniLM-L6-v2 in NumPy: tokenizer, forward pass, calibration data, sequential
calibration-aware pruning and quality measures (see README.md in this folder)."""
import os

# NumPy's OpenBLAS threads spin while they wait; on a shared 2-core machine that made
# the forward pass 1.5-3x slower in wall time than one thread (README.md). Set before
# NumPy is first imported; OPENBLAS_NUM_THREADS=2 in the environment overrides it.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
