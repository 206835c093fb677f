"""Pruners in NumPy with the calibrate.py signature prune(name, W, H) -> W_new: the
baseline the calibration-aware methods are measured against, and the demo of the API."""
import numpy as np


def magnitude_nm(n, m):
    """Row-wise N:M by magnitude: in each row, of every m consecutive inputs keep the n
    largest |w|. H is not used."""
    if not 0 < n < m:
        raise ValueError("need 0 < n < m")

    def prune(name, w, h):
        rows, cols = w.shape
        if cols % m:
            raise ValueError(f"{name}: {cols} inputs is not a multiple of {m}")
        groups = w.reshape(rows, cols // m, m)
        # stable sort: ties keep the earlier input, so the mask is deterministic
        order = np.argsort(-np.abs(groups), axis=-1, kind="stable")
        keep = np.zeros(groups.shape, dtype=bool)
        np.put_along_axis(keep, order[..., :n], True, axis=-1)
        return np.where(keep, groups, 0).reshape(rows, cols).astype(w.dtype)

    return prune
