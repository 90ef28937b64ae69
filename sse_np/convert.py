"""Writing checkpoints: the 4-bit layout from a full-precision model, and float16 copies.

Quantization follows SPEC.md exactly, in float32 as the reference does:
``scale = max|row| + 1e-8``, ``q = clip(round((w / scale + 1) * 7.5), 0, 15)``,
two codes a byte (high nibble = even column), then one float32 scale a row.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
from safetensors.numpy import save_file

from .loading import Q4_FILE, REST_FILE, TOKENIZER_FILE, Table
from .model import SSEModel

_ROWS = 4096  # rows per chunk: bounded memory on large tables


def quantize_q4(weight: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Quantize a float table to packed 4-bit codes and row scales.

    Parameters
    ----------
    weight : ndarray (V, D) float, D even

    Returns
    -------
    codes : ndarray (V, D/2) uint8
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


def _dense_chunks(table: Table):
    for start in range(0, table.vocab_size, _ROWS):
        yield table.rows(np.arange(start, min(start + _ROWS, table.vocab_size)))


def save_q4(model: SSEModel, dest: str | os.PathLike) -> Path:
    """Write ``model`` in the 4-bit layout (``model_rest.safetensors``, ``embedding.q4_k_m.bin``, tokenizer).

    Parameters
    ----------
    model : SSEModel
        A full-precision model with DyT (the 4-bit layout has no identity form).
    dest : path
        Output folder (created).

    Returns
    -------
    Path
    """
    if model.dyt is None:
        raise ValueError("the 4-bit layout stores DyT vectors; a StaticEmbedding model has none")
    if model.layout == "q4":
        raise ValueError(f"{model.path} is already 4-bit")
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    alpha, beta, bias = model.dyt
    save_file({"dyt.alpha": alpha, "dyt.beta": beta, "dyt.bias": bias}, str(dest / REST_FILE))
    parts = [quantize_q4(chunk) for chunk in _dense_chunks(model.table)]
    with open(dest / Q4_FILE, "wb") as fh:
        for codes, _ in parts:
            fh.write(codes.tobytes())
        for _, scales in parts:
            fh.write(scales.astype("<f4").tobytes())
    shutil.copyfile(model._ckpt.tokenizer_path, dest / TOKENIZER_FILE)
    return dest
