"""numba kernels of hybrid ranking (imported by :mod:`sse_np.retrieval.fusion` only when numba is usable).

On a float32 index every query z-scores two full score vectors and fuses
them; in NumPy that is a dozen passes over float64 temporaries plus an
argpartition (about 0.6 ms at 100k documents on the 2-core dev box). Here it
is five passes (two per statistic side, one to fuse) with no temporary,
keeping the best ``k`` in a small sorted list (about 0.2 ms). Serial and
GIL-free, like the other retrieval kernels.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def _sum_sq(x, shift):  # pragma: no cover - jitted
    """``sum((x - shift) ** 2)`` in float64, four running sums.

    Four independent sums keep the CPU's adders busy (a single running sum waits on each add) and
    round off about as little as NumPy's pairwise sum does at these sizes.
    """
    n = x.shape[0]
    s0 = s1 = s2 = s3 = 0.0
    end = n - n % 4
    for i in range(0, end, 4):
        a = np.float64(x[i]) - shift
        b = np.float64(x[i + 1]) - shift
        c = np.float64(x[i + 2]) - shift
        d = np.float64(x[i + 3]) - shift
        s0 += a * a
        s1 += b * b
        s2 += c * c
        s3 += d * d
    for i in range(end, n):
        a = np.float64(x[i]) - shift
        s0 += a * a
    return (s0 + s1) + (s2 + s3)


@njit(cache=True, nogil=True)
def _mean(x):  # pragma: no cover - jitted
    n = x.shape[0]
    s0 = s1 = s2 = s3 = 0.0
    end = n - n % 4
    for i in range(0, end, 4):
        s0 += np.float64(x[i])
        s1 += np.float64(x[i + 1])
        s2 += np.float64(x[i + 2])
        s3 += np.float64(x[i + 3])
    for i in range(end, n):
        s0 += np.float64(x[i])
    return ((s0 + s1) + (s2 + s3)) / n


@njit(cache=True, nogil=True)
def _mean_std(x):  # pragma: no cover - jitted
    """Mean and population standard deviation in float64 (two passes, as NumPy's ``std``)."""
    mean = _mean(x)
    return mean, np.sqrt(_sum_sq(x, mean) / x.shape[0])


@njit(cache=True, nogil=True)
def _keep(s, i, m, k, out_i, out_s):  # pragma: no cover - jitted
    """Insert score ``s`` of position ``i`` into the sorted best-``m`` list; returns the new length.

    Positions arrive in increasing order and only a strictly higher score
    displaces, so ties keep the lower position first.
    """
    if m < k:
        j = m
        m += 1
    elif s > out_s[k - 1]:
        j = k - 1
    else:
        return m
    while j > 0 and out_s[j - 1] < s:
        out_s[j] = out_s[j - 1]
        out_i[j] = out_i[j - 1]
        j -= 1
    out_s[j] = s
    out_i[j] = i
    return m


@njit(cache=True, nogil=True)
def zscore_fusion_top_k(dense, lexical, weight, out_i, out_s):  # pragma: no cover - jitted
    """The best ``len(out_i)`` of ``weight * z(dense) + (1 - weight) * z(lexical)`` (a side with 0 spread: 0)."""
    k = out_i.shape[0]
    mean_d, std_d = _mean_std(dense)
    mean_l, std_l = _mean_std(lexical)
    w_d = weight / std_d if std_d > 0.0 else 0.0
    w_l = (1.0 - weight) / std_l if std_l > 0.0 else 0.0
    m = 0
    for i in range(dense.shape[0]):
        s = w_d * (np.float64(dense[i]) - mean_d) + w_l * (np.float64(lexical[i]) - mean_l)
        if m < k or s > out_s[k - 1]:  # the common case, no call: the score does not enter
            m = _keep(s, i, m, k, out_i, out_s)


@njit(cache=True, nogil=True)
def scan_top_k(scores, out_i, out_s):  # pragma: no cover - jitted
    """The best ``len(out_i)`` scores, higher first, then the lower position."""
    k = out_i.shape[0]
    m = 0
    for i in range(scores.shape[0]):
        s = np.float64(scores[i])
        if m < k or s > out_s[k - 1]:
            m = _keep(s, i, m, k, out_i, out_s)
