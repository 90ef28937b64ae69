"""Reading SSE checkpoints from disk: validated arrays and memory maps.

Three layouts are understood (see ``docs/reference/spec.md`` and
:mod:`sse_np.checkpoint.layout`):

* ``full``   -- ``model.safetensors`` with ``embedding.weight`` and the DyT
  vectors ``dyt.alpha``, ``dyt.beta``, ``dyt.bias``;
* ``q4``     -- ``model_rest.safetensors`` (the DyT vectors) plus
  ``embedding.q4_k_m.bin`` (packed 4-bit rows, then one float32 scale a row);
* ``static`` -- a sentence-transformers ``StaticEmbedding`` module: only
  ``embedding.weight``, DyT is the identity.

Nothing here computes embeddings; it only turns files into validated arrays.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import ModelLoadError
from .layout import (
    DYT_KEYS,
    FULL_FILE,
    Q4_FILE,
    REST_FILE,
    TABLE_KEY,
    Style,
    find_tokenizer,
    locate,
    sentence_transformers_style,
)
from .q4 import dequantize_q4
from .safetensors import as_float32, check_keys, is_int, read_header, require_regular, tensor

_CHECK_ROWS = 4096  # rows per chunk when scanning a table for NaN/inf


# --------------------------------------------------------------------------
# Tables
# --------------------------------------------------------------------------
@dataclass(frozen=True)
class Table:
    """An embedding table in its storage form.

    Attributes
    ----------
    kind : {"f32", "f16", "bf16", "i8", "q4"}
        Storage format.
    data : ndarray
        ``(V, D)`` float32, ``(V, D)`` uint16 codes of float16/bfloat16
        values, or ``(V, D/2)`` uint8 packed 4-bit codes (high nibble = even
        column). Usually a read-only memory map.
    scales : ndarray or None
        ``(V,)`` float32 row scales for ``q4``.
    """

    kind: str
    data: np.ndarray
    scales: np.ndarray | None = None

    @property
    def vocab_size(self) -> int:
        return int(self.data.shape[0])

    @property
    def dim(self) -> int:
        return int(self.data.shape[1] * (2 if self.kind == "q4" else 1))

    @property
    def nbytes(self) -> int:
        return int(self.data.nbytes + (0 if self.scales is None else self.scales.nbytes))

    def rows(self, ids: np.ndarray, dim: int | None = None) -> np.ndarray:
        """Gather rows ``ids`` as float32, first ``dim`` columns only.

        Parameters
        ----------
        ids : ndarray of int
            Row indices.
        dim : int, optional
            Number of leading columns (default: all).

        Returns
        -------
        ndarray, shape (len(ids), dim), float32
        """
        dim = self.dim if dim is None else dim
        if self.kind == "f32":
            return np.asarray(self.data[ids, :dim], dtype=np.float32)
        if self.kind == "f16":
            return self.data[ids, :dim].view(np.float16).astype(np.float32)
        if self.kind == "i8":
            return self.data[ids, :dim].astype(np.float32)
        if self.kind == "bf16":
            return (self.data[ids, :dim].view(np.uint16).astype(np.uint32) << 16).view(np.float32)
        assert self.scales is not None  # q4 tables always carry their row scales
        return dequantize_q4(self.data[ids, : (dim + 1) // 2], self.scales[ids])[:, :dim]

    def dense(self) -> np.ndarray:
        """The whole table as a float32 ``(V, D)`` array (a copy)."""
        return self.rows(np.arange(self.vocab_size), self.dim)


@dataclass(frozen=True)
class Checkpoint:
    """Validated arrays of one model, ready for the kernels.

    Attributes
    ----------
    table : Table
    alpha, beta, bias : ndarray (D,) float32 or None
        DyT parameters; all None for the ``static`` layout (identity).
    layout : {"full", "q4", "static"}
    model_dir : Path
        The folder holding the weight files.
    tokenizer_path : Path
    tokenizer_json : str or None
        The text of ``tokenizer_path`` as checked (read once).
    tokenizer_spec : dict or None
        That text parsed.
    mapping, weights : ndarray or None
        model2vec: token id -> table row (vocabulary quantization), per-token weights.
    drop_id : int
        A token id removed before pooling (model2vec's unknown token); -1: none.
    style : Style
        The format's own defaults (normalization, truncation, ``max_length``).
    """

    table: Table
    alpha: np.ndarray | None
    beta: np.ndarray | None
    bias: np.ndarray | None
    layout: str
    model_dir: Path
    tokenizer_path: Path
    tokenizer_json: str | None = None
    tokenizer_spec: dict | None = None
    mapping: np.ndarray | None = None
    weights: np.ndarray | None = None
    drop_id: int = -1
    style: Style = field(default_factory=lambda: Style())

    @property
    def dyt(self) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """``(alpha, beta, bias)``, or None for the identity (the ``static`` layout)."""
        if self.alpha is None or self.beta is None or self.bias is None:
            return None
        return self.alpha, self.beta, self.bias


# --------------------------------------------------------------------------
def _read_dyt(path: Path, header: dict, data_start: int, dim: int | None) -> tuple[np.ndarray, ...]:
    vectors = []
    for key in DYT_KEYS:
        shape = header[key]["shape"]
        if len(shape) != 1 or (dim is not None and shape[0] != dim):
            want = f"[{dim}]" if dim is not None else "1-D"
            raise ModelLoadError(f"{path}: {key} has shape {shape}, expected {want} (the table width)")
        vectors.append(as_float32(*tensor(path, header, data_start, key)))
    if len({v.shape for v in vectors}) != 1:
        raise ModelLoadError(
            f"{path}: DyT vectors differ in length: " + ", ".join(f"{k} {v.shape}" for k, v in zip(DYT_KEYS, vectors))
        )
    for key, vec in zip(DYT_KEYS, vectors):
        if not np.isfinite(vec).all():
            raise ModelLoadError(f"{path}: {key} contains NaN or infinite values")
    return tuple(vectors)


# --------------------------------------------------------------------------
# Table validation
# --------------------------------------------------------------------------
def _scan_rows(table: Table) -> tuple[np.ndarray, float]:
    """Indices of rows holding NaN/inf, and the largest finite magnitude, scanned in chunks (no full copy)."""
    bad, peak_bits = [], 0
    for start in range(0, table.vocab_size, _CHECK_ROWS):
        chunk = table.data[start : start + _CHECK_ROWS]
        if table.kind == "f32":
            bits = chunk.view(np.uint32) & np.uint32(0x7FFFFFFF)  # |x| as bits: ordered as the values are
            ok = (bits < 0x7F800000).all(axis=1)
        elif table.kind == "f16":
            bits = chunk & np.uint16(0x7FFF)
            ok = (bits < 0x7C00).all(axis=1)
        elif table.kind == "i8":
            ok = np.ones(chunk.shape[0], dtype=bool)  # integers are always finite
            bits = np.abs(chunk.astype(np.float32)).view(np.uint32)  # as float32 bits, read back as float32 below
        elif table.kind == "bf16":
            bits = chunk.view(np.uint16) & np.uint16(0x7FFF)
            ok = (bits < 0x7F80).all(axis=1)
        else:
            assert table.scales is not None  # q4 tables always carry their row scales
            scales = table.scales[start : start + _CHECK_ROWS]
            ok = np.isfinite(scales)
            bits = np.abs(scales[ok]).view(np.uint32)  # |w| <= the row scale
        bad.extend((np.flatnonzero(~ok) + start).tolist())
        if ok.all() and bits.size:
            peak_bits = max(peak_bits, int(bits.max()))
    as_float = {"f16": np.float16, "bf16": None}.get(table.kind, np.float32)
    if as_float is None:  # bfloat16: the high half of a float32
        peak = float(np.array([peak_bits << 16], np.uint32).view(np.float32)[0])
    else:
        peak = float(np.array([peak_bits], np.uint16 if as_float is np.float16 else np.uint32).view(as_float)[0])
    return np.asarray(bad, dtype=np.int64), peak


def _require_finite(path: Path, table: Table) -> float:
    """Refuse NaN/inf rows; returns the table's largest magnitude."""
    bad, peak = _scan_rows(table)
    if bad.size:
        what = "scales" if table.kind == "q4" else "values"
        raise ModelLoadError(
            f"{path}: embedding table has NaN or infinite {what} in {bad.size} row(s), first rows {bad[:5].tolist()}"
        )
    return peak


_TABLE_LIMIT = 1e30  # a float32 sum of 3e8 tokens of this size still fits (max 3.4e38)
_TINY = 1e-12  # the normalization's epsilon: vectors whose norm cannot reach it are never unit vectors


def _require_unit_vectors(path: Path, peak: float, dim: int, dyt: tuple) -> None:
    """Cheap checks that the weights can give finite, non-zero vectors (the pooled sums and DyT's norm fit float32)."""
    if peak > _TABLE_LIMIT:
        raise ModelLoadError(
            f"{path}: embedding table holds values up to {peak:.3g}; their sums over a text overflow float32 "
            f"(at most {_TABLE_LIMIT:.0e} is accepted)"
        )
    alpha, beta, bias = dyt
    if alpha is None:
        if peak * math.sqrt(dim) < _TINY:
            raise ModelLoadError(f"{path}: embedding table is all (near) zero; every vector would be zero")
        return
    beta64 = beta.astype(np.float64)
    norm = math.sqrt(float(np.sum(beta64 * beta64)))
    if norm > 1e19:  # its square, the vectors' squared norm at most, would overflow float32
        raise ModelLoadError(f"{path}: dyt.beta has norm {norm:.3g}; the vectors' norms overflow float32")
    fixed = not alpha.any()  # alpha = 0: every text gives beta * tanh(bias)
    out = beta64 * np.tanh(bias.astype(np.float64)) if fixed else beta64
    if np.sqrt(np.sum(out * out)) < _TINY:
        why = "dyt.alpha is zero and beta * tanh(bias)" if fixed else "dyt.beta"
        raise ModelLoadError(f"{path}: {why} is (near) zero; every vector would be zero")


# --------------------------------------------------------------------------
# Layout readers
# --------------------------------------------------------------------------
def read_safetensors_model(model_dir: Path, static: bool) -> tuple[Table, tuple]:
    """Read ``model.safetensors`` of the full (DyT) or static layout."""
    path = model_dir / FULL_FILE
    header, start = read_header(path)
    expected = {TABLE_KEY} if static else {TABLE_KEY, *DYT_KEYS}
    check_keys(path, set(header), expected)
    shape = header[TABLE_KEY]["shape"]
    if len(shape) != 2 or shape[0] < 1 or shape[1] < 1:
        raise ModelLoadError(f"{path}: {TABLE_KEY} has shape {shape}, expected [vocab_size, dim]")
    data, kind = tensor(path, header, start, TABLE_KEY)
    table = Table(kind, data)
    dyt = (None, None, None) if static else _read_dyt(path, header, start, table.dim)
    _require_unit_vectors(path, _require_finite(path, table), table.dim, dyt)
    return table, dyt


def read_q4_model(model_dir: Path) -> tuple[Table, tuple]:
    """Read the 4-bit layout: DyT from ``model_rest.safetensors``, rows from the .bin."""
    rest, binary = model_dir / REST_FILE, model_dir / Q4_FILE
    for f in (rest, binary):
        if not os.path.lexists(f):
            raise ModelLoadError(f"{f}: missing (the 4-bit layout needs both {REST_FILE} and {Q4_FILE})")
    header, start = read_header(rest)
    check_keys(rest, set(header), set(DYT_KEYS))
    alpha, beta, bias = _read_dyt(rest, header, start, None)
    dim = alpha.shape[0]
    if dim % 2:
        raise ModelLoadError(f"{rest}: DyT length {dim} is odd; 4-bit rows pack two columns a byte")
    row_bytes = dim // 2 + 4
    size = require_regular(binary)
    if size == 0 or size % row_bytes:
        raise ModelLoadError(
            f"{binary}: size {size} bytes is not a multiple of D/2+4 = {row_bytes} "
            f"(D={dim} from {REST_FILE}); file truncated or from another model?"
        )
    vocab = size // row_bytes
    codes = np.memmap(binary, dtype=np.uint8, mode="r", shape=(vocab, dim // 2))
    scales = np.array(np.memmap(binary, dtype="<f4", mode="r", offset=vocab * (dim // 2), shape=(vocab,)))
    table = Table("q4", codes, scales.astype(np.float32))
    _require_unit_vectors(binary, _require_finite(binary, table), dim, (alpha, beta, bias))
    return table, (alpha, beta, bias)


def check_tokenizer_file(path: Path) -> tuple[str, dict]:
    """Refuse a ``tokenizer.json`` that is not UTF-8 JSON, or whose model cannot work; returns (text, parsed).

    ``tokenizers`` loads a WordPiece/WordLevel/BPE model whose unknown token
    is missing from its vocabulary, then fails with a bare ``Exception`` on
    the first unknown character; this refuses it at load, naming the file.
    """
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ModelLoadError(f"{path}: cannot read ({exc.strerror or exc})") from None
    try:
        text = raw.decode("utf-8")
        spec = json.loads(text)
    except UnicodeDecodeError as exc:
        raise ModelLoadError(
            f"{path}: cannot load tokenizer (not UTF-8: byte 0x{raw[exc.start]:02x} at offset {exc.start})"
        ) from None
    except RecursionError:
        raise ModelLoadError(f"{path}: cannot load tokenizer (JSON nested too deeply)") from None
    except ValueError as exc:  # JSONDecodeError, or an integer too long to convert
        raise ModelLoadError(f"{path}: cannot load tokenizer (invalid JSON: {str(exc).split(';')[0]})") from None
    model = spec.get("model") if isinstance(spec, dict) else None
    if not isinstance(model, dict):
        raise ModelLoadError(f'{path}: cannot load tokenizer (no "model" object)')
    vocab, unk = model.get("vocab"), model.get("unk_token")
    if isinstance(vocab, dict) and len(set(map(repr, vocab.values()))) != len(vocab):
        # tokenizers keeps one token per id when it writes the vocabulary back (to_str), so
        # the same text would get different ids depending on the path that tokenizes it.
        seen: dict = {}
        for token, token_id in vocab.items():
            if repr(token_id) in seen:
                raise ModelLoadError(
                    f"{path}: cannot load tokenizer: tokens {seen[repr(token_id)]!r} and {token!r} "
                    f"share the id {token_id!r} in its vocabulary"
                )
            seen[repr(token_id)] = token
    if isinstance(vocab, dict) and unk is not None and (not isinstance(unk, str) or unk not in vocab):
        raise ModelLoadError(
            f"{path}: the tokenizer's unknown token {unk!r} is not in its vocabulary "
            f"({len(vocab)} entries); any text with an unknown word would fail to tokenize"
        )
    unk_id = model.get("unk_id")
    if isinstance(vocab, list) and unk_id is not None and not (is_int(unk_id) and 0 <= unk_id < len(vocab)):
        raise ModelLoadError(f"{path}: the tokenizer's unk_id {unk_id!r} is outside its vocabulary of {len(vocab)}")
    return text, spec


def read_checkpoint(root: str | os.PathLike) -> Checkpoint:
    """Locate, read and validate a checkpoint (without the tokenizer).

    Parameters
    ----------
    root : path
        A model folder in any supported layout.

    Returns
    -------
    Checkpoint
    """
    root = Path(root)
    model_dir, layout = locate(root)
    tokenizer_path = find_tokenizer(model_dir, root)
    text, spec = check_tokenizer_file(tokenizer_path)
    if layout == "q4":
        table, dyt = read_q4_model(model_dir)
    else:
        table, dyt = read_safetensors_model(model_dir, static=layout == "static")
    alpha, beta, bias = dyt
    style = sentence_transformers_style(root) if layout == "static" else Style()
    return Checkpoint(
        table,
        alpha,
        beta,
        bias,
        layout=layout,
        model_dir=model_dir,
        tokenizer_path=tokenizer_path,
        tokenizer_json=text,
        tokenizer_spec=spec,
        style=style,
    )
