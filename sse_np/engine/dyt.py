"""After the bag mean: DyT ``beta * tanh(alpha * x + bias)`` and L2 normalization, in float32.

Both back-ends must give the same bits, so neither uses a library tanh
(NumPy's SIMD tanh and libm's differ in the last bit now and then) or a
reduction whose order the library picks. Here both are spelled out once,
with the same float32 operations in the same order: here for NumPy (whole
arrays), and in ``dyt_kernels`` for the jitted kernels (one row, scalar
code that LLVM vectorizes), line for line. No fused multiply-add is
used on either side, so every step rounds the same way.

* tanh: an odd polynomial below |x| = 0.625; above, ``(1 - t) / (1 + t)``
  with ``t = exp(-2|x|)`` from a degree-7 polynomial after the usual
  ``2**k`` range reduction. Largest error 1.51 ulp over the float32 range
  (NumPy's own float32 tanh: 1.37 ulp), checked in the tests against
  float64.
* the norm: squares are added in 16 lanes (element ``j`` into lane
  ``j % 16``, in order), then the lanes pairwise; the jitted loop
  vectorizes, and the order is fixed.
"""

from __future__ import annotations

import numpy as np

_F = np.float32
# tanh(x) = x + x^3 * P(x^2) on |x| < 0.625 (least-squares fit, 0.9 ulp there)
P0, P1, P2, P3, P4 = (
    _F(-0.3333328068256378),
    _F(0.13331380486488342),
    _F(-0.05373530462384224),
    _F(0.02062624879181385),
    _F(-0.005691935773938894),
)
SMALL = _F(0.625)
CLAMP = _F(9.0)  # tanh(9) rounds to 1.0 in float32
LOG2E = _F(1.4426950408889634)
LN2_HI = _F(0.693145751953125)  # ln 2 in two parts: k * LN2_HI is exact
LN2_LO = _F(1.428606765330187e-06)
# exp(r) = 1 + r * Q(r) on |r| <= ln(2)/2: Taylor to degree 7
E1, E2, E3, E4, E5, E6, E7 = (_F(1.0 / f) for f in (1, 2, 6, 24, 120, 720, 5040))
ONE, TWO, HALF = _F(1.0), _F(2.0), _F(0.5)
EPS = _F(1e-12)  # as torch's F.normalize
LANES = 16


def tanh32_array(x: np.ndarray) -> np.ndarray:
    """tanh of a float32 array, from float32 operations only (``dyt_kernels.tanh32`` does the same per value)."""
    a = np.abs(x)
    z = x * x
    small = x + x * z * ((((P4 * z + P3) * z + P2) * z + P1) * z + P0)
    y = -TWO * np.minimum(a, CLAMP)
    k = np.floor(y * LOG2E + HALF)
    r = (y - k * LN2_HI) - k * LN2_LO
    q = (((((E7 * r + E6) * r + E5) * r + E4) * r + E3) * r + E2) * r + E1
    scale = ((k.astype(np.int32) + np.int32(127)) << np.int32(23)).view(np.float32)
    t = (ONE + r * q) * scale
    big = (ONE - t) / (ONE + t)
    return np.where(a < SMALL, small, np.where(x >= 0, big, -big)).astype(np.float32, copy=False)


def finish_rows(out: np.ndarray, counts: np.ndarray, head, normalize: bool) -> None:
    """In place: row sums of ``counts`` tokens -> means -> head -> L2-normalized (``dyt_kernels.finish_row``'s bits).

    ``head`` is ``(alpha, bias, beta)`` float32 vectors of the full width, or None (plain mean).
    """
    n, dim = out.shape
    if n == 0:
        return
    inv = np.zeros(n, dtype=np.float32)
    # 1/count in float32 directly (as the kernel): via float64 it could round twice.
    np.divide(ONE, counts.astype(np.float32), out=inv, where=counts > 0)
    out *= inv[:, None]
    if head is not None:
        alpha, bias, beta = head
        x = alpha[:dim] * out + bias[:dim]
        with np.errstate(over="ignore", invalid="ignore"):  # in the branch np.where does not take
            out[:] = beta[:dim] * tanh32_array(x)
    if normalize:
        normalize_rows(out)


def normalize_rows(out: np.ndarray) -> np.ndarray:
    """L2-normalize rows in place (float32 (n, d)), with the kernels' bits."""
    n, dim = out.shape
    if n == 0 or dim == 0:
        return out
    padded = -(-dim // LANES) * LANES
    sq = np.zeros((n, padded), dtype=np.float32)
    np.multiply(out, out, out=sq[:, :dim])
    lanes = sq[:, :LANES].copy()
    for j0 in range(LANES, padded, LANES):
        lanes += sq[:, j0 : j0 + LANES]
    width = LANES // 2
    while width:
        lanes[:, :width] += lanes[:, width : 2 * width]
        width //= 2
    norms = np.sqrt(lanes[:, 0])
    out /= np.maximum(norms, EPS)[:, None]
    return out
