"""all-MiniLM-L6-v2 in NumPy: tokenizer, forward pass, calibration data, sequential
calibration-aware pruning and quality measures (see README.md in this folder)."""
