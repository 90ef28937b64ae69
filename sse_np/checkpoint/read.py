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
import math
import os
import stat
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
Q4_LEVELS = (np.arange(16, dtype=np.float32) / np.float32(7.5) - np.float32(1.0)).astype(np.float32)


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


# --------------------------------------------------------------------------
# safetensors reading (header parsed here so the table can be memory-mapped)
# --------------------------------------------------------------------------
def _require_regular(path: Path, what: str = "weight file") -> int:
    """Size of ``path`` if it is a regular file (after symlinks); a folder, FIFO or device is refused
    before it is opened (reading a FIFO or /dev/zero would block or never end)."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise ModelLoadError(f"{path}: missing") from None
    except OSError as exc:
        raise ModelLoadError(f"{path}: cannot read ({exc.strerror or exc})") from None
    if not stat.S_ISREG(info.st_mode):
        kind = (
            "a folder"
            if stat.S_ISDIR(info.st_mode)
            else "a named pipe"
            if stat.S_ISFIFO(info.st_mode)
            else "a device"
            if stat.S_ISCHR(info.st_mode) or stat.S_ISBLK(info.st_mode)
            else "not a file"
        )
        raise ModelLoadError(f"{path}: is {kind}, expected a regular {what}")
    return info.st_size


def _unique_keys(pairs: list[tuple[str, object]]) -> dict:
    seen: dict = {}
    for key, value in pairs:
        if key in seen:
            raise ValueError(f"key {key!r} appears twice")
        seen[key] = value
    return seen


def _read_header(path: Path) -> tuple[dict, int]:
    """Parse a safetensors header. Returns (tensor entries, data start)."""
    size = _require_regular(path)
    try:
        with open(path, "rb") as fh:
            prefix = fh.read(8)
            if len(prefix) < 8:
                raise ModelLoadError(f"{path}: not a safetensors file (only {size} bytes)")
            n = int.from_bytes(prefix, "little")
            if n <= 0 or n > min(size - 8, _MAX_HEADER):
                raise ModelLoadError(f"{path}: corrupt safetensors header (declares {n} header bytes, file has {size})")
            raw = fh.read(n)
    except OSError as exc:
        raise ModelLoadError(f"{path}: cannot read ({exc.strerror or exc})") from None
    try:
        header = json.loads(raw, object_pairs_hook=_unique_keys)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelLoadError(f"{path}: corrupt safetensors header ({exc})") from None
    except RecursionError:
        raise ModelLoadError(f"{path}: corrupt safetensors header (JSON nested too deeply)") from None
    except ValueError as exc:  # a duplicate key; an integer too long to convert
        raise ModelLoadError(f"{path}: corrupt safetensors header ({str(exc).split(';')[0]})") from None
    if not isinstance(header, dict):
        raise ModelLoadError(f"{path}: corrupt safetensors header (not a JSON object)")
    header.pop("__metadata__", None)
    data_start = 8 + n
    for key, entry in header.items():
        _check_entry(path, key, entry, size - data_start)
    _check_tiling(path, header, size - data_start)
    return header, data_start


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_entry(path: Path, key: str, entry: object, data_size: int) -> None:
    def bad(problem: str) -> ModelLoadError:
        text = repr(entry)
        return ModelLoadError(
            f"{path}: corrupt safetensors entry for {key!r}: {problem} "
            f"({text[:200] + '...' if len(text) > 200 else text})"
        )

    if not isinstance(entry, dict) or not {"dtype", "shape", "data_offsets"} <= entry.keys():
        raise bad("expected an object with dtype, shape and data_offsets")
    dtype, shape, offsets = entry["dtype"], entry["shape"], entry["data_offsets"]
    if not isinstance(dtype, str):
        raise bad(f"dtype is {type(dtype).__name__}, expected a string")
    if not isinstance(shape, list) or not all(_is_int(d) and d >= 0 for d in shape):
        raise bad("shape must be a list of non-negative integers")
    if not isinstance(offsets, list) or len(offsets) != 2 or not all(_is_int(o) for o in offsets):
        raise bad("data_offsets must be two integers [start, end]")
    if dtype not in _DTYPES:
        raise ModelLoadError(f"{path}: tensor {key!r} has dtype {dtype}; supported are float32, float16, bfloat16")
    start, end = offsets
    count = math.prod(shape)  # Python ints: a product beyond int64 cannot wrap around
    itemsize = _DTYPES[dtype][0].itemsize
    if not 0 <= start <= end <= data_size or end - start != count * itemsize:
        raise ModelLoadError(
            f"{path}: tensor {key!r} of shape {shape} does not fit its byte range "
            f"[{start}, {end}) (file holds {data_size} data bytes; truncated or corrupt?)"
        )


def _check_tiling(path: Path, header: dict, data_size: int) -> None:
    """The tensors must cover the data area exactly, in order, without overlap or gap, as the
    safetensors library requires (so a file it would refuse is refused here too)."""
    spans = sorted((e["data_offsets"][0], e["data_offsets"][1], k) for k, e in header.items())
    at, previous = 0, None
    for start, end, key in spans:
        if start != at:
            what = f"overlaps {previous!r}" if start < at else f"starts at byte {start}, after a gap from byte {at}"
            raise ModelLoadError(f"{path}: corrupt safetensors header: tensor {key!r} {what}")
        at, previous = end, key
    if at != data_size:
        raise ModelLoadError(
            f"{path}: corrupt safetensors file: {data_size - at} bytes after the last tensor "
            f"(data area {data_size} bytes, tensors end at {at})"
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
            f"{path}: embedding table has NaN or infinite {what} in {bad.size} row(s), first rows {bad[:5].tolist()}"
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
        if not os.path.lexists(f):
            raise ModelLoadError(f"{f}: missing (the 4-bit layout needs both {REST_FILE} and {Q4_FILE})")
    header, start = _read_header(rest)
    _check_keys(rest, set(header), set(DYT_KEYS))
    alpha, beta, bias = _read_dyt(rest, header, start, None)
    dim = alpha.shape[0]
    if dim % 2:
        raise ModelLoadError(f"{rest}: DyT length {dim} is odd; 4-bit rows pack two columns a byte")
    row_bytes = dim // 2 + 4
    size = _require_regular(binary)
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
    # lexists: a dangling link or a weight "file" that is a folder or device counts as present (and is
    # refused by name when read), instead of silently falling through to another layout.
    q4 = [name for name in (REST_FILE, Q4_FILE) if os.path.lexists(folder / name)]
    full = os.path.lexists(folder / FULL_FILE)
    if q4 and full:
        raise ModelLoadError(
            f"{folder}: holds two layouts, {FULL_FILE} (full precision) and {' + '.join(q4)} (4-bit); "
            "refusing to guess which to load: move one of them to a folder of its own"
        )
    if q4:
        return "q4"
    if full:
        return "static" if static_hint else "full"
    return None


def _is_static_name(name: str) -> bool:
    return name.endswith("StaticEmbedding")


def _modules(root: Path) -> list[tuple[Path, bool]]:
    """Module folders named by ``modules.json``, each with a StaticEmbedding hint."""
    path = root / MODULES_FILE
    try:
        _require_regular(path, "JSON file")
        entries = json.loads(path.read_text(encoding="utf-8"))
        out = []
        for entry in sorted(entries, key=lambda e: int(e.get("idx", 0))):
            rel = entry.get("path", "") or ""
            if not isinstance(rel, str) or Path(rel).is_absolute() or ".." in Path(rel).parts:
                raise ValueError(f"module path {rel!r} leaves the repository folder")
            hint = "StaticEmbedding" in str(entry.get("type", "")) or _is_static_name(Path(rel).name)
            out.append((root / rel, hint))
        return out
    except RecursionError:
        raise ModelLoadError(f"{path}: cannot read module list (JSON nested too deeply)") from None
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
            f"{root / MODULES_FILE}: none of the listed module folders holds {FULL_FILE}, or {REST_FILE} + {Q4_FILE}"
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
        if os.path.lexists(path):
            _require_regular(path, "JSON file")
            return path
    raise ModelLoadError(f"{model_dir / TOKENIZER_FILE}: missing (every layout needs the tokenizer file)")


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
    if isinstance(vocab, list) and unk_id is not None and not (_is_int(unk_id) and 0 <= unk_id < len(vocab)):
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
    return Checkpoint(
        table,
        *dyt,
        layout=layout,
        model_dir=model_dir,
        tokenizer_path=tokenizer_path,
        tokenizer_json=text,
        tokenizer_spec=spec,
    )
