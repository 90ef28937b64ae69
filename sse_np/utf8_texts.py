"""Texts held as one UTF-8 buffer plus offsets: how an Arrow string column stores them.

The jitted tokenizer reads exactly this form, so ``encode`` of a pyarrow
string column (a Parquet file, a Ray Data batch) goes from Arrow's buffers
to the kernel without a Python string per row and without re-encoding
them; a text is decoded only where ``tokenizers`` must see it (a word with
non-ASCII characters, or a tokenizer the kernel does not cover).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

_EMPTY = np.zeros(0, dtype=np.uint8)


class NotUtf8Error(ValueError):
    """Text ``index`` of a column holds bytes that are not UTF-8 (``reason`` says which)."""

    def __init__(self, index: int, reason: str) -> None:
        super().__init__(f"text {index} is not valid UTF-8 ({reason})")
        self.index, self.reason = index, reason


class Utf8Texts(Sequence):
    """A read-only sequence of texts over ``data`` (uint8) and ``offsets`` (int64, ``n + 1``, from 0).

    Text ``i`` is ``data[offsets[i]:offsets[i + 1]]``, valid UTF-8. Build it with
    :meth:`from_arrow`; slicing gives a view, indexing decodes one text.
    """

    __slots__ = ("data", "offsets")

    def __init__(self, data: np.ndarray, offsets: np.ndarray) -> None:
        self.data = data
        self.offsets = offsets

    @classmethod
    def from_arrow(cls, array: Any) -> Utf8Texts:
        """View a pyarrow string array or chunked array (no copy of the text bytes of one chunk).

        Raises
        ------
        TypeError
            Not a string column, or a null value (the message names its index).
        NotUtf8Error
            Bytes that are not UTF-8 (a ValueError naming the text).
        """
        import pyarrow as pa

        if isinstance(array, pa.ChunkedArray):
            array = array.combine_chunks() if array.num_chunks != 1 else array.chunk(0)
        kind = array.type
        if hasattr(pa.types, "is_string_view") and pa.types.is_string_view(kind):
            array = array.cast(pa.large_string())
        elif not (pa.types.is_string(kind) or pa.types.is_large_string(kind)):
            raise TypeError(f"texts must be a str or a sequence of str; got an Arrow column of {kind}")
        if array.null_count:
            index = int(np.argmin(array.is_valid().to_numpy(zero_copy_only=False)))
            raise TypeError(f"texts[{index}] is null (None), expected str")
        n = len(array)
        if n == 0:
            return cls(_EMPTY, np.zeros(1, dtype=np.int64))
        try:
            array.validate(full=True)  # UTF-8 and offsets, vectorized (~0.2 ms a MB)
        except pa.ArrowInvalid:
            for i, value in enumerate(array):  # rare: find the text to name
                try:
                    value.as_py()
                except UnicodeDecodeError as exc:
                    raise NotUtf8Error(i, f"{exc.reason} at byte {exc.start}") from None
            raise
        _, offset_buf, data_buf = array.buffers()
        width = np.dtype(np.int64 if pa.types.is_large_string(array.type) else np.int32)
        offsets = np.frombuffer(offset_buf, dtype=width, count=n + 1, offset=array.offset * width.itemsize)
        lo, hi = int(offsets[0]), int(offsets[-1])
        data = np.frombuffer(data_buf, dtype=np.uint8)[lo:hi] if data_buf is not None and hi > lo else _EMPTY
        return cls(data, offsets.astype(np.int64) - lo)

    @property
    def nbytes(self) -> int:
        """Bytes of text."""
        return int(self.offsets[-1])

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def __getitem__(self, index):  # type: ignore[override]
        if isinstance(index, slice):
            lo, hi, step = index.indices(len(self))
            if step != 1:
                return [self[i] for i in range(lo, hi, step)]
            hi = max(lo, hi)
            a = int(self.offsets[lo])
            return Utf8Texts(self.data[a : int(self.offsets[hi])], self.offsets[lo : hi + 1] - a)
        i = int(index)
        if i < 0:
            i += len(self)
        if not 0 <= i < len(self):
            raise IndexError("text index out of range")
        return self.decode(int(self.offsets[i]), int(self.offsets[i + 1]))

    def decode(self, a: int, b: int) -> str:
        """The text bytes ``data[a:b]`` as a str."""
        return self.data[a:b].tobytes().decode("utf-8")

    def __repr__(self) -> str:
        return f"Utf8Texts({len(self)} texts, {self.nbytes} bytes)"
