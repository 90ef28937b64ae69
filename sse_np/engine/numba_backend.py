"""The numba back-end: one parallel region per call, over the whole input.

A call packs its texts into UTF-8 blocks (two C calls a block, see
``texts.Utf8Texts.from_strs``) and cuts each block into *items* of a few
to 64 KB of text. Threads -- the caller's own and helpers from
``sse_np.engine.parallel`` -- each run one kernel call per block, which
takes items from a shared atomic counter and, for every text, tokenizes
(``wordpiece``), pools, applies the head and normalizes (``pooling``,
``dyt``), all without the GIL and without returning to Python per text or
per item. While helpers work on one block the caller packs the next, so a
call over many blocks is still one region with no barrier between blocks:
``batch_size`` only bounds how much text is packed at a time.

How many threads a call uses: at most ``threads``, and no more than one
per ``SERIAL_BYTES`` of text, so a query or a call of 32 short texts stays
on the calling thread at single-thread latency; callers running at once
share the cores (``parallel``).

Tokenizers the kernels do not cover (BPE, Unigram, other normalizers), and
the rare text the kernel leaves to ``tokenizers`` (an added token such as
``[CLS]`` written in the text, a combining mark NFD would reorder), are
tokenized by ``sse_np.tokenizer.TextTokenizer``; their ids are pooled by
the same kernels, in parallel.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from ..checkpoint.q4 import Q4_LEVELS
from . import jit, parallel, pooling, unicode_tables, wordpiece
from .items import _blocks, _entry_point, _items
from .pooling import Bag, Head, TableArrays
from .texts import Utf8Texts
from .wordpiece_tables import wordpiece_tables

if TYPE_CHECKING:
    from .word_backend import WordPath

__all__ = ["SERIAL_BYTES", "NumbaBackend"]

# Less text than this per thread and another thread costs more than it
# saves (waking one is ~20-50 us; a core tokenizes and pools ~25 MB/s).
SERIAL_BYTES = 16 << 10
_DUMMY_F = np.zeros(1, dtype=np.float32)
_DUMMY_I = np.zeros(1, dtype=np.int32)
_NO_TOKENS = np.zeros(0, dtype=np.int32)  # embed_items pools (a non-empty array: it writes ids instead)
_NO_COUNTS = np.zeros(0, dtype=np.int64)
_NO_STATUS = np.zeros(0, dtype=np.uint8)
_ONE_ITEM = np.array([0, 1], dtype=np.int64)  # a single text is one item (the kernel only reads it)
_NO_UNICODE = unicode_tables.UnicodeTables(
    *(np.zeros(0, dtype=d) for d in (np.uint32, np.uint32, np.int32, np.uint8, np.int32, np.uint8))
)


class _Block:
    """One packed block and the state of its region."""

    __slots__ = ("args", "start", "status", "strs", "texts")

    def __init__(self, texts: Utf8Texts, strs, start: int) -> None:
        self.texts, self.strs, self.start = texts, strs, start
        self.args: tuple = ()
        self.status: np.ndarray = _NO_STATUS


class NumbaBackend:
    """Kernels bound to one model's arrays.

    Parameters
    ----------
    table : Table
    dyt : (alpha, beta, bias) or None
    tokenizer : sse_np.tokenizer.TextTokenizer
    mapping, weights : ndarray or None
        Token id -> table row (vocabulary quantization), per-token weights.
    drop_id : int
        A token id removed before pooling (-1: none).
    cache_folder : str, optional
        Where the Unicode tables are cached (default: numba's cache folder).
    """

    def __init__(self, table, dyt, tokenizer, mapping=None, weights=None, drop_id: int = -1, cache_folder=None):
        self.table = TableArrays(table.data, table.scales if table.scales is not None else _DUMMY_F, Q4_LEVELS)
        if dyt is not None:
            self.head = Head(dyt[0], dyt[2], dyt[1], True)
        else:
            self.head = Head(_DUMMY_F, _DUMMY_F, _DUMMY_F, False)
        self.bag = Bag(
            _DUMMY_I if mapping is None else np.ascontiguousarray(mapping, dtype=np.int32),
            _DUMMY_F if weights is None else np.ascontiguousarray(weights, dtype=np.float32),
            mapping is not None,
            weights is not None,
            np.int64(drop_id),
        )
        self.tokenizer = tokenizer
        max_len, keep_end = tokenizer.truncation
        self.trunc = (np.int64(max_len), bool(keep_end))
        spec = tokenizer.fast_spec
        self.tables = None
        if spec is not None:
            classes, vocab = wordpiece_tables(spec)
            folder = cache_folder if cache_folder is not None else jit.cache_folder()
            self.tables = (classes, unicode_tables.load(spec["normalizer"], folder), vocab)
        #: The word path (BPE/Unigram/WordLevel pipelines it reproduces), or None; imported only then.
        self.word_path: WordPath | None = None
        if spec is None and tokenizer.word_spec is not None:
            from .word_backend import WordPath

            self.word_path = WordPath(tokenizer, tokenizer.cache_bytes)
        self._fast: dict = {}  # embed_items' machine code by argument flags (see _entry_point)
        self._limit_args: dict = {}
        # embed_items' arguments that are the same on every call
        self._model_args = (*self.tables, self.trunc, self.table, self.bag, self.head) if self.tables else ()

    @property
    def fast(self) -> bool:
        """Whether the jitted tokenizer tokenizes (a BERT configuration)."""
        return self.tables is not None

    # -- encode -------------------------------------------------------------
    def encode(self, texts, out: np.ndarray, normalize: bool, threads: int, batch_size: int, limits, progress=None):
        """Texts (list of str or ``Utf8Texts``) -> vectors in ``out`` (n, dim).

        ``limits`` is ``(max_tokens, max_chars)``, -1 for none; ``progress(n)``
        is called as blocks finish (then blocks run one after another).
        """
        n = len(texts)
        if n == 0:
            return
        if self.tables is None:
            if self.word_path is None:
                self._encode_with_tokenizers(texts, 0, out, normalize, threads, limits)
                return
            sizes = texts.offsets if isinstance(texts, Utf8Texts) else _running_lengths(texts)
            threads = max(1, min(threads, int(sizes[-1]) // SERIAL_BYTES + 1, n))
            self.word_path.encode(self, texts, sizes, out, normalize, threads, batch_size, limits, progress)
            return
        packed = isinstance(texts, Utf8Texts)
        if n == 1 and not packed:  # a single query: the latency path, on this thread
            block = _Block(Utf8Texts.from_strs(texts), texts, 0)
            self._prepare(block, out, normalize, 1, limits)
            self._run(block)
            if block.status[0]:
                self._fallbacks(block, out, normalize, threads, limits)
            return
        sizes = texts.offsets if packed else _running_lengths(texts)
        threads = max(1, min(threads, int(sizes[-1]) // SERIAL_BYTES + 1, n))
        spans = _blocks(sizes, batch_size)
        if progress is not None or len(spans) == 1 or threads == 1:
            for a, b in spans:
                block = self._pack(texts, a, b)
                self._region(block, out[a:b], normalize, threads, limits)
                self._fallbacks(block, out[a:b], normalize, threads, limits)
                if progress is not None:
                    progress(b - a)
        else:
            self._pipeline(texts, spans, out, normalize, threads, limits)

    def _pack(self, texts, a: int, b: int) -> _Block:
        if isinstance(texts, Utf8Texts):
            return _Block(texts[a:b], None, a)
        strs = texts[a:b]
        return _Block(Utf8Texts.from_strs(strs, a), strs, a)

    def _prepare(self, block: _Block, out: np.ndarray, normalize: bool, threads: int, limits) -> None:
        texts = block.texts
        n = len(texts)
        if n == 1:  # the latency path: no item arithmetic
            item_off, room = _ONE_ITEM, len(texts.data) + 1
        else:
            item_off = _items(texts.offsets, threads)
            room = int(np.diff(texts.offsets[item_off]).max()) + 1
        block.status = np.empty(n, dtype=np.uint8)
        limit_args = self._limit_args.get(limits)
        if limit_args is None:  # typed once per distinct limits (a query's latency counts every µs)
            limit_args = self._limit_args[limits] = (np.int64(limits[0]), np.int64(limits[1]))
        block.args = (
            texts.data,
            texts.offsets,
            item_off,
            np.zeros(1, dtype=np.int64),
            room,
            *self._model_args,
            limit_args,
            bool(normalize),
            out,
            block.status,
            _NO_TOKENS,
            _NO_COUNTS,
        )

    def _run(self, block: _Block) -> None:
        """This thread's share of the block's items (returns when none is left)."""
        args = block.args
        key = (args[0].flags.writeable, args[14].flags.c_contiguous, args[14].shape[1] == 0)
        entry = self._fast.get(key)
        if entry is not None:
            entry(*args)
            return
        pooling.embed_items(*args)
        self._fast[key] = _entry_point(pooling.embed_items, args)

    def _region(self, block: _Block, out, normalize, threads, limits) -> None:
        self._prepare(block, out, normalize, threads, limits)
        parallel.run(lambda: self._run(block), threads)

    def _pipeline(self, texts, spans, out, normalize, threads, limits) -> None:
        """One region over many blocks: helpers work through the packed blocks while this thread packs the next."""
        blocks: list[_Block] = []
        ready = threading.Condition()
        closed = [False]

        def work() -> None:
            k = 0
            while True:
                with ready:
                    while k >= len(blocks) and not closed[0]:
                        ready.wait()
                    if k >= len(blocks):
                        return
                    block = blocks[k]
                self._run(block)
                k += 1

        def produce() -> None:
            try:
                for a, b in spans:
                    block = self._pack(texts, a, b)
                    self._prepare(block, out[a:b], normalize, threads, limits)
                    with ready:
                        blocks.append(block)
                        ready.notify_all()
            finally:
                with ready:
                    closed[0] = True
                    ready.notify_all()

        parallel.run(work, threads, first=produce)
        for block, (a, b) in zip(blocks, spans):
            self._fallbacks(block, out[a:b], normalize, threads, limits)

    # -- texts the kernels leave to tokenizers ---------------------------------
    def _fallbacks(self, block: _Block, out: np.ndarray, normalize, threads, limits) -> None:
        rest = np.flatnonzero(block.status)
        if not rest.size:
            return
        strs = [block.strs[i] for i in rest.tolist()] if block.strs is not None else [block.texts[i] for i in rest]
        sub = np.empty((rest.size, out.shape[1]), dtype=np.float32)
        self._encode_with_tokenizers(strs, block.start, sub, normalize, threads, limits)
        out[rest] = sub

    def _encode_with_tokenizers(self, texts, start: int, out, normalize, threads, limits) -> None:
        strs = list(texts) if isinstance(texts, Utf8Texts) else texts
        if limits[1] >= 0:
            strs = [t[: limits[1]] for t in strs]
        ids, offsets = self.tokenizer(strs, start, threads)
        starts, stops = self.tokenizer.window(offsets[:-1], offsets[1:])
        self.pool(np.array(ids, dtype=np.int32), starts, stops, out, normalize, threads, limits[0])

    def pool(self, ids, starts, stops, out, normalize: bool, threads: int, max_tokens: int = -1) -> None:
        """Bags ``ids[starts[i]:stops[i]]`` (``ids`` is modified) -> vectors in ``out``, in parallel."""
        n = out.shape[0]
        if n == 0:
            return
        starts = np.ascontiguousarray(starts, dtype=np.int64)
        stops = np.ascontiguousarray(stops, dtype=np.int64)
        work = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(stops - starts, out=work[1:])
        threads = max(1, min(threads, int(work[-1]) // (SERIAL_BYTES // 4) + 1, n))
        item_off = _items(work * 4, threads)  # ~4 bytes of text a token
        counter = np.zeros(1, dtype=np.int64)
        args = (
            self.table,
            self.bag,
            self.head,
            ids,
            starts,
            stops,
            item_off,
            counter,
            np.int64(max_tokens),
            bool(normalize),
            out,
        )
        parallel.run(lambda: pooling.pool_items(*args), threads)

    # -- tokenize -----------------------------------------------------------
    def tokenize(self, texts, start: int, threads: int) -> tuple[np.ndarray, np.ndarray]:
        """Token ids (EmbeddingBag form) as the reference tokenizes: the jitted tokenizer (the embedding kernel in
        its ids mode), fallbacks through ``tokenizers``; the tokenizer's own truncation applied."""
        if self.word_path is not None and len(texts):
            return self.word_path.tokenize(self, texts, start, threads)
        if self.tables is None or not len(texts):
            strs = list(texts) if isinstance(texts, Utf8Texts) else texts
            return self.tokenizer(strs, start, threads)
        strs = None if isinstance(texts, Utf8Texts) else texts
        block = _Block(texts if strs is None else Utf8Texts.from_strs(texts, start), strs, start)
        n, size = len(block.texts), block.texts.nbytes
        threads = max(1, min(threads, size // SERIAL_BYTES + 1, n))
        tokens = np.empty(size + 1, dtype=np.int32)
        counts = np.zeros(n, dtype=np.int64)
        self._prepare(block, np.empty((n, 0), dtype=np.float32), False, threads, (-1, -1))
        block.args = (*block.args[:-2], tokens, counts)
        parallel.run(lambda: self._run(block), threads)
        starts = block.texts.offsets[:-1]
        bags = [tokens[a : a + c] for a, c in zip(starts.tolist(), counts.tolist())]
        rest = np.flatnonzero(block.status)
        if rest.size:
            sub = [strs[i] for i in rest.tolist()] if strs is not None else [block.texts[i] for i in rest]
            sub_ids, sub_off = self.tokenizer(sub, start, threads)
            sub_starts, sub_stops = self.tokenizer.window(sub_off[:-1], sub_off[1:])
            for j, i in enumerate(rest.tolist()):
                bags[i] = sub_ids[sub_starts[j] : sub_stops[j]]
        offsets = np.zeros(n + 1, dtype=np.int64)
        np.cumsum([len(b) for b in bags], out=offsets[1:])
        return np.concatenate(bags).astype(np.int32, copy=False), offsets

    def words(self, texts: Sequence[str]) -> list[list[str]]:
        """Each text's words after BertNormalizer + BertPreTokenizer, as the kernel sees them.

        A text the kernel leaves to ``tokenizers`` gives None. For tests and lexical search.
        """
        if self.tables is None:
            raise ValueError("this model's tokenizer is not a BERT configuration the kernels cover")
        packed = texts if isinstance(texts, Utf8Texts) else Utf8Texts.from_strs(texts, 0)
        n = len(packed)
        out = np.empty(unicode_tables.WORDS_ROOM * packed.nbytes + 1, dtype=np.int32)
        counts = np.empty(n, dtype=np.int64)
        assert self.tables is not None
        classes, uni, vocab = self.tables
        wordpiece.tokenize_items(
            packed.data,
            packed.offsets,
            np.array([0, n], dtype=np.int64),
            np.zeros(1, dtype=np.int64),
            classes,
            uni,
            vocab,
            out,
            counts,
            True,
        )
        result: list = []
        for i in range(n):
            if counts[i] == wordpiece.FALLBACK:
                result.append(None)
                continue
            a = unicode_tables.WORDS_ROOM * int(packed.offsets[i])
            raw = out[a : a + counts[i]].astype(np.uint8).tobytes()
            result.append([w.decode("utf-8") for w in raw.split(b"\xff")[:-1]])
        return result


def _running_lengths(texts: Sequence[str]) -> np.ndarray:
    """n + 1 running character counts (a C loop over the list; a non-str element gets its error in packing)."""
    sizes = np.zeros(len(texts) + 1, dtype=np.int64)
    try:
        np.cumsum(np.fromiter(map(len, texts), dtype=np.int64, count=len(texts)), out=sizes[1:])
    except TypeError:
        Utf8Texts.from_strs(texts)  # raises the TypeError naming the text
        raise
    return sizes
