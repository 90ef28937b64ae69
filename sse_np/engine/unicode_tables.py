"""What BertNormalizer + BertPreTokenizer do to each Unicode code point, as tables for the kernel.

The jitted WordPiece (``sse_np.engine.wordpiece``) normalizes and splits
non-ASCII text itself, with no call into ``tokenizers``. Both steps work
character by character -- ``clean_text`` drops or maps each character,
CJK padding surrounds it with spaces, accent stripping is NFD followed by
dropping nonspacing marks, lowercasing maps each character, and the
pre-tokenizer splits at whitespace and isolates punctuation -- so one
table entry per code point says all there is to know:

* ``WORD``     -- kept as it is, part of a word;
* ``SPACE``    -- a word boundary, removed;
* ``DROP``     -- removed, no boundary (control characters, marks);
* ``ISOLATE``  -- kept as a word of its own (punctuation, CJK ideographs);
* ``MAPPED``   -- replaced by one or more characters, each WORD, SPACE or
  ISOLATE (lowercase, accents, CJK compatibility ideographs);
* ``HOLE``     -- left to ``tokenizers``: the one step that is not per
  character, NFD's canonical reordering, can only matter where a combining
  mark survives stripping, so such characters (rare: some spacing marks,
  marks newer than the Rust crates' Unicode) send their text down the
  exact slow path. So does a character that would give more token ids
  than it has bytes (none today): the kernels rely on that bound.

The tables are derived from the installed ``tokenizers`` itself, not from
Python's ``unicodedata`` (whose Unicode version differs from the Rust
crates'): every code point is normalized and pre-tokenized by the model's
own normalizer in two large calls (~2 s), and the result is cached on disk
per ``tokenizers`` version and normalizer settings. The package ships the
tables of the two common settings (uncased and cased BERT) for the
``tokenizers`` release it was built with (``shipped/``, written by
``scripts/build_unicode_tables.py``): the same cache entries, made ahead of
time, so a cold start spends its seconds compiling, not deriving. Another
``tokenizers`` release finds no shipped entry under its key and derives its
own. The tests compare the kernel's words with ``tokenizers``' for all
1,114,112 code points, and the shipped tables with a fresh derivation.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
import unicodedata
from pathlib import Path
from typing import NamedTuple

import numpy as np

WORD, SPACE, DROP, ISOLATE, MAPPED, HOLE = 0, 1, 2, 3, 4, 5
KIND_BITS = 3
WORDS_ROOM = 4  # most ``words``-mode entries (bytes and separators) a byte of text can give
BLOCK = 256  # code points per second-level block
N_CODE_POINTS = 0x110000
_FORMAT = 1  # bump when the table layout or derivation changes
SHIPPED = Path(__file__).resolve().parent / "shipped"  # tables made ahead of time, by their cache key
# The BertNormalizer settings shipped (as sse_np.tokenizer.config.normalizer_settings resolves them).
SHIPPED_SETTINGS = (
    {"clean_text": True, "handle_chinese_chars": True, "strip_accents": True, "lowercase": True},  # uncased
    {"clean_text": True, "handle_chinese_chars": True, "strip_accents": False, "lowercase": False},  # cased
)


class UnicodeTables(NamedTuple):
    """Per code point: ``entry = stage2[stage1[cp >> 8] * 256 + (cp & 255)]``, kind in the low 3 bits.

    For ``MAPPED`` entries, ``entry >> 3`` is ``m``: output characters
    ``map_first[m] .. map_first[m + 1] - 1``, each with a kind (``out_kind``)
    and UTF-8 bytes ``out_bytes[out_off[k]:out_off[k + 1]]``.
    """

    stage1: np.ndarray  # uint32[0x1100]
    stage2: np.ndarray  # uint32[blocks * 256]
    map_first: np.ndarray  # int32[maps + 1]
    out_kind: np.ndarray  # uint8[outputs]
    out_off: np.ndarray  # int32[outputs + 1]
    out_bytes: np.ndarray  # uint8


def _code_points(skip: str) -> list[int]:
    return [c for c in range(N_CODE_POINTS) if not (0xD800 <= c <= 0xDFFF) and c != ord(skip)]


def _normalized(settings: dict) -> tuple[list[int], list[str]]:
    """Every code point (surrogates aside) and what the normalizer makes of it alone."""
    from tokenizers import normalizers

    norm = normalizers.BertNormalizer(**settings)
    sep = "0"  # a starter no setting changes: nothing merges or reorders across it
    cps = _code_points(sep)
    outs = norm.normalize_str(sep.join(map(chr, cps))).split(sep)
    if len(outs) != len(cps):
        raise RuntimeError("tokenizers' normalizer changed the separator: cannot derive the Unicode tables")
    cps.append(ord(sep))
    outs.append(norm.normalize_str(sep))
    return cps, outs


def _pretoken_classes() -> np.ndarray:
    """uint8[0x110000]: WORD, SPACE (whitespace) or ISOLATE (punctuation) for BertPreTokenizer."""
    from tokenizers import pre_tokenizers

    sep = "a"
    cps = _code_points(sep)
    pieces = pre_tokenizers.BertPreTokenizer().pre_tokenize_str(sep + sep.join(map(chr, cps)) + sep)
    # Position 2i+1 of the string holds cps[i]. Covered by a piece of one
    # character: isolated punctuation; covered by a longer piece: part of a
    # word; not covered at all: whitespace (removed).
    covered = np.zeros(2 * len(cps) + 1, dtype=np.int8)  # 0: uncovered, 1: in a word, 2: single
    for _, (a, b) in pieces:
        covered[a:b] = 2 if b - a == 1 else 1
    at = covered[1::2]
    kinds = np.full(N_CODE_POINTS, WORD, dtype=np.uint8)
    index = np.array(cps, dtype=np.int64)
    kinds[index[at == 0]] = SPACE
    kinds[index[at == 2]] = ISOLATE
    return kinds


def _fits(ch: str, out: str) -> bool:
    """Whether ``out`` (what ``ch`` becomes) keeps the kernels' room: ids <= bytes, words <= 4 a byte."""
    size = len(ch.encode("utf-8"))
    chars = sum(c != " " for c in out)
    return chars <= size and len(out.encode("utf-8")) + chars <= WORDS_ROOM * size


