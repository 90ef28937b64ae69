"""The NumPy back-end: the readable reference, and what runs without numba.

Same operations in the same order as the jitted kernels, so both give the
same float32 bits (the tests check every storage kind, dim and
normalization): rows are added one after another in token order, 1/count
is computed in float32, and squares for the norm are added left to right.
"""

from __future__ import annotations

import numpy as np

from ..checkpoint.read import Table

EPS = np.float32(1e-12)
_BLOCK_VALUES = 1 << 22  # gathered floats per block (16 MB): bounded memory


def pool(table: Table, dyt, ids: np.ndarray, starts: np.ndarray, stops: np.ndarray, out: np.ndarray) -> None:
    """``out[i] <- alpha * mean(rows of ids[starts[i]:stops[i]]) + bias`` (the plain mean without DyT).

    Parameters
    ----------
    table : Table
    dyt : (alpha, beta, bias) float32 vectors, or None
    ids : ndarray int32
    starts, stops : ndarray int64 (n,)
    out : ndarray float32 (n, dim), written in place
    """
    n, dim = out.shape
    if n == 0:
        return
    if n > 1 and not np.array_equal(starts[1:], stops[:-1]):
        # Bags not back to back (truncated or spliced): copy them together first.
        ids = np.concatenate([ids[a:b] for a, b in zip(starts.tolist(), stops.tolist())])
        counts = stops - starts
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
        stops = starts + counts
    offsets = np.append(starts, stops[-1:]) - starts[0]
    ids = ids[starts[0] : stops[-1]]
    counts = np.diff(offsets)
    out[:] = 0.0
    step = max(1, _BLOCK_VALUES // dim)
    for t0 in range(0, ids.shape[0], step):
        t1 = min(t0 + step, ids.shape[0])
        rows = table.rows(ids[t0:t1], dim)
        first = int(np.searchsorted(offsets, t0, side="right")) - 1
        last = int(np.searchsorted(offsets, t1 - 1, side="right")) - 1
        for i in range(first, last + 1):
            a, b = max(offsets[i], t0) - t0, min(offsets[i + 1], t1) - t0
            if b <= a:
                continue
            # A text that began in an earlier block carries its running sum
            # in as the first row.
            part = rows[a:b] if offsets[i] >= t0 else np.concatenate([out[i : i + 1], rows[a:b]])
            _sum_in_order(part, out[i])
    inv = np.zeros(n, dtype=np.float32)
    # 1/count in float32 directly (as the kernel): via float64 it could round twice.
    np.divide(np.float32(1.0), counts.astype(np.float32), out=inv, where=counts > 0)
    out *= inv[:, None]
    if dyt is not None:
        np.multiply(out, dyt[0][:dim], out=out)
        np.add(out, dyt[2][:dim], out=out)


def _sum_in_order(rows: np.ndarray, out: np.ndarray) -> None:
    """``out <- rows[0] + rows[1] + ...`` in that order, as EmbeddingBag and the kernels add.

    ``sum(axis=0)`` adds row after row when rows are wider than one value;
    a single column is contiguous, and NumPy would add it pairwise, so it
    takes the running sum instead.
    """
    if rows.shape[1] == 1:
        out[:] = np.add.accumulate(rows[:, 0])[-1]
    else:
        rows.sum(axis=0, out=out)


def finish(out: np.ndarray, dyt, normalize: bool) -> None:
    """In place: ``beta * tanh(.)`` on ``alpha * mean + bias``, then L2-normalize rows."""
    if dyt is not None:
        np.tanh(out, out=out)
        np.multiply(out, dyt[1][: out.shape[1]], out=out)
    if normalize:
        normalize_rows(out)


def normalize_rows(out: np.ndarray) -> np.ndarray:
    """L2-normalize rows in place, with the kernels' bits (squares added left to right, eps 1e-12)."""
    if out.shape[0] and out.shape[1]:
        norms = np.sqrt(np.add.accumulate(out * out, axis=1)[:, -1])
        out /= np.maximum(norms, EPS)[:, None]
    return out
