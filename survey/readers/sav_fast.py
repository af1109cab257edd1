"""A vectorised reader of SPSS system files' data (uncompressed, bytecode-compressed .sav and zlib .zsav).

pyreadstat reads the dictionary (names, labels, missing values, formats, encoding); this module decodes the data
records with numpy, in chunks of rows, which is one to two orders of magnitude faster than pyreadstat's
value-by-value callbacks. It declines (``fast_sav_layout`` returns None) whenever the file uses something it does
not handle (big-endian, very long strings over 255 bytes, an unexpected dictionary): the caller then reads the
file with pyreadstat. Layout reference: the PSPP manual, "System File Format".
"""
from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from typing import Iterator

import numpy as np
import pandas as pd

SYSMIS_BITS = np.uint64(0xFFEFFFFFFFFFFFFF)            # -DBL_MAX: system missing in the file
NAN_BITS = np.uint64(0x7FF8000000000000)
SPACES = np.frombuffer(b" " * 8, dtype=np.uint64)[0]
_DATE_FORMATS = ("DATETIME", "DATE", "ADATE", "EDATE", "SDATE", "JDATE", "YMDHMS")
_EPOCH_OFFSET = 12219379200.0                            # seconds from 1582-10-14 to 1970-01-01


@dataclass
class SavLayout:
    compression: int            # 0 none, 1 bytecode, 2 zlib (zsav)
    bias: float
    ncases: int
    units: int                  # 8-byte units per case
    data_offset: int
    columns: list               # (name, start_unit, n_units, width) width 0 = numeric
    zheader: tuple | None = None


class _Unsupported(Exception):
    pass


def fast_sav_layout(path, column_names) -> SavLayout | None:
    """The data layout of a SAV file, or None when this reader does not handle it."""
    try:
        return _layout(path, list(column_names))
    except (_Unsupported, struct.error, ValueError, OSError):
        return None