def _kind_of_char(ch: str, classes: np.ndarray) -> int:
    return SPACE if ch == " " else int(classes[ord(ch)])


def derive(settings: dict) -> UnicodeTables:
    """Build the tables for BertNormalizer ``settings`` (its four options, all given) from the installed
    ``tokenizers`` (~1.5 s)."""
    cps, outs = _normalized(settings)
    classes = _pretoken_classes()
    chars = list(map(chr, cps))
    index = np.array(cps, dtype=np.int64)
    entry = np.zeros(N_CODE_POINTS, dtype=np.uint32)
    entry[0xD800:0xE000] = HOLE  # never in valid UTF-8 text
    # Most code points stay as they are: their kind is the pre-tokenizer's class (C loops, no Python per code point).
    same = np.fromiter(map(str.__eq__, outs, chars), dtype=bool, count=len(cps))
    entry[index[same]] = classes[index[same]]
    reorder = settings["strip_accents"]  # NFD ran: a surviving combining mark might have been reordered
    if reorder:
        marked = np.fromiter(map(unicodedata.combining, chars), dtype=np.int64, count=len(cps)) != 0
        entry[index[same & marked]] = HOLE
    map_first, out_kind, out_off, out_bytes = [0], [], [0], bytearray()
    maps: dict[str, int] = {}
    for k in np.flatnonzero(~same).tolist():  # ~15% of code points: dropped, spaces, CJK, mapped
        cp, ch, out = cps[k], chars[k], outs[k]
        if out == "":
            entry[cp] = DROP
            continue
        kind = SPACE if out == " " else ISOLATE if out == f" {ch} " else MAPPED
        if reorder and any(unicodedata.combining(c) for c in out):
            kind = HOLE
        if kind == MAPPED and not _fits(ch, out):
            kind = HOLE
        if kind != MAPPED:
            entry[cp] = kind
            continue
        m = maps.get(out)
        if m is None:
            m = maps[out] = len(map_first) - 1
            for c in out:
                out_kind.append(_kind_of_char(c, classes))
                out_bytes += c.encode("utf-8")
                out_off.append(len(out_bytes))
            map_first.append(len(out_kind))
        entry[cp] = MAPPED | (m << KIND_BITS)
    return _two_level(
        entry,
        np.array(map_first, dtype=np.int32),
        np.array(out_kind, dtype=np.uint8),
        np.array(out_off, dtype=np.int32),
        np.frombuffer(bytes(out_bytes), dtype=np.uint8).copy(),
    )


def _two_level(entry: np.ndarray, map_first, out_kind, out_off, out_bytes) -> UnicodeTables:
    """Share identical 256-entry blocks (most of Unicode is a few kinds of block)."""
    blocks = entry.reshape(-1, BLOCK)
    unique, stage1 = np.unique(blocks, axis=0, return_inverse=True)
    return UnicodeTables(
        stage1.astype(np.uint32).ravel(), unique.astype(np.uint32).ravel(), map_first, out_kind, out_off, out_bytes
    )


def lookup(tables: UnicodeTables, cp: int) -> int:
    """The table entry of code point ``cp`` (the kernel inlines the same two reads)."""
    return int(tables.stage2[tables.stage1[cp >> 8] * BLOCK + (cp & (BLOCK - 1))])


# -- the cache ---------------------------------------------------------------
def _cache_key(settings: dict) -> str:
    import tokenizers

    text = json.dumps([_FORMAT, tokenizers.__version__, settings], sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def shipped_path(settings: dict) -> Path:
    """Where the package keeps the tables of ``settings`` for the installed ``tokenizers``, if it ships them."""
    return SHIPPED / f"sse_np-unicode-{_cache_key(settings)}.npz"


def load(settings: dict, folder: str | os.PathLike | None) -> UnicodeTables:
    """The tables for ``settings``: from the cache ``folder`` or the shipped ones if there, else derived and
    cached in ``folder``."""
    path = Path(folder) / shipped_path(settings).name if folder else None
    for candidate in (path, shipped_path(settings)):
        tables = _read(candidate) if candidate is not None else None
        if tables is not None:
            return tables
    tables = derive(settings)
    if path is not None:
        save(path, tables)
    return tables


def _read(path: Path) -> UnicodeTables | None:
    try:
        with np.load(path) as saved:
            return UnicodeTables(*(saved[name] for name in UnicodeTables._fields))
    except (OSError, KeyError, ValueError):
        return None  # absent or damaged: derive again


def save(path: Path, tables: UnicodeTables, compress: bool = False) -> None:
    """Write ``tables`` to ``path`` atomically; a folder that takes no file only means deriving again."""
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".sse_np-unicode-", suffix=".npz")
        with os.fdopen(fd, "wb") as fh:
            (np.savez_compressed if compress else np.savez)(fh, **tables._asdict())
        os.replace(tmp, path)
    except OSError:  # no cache only means deriving again next time
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
