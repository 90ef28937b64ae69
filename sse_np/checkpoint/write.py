"""Writing checkpoints: the 4-bit layout from a full-precision model, and float16 copies.

Quantization is :func:`sse_np.quantize.quantize_q4` (SPEC.md, in float32 as
the reference does it).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
from safetensors.numpy import save_file

from .loading import Q4_FILE, REST_FILE, TOKENIZER_FILE, Table
from .model import SSEModel
from .quantize import q4_file_chunks, quantize_q4

_ROWS = 4096  # rows per chunk: bounded memory on large tables


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
        fh.writelines(q4_file_chunks(parts))
    shutil.copyfile(model.tokenizer_path, dest / TOKENIZER_FILE)
    return dest
