"""Cutting a call's texts into blocks and items, and calling a kernel's machine code directly."""

from __future__ import annotations

import numpy as np

__all__ = ["BLOCK_BYTES", "_blocks", "_entry_point", "_items"]

_ITEM_BYTES = (4 << 10, 64 << 10)  # work items: at least / at most this much text
_ITEMS_PER_THREAD = 8  # so that uneven texts still balance
BLOCK_BYTES = 1 << 20  # a block packs at least this much text (and at least batch_size texts)


def _entry_point(dispatcher, args: tuple):
    """The machine code compiled for exactly these argument types, or None.

    Calling it skips numba's per-call type dispatch, which for the named
    tuples costs ~5 us a call, as much as pooling a short query.
    """
    try:
        key = tuple(dispatcher.typeof_pyval(a) for a in args)
        return dispatcher.overloads[key].entry_point
    except (AttributeError, KeyError):  # NUMBA_DISABLE_JIT: a plain function
        return None


def _items(offsets: np.ndarray, threads: int) -> np.ndarray:
    """Cut texts into items of about equal bytes (``offsets``: n + 1 running byte counts)."""
    n, total = len(offsets) - 1, int(offsets[-1])
    size = min(max(total // max(1, threads * _ITEMS_PER_THREAD), _ITEM_BYTES[0]), _ITEM_BYTES[1])
    if n <= 1 or total <= size:
        return np.array([0, n], dtype=np.int64)
    cuts = np.searchsorted(offsets, np.arange(size, total, size), side="left")
    return np.unique(np.concatenate([[0], cuts, [n]])).astype(np.int64)


def _blocks(sizes: np.ndarray, batch_size: int) -> list[tuple[int, int]]:
    """Texts ``[a, b)`` of each block: at least ``batch_size`` texts and ``BLOCK_BYTES`` (``sizes``: running)."""
    n = len(sizes) - 1
    out, a = [], 0
    while a < n:
        b = max(a + batch_size, int(np.searchsorted(sizes, sizes[a] + BLOCK_BYTES, side="left")))
        b = min(b, n)
        out.append((a, b))
        a = b
    return out
