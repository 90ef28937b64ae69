"""The word path on the numba back-end: BPE, Unigram and WordLevel models without ``tokenizers`` per call.

``sse_np.tokenizer.words`` says which pipelines qualify. A call packs its
texts into UTF-8 blocks; per block, threads run ``word_kernels.embed_words``
over items of texts: split each text into words (a text with non-ASCII
characters: into chunks first, ``word_kernels.chunk_end``), look each word's
ids up in the word table, pool. Texts with a word the table lacks come back as
misses: their distinct missing words are found (``missing_words``), given to
the model once (``WordResolver``: one batched ``tokenizers`` call; a
non-ASCII chunk through the whole pipeline), added to the table, and those
texts run again. Texts the kernel leaves alone (an added token's text, very
long words or chunks) go to ``tokenizers`` in one batch, as before.

The table lives with the model across calls, bounded like the WordPiece
chunk cache (``$SSE_NP_TOKEN_CACHE_BYTES``, default 64 MiB): when adding
would pass the bound it starts afresh. It is copied on write (slots) or
appended past what running kernels can see (pools), so calls on other
threads keep reading a consistent table while one thread adds.
"""

from __future__ import annotations

import threading
import weakref
from itertools import chain

import numpy as np

from ..tokenizer.words import WordResolver
from . import jit, parallel, word_kernels
from .items import _blocks, _entry_point, _items
from .texts import Utf8Texts
from .word_kernels import MISS, OK, Sink, Words, WordTable

__all__ = ["WordPath", "WordTableHolder"]

_START_ENTRIES = 1 << 12
_NO_TOKENS = np.zeros(0, dtype=np.int32)  # embed_words pools (a non-empty array: it writes ids instead)
_NO_COUNTS = np.zeros(0, dtype=np.int64)
_ORDER_0 = np.zeros(1, dtype=np.int64)  # a single text: text 0, one item
_ONE_ITEM = np.array([0, 1], dtype=np.int64)
_NO_SINK = Sink(
    np.zeros(1, np.uint64), np.zeros(1, np.int32), np.zeros(0, np.uint8), np.zeros(1, np.int64), np.zeros(1, np.int64)
)  # embed_words pools (missing_words collects into a real one)


def _grown(array: np.ndarray, used: int, needed: int) -> np.ndarray:
    """``array`` if it holds ``needed`` items, else a copy of its first ``used`` with room to double."""
    if needed <= array.shape[0]:
        return array
    bigger = np.zeros(max(needed, 2 * array.shape[0]), dtype=array.dtype)
    bigger[:used] = array[:used]
    return bigger


_holders: weakref.WeakSet[WordTableHolder] = weakref.WeakSet()
_paths: weakref.WeakSet[WordPath] = weakref.WeakSet()


def _fresh_locks_in_child() -> None:
    # A fork copies a lock another thread held; the child, which has no such thread, starts with free ones.
    for holder in list(_holders):
        holder._lock = threading.Lock()
    for path in list(_paths):
        path._resolver_lock = threading.Lock()


jit.on_fork_in_child(_fresh_locks_in_child)


class WordTableHolder:
    """The word -> ids table of one model: adding under a lock, publishing a new ``WordTable`` tuple."""

    def __init__(self, budget: int) -> None:
        self.budget = int(budget)
        self._lock = threading.Lock()
        _holders.add(self)
        self.clear()

    def clear(self) -> None:
        """Forget every word."""
        self.entries = self.words_used = self.ids_used = 0
        z = np.zeros
        self.table = WordTable(
            z(2 * _START_ENTRIES, np.uint64),
            z(2 * _START_ENTRIES, np.int32),
            z(8 * _START_ENTRIES, np.uint8),
            z(_START_ENTRIES + 1, np.int64),
            z(4 * _START_ENTRIES, np.int32),
            z(_START_ENTRIES + 1, np.int64),
        )

    @property
    def nbytes(self) -> int:
        """Bytes the table's arrays hold."""
        return sum(a.nbytes for a in self.table)

    def add(self, words: list[bytes], ids: list[list[int]]) -> None:
        """Remember each word's ids. The caller passes words the table lacked (two threads learning at once may both
        add a word: lookups find the first copy). A batch larger than the whole budget is not kept."""
        if not words:
            return
        with self._lock:
            word_bytes = sum(map(len, words))
            id_count = sum(map(len, ids))
            need = word_bytes + 4 * id_count + 40 * len(words)
            if self.nbytes + 2 * need > self.budget:  # growing may double an array: start afresh
                self.clear()
                if 2 * need + self.nbytes > self.budget:
                    return
            self._append(words, ids, word_bytes, id_count)

    def _append(self, words: list[bytes], ids: list[list[int]], word_bytes: int, id_count: int) -> None:
        t, e0, k = self.table, self.entries, len(words)
        e1 = e0 + k
        pool = _grown(t.words, self.words_used, self.words_used + word_bytes)
        word_off = _grown(t.word_off, e0 + 1, e1 + 1)
        id_pool = _grown(t.ids, self.ids_used, self.ids_used + id_count)
        id_off = _grown(t.id_off, e0 + 1, e1 + 1)
        # Past the published entries: running kernels never read there.
        pool[self.words_used : self.words_used + word_bytes] = np.frombuffer(b"".join(words), dtype=np.uint8)
        np.cumsum(np.fromiter(map(len, words), np.int64, k), out=word_off[e0 + 1 : e1 + 1])
        word_off[e0 + 1 : e1 + 1] += self.words_used
        id_pool[self.ids_used : self.ids_used + id_count] = np.fromiter(chain.from_iterable(ids), np.int32, id_count)
        np.cumsum(np.fromiter(map(len, ids), np.int64, k), out=id_off[e0 + 1 : e1 + 1])
        id_off[e0 + 1 : e1 + 1] += self.ids_used
        capacity = t.keys.shape[0]
        if 2 * e1 > capacity:  # load factor at most 1/2: re-index every entry in larger slots
            while 2 * e1 > capacity:
                capacity *= 2
            keys, slots = np.zeros(capacity, np.uint64), np.zeros(capacity, np.int32)
            word_kernels.index_entries(keys, slots, pool, word_off, np.int64(0), np.int64(e1))
        else:  # copied: a running kernel keeps probing the slots it started with
            keys, slots = t.keys.copy(), t.slots.copy()
            word_kernels.index_entries(keys, slots, pool, word_off, np.int64(e0), np.int64(e1))
        self.words_used += word_bytes
        self.ids_used += id_count
        self.entries = e1
        self.table = WordTable(keys, slots, pool, word_off, id_pool, id_off)


