"""Quantized embeddings: int8/uint8 scalar codes and packed binary codes.

:func:`quantize_embeddings` reproduces
``sentence_transformers.quantization.quantize_embeddings`` bit for bit (the
tests compare with it), in pure NumPy:

* ``"float32"``: a float32 copy.
* ``"int8"`` / ``"uint8"``: per dimension, the range ``[min, max]`` (from
  ``ranges``, else from ``calibration_embeddings``, else from the embeddings
  themselves) is cut into 255 equal steps; code = ``floor((x - min) / step)``
  clipped to ``0..255`` (``- 128`` for int8). A zero-width range uses step 1.
* ``"ubinary"``: the sign bits ``x > 0`` packed 8 per byte, big-endian within
  a byte (``np.packbits``), the last byte zero-padded: ``ceil(dim / 8)``
  uint8 per vector.
* ``"binary"``: the same bytes minus 128, as int8 (what FAISS/usearch call a
  binary vector is the ``"ubinary"`` form; ``binary ^ -128`` gives it back).

It also has the helpers search needs: :func:`bytes_per_vector`,
:func:`unpack_bits`, :func:`to_ubinary`, :func:`dequantize_embeddings`,
:func:`hamming_distances` and :func:`quantization_ranges`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal, overload

import numpy as np

__all__ = [
    "PRECISIONS",
    "Precision",
    "bytes_per_vector",
    "dequantize_embeddings",
    "hamming_distances",
    "quantization_ranges",
    "quantize_embeddings",
    "to_ubinary",
    "unpack_bits",
]

Precision = Literal["float32", "int8", "uint8", "binary", "ubinary"]
#: Every precision :func:`quantize_embeddings` accepts.
PRECISIONS: tuple[str, ...] = ("float32", "int8", "uint8", "binary", "ubinary")
_CODE_DTYPES = {"int8": np.int8, "uint8": np.uint8, "binary": np.int8, "ubinary": np.uint8}
ArrayLike = np.ndarray | Sequence[Any]


def check_precision(precision: Any, allowed: Sequence[str] = PRECISIONS) -> str:
    """Return ``precision`` if it is one of ``allowed``, else raise ``ValueError`` naming them."""
    if not isinstance(precision, str) or precision not in allowed:
        raise ValueError(f"precision must be one of {', '.join(map(repr, allowed))}; got {precision!r}")
    return precision


def bytes_per_vector(dim: int, precision: str) -> int:
    """Bytes one ``dim``-dimensional vector takes at ``precision``.

    Parameters
    ----------
    dim : int
        Embedding width (>= 1).
    precision : str
        One of :data:`PRECISIONS`.

    Returns
    -------
    int
        ``4 * dim`` for float32, ``dim`` for int8/uint8, ``ceil(dim / 8)`` for
        binary/ubinary.
    """
    check_precision(precision)
    if isinstance(dim, bool) or not isinstance(dim, (int, np.integer)) or dim < 1:
        raise ValueError(f"dim must be a positive int, got {dim!r}")
    dim = int(dim)
    if precision == "float32":
        return 4 * dim
    if precision.endswith("int8"):
        return dim
    return (dim + 7) // 8


def _as_float_array(embeddings: Any, name: str) -> np.ndarray:
    arr = np.asarray(embeddings)
    if arr.dtype in (np.int8, np.uint8):
        raise TypeError(f"{name} to quantize must be float, got {arr.dtype} (already quantized?)")
    if arr.dtype == object or not (
        np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer) or arr.dtype == np.bool_
    ):
        raise TypeError(f"{name} must be a numeric array, got dtype {arr.dtype}")
    if arr.ndim not in (1, 2):
        raise ValueError(f"{name} must be 1-D (dim,) or 2-D (n, dim), got shape {arr.shape}")
    return arr


def quantization_ranges(
    embeddings: ArrayLike | None,
    calibration_embeddings: ArrayLike | None = None,
    precision: str = "int8",
) -> np.ndarray:
    """Per-dimension ``[min; max]`` ranges, shape ``(2, dim)``, as sentence-transformers computes them.

    From ``calibration_embeddings`` when given, else from ``embeddings``
    (which then needs at least two rows). Keep the result and pass it as
    ``ranges=`` to quantize queries and later documents consistently.
    """
    if calibration_embeddings is None:
        emb = _as_float_array(embeddings, "embeddings")
        if emb.ndim == 1 or emb.shape[0] == 1:
            raise ValueError(
                f"cannot compute {precision} quantization ranges from a single embedding; "
                "pass ranges= or calibration_embeddings= from a representative set of embeddings"
            )
        calibration = emb
    else:
        calibration = _as_float_array(calibration_embeddings, "calibration_embeddings")
        if calibration.ndim != 2 or calibration.shape[0] == 0:
            raise ValueError(
                f"calibration_embeddings must be a non-empty (n, dim) array, got shape {calibration.shape}"
            )
    return np.vstack((np.min(calibration, axis=0), np.max(calibration, axis=0)))


def _check_ranges(ranges: Any, dim: int) -> np.ndarray:
    ranges = np.asarray(ranges)
    if ranges.shape != (2, dim):
        raise ValueError(f"ranges must have shape (2, {dim}) (row 0 = minimum, row 1 = maximum), got {ranges.shape}")
    if not np.issubdtype(ranges.dtype, np.number):
        raise TypeError(f"ranges must be numeric, got dtype {ranges.dtype}")
    return ranges


@overload
def quantize_embeddings(
    embeddings: np.ndarray,
    precision: str,
    ranges: np.ndarray | None = None,
    calibration_embeddings: np.ndarray | None = None,
) -> np.ndarray: ...


@overload
def quantize_embeddings(
    embeddings: ArrayLike | list[np.ndarray],
    precision: str,
    ranges: np.ndarray | None = None,
    calibration_embeddings: np.ndarray | None = None,
) -> np.ndarray | list[np.ndarray]: ...


def quantize_embeddings(
    embeddings: ArrayLike | list[np.ndarray],
    precision: str,
    ranges: np.ndarray | None = None,
    calibration_embeddings: np.ndarray | None = None,
) -> np.ndarray | list[np.ndarray]:
    """Quantize float embeddings, exactly as sentence-transformers' ``quantize_embeddings``.

    Parameters
    ----------
    embeddings : array-like, shape (n, dim) or (dim,)
        Float embeddings. A list of 2-D arrays (multi-vector documents) gives
        a list of quantized arrays sharing one set of int8/uint8 ranges.
    precision : {"float32", "int8", "uint8", "binary", "ubinary"}
        Target precision.
    ranges : ndarray, shape (2, dim), optional
        int8/uint8 only: per-dimension minimum (row 0) and maximum (row 1).
    calibration_embeddings : ndarray, shape (m, dim), optional
        int8/uint8 only: embeddings to take the ranges from when ``ranges`` is
        not given. Without either, the ranges come from ``embeddings`` itself,
        which then must have at least two rows.

    Returns
    -------
    ndarray
        float32 ``(n, dim)``; int8/uint8 ``(n, dim)``; binary (int8) or ubinary
        (uint8) ``(n, ceil(dim / 8))``. 1-D input gives 1-D output.

    Raises
    ------
    ValueError
        Unknown precision, wrong shapes (ranges not ``(2, dim)``, calibration
        width not ``dim``, arrays that are not 1-D/2-D), or int8/uint8 ranges
        that would have to come from one embedding.
    TypeError
        Embeddings that are already int8/uint8 or not numeric.
    """
    check_precision(precision)
    if isinstance(embeddings, list):
        if not embeddings:
            return []
        if isinstance(embeddings[0], np.ndarray) and embeddings[0].ndim == 2:
            # Multi-vector documents: calibrate once so all share the same ranges.
            mats = [_as_float_array(m, f"embeddings[{i}]") for i, m in enumerate(embeddings)]
            for i, m in enumerate(mats):
                if m.ndim != 2 or m.shape[1] != mats[0].shape[1]:
                    raise ValueError(f"embeddings[{i}] has shape {m.shape}; expected (n, {mats[0].shape[1]})")
            if precision.endswith("int8") and ranges is None:
                data = np.concatenate(mats, axis=0) if calibration_embeddings is None else calibration_embeddings
                if len(data):
                    ranges = quantization_ranges(data, calibration_embeddings, precision)
            return [quantize_embeddings(m, precision, ranges, calibration_embeddings) for m in mats]
    emb = _as_float_array(embeddings, "embeddings")
    dim = emb.shape[-1]
    if calibration_embeddings is not None:
        cal_shape = np.shape(calibration_embeddings)
        if len(cal_shape) != 2 or cal_shape[1] != dim:
            raise ValueError(f"calibration_embeddings must have shape (m, {dim}), got {cal_shape}")

    if emb.ndim == 2 and emb.shape[0] == 0:
        if precision.endswith("int8"):
            return np.zeros((0, dim), dtype=_CODE_DTYPES[precision])
        if precision.endswith("binary"):
            return np.zeros((0, (dim + 7) // 8), dtype=_CODE_DTYPES[precision])

    if precision == "float32":
        return emb.astype(np.float32)

    if precision.endswith("int8"):
        if ranges is None:
            ranges = quantization_ranges(emb, calibration_embeddings, precision)
        ranges = _check_ranges(ranges, dim).astype(np.float32, copy=False)
        starts = ranges[0, :]
        steps = (ranges[1, :] - starts) / 255
        steps = np.where(steps == 0, 1, steps)
        # Same operations, order and dtypes as sentence-transformers (float32
        # ranges; float64 embeddings stay float64), so the codes are identical.
        q_vals = np.clip(np.floor((emb - starts) / steps), 0, 255)
        if precision == "uint8":
            return q_vals.astype(np.uint8)
        return (q_vals - 128).astype(np.int8)

    bits = np.packbits(emb > 0, axis=-1)
    if precision == "ubinary":
        return bits
    return (bits ^ np.uint8(0x80)).view(np.int8)  # == packbits - 128 as int8


def to_ubinary(codes: np.ndarray) -> np.ndarray:
    """Packed bits as uint8: ``"ubinary"`` codes unchanged, ``"binary"`` (int8) codes with the -128 offset undone."""
    codes = np.asarray(codes)
    if codes.dtype == np.uint8:
        return codes
    if codes.dtype == np.int8:
        return codes.view(np.uint8) ^ np.uint8(0x80)
    raise TypeError(f"packed binary codes must be int8 ('binary') or uint8 ('ubinary'), got {codes.dtype}")


def unpack_bits(codes: np.ndarray, dim: int | None = None, *, signed: bool = False) -> np.ndarray:
    """Unpack ``binary``/``ubinary`` codes to one value per dimension.

    Parameters
    ----------
    codes : ndarray int8 or uint8, shape (..., n_bytes)
        Packed codes (int8 = "binary", uint8 = "ubinary").
    dim : int, optional
        Original width; drops the padding bits of the last byte (default
        ``8 * n_bytes``).
    signed : bool
        Return ``+1/-1`` (int8) instead of ``1/0`` (uint8).

    Returns
    -------
    ndarray, shape (..., dim)
    """
    packed = to_ubinary(codes)
    n_bits = packed.shape[-1] * 8
    if dim is None:
        dim = n_bits
    if not 0 < dim <= n_bits or dim <= n_bits - 8:
        raise ValueError(f"dim {dim} does not fit codes of {packed.shape[-1]} bytes (needs {n_bits - 7}..{n_bits})")
    bits = np.unpackbits(packed, axis=-1, count=dim)
    if signed:
        return (bits.view(np.int8) * np.int8(2) - np.int8(1)).astype(np.int8, copy=False)
    return bits


def dequantize_embeddings(codes: np.ndarray, precision: str, ranges: np.ndarray) -> np.ndarray:
    """Map int8/uint8 codes back to the float space of the ranges (float64), as sentence-transformers' rescoring does.

    ``value = code' * step + min`` with ``code' = code (+128 for int8)`` and
    ``step = (max - min) / 255`` (1 for a zero-width range): the lower edge of
    the code's bucket.
    """
    check_precision(precision, ("int8", "uint8"))
    codes = np.asarray(codes)
    if codes.dtype != _CODE_DTYPES[precision] and not np.issubdtype(codes.dtype, np.integer):
        raise TypeError(f"{precision} codes must be an integer array, got {codes.dtype}")
    ranges = _check_ranges(ranges, codes.shape[-1]).astype(np.float32, copy=False)
    steps = (ranges[1] - ranges[0]) / 255
    steps = np.where(steps == 0, 1, steps)
    values = codes.astype(np.float64)
    if precision == "int8":
        values += 128
    return values * steps + ranges[0]


def hamming_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """All Hamming distances between packed codes ``a`` (n, B) and ``b`` (m, B): int32 (n, m).

    Reference implementation for small inputs (memory ``n * m * B``); search
    uses the blocked kernels of :mod:`sse_np.retrieval.hamming`.
    """
    a, b = np.atleast_2d(to_ubinary(a)), np.atleast_2d(to_ubinary(b))
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise ValueError(f"packed codes need the same number of bytes, got shapes {a.shape} and {b.shape}")
    return popcount(a[:, None, :] ^ b[None, :, :]).sum(axis=-1, dtype=np.int32)


_POPCOUNT_TABLE = np.array([bin(i).count("1") for i in range(256)], dtype=np.uint8)


def popcount(x: np.ndarray) -> np.ndarray:
    """Set bits per element of an unsigned integer array (uint8 result).

    ``np.bitwise_count`` on NumPy >= 2.0; a byte lookup table before.
    """
    if hasattr(np, "bitwise_count"):
        return np.bitwise_count(x)
    x = np.ascontiguousarray(x)
    per_byte = _POPCOUNT_TABLE[x.view(np.uint8)]
    if x.dtype.itemsize == 1:
        return per_byte
    return per_byte.reshape(*x.shape, x.dtype.itemsize).sum(axis=-1, dtype=np.uint8)
