"""safetensors files read by hand: the header parsed and checked, tensors memory-mapped.

The ``safetensors`` library would copy every tensor into memory; parsing the
header here lets the (large) embedding table be memory-mapped instead. Every
check the library makes is made here too (entries, byte ranges, their exact
tiling of the data area), so a file it would refuse is refused, naming the
file and the problem.
"""

from __future__ import annotations

import json
import math
import os
import stat
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ModelLoadError

# safetensors dtype -> (numpy storage dtype, Table.kind). Half-precision
# tables stay as raw 16-bit codes and are widened inside the kernels, so a
# float16 file is mapped, not copied to float32. float16 codes are held as
# uint16 and bfloat16 codes as int16: the distinct dtypes let the numba
# kernels pick the widening at compile time.
DTYPES: dict[str, tuple[np.dtype[Any], str]] = {
    "F32": (np.dtype("<f4"), "f32"),
    "F16": (np.dtype("<u2"), "f16"),
    "BF16": (np.dtype("<i2"), "bf16"),
    "I8": (np.dtype("i1"), "i8"),  # model2vec's int8 tables: codes whose scale normalization cancels
}
# Other tensors a checkpoint may hold (model2vec's ``weights`` and ``mapping``), read with safetensors itself.
OTHER_DTYPES: dict[str, int] = {"F64": 8, "I64": 8, "I32": 4, "U32": 4, "I16": 2, "U16": 2, "U8": 1}
_MAX_HEADER = 100 * 1024 * 1024  # a sane bound before trusting the length prefix


def require_regular(path: Path, what: str = "weight file") -> int:
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


def read_header(path: Path, other_dtypes: bool = False) -> tuple[dict, int]:
    """Parse a safetensors header. Returns (tensor entries, data start)."""
    size = require_regular(path)
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
        _check_entry(path, key, entry, size - data_start, other_dtypes)
    _check_tiling(path, header, size - data_start)
    return header, data_start


def is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_entry(path: Path, key: str, entry: object, data_size: int, other_dtypes: bool) -> None:
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
    if not isinstance(shape, list) or not all(is_int(d) and d >= 0 for d in shape):
        raise bad("shape must be a list of non-negative integers")
    if not isinstance(offsets, list) or len(offsets) != 2 or not all(is_int(o) for o in offsets):
        raise bad("data_offsets must be two integers [start, end]")
    if dtype not in DTYPES and not (other_dtypes and dtype in OTHER_DTYPES):
        raise ModelLoadError(
            f"{path}: tensor {key!r} has dtype {dtype}; supported are float32, float16, bfloat16, int8 "
            f"(and {', '.join(OTHER_DTYPES)} for per-token weights and mappings)"
        )
    start, end = offsets
    count = math.prod(shape)  # Python ints: a product beyond int64 cannot wrap around
    itemsize = DTYPES[dtype][0].itemsize if dtype in DTYPES else OTHER_DTYPES[dtype]
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


def tensor(path: Path, header: dict, data_start: int, key: str) -> tuple[np.ndarray, str]:
    """Memory-map one tensor read-only. Returns (array, kind)."""
    entry = header[key]
    if entry["dtype"] not in DTYPES:
        raise ModelLoadError(
            f"{path}: tensor {key!r} has dtype {entry['dtype']}; supported are float32, float16, bfloat16, int8"
        )
    dtype, kind = DTYPES[entry["dtype"]]
    shape = tuple(entry["shape"])
    if 0 in shape:
        return np.zeros(shape, dtype=dtype), kind
    arr = np.memmap(path, dtype=dtype, mode="r", offset=data_start + entry["data_offsets"][0], shape=shape)
    return arr, kind


def as_float32(arr: np.ndarray, kind: str) -> np.ndarray:
    """Small tensors (DyT vectors) are copied to plain float32."""
    if kind == "f16":
        return arr.view(np.float16).astype(np.float32)
    if kind == "bf16":
        return (arr.view(np.uint16).astype(np.uint32) << 16).view(np.float32)
    return np.array(arr, dtype=np.float32)


def check_keys(path: Path, found: set[str], expected: set[str]) -> None:
    missing, unexpected = expected - found, found - expected
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"missing keys {sorted(missing)}")
        if unexpected:
            parts.append(f"unexpected keys {sorted(unexpected)}")
        raise ModelLoadError(f"{path}: {'; '.join(parts)} (expected exactly {sorted(expected)})")
