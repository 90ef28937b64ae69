"""Texts held as one UTF-8 buffer plus offsets: what the jitted kernels read.

A list of ``str`` becomes this form in two C calls for the whole list
(``str.join`` and ``str.encode``), not a Python step per text
(:meth:`Utf8Texts.from_strs`). An Arrow string column (a Parquet file, a
Ray Data batch) already is this form: :meth:`Utf8Texts.from_arrow` views
its buffers, without a Python string per row and without re-encoding them.
A text is decoded only where ``tokenizers`` must see it (a text the
kernel leaves to it, or a tokenizer the kernel does not cover).
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


def _not_a_str(texts: Sequence, start: int) -> TypeError:
    for i, text in enumerate(texts):  # only on the error path
        if not isinstance(text, str):
            return TypeError(f"texts[{start + i}] is {type(text).__name__}, expected str")
    return TypeError("texts must be str")


def _lone_surrogate(index: int, text: str, where: int) -> ValueError:
    return ValueError(
        f"text {index} cannot be tokenized: it contains a lone surrogate {text[where]!r} at character "
        f"{where} (not valid Unicode; decode your input with errors='replace' or clean it)"
    )


def _first_lone_surrogate(texts: Sequence[str], start: int) -> ValueError:
    for i, text in enumerate(texts):  # only on the error path
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as exc:
            return _lone_surrogate(start + i, text, exc.start)
    return ValueError("texts could not be encoded as UTF-8")


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

    @classmethod
    def from_strs(cls, texts: Sequence[str], start: int = 0) -> Utf8Texts:
        """Pack a sequence of ``str`` (UTF-8, one read-only buffer); ``start`` numbers texts in errors.

        Raises
        ------
        TypeError
            An element is not a ``str`` (the message names its index).
        ValueError
            A text holds a lone surrogate, which has no UTF-8 form (the message names the text).
        """
        if len(texts) == 1 and isinstance(texts[0], str):  # a single query: the latency path
            text = texts[0]
            try:
                data = text.encode("utf-8")
            except UnicodeEncodeError as exc:
                raise _lone_surrogate(start, text, exc.start) from None
            return cls(np.frombuffer(data, dtype=np.uint8), np.array([0, len(data)], dtype=np.int64))
        try:
            ascii_only = all(map(str.isascii, texts))  # C loops throughout: no Python step per text
        except TypeError:
            raise _not_a_str(texts, start) from None
        sizes = np.zeros(len(texts) + 1, dtype=np.int64)
        if ascii_only:  # a byte a character: one join, one copy
            data = "".join(texts).encode("ascii")
            np.cumsum(np.fromiter(map(len, texts), dtype=np.int64, count=len(texts)), out=sizes[1:])
        else:  # each text to UTF-8 (the join of wide strings would be transcoded anyway), then one join
            try:
                parts = list(map(str.encode, texts))
            except UnicodeEncodeError:
                raise _first_lone_surrogate(texts, start) from None
            data = b"".join(parts)
            np.cumsum(np.fromiter(map(len, parts), dtype=np.int64, count=len(parts)), out=sizes[1:])
        return cls(np.frombuffer(data, dtype=np.uint8), sizes)

    @property
    def nbytes(self) -> int:
        """Bytes of text."""
        return int(self.offsets[-1])

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def __getitem__(self, index):
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