def _layout(path, names) -> SavLayout:
    with open(path, "rb") as fh:
        head = fh.read(176)
        if len(head) < 176 or head[:4] not in (b"$FL2", b"$FL3"):
            raise _Unsupported("not a system file")
        layout_code, case_size, compression, _weight, ncases = struct.unpack_from("<iiiii", head, 64)
        if layout_code not in (2, 3):
            raise _Unsupported("big-endian")
        (bias,) = struct.unpack_from("<d", head, 84)
        records = []             # (type, width) per dictionary variable record
        while True:
            raw = fh.read(4)
            if len(raw) < 4:
                raise _Unsupported("dictionary ends early")
            (rt,) = struct.unpack("<i", raw)
            if rt == 2:
                typ, has_label, n_miss, _p, _w = struct.unpack("<iiiii", fh.read(20))
                fh.read(8)
                if has_label:
                    (ll,) = struct.unpack("<i", fh.read(4))
                    fh.read((ll + 3) // 4 * 4)
                if n_miss:
                    fh.read(abs(n_miss) * 8)
                records.append(typ)
            elif rt == 3:
                (count,) = struct.unpack("<i", fh.read(4))
                for _ in range(count):
                    fh.read(8)
                    (ll,) = struct.unpack("<B", fh.read(1))
                    fh.read((ll + 1 + 7) // 8 * 8 - 1)
            elif rt == 4:
                (count,) = struct.unpack("<i", fh.read(4))
                fh.read(4 * count)
            elif rt == 6:
                (n,) = struct.unpack("<i", fh.read(4))
                fh.read(80 * n)
            elif rt == 7:
                sub, size, count = struct.unpack("<iii", fh.read(12))
                if sub == 14:
                    raise _Unsupported("very long strings")
                fh.read(size * count)
            elif rt == 999:
                fh.read(4)
                break
            else:
                raise _Unsupported(f"record type {rt}")
        data_offset = fh.tell()
        zheader = None
        if compression == 2:
            zheader = struct.unpack("<qqq", fh.read(24))
    columns, unit = [], 0
    i = 0
    while i < len(records):
        typ = records[i]
        if typ < 0:
            raise _Unsupported("continuation without a string")
        n = 1 if typ == 0 else (typ + 7) // 8
        if any(t != -1 for t in records[i + 1:i + n]):
            raise _Unsupported("string layout")
        columns.append([None, unit, n, typ])
        unit += n
        i += n
    if unit != case_size and case_size != -1:
        raise _Unsupported("case size")
    if len(columns) != len(names):
        raise _Unsupported("names")
    for c, name in zip(columns, names):
        c[0] = name
    if compression not in (0, 1, 2):
        raise _Unsupported("compression")
    return SavLayout(compression=compression, bias=bias, ncases=ncases, units=unit, data_offset=data_offset,
                     columns=[tuple(c) for c in columns], zheader=zheader)


# ----------------------------------------------------------------------------------------------- decoding
def _units_stream(path, lay: SavLayout, block: int = 8 << 20) -> Iterator[np.ndarray]:
    """Decoded 8-byte units (uint64) of the data, in pieces, whatever the compression."""
    if lay.compression == 0:
        with open(path, "rb") as fh:
            fh.seek(lay.data_offset)
            tail = b""
            while True:
                raw = fh.read(block)
                if not raw:
                    break
                raw = tail + raw
                n = len(raw) // 8
                tail = raw[n * 8:]
                yield np.frombuffer(raw[:n * 8], dtype="<u8")
        return
    yield from _bytecode(_compressed_bytes(path, lay, block), lay.bias)


def _compressed_bytes(path, lay: SavLayout, block: int) -> Iterator[bytes]:
    with open(path, "rb") as fh:
        if lay.compression == 1:
            fh.seek(lay.data_offset)
            while True:
                raw = fh.read(block)
                if not raw:
                    return
                yield raw
        zheader_ofs, ztrailer_ofs, _ = lay.zheader
        fh.seek(zheader_ofs + 24)
        remaining = ztrailer_ofs - (zheader_ofs + 24)
        d = zlib.decompressobj()
        while remaining > 0:
            raw = fh.read(min(block, remaining))
            if not raw:
                raise ValueError("truncated zlib data")
            remaining -= len(raw)
            while raw:
                out = d.decompress(raw)
                if out:
                    yield out
                if d.eof:
                    raw = d.unused_data
                    d = zlib.decompressobj()
                else:
                    raw = b""


_LOW7 = np.uint64(0x7F7F7F7F7F7F7F7F)
_HIGH = np.uint64(0x8080808080808080)


def _count_253(units: np.ndarray) -> np.ndarray:
    """How many of each unit's 8 bytes are 253 (the raw-data code), on whole words: a per-byte comparison and
    sum cost four times more."""
    x = units ^ np.uint64(0xFDFDFDFDFDFDFDFD)                 # a byte 253 becomes 0
    zero = ~(((x & _LOW7) + _LOW7) | x) & _HIGH                 # the high bit of each zero byte
    if hasattr(np, "bitwise_count"):
        return np.bitwise_count(zero).astype(np.int64)
    return (((zero >> np.uint64(7)) * np.uint64(0x0101010101010101)) >> np.uint64(56)).astype(np.int64)


def block_starts(steps: np.ndarray, doublings: int = 4) -> tuple[np.ndarray, int]:
    """Where the command blocks of a bytecode stream start, and where its unfinished tail starts.

    ``steps[q]``: the units a block starting at unit q spans (itself + one per raw-data code 253). Blocks chain
    0 → steps[0] → ...; a block whose raw units run past the buffer ends the chain (it is the tail). Walking the
    chain block by block in Python cost 0.12 s per 8 MB, so it is found by pointer doubling: jumps of 2^k blocks
    from every position, the longest walked one by one, then each level's jumps filled in between (0.02 s)."""
    n = len(steps)
    dt = np.int32 if n < 2**31 - 2**20 else np.int64
    pos = np.arange(n + 1, dtype=dt)
    nxt = pos.copy()
    nxt[:n] += np.asarray(steps, dtype=dt)
    stuck = nxt > n
    nxt[stuck] = pos[stuck]                   # the tail (and the end, n) lead to themselves
    levels = [nxt]
    for _ in range(doublings):
        levels.append(levels[-1][levels[-1]])
    far, q, chain = levels[-1], 0, [0]
    while (r := int(far[q])) != q:
        chain.append(r)
        q = r
    starts = np.asarray(chain, dtype=dt)
    for jump in reversed(levels[:-1]):
        both = np.empty(2 * len(starts), dtype=dt)
        both[0::2], both[1::2] = starts, jump[starts]      # each jump lands between two of the level above
        keep = np.ones(len(both), dtype=bool)
        keep[1:] = both[1:] != both[:-1]                   # at the end of the chain a position repeats
        starts = both[keep]
    return starts[:-1], int(starts[-1])


def _bytecode(chunks: Iterator[bytes], bias: float) -> Iterator[np.ndarray]:
    carry = b""
    ended = False
    for raw in chunks:
        if ended:
            break
        buf = carry + raw
        n = len(buf) // 8
        if n == 0:
            carry = buf
            continue
        u8 = np.frombuffer(buf[:n * 8], dtype=np.uint8).reshape(n, 8)
        u64 = np.frombuffer(buf[:n * 8], dtype="<u8")
        P, p = block_starts(1 + _count_253(u64))
        carry = buf[p * 8:]
        if not len(P):
            continue
        flat = u8[P].ravel()                                       # the blocks' codes, in order
        stop = np.flatnonzero(flat == 252)
        if len(stop):
            flat = flat[:stop[0]]
            ended = True
        flat = flat[flat != 0]
        # the units that are not command blocks are the raw ones, in the order of their 253 codes
        is_raw = np.ones(p, dtype=bool)
        is_raw[P] = False
        out = np.empty(len(flat), dtype=np.uint64)
        m = flat == 253
        out[m] = u64[:p][is_raw][:int(m.sum())]
        m = (flat >= 1) & (flat <= 251)
        out[m] = (flat[m].astype(np.float64) - bias).view(np.uint64)
        out[flat == 254] = SPACES
        out[flat == 255] = SYSMIS_BITS
        yield out
    if carry.strip(b"\x00") and not ended:
        raise ValueError("the compressed data end in the middle of a block (truncated)")


_BUFFER: dict = {}      # per process: the read buffer of read_cases, reused chunk after chunk


def read_cases(path, lay: SavLayout, first: int, nrows: int) -> np.ndarray:
    """Cases ``first .. first + nrows - 1`` (0-based) of an uncompressed file as a (rows, units) matrix.

    The matrix lives in a buffer this process reuses: it is valid until the next call (decode copies out of
    it). A fresh block of tens of megabytes per chunk cost more in page faults than reading it."""
    want = nrows * lay.units
    buf = _BUFFER.get("cases")
    if buf is None or len(buf) < want:
        buf = _BUFFER["cases"] = np.empty(want, dtype=np.uint64)
    view = buf[:want]
    mem = memoryview(view).cast("B")
    got = 0
    with open(path, "rb", buffering=0) as fh:
        fh.seek(lay.data_offset + first * lay.units * 8)
        while got < len(mem):            # a read may return less than asked (2 GB cap, network file systems)
            n = fh.readinto(mem[got:])
            if not n:
                raise ValueError("the data end in the middle of a case (truncated)")
            got += n
    return view.reshape(nrows, lay.units)


def release_buffers() -> None:
    """Give back this process's read buffer (tens of megabytes) once a file is read."""
    _BUFFER.clear()


def complete_cases(path, lay: SavLayout) -> int | None:
    """How many whole cases an uncompressed file holds (None: compressed, or the header does not say)."""
    if lay.compression != 0 or lay.ncases < 0:
        return None
    import os
    return max(0, os.path.getsize(path) - lay.data_offset) // (lay.units * 8)


def iter_cases(path, lay: SavLayout, chunk_rows: int) -> Iterator[np.ndarray]:
    """(rows, units) uint64 matrices of whole cases."""
    pieces, have = [], 0
    want = chunk_rows * lay.units
    for piece in _units_stream(path, lay):
        pieces.append(piece)
        have += len(piece)
        if have >= want:
            pending = np.concatenate(pieces) if len(pieces) > 1 else pieces[0]
            k = len(pending) // want
            for j in range(k):
                yield pending[j * want:(j + 1) * want].reshape(chunk_rows, lay.units)
            rest = pending[k * want:]
            pieces, have = ([rest], len(rest)) if len(rest) else ([], 0)
    pending = np.concatenate(pieces) if pieces else np.empty(0, dtype=np.uint64)
    rows = len(pending) // lay.units
    if rows:
        yield pending[:rows * lay.units].reshape(rows, lay.units)
    if len(pending) % lay.units:
        raise ValueError("the data end in the middle of a case (truncated)")


def decode(mat: np.ndarray, lay: SavLayout, encoding: str, formats: dict) -> pd.DataFrame:
    """Cases (uint64 units) → DataFrame: numbers float64 (system missing NaN), strings text, dates datetime64."""
    import pyarrow as pa
    import pyarrow.compute as pc

    n = mat.shape[0]
    out = {}
    mat = np.ascontiguousarray(mat)
    # every numeric column into one (columns, rows) block, system missing replaced in one pass; the frame's
    # columns are views of it (copy=False below: consolidating them into a block again cost a copy per chunk)
    numeric = [start for _, start, _, width in lay.columns if width == 0]
    block = np.empty((len(numeric), n), dtype=np.uint64)
    for j, start in enumerate(numeric):
        block[j] = mat[:, start]
    block[block == SYSMIS_BITS] = NAN_BITS
    floats = block.view(np.float64)
    j = 0
    for name, start, units, width in lay.columns:
        if width == 0:
            vals = floats[j]
            j += 1
            fmt = (formats.get(name) or "").upper()
            if fmt.startswith(_DATE_FORMATS):
                secs = vals - _EPOCH_OFFSET
                out[name] = pd.to_datetime(pd.Series(secs), unit="s", errors="coerce")
            else:
                out[name] = vals
        else:
            raw = mat[:, start:start + units].view(np.uint8).reshape(n, units * 8)[:, :width]
            packed = np.ascontiguousarray(raw)
            fixed = packed.view(f"S{width}").ravel()
            if encoding.lower().replace("-", "") in ("utf8", "ascii"):
                # the packed bytes are the buffer of a fixed-width binary array: no Python bytes objects
                try:
                    arr = pa.FixedSizeBinaryArray.from_buffers(pa.binary(width), n, [None, pa.py_buffer(packed)]) \
                        .cast(pa.binary())
                except pa.ArrowNotImplementedError:      # a pyarrow that cannot cast fixed-width binary
                    arr = pa.array(fixed, type=pa.binary())
                try:
                    text = pc.utf8_rtrim(arr.cast(pa.string()), characters=" ")
                    out[name] = pd.Series(pd.arrays.ArrowStringArray(text) if hasattr(pd.arrays, "ArrowStringArray")
                                          else text.to_pandas(), dtype="str")
                    continue
                except pa.ArrowInvalid:
                    pass
            out[name] = pd.Series(np.char.rstrip(fixed, b" ")).str.decode(encoding, errors="replace") \
                .astype("str")
    return pd.DataFrame(out, copy=False)
