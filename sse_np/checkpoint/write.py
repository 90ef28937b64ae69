"""Writing checkpoints: the 4-bit layout from full-precision arrays.

Quantization is :func:`sse_np.checkpoint.q4.quantize_q4` (in float32, as the
reference does it). The writer takes the arrays of a checkpoint -- a
:class:`~sse_np.checkpoint.read.Checkpoint` or a loaded model, both expose
them -- so it depends on no model object.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

import numpy as np
from safetensors.numpy import save_file

from .layout import Q4_FILE, REST_FILE, TOKENIZER_FILE
from .q4 import q4_file_chunks, quantize_q4
from .read import Table

_ROWS = 4096  # rows per chunk: bounded memory on large tables


class Weights(Protocol):
    """The arrays a writer needs; :class:`~sse_np.checkpoint.read.Checkpoint` and ``SSEModel`` have them."""

    @property
    def table(self) -> Table: ...

    @property
    def dyt(self) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None: ...

    @property
    def layout(self) -> str: ...

    @property
    def tokenizer_path(self) -> Path: ...


def _dense_chunks(table: Table) -> Iterator[np.ndarray]:
    for start in range(0, table.vocab_size, _ROWS):
        yield table.rows(np.arange(start, min(start + _ROWS, table.vocab_size)))


def save_q4(weights: Weights, dest: str | os.PathLike) -> Path:
    """Write ``weights`` in the 4-bit layout (``model_rest.safetensors``, ``embedding.q4_k_m.bin``, tokenizer).

    Parameters
    ----------
    weights : Checkpoint or SSEModel
        Full-precision arrays with DyT (the 4-bit layout has no identity form).
    dest : path
        Output folder (created).

    Returns
    -------
    Path
    """
    if weights.dyt is None:
        raise ValueError("the 4-bit layout stores DyT vectors; a StaticEmbedding model has none")
    if weights.layout == "q4":
        raise ValueError(f"{weights.tokenizer_path.parent} is already 4-bit")
    dest = Path(dest)
    sources = {
        weights.tokenizer_path.parent.resolve(),
        Path(getattr(weights, "model_dir", getattr(weights, "path", ""))).resolve(),
    }
    if dest.resolve() in sources:  # a model's own files are never outputs (two layouts, tokenizer copied on itself)
        raise ValueError(f"{dest}: is the model's own folder; write the 4-bit layout to a new folder")
    dest.mkdir(parents=True, exist_ok=True)
    alpha, beta, bias = weights.dyt
    save_file({"dyt.alpha": alpha, "dyt.beta": beta, "dyt.bias": bias}, str(dest / REST_FILE))
    parts = [quantize_q4(chunk) for chunk in _dense_chunks(weights.table)]
    with open(dest / Q4_FILE, "wb") as fh:
        fh.writelines(q4_file_chunks(parts))
    shutil.copyfile(weights.tokenizer_path, dest / TOKENIZER_FILE)
    return dest