def words_settings(spec: dict) -> Words:
    """The kernel's ``Words`` tuple from ``word_path_spec``'s settings."""
    lower = spec["lower"]
    # UTF-8, ASCII letters lowered (matched ignoring their case: a superset of what tokenizers matches)
    added = [a.encode("utf-8").lower() for a in spec["added"]]
    data = np.frombuffer(b"".join(added), dtype=np.uint8).copy()
    off = np.zeros(len(added) + 1, dtype=np.int64)
    np.cumsum([len(a) for a in added], out=off[1:])
    first = np.zeros(256, dtype=np.uint8)
    for a in added:
        first[a[0]] = 1
    return Words(
        np.int64(spec["mode"]), bool(lower), bool(spec["prefix"]), word_kernels.byte_classes(), data, off, first
    )


class WordPath:
    """Runs the word path for one model's back-end (``NumbaBackend`` holds one when the tokenizer qualifies)."""

    def __init__(self, tokenizer, cache_bytes: int) -> None:
        self.tokenizer = tokenizer
        self.words = words_settings(tokenizer.word_spec)
        self.holder = WordTableHolder(cache_bytes)
        self._resolver: WordResolver | None = None
        self._resolver_lock = threading.Lock()
        _paths.add(self)
        self._fast: dict = {}
        self._limit_args: dict = {}
        # The key of a single query's kernel call: a str packs to read-only bytes, rows are C-contiguous.
        self._single_key = (False, True, False)

    def resolver(self) -> WordResolver:
        with self._resolver_lock:
            if self._resolver is None:
                self._resolver = WordResolver(self.tokenizer.spec, self.tokenizer.word_spec)
            return self._resolver

    def run(self, texts: Utf8Texts, order: np.ndarray, threads: int, model_args: tuple, rest: tuple) -> None:
        """One region of ``embed_words`` over the texts ``order`` (``rest``: limits .. token_counts)."""
        sizes = np.zeros(len(order) + 1, dtype=np.int64)
        np.cumsum(np.diff(texts.offsets)[order], out=sizes[1:])
        item_off = _items(sizes, threads)
        threads = max(1, min(threads, len(item_off) - 1))
        args: tuple = (texts.data, texts.offsets, order, item_off, np.zeros(1, np.int64), self.words, self.holder.table)
        args = (*args, *model_args, *rest, _NO_SINK)
        key = (args[0].flags.writeable, args[13].flags.c_contiguous, args[13].shape[1] == 0)
        entry = self._fast.get(key)  # machine code for these argument types, skipping numba's dispatch
        if entry is None:
            parallel.run(lambda: word_kernels.embed_words(*args), threads)
            self._fast[key] = _entry_point(word_kernels.embed_words, args) or (lambda *a: word_kernels.embed_words(*a))
            return
        parallel.run(lambda: entry(*args), threads)

    def learn(self, texts: Utf8Texts, order: np.ndarray, max_chars: int) -> bool:
        """Give the model the distinct words of ``texts[order]`` the table lacks; whether any was added."""
        found, off = word_kernels.missing_words(
            texts.data, texts.offsets, order.astype(np.int64), self.words, self.holder.table, np.int64(max_chars)
        )
        if len(off) <= 1:
            return False
        raw, cuts = found.tobytes(), off.tolist()
        words = [raw[cuts[k] : cuts[k + 1]] for k in range(len(cuts) - 1)]
        try:
            ids = self.resolver()(words)
        except Exception:  # the texts go to tokenizers, which raises its own error if any
            return False
        before = self.holder.entries
        self.holder.add(words, ids)
        return self.holder.entries > before

    def block(self, texts: Utf8Texts, threads: int, model_args: tuple, rest: tuple, status: np.ndarray) -> np.ndarray:
        """Run every text of ``texts``; the indices of those left to ``tokenizers`` (``status`` filled)."""
        n = len(texts)
        self.run(texts, np.arange(n, dtype=np.int64), threads, model_args, rest)
        missed = np.flatnonzero(status == MISS)
        if missed.size and self.learn(texts, missed, int(rest[0][1])):
            self.run(texts, missed.astype(np.int64), threads, model_args, rest)
        return np.flatnonzero(status != OK)

    # -- the back-end's calls -------------------------------------------------
    def encode(self, backend, texts, sizes, out, normalize, threads, batch_size, limits, progress=None) -> None:
        """``NumbaBackend.encode`` for this path (``sizes``: running text lengths; ``threads`` already capped)."""
        packed = isinstance(texts, Utf8Texts)
        if len(texts) == 1 and not packed and self._single(backend, texts, out, normalize, limits):
            return
        model_args = (backend.trunc, backend.table, backend.bag, backend.head)
        limit_args = (np.int64(limits[0]), np.int64(limits[1]))
        for a, b in _blocks(sizes, batch_size):
            strs = None if packed else texts[a:b]
            block = texts[a:b] if strs is None else Utf8Texts.from_strs(strs, a)
            status = np.empty(b - a, dtype=np.uint8)
            rows = out[a:b]
            left = self.block(
                block, threads, model_args, (limit_args, bool(normalize), rows, status, _NO_TOKENS, _NO_COUNTS), status
            )
            if left.size:
                sub_strs = [strs[i] for i in left.tolist()] if strs is not None else [block[i] for i in left.tolist()]
                sub = np.empty((left.size, out.shape[1]), dtype=np.float32)
                backend._encode_with_tokenizers(sub_strs, a, sub, normalize, threads, limits)
                rows[left] = sub
            if progress is not None:
                progress(b - a)

    def _single(self, backend, texts, out, normalize, limits) -> bool:
        """A single query on this thread, with no per-call array arithmetic; False: take the general path."""
        entry = self._fast.get(self._single_key)
        if entry is None or not out.flags.c_contiguous:
            return False
        limit_args = self._limit_args.get(limits)
        if limit_args is None:  # typed once per distinct limits (a query's latency counts every µs)
            limit_args = self._limit_args[limits] = (np.int64(limits[0]), np.int64(limits[1]))
        block = Utf8Texts.from_strs(texts)
        status = np.empty(1, dtype=np.uint8)
        entry(
            block.data,
            block.offsets,
            _ORDER_0,
            _ONE_ITEM,
            np.zeros(1, np.int64),
            self.words,
            self.holder.table,
            backend.trunc,
            backend.table,
            backend.bag,
            backend.head,
            limit_args,
            bool(normalize),
            out,
            status,
            _NO_TOKENS,
            _NO_COUNTS,
            _NO_SINK,
        )
        return status[0] == OK  # else the general path runs it again (learning, or tokenizers)

    def tokenize(self, backend, texts, start: int, threads: int) -> tuple[np.ndarray, np.ndarray]:
        """Token ids (EmbeddingBag form) as ``tokenizers`` gives them, its truncation applied."""
        strs = None if isinstance(texts, Utf8Texts) else texts
        block = texts if strs is None else Utf8Texts.from_strs(texts, start)
        n = len(block)
        tokens = np.empty(block.nbytes + n + 1, dtype=np.int32)
        counts = np.zeros(n, dtype=np.int64)
        status = np.empty(n, dtype=np.uint8)
        model_args = (backend.trunc, backend.table, backend.bag, backend.head)
        rest = ((np.int64(-1), np.int64(-1)), False, np.empty((n, 0), dtype=np.float32), status, tokens, counts)
        left = self.block(block, threads, model_args, rest, status)
        firsts = (block.offsets[:-1] + np.arange(n)).tolist()
        bags = [tokens[a : a + c] for a, c in zip(firsts, counts.tolist())]
        if left.size:
            sub = [strs[i] for i in left.tolist()] if strs is not None else [block[i] for i in left.tolist()]
            sub_ids, sub_off = self.tokenizer(sub, start, threads)
            sub_starts, sub_stops = self.tokenizer.window(sub_off[:-1], sub_off[1:])
            for j, i in enumerate(left.tolist()):
                bags[i] = sub_ids[sub_starts[j] : sub_stops[j]]
        offsets = np.zeros(n + 1, dtype=np.int64)
        np.cumsum([len(b) for b in bags], out=offsets[1:])
        return np.concatenate(bags or [tokens[:0]]).astype(np.int32, copy=False), offsets
