"""Reading SSE checkpoints from disk: layout detection, validation, memory maps.

Three layouts are understood (see SPEC.md):

* ``full``   -- ``model.safetensors`` with ``embedding.weight`` and the DyT
  vectors ``dyt.alpha``, ``dyt.beta``, ``dyt.bias``;
* ``q4``     -- ``model_rest.safetensors`` (the DyT vectors) plus
  ``embedding.q4_k_m.bin`` (packed 4-bit rows, then one float32 scale a row);
* ``static`` -- a sentence-transformers ``StaticEmbedding`` module: only
  ``embedding.weight``, DyT is the identity.

Each may sit in the folder itself or in a sentence-transformers repository,
where ``modules.json`` names the module folder. Nothing here computes
embeddings; it only turns files into validated arrays.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import ModelLoadError, ModelNotFoundError

FULL_FILE = "model.safetensors"
REST_FILE = "model_rest.safetensors"
Q4_FILE = "embedding.q4_k_m.bin"
TOKENIZER_FILE = "tokenizer.json"
MODULES_FILE = "modules.json"

TABLE_KEY = "embedding.weight"
DYT_KEYS = ("dyt.alpha", "dyt.beta", "dyt.bias")

# safetensors dtype -> (numpy storage dtype, Table.kind). Half-precision
# tables stay as raw 16-bit codes and are widened inside the kernels, so a
# float16 file is mapped, not copied to float32. float16 codes are held as
# uint16 and bfloat16 codes as int16: the distinct dtypes let the numba
# kernels pick the widening at compile time.
_DTYPES = {
    "F32": (np.dtype("<f4"), "f32"),
    "F16": (np.dtype("<u2"), "f16"),
    "BF16": (np.dtype("<i2"), "bf16"),
}
_MAX_HEADER = 100 * 1024 * 1024  # a sane bound before trusting the length prefix
_CHECK_ROWS = 4096  # rows per chunk when scanning a table for NaN/inf


# --------------------------------------------------------------------------
# Tables
# --------------------------------------------------------------------------
@dataclass(frozen=True)
class Table:
    """An embedding table in its storage form.

    Attributes
    ----------
    kind : {"f32", "f16", "bf16", "q4"}
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
        if self.kind == "bf16":
            return (self.data[ids, :dim].view(np.uint16).astype(np.uint32) << 16).view(np.float32)
        packed = self.data[ids, : (dim + 1) // 2]
        codes = np.empty((packed.shape[0], packed.shape[1] * 2), dtype=np.uint8)
        codes[:, 0::2] = packed >> 4
        codes[:, 1::2] = packed & 0x0F
        return Q4_LEVELS[codes[:, :dim]] * self.scales[ids, None]

    def dense(self) -> np.ndarray:
        """The whole table as a float32 ``(V, D)`` array (a copy)."""
        return self.rows(np.arange(self.vocab_size), self.dim)


# Dequantised value of each 4-bit code in units of the row scale, computed in
# float32 exactly as the reference does: (q / 7.5 - 1).
Q4_LEVELS = (np.arange(16, dtype=np.float32) / np.float32(7.5) - np.float32(1.0)).astype(
    np.float32
)


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
    """

    table: Table
    alpha: np.ndarray | None
    beta: np.ndarray | None
    bias: np.ndarray | None
    layout: str
    model_dir: Path
    tokenizer_path: Path


# --------------------------------------------------------------------------
# safetensors reading (header parsed here so the table can be memory-mapped)
# --------------------------------------------------------------------------
def _read_header(path: Path) -> tuple[dict, int]:
    """Parse a safetensors header. Returns (tensor entries, data start)."""
    size = path.stat().st_size
    with open(path, "rb") as fh:
        prefix = fh.read(8)
        if len(prefix) < 8:
            raise ModelLoadError(f"{path}: not a safetensors file (only {size} bytes)")
        n = int.from_bytes(prefix, "little")
        if n <= 0 or n > min(size - 8, _MAX_HEADER):
            raise ModelLoadError(
                f"{path}: corrupt safetensors header (declares {n} header bytes, file has {size})"
            )
        raw = fh.read(n)
    try:
        header = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelLoadError(f"{path}: corrupt safetensors header ({exc})") from None
    if not isinstance(header, dict):
        raise ModelLoadError(f"{path}: corrupt safetensors header (not a JSON object)")
    header.pop("__metadata__", None)
    data_start = 8 + n
    for key, entry in header.items():
        _check_entry(path, key, entry, size - data_start)
    return header, data_start


def _check_entry(path: Path, key: str, entry: object, data_size: int) -> None:
    try:
        dtype, shape, (start, end) = entry["dtype"], entry["shape"], entry["data_offsets"]
        count = int(np.prod(shape, dtype=np.int64))
    except (TypeError, KeyError, ValueError):
        raise ModelLoadError(f"{path}: corrupt safetensors entry for {key!r}: {entry!r}") from None
    if dtype not in _DTYPES:
        raise ModelLoadError(
            f"{path}: tensor {key!r} has dtype {dtype}; supported are float32, float16, bfloat16"
        )
    itemsize = _DTYPES[dtype][0].itemsize
    if not 0 <= start <= end <= data_size or end - start != count * itemsize:
        raise ModelLoadError(
            f"{path}: tensor {key!r} of shape {shape} does not fit its byte range "
            f"[{start}, {end}) (file holds {data_size} data bytes; truncated or corrupt?)"
        )


def _tensor(path: Path, header: dict, data_start: int, key: str) -> tuple[np.ndarray, str]:
    """Memory-map one tensor read-only. Returns (array, kind)."""
    entry = header[key]
    dtype, kind = _DTYPES[entry["dtype"]]
    shape = tuple(entry["shape"])
    if 0 in shape:
        return np.zeros(shape, dtype=dtype), kind
    arr = np.memmap(path, dtype=dtype, mode="r", offset=data_start + entry["data_offsets"][0], shape=shape)
    return arr, kind


def _as_float32(arr: np.ndarray, kind: str) -> np.ndarray:
    """Small tensors (DyT vectors) are copied to plain float32."""
    if kind == "f16":
        return arr.view(np.float16).astype(np.float32)
    if kind == "bf16":
        return (arr.view(np.uint16).astype(np.uint32) << 16).view(np.float32)
    return np.array(arr, dtype=np.float32)


def _check_keys(path: Path, found: set[str], expected: set[str]) -> None:
    missing, unexpected = expected - found, found - expected
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"missing keys {sorted(missing)}")
        if unexpected:
            parts.append(f"unexpected keys {sorted(unexpected)}")
        raise ModelLoadError(f"{path}: {'; '.join(parts)} (expected exactly {sorted(expected)})")


def _read_dyt(path: Path, header: dict, data_start: int, dim: int | None) -> tuple[np.ndarray, ...]:
    vectors = []
    for key in DYT_KEYS:
        shape = header[key]["shape"]
        if len(shape) != 1 or (dim is not None and shape[0] != dim):
            want = f"[{dim}]" if dim is not None else "1-D"
            raise ModelLoadError(f"{path}: {key} has shape {shape}, expected {want} (the table width)")
        vectors.append(_as_float32(*_tensor(path, header, data_start, key)))
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
def _nonfinite_rows(table: Table) -> np.ndarray:
    """Indices of rows holding NaN/inf, scanned in chunks (no full copy)."""
    bad = []
    for start in range(0, table.vocab_size, _CHECK_ROWS):
        chunk = table.data[start : start + _CHECK_ROWS]
        if table.kind == "f32":
            ok = np.isfinite(chunk).all(axis=1)
        elif table.kind == "f16":
            ok = ((chunk & 0x7C00) != 0x7C00).all(axis=1)
        elif table.kind == "bf16":
            ok = ((chunk.view(np.uint16) & 0x7F80) != 0x7F80).all(axis=1)
        else:
            ok = np.isfinite(table.scales[start : start + _CHECK_ROWS])
        bad.extend((np.flatnonzero(~ok) + start).tolist())
    return np.asarray(bad, dtype=np.int64)


def _require_finite(path: Path, table: Table) -> None:
    bad = _nonfinite_rows(table)
    if bad.size:
        what = "scales" if table.kind == "q4" else "values"
        raise ModelLoadError(
            f"{path}: embedding table has NaN or infinite {what} in {bad.size} row(s), "
            f"first rows {bad[:5].tolist()}"
        )


# --------------------------------------------------------------------------
# Layout readers
# --------------------------------------------------------------------------
def read_safetensors_model(model_dir: Path, static: bool) -> tuple[Table, tuple]:
    """Read ``model.safetensors`` of the full (DyT) or static layout."""
    path = model_dir / FULL_FILE
    header, start = _read_header(path)
    expected = {TABLE_KEY} if static else {TABLE_KEY, *DYT_KEYS}
    _check_keys(path, set(header), expected)
    shape = header[TABLE_KEY]["shape"]
    if len(shape) != 2 or shape[0] < 1 or shape[1] < 1:
        raise ModelLoadError(f"{path}: {TABLE_KEY} has shape {shape}, expected [vocab_size, dim]")
    data, kind = _tensor(path, header, start, TABLE_KEY)
    table = Table(kind, data)
    dyt = (None, None, None) if static else _read_dyt(path, header, start, table.dim)
    _require_finite(path, table)
    return table, dyt


def read_q4_model(model_dir: Path) -> tuple[Table, tuple]:
    """Read the 4-bit layout: DyT from ``model_rest.safetensors``, rows from the .bin."""
    rest, binary = model_dir / REST_FILE, model_dir / Q4_FILE
    for f in (rest, binary):
        if not f.is_file():
            raise ModelLoadError(f"{f}: missing (the 4-bit layout needs both {REST_FILE} and {Q4_FILE})")
    header, start = _read_header(rest)
    _check_keys(rest, set(header), set(DYT_KEYS))
    alpha, beta, bias = _read_dyt(rest, header, start, None)
    dim = alpha.shape[0]
    if dim % 2:
        raise ModelLoadError(f"{rest}: DyT length {dim} is odd; 4-bit rows pack two columns a byte")
    row_bytes = dim // 2 + 4
    size = binary.stat().st_size
    if size == 0 or size % row_bytes:
        raise ModelLoadError(
            f"{binary}: size {size} bytes is not a multiple of D/2+4 = {row_bytes} "
            f"(D={dim} from {REST_FILE}); file truncated or from another model?"
        )
    vocab = size // row_bytes
    codes = np.memmap(binary, dtype=np.uint8, mode="r", shape=(vocab, dim // 2))
    scales = np.array(np.memmap(binary, dtype="<f4", mode="r", offset=vocab * (dim // 2), shape=(vocab,)))
    table = Table("q4", codes, scales.astype(np.float32))
    _require_finite(binary, table)
    return table, (alpha, beta, bias)


# --------------------------------------------------------------------------
# Finding the layout in a folder
# --------------------------------------------------------------------------
def _layout_of(folder: Path, static_hint: bool) -> str | None:
    if (folder / REST_FILE).exists() or (folder / Q4_FILE).exists():
        return "q4"
    if (folder / FULL_FILE).exists():
        return "static" if static_hint else "full"
    return None


def _is_static_name(name: str) -> bool:
    return name.endswith("StaticEmbedding")


def _modules(root: Path) -> list[tuple[Path, bool]]:
    """Module folders named by ``modules.json``, each with a StaticEmbedding hint."""
    path = root / MODULES_FILE
    try:
        entries = json.loads(path.read_text(encoding="utf-8"))
        out = []
        for entry in sorted(entries, key=lambda e: int(e.get("idx", 0))):
            rel = entry.get("path", "") or ""
            hint = "StaticEmbedding" in str(entry.get("type", "")) or _is_static_name(Path(rel).name)
            out.append((root / rel, hint))
        return out
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, AttributeError, TypeError, ValueError) as exc:
        raise ModelLoadError(f"{path}: cannot read module list ({exc})") from None


def locate(root: str | os.PathLike) -> tuple[Path, str]:
    """Find the folder holding the weights and its layout.

    Parameters
    ----------
    root : path
        A model folder or a sentence-transformers repository folder.

    Returns
    -------
    (model_dir, layout)
    """
    root = Path(root)
    if not root.exists():
        raise ModelNotFoundError(f"{root}: no such model folder")
    if not root.is_dir():
        raise ModelLoadError(f"{root}: expected a model folder, got a file")
    if (root / MODULES_FILE).exists():
        for folder, hint in _modules(root):
            layout = _layout_of(folder, hint)
            if layout:
                return folder, layout
        raise ModelLoadError(
            f"{root / MODULES_FILE}: none of the listed module folders holds {FULL_FILE}, "
            f"or {REST_FILE} + {Q4_FILE}"
        )
    layout = _layout_of(root, _is_static_name(root.name))
    if layout:
        return root, layout
    for sub in sorted(root.glob("*StaticEmbedding")):
        if sub.is_dir() and (sub / FULL_FILE).exists():
            return sub, "static"
    found = sorted(p.name for p in root.iterdir())[:12]
    if not found:
        raise ModelNotFoundError(f"{root}: folder is empty, no model files")
    # No weight file at all: "not found" (a ModelLoadError too), so callers can
    # tell an empty model folder from a broken one.
    raise ModelNotFoundError(
        f"{root}: unrecognised model layout, no weight files; expected {FULL_FILE} (+ {TOKENIZER_FILE}), "
        f"{REST_FILE} + {Q4_FILE}, a {MODULES_FILE}, or 0_StaticEmbedding/; found {found}"
    )


def find_tokenizer(model_dir: Path, root: Path) -> Path:
    """``tokenizer.json`` beside the weights, else at the repository root."""
    for folder in (model_dir, root):
        path = folder / TOKENIZER_FILE
        if path.is_file():
            return path
    raise ModelLoadError(f"{model_dir / TOKENIZER_FILE}: missing (every layout needs the tokenizer file)")


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
    if layout == "q4":
        table, dyt = read_q4_model(model_dir)
    else:
        table, dyt = read_safetensors_model(model_dir, static=layout == "static")
    return Checkpoint(table, *dyt, layout=layout, model_dir=model_dir, tokenizer_path=tokenizer_path)
