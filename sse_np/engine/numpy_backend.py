"""The NumPy back-end: the readable reference, and what runs without numba.

Same operations in the same order as the jitted kernels, so both give the
same float32 bits (the tests check every storage kind, dim and
normalization): rows are weighted and added one after another in token
order, 1/count is computed in float32, and tanh and the norm are the
shared float32 formulas of ``sse_np.engine.dyt``.
"""

from __future__ import annotations

import numpy as np

from .dyt import finish_rows, normalize_rows

__all__ = ["bags", "embed", "normalize_rows"]

_BLOCK_VALUES = 1 << 22  # gathered floats per block (16 MB): bounded memory


def bags(ids: np.ndarray, offsets: np.ndarray, drop_id: int, max_tokens: int) -> tuple[np.ndarray, np.ndarray]:
    """The bags after dropping ``drop_id`` (-1: none) and keeping each bag's first ``max_tokens`` (-1: all).

    Returns compacted ``(ids, offsets)``; text ``i`` owns ``ids[offsets[i]:offsets[i + 1]]``.
    """
    if drop_id >= 0:
        keep = ids != drop_id
        kept = np.zeros(ids.shape[0] + 1, dtype=np.int64)
        np.cumsum(keep, out=kept[1:])
        ids, offsets = ids[keep], kept[offsets]
    if max_tokens >= 0:
        starts = offsets[:-1]
        stops = np.minimum(offsets[1:], starts + max_tokens)
        lengths = stops - starts
        if not np.array_equal(stops, offsets[1:]):
            ids = np.concatenate([ids[a:b] for a, b in zip(starts.tolist(), stops.tolist())] or [ids[:0]])
        offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    return ids, offsets


def embed(table, head, mapping, weights, ids: np.ndarray, offsets: np.ndarray, out: np.ndarray, normalize: bool):
    """``out[i]`` <- the vector of the bag ``ids[offsets[i]:offsets[i + 1]]`` (rows ``mapping[id]``, weighted).

    Parameters
    ----------
    table : Table
        ``table.rows(row_ids, dim)`` gives float32 rows.
    head : (alpha, bias, beta) float32 vectors, or None (plain mean)
    mapping, weights : ndarray or None
        Token id -> table row, and per-token weights.
    ids : ndarray int32
    offsets : ndarray int64 (n + 1,)
    out : ndarray float32 (n, dim), written in place
    normalize : bool
    """
    n, dim = out.shape
    if n == 0:
        return
    counts = np.diff(offsets)
    out[:] = 0.0
    step = max(1, _BLOCK_VALUES // dim)
    for t0 in range(0, ids.shape[0], step):
        t1 = min(t0 + step, ids.shape[0])
        block = ids[t0:t1]
        rows = table.rows(block if mapping is None else mapping[block], dim)
        if weights is not None:
            rows *= weights[block][:, None]
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
    finish_rows(out, counts, head, normalize)


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
