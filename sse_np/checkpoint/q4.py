"""The SSE 4-bit table format (``docs/reference/spec.md``), in one place.

Quantization in float32, as the reference does it:
``scale = max|row| + 1e-8``, ``q = clip(round((w / scale + 1) * 7.5), 0, 15)``,
two codes a byte (high nibble = even column), then one float32 scale a row.
Dequantization: ``w = (q / 7.5 - 1) * scale`` (``Q4_LEVELS[q] * scale``).
Used by :func:`sse_np.checkpoint.write.save_q4`, the reader, ``bench/`` and
``scripts/build_default_model.py``.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

_ROWS = 4096  # rows per chunk: bounded memory on large tables

# Dequantised value of each 4-bit code in units of the row scale, computed in
# float32 exactly as the reference does: (q / 7.5 - 1).
Q4_LEVELS = (np.arange(16, dtype=np.float32) / np.float32(7.5) - np.float32(1.0)).astype(np.float32)


def quantize_q4(weight: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Quantize a float table to packed 4-bit codes and row scales.

    Parameters
    ----------
    weight : ndarray (V, D) float, D even

    Returns
    -------
    codes : ndarray (V, D/2) uint8
        High nibble = even column, low nibble = odd column.
    scales : ndarray (V,) float32
    """
    weight = np.asarray(weight)
    if weight.ndim != 2 or weight.shape[1] % 2:
        raise ValueError(f"quantize_q4 needs a (V, D) table with even D, got shape {weight.shape}")
    codes = np.empty((weight.shape[0], weight.shape[1] // 2), dtype=np.uint8)
    scales = np.empty(weight.shape[0], dtype=np.float32)
    for start in range(0, weight.shape[0], _ROWS):
        w = np.asarray(weight[start : start + _ROWS], dtype=np.float32)
        scale = np.abs(w).max(axis=1) + np.float32(1e-8)
        q = np.clip(np.round((w / scale[:, None] + np.float32(1)) * np.float32(7.5)), 0, 15).astype(np.uint8)
        codes[start : start + _ROWS] = (q[:, 0::2] << 4) | q[:, 1::2]
        scales[start : start + _ROWS] = scale
    return codes, scales


def dequantize_q4(codes: np.ndarray, scales: np.ndarray) -> np.ndarray:
    """The float32 table a 4-bit one stands for (inverse of :func:`quantize_q4`, up to rounding)."""
    q = np.empty((codes.shape[0], codes.shape[1] * 2), dtype=np.uint8)
    q[:, 0::2] = codes >> 4
    q[:, 1::2] = codes & 0x0F
    return Q4_LEVELS[q] * np.asarray(scales, dtype=np.float32)[:, None]


def q4_file_chunks(parts: Iterable[tuple[np.ndarray, np.ndarray]]) -> Iterable[bytes]:
    """Bytes of ``embedding.q4_k_m.bin`` from ``(codes, scales)`` row chunks: all codes, then all scales."""
    parts = list(parts)
    for codes, _ in parts:
        yield np.ascontiguousarray(codes, dtype=np.uint8).tobytes()
    for _, scales in parts:
        yield np.asarray(scales, dtype="<f4").tobytes()
