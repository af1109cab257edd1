"""Building millions of short strings fast: compose UTF-8 byte matrices, hand the buffer to Arrow.

Converting numpy unicode arrays to pandas strings costs ~0.4 µs per value; codes and names are instead built as
(n, width) uint8 matrices (digits by arithmetic, CJK characters by table lookup) and become an Arrow string array
without a per-value Python step.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa

STR_DTYPE = pd.StringDtype("pyarrow", na_value=np.nan)      # pandas 3's default "str"


def digits(values, width: int) -> np.ndarray:
    """(n, width) ASCII digit matrix of non-negative integers, zero-padded on the left."""
    v = np.array(values, dtype=np.int64)
    out = np.empty((len(v), width), dtype=np.uint8)
    for j in range(width - 1, -1, -1):
        out[:, j] = v % 10 + 48
        v //= 10
    return out


def char_table(chars) -> np.ndarray:
    """(k, 3) UTF-8 byte rows of single CJK characters (all 3 bytes in UTF-8)."""
    enc = [c.encode("utf-8") for c in np.asarray(chars).tolist()]
    if any(len(e) != 3 for e in enc):
        raise ValueError("only 3-byte UTF-8 characters are supported")
    return np.frombuffer(b"".join(enc), dtype=np.uint8).reshape(len(enc), 3)


def const(text: str, n: int) -> np.ndarray:
    b = np.frombuffer(text.encode("utf-8"), dtype=np.uint8)
    return np.broadcast_to(b, (n, len(b)))


def to_str(mat: np.ndarray, lengths=None, mask_null=None) -> pd.arrays.ArrowStringArray:
    """Rows of a UTF-8 byte matrix (each row's first ``lengths`` bytes; all when None) as a pandas str array."""
    mat = np.ascontiguousarray(mat, dtype=np.uint8)
    n, w = mat.shape
    if lengths is None:
        offsets = np.arange(n + 1, dtype=np.int64) * w
        data = mat.ravel()
    else:
        lengths = np.asarray(lengths, dtype=np.int64)
        offsets = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        data = mat[np.arange(w)[None, :] < lengths[:, None]]
    validity = None
    if mask_null is not None and np.any(mask_null):
        validity = pa.py_buffer(np.packbits(~np.asarray(mask_null, bool), bitorder="little"))
    arr = pa.LargeStringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(np.ascontiguousarray(data)),
                                           validity).cast(pa.string())
    return pd.array(arr, dtype=STR_DTYPE)


def from_small(values, idx) -> pd.arrays.ArrowStringArray:
    """values[idx] as a str array, for columns that repeat a few distinct values."""
    return pd.array(np.asarray(values, dtype=object), dtype=STR_DTYPE).take(np.asarray(idx))

