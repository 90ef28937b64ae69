"""The numba WordPiece fast path gives exactly ``tokenizers``' ids.

Contract (``sse_np.tokenizer.TextTokenizer``): the ids are IDENTICAL to
``tokenizer.encode_batch(texts, add_special_tokens=False)`` (padding off,
truncation as configured) for every input. Checked here by

* a differential run over more than a million strings: every text of the
  shared BEIR sets (when present), pieces cut out of them and recombined, and
  synthesised adversarial text (control bytes inside words, words around
  ``max_input_chars_per_word``, added-token look-alikes, non-ASCII holes...);
  plus smaller runs with truncation on (right/left, 16/128 tokens);
* hypothesis properties (uncased and cased configurations);
* configuration detection (``fast_path_spec``) for what the fast path does
  not reproduce;
* ``encode`` vectors bitwise equal with and without the fast path.

A mismatch is reported with the text's repr, both id lists and a minimised
failing string.

Run time is mostly ``tokenizers`` itself (its ``encode_batch`` holds the GIL
and, in the build installed here, uses one core), so the big runs build their
strings and reference ids in two worker processes while this process runs the
fast path. The shared data is read from ``REPO.parent / "shared" / "data"``;
without it, synthesised strings make up the count.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import multiprocessing
import os
import random
import re
import string
from concurrent.futures import ProcessPoolExecutor
from itertools import chain
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save_file
from tokenizers import Tokenizer

import sse_np.engine
from helpers.models import make_full, random_weights, write_tokenizer
from helpers.paths import SHARED_DATA
from sse_np.checkpoint.read import Table
from sse_np.tokenizer import TextTokenizer as _TextTokenizer
from sse_np.tokenizer import fast_path_spec, load_tokenizer

pytest.importorskip("numba", reason="the fast path needs numba")

N_STRINGS = 1_000_000  # differential strings, truncation off
N_TRUNC = 25_000  # per truncation setting (four settings)
BATCH = 20_000
DATASETS = ("scifact", "nfcorpus", "msmarco-dl19-5k")


@pytest.fixture(autouse=True, scope="module")
def _numba_on():
    """The fast path is on by default only when numba is enabled."""
    if not sse_np.engine.numba_available():
        pytest.skip("numba disabled (SSE_NP_DISABLE_NUMBA?): no fast path to test")


class TextTokenizer:
    """The unit under test: the numba back-end's tokenizer (jitted WordPiece, holes through tokenizers).

    ``TextTokenizer(tok)(texts, threads=...)`` gives ``(ids, offsets)`` as
    ``SSEModel.tokenize`` does with numba loaded; ``fast`` says whether the
    jitted WordPiece takes part.
    """

    def __init__(self, tok: Tokenizer, cache_bytes: int | None = None) -> None:
        from sse_np.engine.numba_backend import NumbaBackend

        self.text_tokenizer = _TextTokenizer(tok, cache_bytes)
        self._backend = NumbaBackend(Table("f32", np.zeros((1, 1), dtype=np.float32)), None, self.text_tokenizer)
        self.fast = self._backend.fast

    def __call__(self, texts, start: int = 0, threads: int | None = None):
        return self._backend.tokenize(list(texts), start, threads or (os.cpu_count() or 1))


# ---------------------------------------------------------------------------
# Comparison helpers


def reference(tok: Tokenizer, texts: list[str]) -> list[list[int]]:
    return [e.ids for e in tok.encode_batch(texts, add_special_tokens=False)]


def ours(tt: TextTokenizer, texts: list[str], threads: int | None = None) -> list[list[int]]:
    ids, offsets = tt(texts, threads=threads)
    ids = ids.tolist()
    offsets = offsets.tolist()
    return [ids[offsets[i] : offsets[i + 1]] for i in range(len(texts))]


def reference_arrays(ref: list[list[int]]) -> tuple[np.ndarray, np.ndarray]:
    """Per-text lengths and all ids of a batch, flat."""
    lens = np.fromiter(map(len, ref), dtype=np.int64, count=len(ref))
    return lens, np.fromiter(chain.from_iterable(ref), dtype=np.int32, count=int(lens.sum()))


def mismatches(
    tt: TextTokenizer,
    tok: Tokenizer,
    texts: list[str],
    threads: int | None = None,
    ref: tuple[np.ndarray, np.ndarray] | None = None,
) -> list[tuple[str, list[int], list[int]]]:
    """(text, expected, got) for every text whose fast-path ids differ from tokenizers'.

    ``ref`` is tokenizers' answer as (lengths, flat ids), computed here if not given.
    """
    lens, flat = reference_arrays(reference(tok, texts)) if ref is None else ref
    ids, offsets = tt(texts, threads=threads)
    if offsets.shape == (len(texts) + 1,) and np.array_equal(np.diff(offsets), lens) and np.array_equal(ids, flat):
        return []
    bounds = np.concatenate([[0], np.cumsum(lens)]).tolist()
    expected = [flat[bounds[i] : bounds[i + 1]].tolist() for i in range(len(texts))]
    got = [ids[offsets[i] : offsets[i + 1]].tolist() for i in range(min(len(texts), len(offsets) - 1))]
    got += [None] * (len(texts) - len(got))
    return [(t, r, g) for t, r, g in zip(texts, expected, got) if r != g]


def minimise(tt: TextTokenizer, tok: Tokenizer, text: str, budget: int = 3000) -> str:
    """A shorter string that still mismatches (greedy chunk then character deletion)."""

    def bad(s: str) -> bool:
        return bool(mismatches(tt, tok, [s]))

    if not bad(text):
        return text  # only mismatches inside its batch
    size = max(1, len(text) // 2)
    while size >= 1 and budget > 0:
        i = 0
        while i < len(text) and budget > 0:
            cand = text[:i] + text[i + size :]
            budget -= 1
            if bad(cand):
                text = cand
            else:
                i += size
        size //= 2
    return text


def report(tt: TextTokenizer, tok: Tokenizer, bad: list, total: int, limit: int = 5) -> str:
    lines = [f"{total} mismatching strings; first {min(limit, len(bad))}:"]
    for text, exp, got in bad[:limit]:
        small = minimise(tt, tok, text)
        lines.append(f"  text     {text[:300]!r}{' ...' if len(text) > 300 else ''} (len {len(text)})")
        lines.append(f"  expected {exp[:60]}")
        lines.append(f"  got      {got[:60] if got is not None else None}")
        if small != text:
            small_ref = reference(tok, [small])[0]
            lines.append(f"  minimal  {small!r}: expected {small_ref}, got {ours(tt, [small])[0]}")
    return "\n".join(lines)


# ---------------------------------------------------------------------------
# Tokenizers


def _tokenizer_file(tmp_path_factory, src: Path, edit=None) -> Path:
    """tokenizer.json with padding and truncation off, optionally edited."""
    path = tmp_path_factory.mktemp("tok") / "tokenizer.json"
    write_tokenizer(src, path, None)
    if edit is not None:
        spec = json.loads(path.read_text(encoding="utf-8"))
        edit(spec)
        path.write_text(json.dumps(spec, ensure_ascii=False), encoding="utf-8")
    return path


def _tokenizer(tmp_path_factory, src: Path, edit=None) -> Tokenizer:
    return load_tokenizer(_tokenizer_file(tmp_path_factory, src, edit))


@pytest.fixture(scope="module")
def bert_path(tmp_path_factory, tokenizer_json) -> Path:
    """bert-base-uncased, truncation off (the teacher's copy truncates at 128; weights/ has none)."""
    return _tokenizer_file(tmp_path_factory, tokenizer_json)


@pytest.fixture(scope="module")
def bert(bert_path) -> Tokenizer:
    tok = load_tokenizer(bert_path)
    assert tok.truncation is None and tok.padding is None
    return tok


def _cased(spec: dict) -> None:
    spec["normalizer"]["lowercase"] = False
    spec["normalizer"]["strip_accents"] = False


@pytest.fixture(scope="module")
def bert_cased_path(tmp_path_factory, tokenizer_json) -> Path:
    return _tokenizer_file(tmp_path_factory, tokenizer_json, _cased)


@pytest.fixture(scope="module")
def bert_cased(bert_cased_path) -> Tokenizer:
    return load_tokenizer(bert_cased_path)


@pytest.fixture(scope="module")
def fast_tt(bert) -> TextTokenizer:
    tt = TextTokenizer(bert)
    assert tt.fast, "bert-base-uncased must take the fast path"
    return tt


@functools.cache
def vocab_words(src: str) -> tuple[str, ...]:
    """The WordPiece vocabulary in id order (## pieces, [unusedN], single characters...)."""
    vocab = json.loads(Path(src).read_text(encoding="utf-8"))["model"]["vocab"]
    return tuple(sorted(vocab, key=vocab.__getitem__))


# ---------------------------------------------------------------------------
# Strings: shared BEIR data (optional), cuts and recombinations, synthesis


@functools.cache
def shared_strings() -> tuple[str, ...]:
    """Every query, and every corpus row as title + " " + text, title and text (empty if no data)."""
    out: list[str] = []
    for name in DATASETS:
        folder = SHARED_DATA / name
        q = folder / "queries.jsonl"
        if q.is_file():
            with q.open(encoding="utf-8") as fh:
                out += [json.loads(line)["text"] for line in fh if line.strip()]
        c = folder / "corpus.jsonl"
        if c.is_file():
            with c.open(encoding="utf-8") as fh:
                for line in fh:
                    if line.strip():
                        row = json.loads(line)
                        title, text = row.get("title") or "", row.get("text") or ""
                        out += [title + " " + text, title, text]
    return tuple(out)


_SENTENCE_END = re.compile(r"(?<=[.!?;])\s+")


@functools.cache
def cut_pools(src: str) -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
    """(documents, sentences, distinct words) to cut from: the shared data, else synthesised prose."""
    docs = [t for t in shared_strings() if len(t) > 40]
    if not docs:
        rng = random.Random(99)
        words = [w for w in vocab_words(src) if w.isalpha() and w.isascii()]
        docs = []
        for _ in range(3000):
            sents = []
            for _ in range(rng.randint(1, 8)):
                s = " ".join(rng.choice(words) for _ in range(rng.randint(3, 25)))
                sents.append(s[:1].upper() + s[1:] + rng.choice(".!?;"))
            docs.append(" ".join(sents))
    sentences = [s for d in docs for s in _SENTENCE_END.split(d) if s]
    words = sorted(set(chain.from_iterable(d.split() for d in docs)))
    return tuple(docs), tuple(sentences), tuple(words)


CONTROLS = [chr(c) for c in range(32) if chr(c) not in "\t\n\r"] + ["\x7f"]  # dropped by clean_text
WHITESPACE = [" ", " ", " ", "  ", "\t", "\n", "\r", "\r\n", " \t ", "\n\n"]
SEPARATORS = [*WHITESPACE, "", "", "-", ".", ", ", "/", "_", "\x00", "\x0b", "\x0c", "\x1f"]
ADDED_LIKE = [
    "[CLS]",
    "[SEP]",
    "[PAD]",
    "[MASK]",
    "[UNK]",
    "[cls]",
    "[Cls]",
    "[sep]",
    "[mask]",
    "[unk]",
    "[CL\x01S]",
    "[\x00CLS]",
    "[CLS\x7f]",
    "[\x0bSEP\x0c]",
    "x[SEP]y",
    "[CLS]]",
    "[[SEP]",
    "[CLS][SEP]",
    "[MASK]ing",
    "##[UNK]",
    "[CL S]",
    "[ CLS ]",
    "[CLS",
    "CLS]",
    "[SEP].",
    "a[PAD]b[PAD]c",
    "[unused0]",
    "[unused99]",
    "[UNUSED1]",
    "[CLSX]",
    "[XCLS]",
    "[C\u00e9LS]",
    "\u00e9[SEP]",
]
NON_ASCII = [
    *"éÉèàâçñüöäßøåæœÅİıΣσςﬁ\u00ad",  # accents, special lowercase mappings, soft hyphen (Cf)
    *["e\u0301", "a\u0308", "\u0327"],  # combining marks
    *"日本語中文漢字한국어テキスト",  # CJK (padded by handle_chinese_chars)
    *["Ελληνικά", "Русский", "עברית", "العربية", "हिन्दी", "ไทย"],
    *["🙂", "👍🏽", "👨\u200d👩\u200d👧", "🇫🇷", "❤️", "★"],
    *"\u00a0\u1680\u2000\u2003\u200a\u2028\u2029\u202f\u205f\u3000\x85",  # unicode spaces
    *"\u200b\u200c\u200d\ufeff\u2060\ufffd\ue000\x80\x9f",  # zero width, replacement, private, C1
    *"–—‘’“”…¿¡«»·•€£¥©®™°±×÷½²",  # unicode punctuation / symbols
    *["ＦＵＬＬ", "１２３", "café", "naïve", "résumé", "Zürich", "São", "Ångström"],
]
PUNCT = string.punctuation
ASCII = [chr(c) for c in range(128)]
TLDS = ["com", "org", "net", "io", "co.uk", "de"]


class Synth:
    """Deterministic generators of adversarial strings (one method per family)."""

    def __init__(self, rng: random.Random, src: str) -> None:
        self.rng = rng
        self.vocab = vocab_words(src)
        self.alpha = [w for w in self.vocab if w.isascii() and w.isalpha()]
        self.docs, self.sentences, self.words = cut_pools(src)
        self.families = [
            (self.vocab_mix, 26),
            (self.cut, 20),
            (self.numbers, 6),
            (self.code, 3),
            (self.punct_runs, 5),
            (self.long_words, 4),
            (self.added, 7),
            (self.non_ascii, 10),
            (self.random_ascii, 10),
            (self.blank, 3),
            (self.mix, 6),
        ]
        self._f = [f for f, _ in self.families]
        self._w = list(chain.from_iterable([i] * w for i, (_, w) in enumerate(self.families)))

    def __call__(self) -> str:
        rng = self.rng
        s = self._f[rng.choice(self._w)]()
        if rng.random() < 0.2:
            s = self.sprinkle(s)
        return s

    # helpers --------------------------------------------------------------
    def case(self, s: str) -> str:
        r = self.rng.random()
        if r < 0.45:
            return s
        if r < 0.6:
            return s.upper()
        if r < 0.75:
            return s.title()
        if r < 0.85:
            return s.swapcase()
        return "".join(c.upper() if self.rng.random() < 0.5 else c for c in s)

    def sprinkle(self, s: str, k: int | None = None) -> str:
        """Insert control characters at random places (inside words too)."""
        rng = self.rng
        chars = list(s)
        for _ in range(k if k is not None else rng.randint(1, 4)):
            chars.insert(rng.randint(0, len(chars)), rng.choice(CONTROLS))
        return "".join(chars)

    def join(self, parts: list[str]) -> str:
        rng = self.rng
        out = []
        for i, p in enumerate(parts):
            if i:
                out.append(rng.choice(SEPARATORS) if rng.random() < 0.3 else " ")
            out.append(p)
        return "".join(out)

    # families -------------------------------------------------------------
    def vocab_mix(self) -> str:
        rng = self.rng
        words = [
            rng.choice(self.vocab) if rng.random() < 0.5 else rng.choice(self.alpha) for _ in range(rng.randint(1, 6))
        ]
        if rng.random() < 0.3:  # glue pieces: "play" + "##ing" -> "play##ing" or "playing"
            return self.case("".join(w.replace("##", "", 1) if rng.random() < 0.5 else w for w in words))
        return self.case(self.join(words))

    def cut(self) -> str:
        rng = self.rng
        r = rng.random()
        if r < 0.1:
            return rng.choice(self.sentences)
        if r < 0.12:
            return self.join([rng.choice(self.sentences) for _ in range(2)])
        if r < 0.6:
            return self.case(self.join([rng.choice(self.words) for _ in range(rng.randint(1, 5))]))
        doc = rng.choice(self.docs)
        a = rng.randrange(len(doc))
        return doc[a : a + rng.randint(1, 40)]  # cut anywhere, mid-word too

    def number(self) -> str:
        rng = self.rng
        r = rng.randrange(12)
        x = rng.uniform(-1e6, 1e6)
        return [
            lambda: str(rng.randint(0, 10 ** rng.randint(1, 12))),
            lambda: f"{x:.{rng.randint(0, 6)}f}",
            lambda: f"{x:.{rng.randint(0, 4)}e}",
            lambda: rng.choice(["3.14e-5", "1E10", "6.022e23", "-0.0", "+1", "1e-10", "NaN", "inf", "0xFF", "0b1010"]),
            lambda: f"{rng.randint(0, 999)},{rng.randint(0, 999):03d},{rng.randint(0, 999):03d}",
            lambda: f"{rng.randint(1900, 2100)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}T12:34Z",
            lambda: f"v{rng.randint(0, 9)}.{rng.randint(0, 20)}.{rng.randint(0, 99)}-rc{rng.randint(1, 3)}",
            lambda: f"{rng.randint(1, 99)}{rng.choice(['%', 'kg', 'mg/dL', 'x', 'th', 'nd', 'μm', '°C'])}",
            lambda: f"${rng.randint(1, 10**6):,}.{rng.randint(0, 99):02d}",
            lambda: f"+1 ({rng.randint(100, 999)}) {rng.randint(100, 999)}-{rng.randint(1000, 9999)}",
            lambda: f"{rng.randint(1, 9)}/{rng.randint(1, 9)}",
            lambda: "".join(rng.choice(string.digits + ".,-+eE") for _ in range(rng.randint(1, 20))),
        ][r]()

    def numbers(self) -> str:
        rng = self.rng
        return self.join(
            [self.number() if rng.random() < 0.6 else rng.choice(self.alpha) for _ in range(rng.randint(1, 6))]
        )

    def code(self) -> str:
        rng = self.rng
        w = lambda: rng.choice(self.alpha)  # noqa: E731
        n = lambda: rng.randint(0, 9999)  # noqa: E731
        templates = [
            lambda: f"https://{w()}.{rng.choice(TLDS)}/{w()}/{w()}?{w()}={n()}&{w()}={w()}#{w()}",
            lambda: f"http://www.{w()}-{w()}.{rng.choice(TLDS)}:{n()}/{w()}.html",
            lambda: f"{w()}.{w()}{n()}@{w()}.{rng.choice(TLDS)}",
            lambda: f"mailto:{w().upper()}_{w()}@{w()}.org",
            lambda: f"def {w()}_{w()}({w()}, {w()}=None):\n    return {w()}[{n()}] ** 2  # {w()}",
            lambda: f"if ({w()} != {w()} && {w()} <= {n()}) {{ {w()}->{w()}(); }}",
            lambda: f'<div class="{w()}-{w()}" id={n()}>{w()} &amp; {w()}</div>',
            lambda: f"SELECT * FROM {w()} WHERE {w()}_id={n()} AND {w()} LIKE '%{w()}%';",
            lambda: json.dumps({w(): n(), w(): [w(), n()], w(): {"k": None}}),
            lambda: f"C:\\Users\\{w()}\\{w()}.txt /usr/lib/python3.11/site-packages/{w()}/__init__.py",
            lambda: f"{w()}{w().capitalize()}{w().capitalize()} {w().upper()}_{w().upper()} __{w()}__",
            lambda: f"@{w()} #{w()}{n()} a+=b x->y ::{w()} ... !!!??? ~~~ $$$ ``{w()}``",
            lambda: f"{w()}\t{n()}\t{w()}\r\n{w()}\t{n()}",
        ]
        return rng.choice(templates)()

    def punct_runs(self) -> str:
        rng = self.rng
        parts = []
        for _ in range(rng.randint(1, 6)):
            if rng.random() < 0.5:
                parts.append("".join(rng.choices(PUNCT, k=rng.randint(1, 20))))
            else:
                parts.append(rng.choice(self.alpha))
        glue = "" if rng.random() < 0.5 else " "
        return glue.join(parts)

    def long_word(self) -> str:
        """A word of 97..103 kept characters (control characters inside do not count)."""
        rng = self.rng
        n = rng.choice([1, 50, 97, 98, 99, 99, 99, 100, 100, 100, 100, 101, 101, 101, 102, 103, 200])
        r = rng.random()
        if r < 0.3:
            base = "".join(rng.choices(string.ascii_letters + string.digits, k=n))
        elif r < 0.7:
            unit = rng.choice(self.alpha)
            base = (unit * (n // len(unit) + 1))[:n]  # would otherwise split into many pieces
        else:
            base = rng.choice(string.ascii_letters) * n
        base = self.case(base)
        if rng.random() < 0.5:
            base = self.sprinkle(base, rng.randint(1, 6))
        if rng.random() < 0.1:
            k = rng.randrange(len(base) + 1)
            base = base[:k] + rng.choice(NON_ASCII) + base[k:]  # a hole: tokenizers decides
        return base

    def long_words(self) -> str:
        rng = self.rng
        parts = [self.long_word()]
        for _ in range(rng.randint(0, 2)):
            parts.append(self.long_word() if rng.random() < 0.1 else rng.choice(self.alpha))
        if rng.random() < 0.3:  # punctuation splits the word before the length check
            return rng.choice(PUNCT).join(parts)
        return self.join(parts)

    def added(self) -> str:
        rng = self.rng
        parts = [
            rng.choice(ADDED_LIKE) if rng.random() < 0.5 else rng.choice(self.vocab) for _ in range(rng.randint(1, 8))
        ]
        glue = rng.choice(["", " ", " ", "\n"])
        return glue.join(parts)

    def non_ascii(self) -> str:
        rng = self.rng
        parts = []
        for _ in range(rng.randint(1, 8)):
            w = rng.choice(self.alpha)
            r = rng.random()
            if r < 0.4:
                k = rng.randrange(len(w) + 1)
                w = w[:k] + rng.choice(NON_ASCII) + w[k:]  # inside a word
            elif r < 0.6:
                w = rng.choice(NON_ASCII)
            parts.append(w)
        glue = rng.choice(["", " ", " ", " ", "\u00a0", "\u3000"])
        return self.case(glue.join(parts))

    def random_ascii(self) -> str:
        rng = self.rng
        return "".join(rng.choices(ASCII, k=rng.randint(0, 40)))

    def blank(self) -> str:
        rng = self.rng
        pool = " \t\n\r" * 4 + "\x00\x0b\x0c\x1c\x1d\x1e\x1f\x7f\x85\u00a0\u3000\u2028"
        return "".join(rng.choices(pool, k=rng.randint(0, 12)))

    def mix(self) -> str:
        rng = self.rng
        fams = [
            self.vocab_mix,
            self.cut,
            self.numbers,
            self.code,
            self.punct_runs,
            self.added,
            self.non_ascii,
            self.random_ascii,
            self.blank,
        ]
        return self.join([rng.choice(fams)() for _ in range(2)])


def strings(src: Path, total: int, seed: int):
    """``total`` synthesised strings (for the smaller in-process checks)."""
    synth = Synth(random.Random(seed), str(src))
    return [synth() for _ in range(total)]


# Differential runs are split into tasks; each builds its strings and tokenizers' ids for them,
# in worker processes when possible: tokenizers' encode_batch holds the GIL and (in the
# build installed here) runs on one core, so it is most of the run time.


def plan(src: Path, total: int, seed: int, shared: bool = True, sample: int = 0) -> list[tuple]:
    """Tasks producing ``total`` strings: all shared strings (or ``sample`` of them), then synthesis."""
    tasks: list[tuple] = []
    n_shared = len(shared_strings())
    if shared:
        tasks += [("shared", a, min(a + 2000, n_shared, total)) for a in range(0, min(n_shared, total), 2000)]
    elif sample:
        tasks.append(("sample", min(sample, n_shared), seed))
    n = sum(t[2] - t[1] if t[0] == "shared" else t[1] for t in tasks)
    for k, a in enumerate(range(n, total, BATCH)):
        tasks.append(("synth", min(BATCH, total - a), seed * 1_000_003 + k))
    return [(str(src), t) for t in tasks]


def task_strings(src: str, task: tuple) -> list[str]:
    kind = task[0]
    if kind == "shared":
        return list(shared_strings()[task[1] : task[2]])
    if kind == "sample":
        return random.Random(task[2]).sample(shared_strings(), task[1])
    synth = Synth(random.Random(task[2]), src)
    return [synth() for _ in range(task[1])]


@functools.lru_cache(maxsize=8)
def _worker_tokenizer(path: str, truncation: tuple | None) -> Tokenizer:
    tok = load_tokenizer(Path(path))
    if truncation:
        tok.enable_truncation(truncation[1], direction=truncation[0])
    return tok


def reference_task(job: tuple) -> tuple[list[str], np.ndarray, np.ndarray]:
    """(strings, tokenizers' lengths, flat ids) for one planned task; runs in a worker process."""
    path, truncation, (src, task) = job
    texts = task_strings(src, task)
    return (texts, *reference_arrays(reference(_worker_tokenizer(path, truncation), texts)))


@pytest.fixture(scope="module")
def workers():
    """A process pool for ``reference_task``, or None (one core, or this module not importable by name)."""
    if (os.cpu_count() or 1) < 2 or importlib.util.find_spec(__name__) is None:
        yield None
        return
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as pool:
        yield pool


def run_differential(
    tt: TextTokenizer,
    tok: Tokenizer,
    path: Path,
    tasks: list[tuple],
    workers=None,
    truncation: tuple | None = None,
    single_threaded_every: int = 0,
) -> int:
    """Compare every task's strings; fail with a report after the run. Returns the strings compared.

    ``tok`` (loaded from ``path``, truncation enabled as ``truncation`` says) is used in
    this process only to explain mismatches.
    """
    jobs = [(str(path), truncation, t) for t in tasks]
    results = workers.map(reference_task, jobs) if workers is not None else map(reference_task, jobs)
    count, bad, n_bad = 0, [], 0
    for k, (texts, lens, flat) in enumerate(results):
        found = mismatches(tt, tok, texts, ref=(lens, flat))
        if single_threaded_every and k % single_threaded_every == 1:
            found += mismatches(tt, tok, texts, threads=1, ref=(lens, flat))  # serial kernel
        n_bad += len(found)
        bad += found[: 10 - len(bad)]
        count += len(texts)
    assert not bad, report(tt, tok, bad, n_bad)
    return count


# ---------------------------------------------------------------------------
# 1. Differential runs


def test_million_strings_match_tokenizers(bert, bert_path, fast_tt, tokenizer_json, workers):
    count = run_differential(
        fast_tt, bert, bert_path, plan(tokenizer_json, N_STRINGS, seed=0), workers, single_threaded_every=10
    )
    assert count >= 1_000_000
    if any((SHARED_DATA / name / "corpus.jsonl").is_file() for name in DATASETS):
        assert len(shared_strings()) > 0  # the shared data was read, not silently skipped


def test_small_batches_match(bert, fast_tt, tokenizer_json):
    """Batches of 1..8 texts: the serial kernel, the joined hole path, warm and cold cache."""
    rng = random.Random(5)
    texts = list(strings(tokenizer_json, 6000, seed=5))
    tt = TextTokenizer(bert, cache_bytes=16_000)
    assert tt.fast
    bad = []
    i = 0
    while i < len(texts):
        k = rng.randint(1, 8)
        batch = texts[i : i + k]
        for t in (tt, fast_tt):
            bad += mismatches(t, bert, batch, threads=rng.choice([None, 1]))
        i += k
    assert not bad, report(tt, bert, bad, len(bad))


@pytest.mark.parametrize("direction,max_length", [("right", 16), ("left", 16), ("right", 128), ("left", 128)])
def test_truncation_matches_tokenizers(bert_path, tokenizer_json, workers, direction, max_length):
    tok = load_tokenizer(bert_path)
    tok.enable_truncation(max_length, direction=direction)
    tt = TextTokenizer(tok, cache_bytes=1_000_000)  # small cache: exercises the reset
    assert tt.fast
    # 1000 shared texts (long: most get truncated), then synthesis.
    tasks = plan(tokenizer_json, N_TRUNC, seed=1000 + max_length, shared=False, sample=1000)
    count = run_differential(tt, tok, bert_path, tasks, workers, truncation=(direction, max_length))
    assert count == N_TRUNC


def test_cased_configuration_matches(bert_cased, bert_cased_path, tokenizer_json, workers):
    assert fast_path_spec(json.loads(bert_cased.to_str()))["lowercase"] is False
    tt = TextTokenizer(bert_cased)
    assert tt.fast
    tasks = plan(tokenizer_json, 40_000, seed=77, shared=False)
    assert run_differential(tt, bert_cased, bert_cased_path, tasks, workers) == 40_000


EXTRA_ADDED = [  # (content, special, normalized): plain ASCII added tokens the fast path supports
    ("foo", False, True),
    ("BarBaz", False, False),
    ("<x>", True, False),
    ("QQ", False, True),
    ("the", False, True),
    ("##", False, True),
    ("a.b", False, False),
]
EXTRA_VARIANTS = [
    "foo",
    "FOO",
    "Foo",
    "f\x00oo",
    "fo\x7fo",
    "foofoo",
    "xfooy",
    "barbaz",
    "BarBaz",
    "BARBAZ",
    "Bar\x01Baz",
    "<x>",
    "<X>",
    "<\x00x>",
    "qq",
    "QQ",
    "Q\x0bQ",
    "the",
    "THE",
    "thethe",
    "##",
    "a.b",
    "A.B",
    "a..b",
    "xa.by",
]


@pytest.mark.parametrize("lowercase", [True, False], ids=["uncased", "cased"])
def test_extra_added_tokens_keep_fast_path(tmp_path_factory, tokenizer_json, lowercase):
    """Plain ASCII added tokens (special or not, normalized or not) are matched exactly."""

    def edit(spec):
        spec["normalizer"]["lowercase"] = lowercase
        spec["normalizer"]["strip_accents"] = None if lowercase else False
        spec["added_tokens"] += [
            {
                "id": 30522 + i,
                "content": c,
                "single_word": False,
                "lstrip": False,
                "rstrip": False,
                "normalized": norm,
                "special": special,
            }
            for i, (c, special, norm) in enumerate(EXTRA_ADDED)
        ]

    tok = _tokenizer(tmp_path_factory, tokenizer_json, edit)
    tt = TextTokenizer(tok)
    assert tt.fast
    rng = random.Random(3)
    synth = Synth(rng, str(tokenizer_json))
    texts = []
    for _ in range(20_000):
        parts = [rng.choice(EXTRA_VARIANTS) if rng.random() < 0.5 else synth() for _ in range(rng.randint(1, 5))]
        texts.append(rng.choice(["", " ", "  ", "\n"]).join(parts))
    bad = mismatches(tt, tok, texts)
    assert not bad, report(tt, tok, bad, len(bad))


@pytest.mark.parametrize("max_chars", [1, 4, 8, 9])
def test_whole_word_lookup_respects_max_input_chars(tmp_path_factory, tokenizer_json, max_chars):
    """Words of 1-12 bytes around the 8-byte whole-word table and a small ``max_input_chars_per_word``:
    a whole entry longer than the limit must still become [UNK]."""

    def edit(spec):
        spec["model"]["max_input_chars_per_word"] = max_chars

    tok = _tokenizer(tmp_path_factory, tokenizer_json, edit)
    tt = TextTokenizer(tok)
    assert tt.fast
    rng = random.Random(max_chars)
    words = [w for w in vocab_words(str(tokenizer_json)) if w.isascii() and w.isalpha() and len(w) <= 12]
    texts = []
    for _ in range(5_000):
        parts = [rng.choice(words).removeprefix("##") for _ in range(rng.randint(1, 6))]
        glue = rng.choice([" ", "", ".", "-", "\x00", "\x01", " [", "'"])
        text = glue.join(parts)
        if rng.random() < 0.3:
            text = text.upper()
        texts.append(text)
    bad = mismatches(tt, tok, texts)
    assert not bad, report(tt, tok, bad, len(bad))


def test_edge_strings(bert, fast_tt):
    """Hand-picked boundaries: max_input_chars_per_word, control bytes, added tokens."""
    texts = ["", " ", "\t\n\r ", "\x00", "\x0b\x0c\x1c\x1d\x1e\x1f\x7f", "a\x0bb", "a\x1cb", "a\x7fb"]
    for n in (99, 100, 101):
        for word in ("a" * n, "the" * (n // 3) + "t" * (n % 3), "A" * n, "a" * (n - 1) + "\u00e9"):
            texts += [word, f"x {word} y", f"{word}.{word}", word + "\x00" * 5, "\x01".join(word)]
            texts += [word[:50] + "\x00\x0b\x7f" + word[50:], word[:-1] + "\x01" + word[-1] + "b"]
    texts += [*ADDED_LIKE, " ".join(ADDED_LIKE), "".join(ADDED_LIKE)]
    texts += ["##", "##ing", "un##able", "[UNK]" * 30, "." * 300, "a" * 100 + ".", "a" * 101 + "."]
    texts += ["long text " * 100_000, "long t\u00e9xt [CLS] " * 50_000]  # ~1 MB each, one with holes
    bad = mismatches(fast_tt, bert, texts)
    assert not bad, report(fast_tt, bert, bad, len(bad))
    ids, offsets = fast_tt(["a" * 100, "a" * 101, "a" * 100 + "\x00"])
    unk = bert.token_to_id("[UNK]")
    assert ids[offsets[1] : offsets[2]].tolist() == [unk]
    assert unk not in ids[: offsets[1]].tolist() and unk not in ids[offsets[2] :].tolist()
    ids, offsets = fast_tt([])
    assert ids.size == 0 and offsets.tolist() == [0]


# ---------------------------------------------------------------------------
# 2. Hypothesis properties

try:
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st
except ImportError:  # pragma: no cover - hypothesis is in the test extra
    st = None


@pytest.fixture(scope="module")
def cased_tt(bert_cased) -> TextTokenizer:
    tt = TextTokenizer(bert_cased)
    assert tt.fast
    return tt


def check_property(tt: TextTokenizer, tok: Tokenizer, texts: list[str]) -> None:
    assert ours(tt, texts) == reference(tok, texts)
    for text in texts[:3]:
        assert ours(tt, [text], threads=1)[0] == tok.encode(text, add_special_tokens=False).ids


if st is None:

    @pytest.mark.skip(reason="hypothesis not installed (pip install -e .[test])")
    def test_hypothesis():
        pass

else:
    _VOCAB_SRC: list[str] = []

    @pytest.fixture(scope="module", autouse=True)
    def _vocab_src(tokenizer_json):
        _VOCAB_SRC[:] = [str(tokenizer_json)]

    _piece = st.one_of(
        st.sampled_from([chr(c) for c in range(128)]),  # every ASCII char, controls included
        st.sampled_from(string.ascii_letters + "  "),
        st.deferred(lambda: st.sampled_from(vocab_words(_VOCAB_SRC[0]))),  # words and ## pieces
        st.sampled_from(PUNCT),
        st.sampled_from([*ADDED_LIKE, "[CLS]", "[SEP]", "[MASK]", "##"]),
        st.sampled_from(CONTROLS + WHITESPACE),
        st.builds(lambda c, n: c * n, st.sampled_from("aZ"), st.integers(97, 103)),  # around max_input_chars
        st.sampled_from(NON_ASCII),
    )
    _text = st.lists(_piece, max_size=30).map("".join)
    _batch = st.lists(_text, min_size=1, max_size=12)
    _settings = settings(
        max_examples=400,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )

    @_settings
    @given(texts=_batch)
    def test_hypothesis_uncased(bert, fast_tt, texts):
        check_property(fast_tt, bert, texts)

    @_settings
    @given(texts=_batch)
    def test_hypothesis_cased(bert_cased, cased_tt, texts):
        check_property(cased_tt, bert_cased, texts)


# ---------------------------------------------------------------------------
# 3. Configuration detection


def _added(content: str, **flags) -> dict:
    token = {
        "id": 30522,
        "content": content,
        "single_word": False,
        "lstrip": False,
        "rstrip": False,
        "normalized": False,
        "special": True,
    }
    token.update(flags)
    return token


def _edit_unk_renamed(spec):
    spec["model"]["unk_token"] = "[NOPE]"


UNSUPPORTED = {
    "clean_text_off": lambda s: s["normalizer"].update(clean_text=False),
    "whitespace_pre_tokenizer": lambda s: s.update(pre_tokenizer={"type": "Whitespace"}),
    "no_normalizer": lambda s: s.update(normalizer=None),
    "lowercase_normalizer": lambda s: s.update(normalizer={"type": "Lowercase"}),
    "added_lstrip": lambda s: s["added_tokens"][4].update(lstrip=True),  # [MASK] as in RoBERTa-style files
    "added_rstrip": lambda s: s["added_tokens"].append(_added("[NEW]", rstrip=True)),
    "added_single_word": lambda s: s["added_tokens"].append(_added("new", single_word=True, special=False)),
    "added_with_space": lambda s: s["added_tokens"].append(_added("new token", special=False)),
    "added_non_ascii": lambda s: s["added_tokens"].append(_added("caf\u00e9", special=False)),
    "unk_not_in_vocab": lambda s: s["model"]["vocab"].pop("[UNK]"),
    "unk_renamed": _edit_unk_renamed,
}


def _config_texts(tokenizer_json) -> list[str]:
    texts = list(strings(tokenizer_json, 1000, seed=42))
    return [*texts, "new token", "a new b", "newer new", "café cafés", "x [NEW] y [MASK] z [MASK]"]


@pytest.mark.parametrize("name", sorted(UNSUPPORTED))
def test_unsupported_configuration_falls_back(tmp_path_factory, tokenizer_json, name):
    try:
        tok = _tokenizer(tmp_path_factory, tokenizer_json, UNSUPPORTED[name])
    except Exception as exc:  # tokenizers (or load_tokenizer) refuses the edited file
        pytest.skip(f"tokenizers cannot load this configuration: {exc}")
    assert fast_path_spec(json.loads(tok.to_str())) is None
    tt = TextTokenizer(tok)
    assert not tt.fast
    texts = _config_texts(tokenizer_json)
    if name.startswith("unk_"):
        # WordPiece cannot encode a word it would map to the unknown token; both must refuse.
        ok = []
        for t in texts:
            try:
                tok.encode(t, add_special_tokens=False)
                ok.append(t)
            except Exception:
                pass
        assert len(ok) > 100
        with pytest.raises(Exception):  # noqa: B017 (tokenizers raises a bare Exception here)
            tt(["fine", "\u2603\u2603qqq\u00e9zzz"])
        texts = ok
    bad = mismatches(tt, tok, texts)
    assert not bad, report(tt, tok, bad, len(bad))


@pytest.mark.parametrize("name", sorted(UNSUPPORTED))
def test_loaded_model_keeps_the_fast_path_off_for_unsupported_configuration(tmp_path_factory, tokenizer_json, name):
    """The model decides from the file's own JSON (``spec=``, read once at load), not ``to_str()`` as above:
    through ``sse_np.load`` each unsupported configuration must still leave the fast path off, and encode as
    the tokenizers library tokenizes. (Re-aimed: the ``fast=True`` argument this test once refused is gone.)"""
    folder = tmp_path_factory.mktemp("unsupported_model")
    path = _tokenizer_file(tmp_path_factory, tokenizer_json, UNSUPPORTED[name])
    try:
        tok = load_tokenizer(path)
    except Exception as exc:
        pytest.skip(f"tokenizers cannot load this configuration: {exc}")
    rng = np.random.default_rng(0)
    save_file(
        {
            # rows for every id the file names (an added token may repeat a vocabulary word under a new id)
            "embedding.weight": rng.standard_normal((tok.get_vocab_size(with_added_tokens=True) + 64, 8)).astype(
                np.float32
            )
        },
        str(folder / "model.safetensors"),
    )
    (folder / "tokenizer.json").write_bytes(path.read_bytes())
    static = folder.rename(folder.with_name(folder.name + "_StaticEmbedding"))
    try:
        model = sse_np.load(static, backend="numpy")
    except sse_np.ModelLoadError:  # refused at load (e.g. [UNK] missing): no model, no fast path to misuse
        assert name.startswith("unk_")
        return
    assert model.engine.tokenizer.fast_spec is None  # the jitted WordPiece stays out
    texts = [t for t in _config_texts(tokenizer_json)[:200] if t]
    table = model.table.dense()
    for text, vector in zip(texts, model.encode(texts, normalize=False)):
        ids = tok.encode(text, add_special_tokens=False).ids
        want = table[ids].mean(axis=0) if ids else np.zeros(8, np.float32)
        np.testing.assert_allclose(vector, want, rtol=1e-5, atol=1e-6, err_msg=text)


def test_supported_configurations(bert, bert_cased):
    for tok, lower in ((bert, True), (bert_cased, False)):
        spec = fast_path_spec(json.loads(tok.to_str()))
        assert spec is not None and spec["lowercase"] is lower
        assert spec["unk"] == "[UNK]" and spec["prefix"] == "##" and spec["max_chars"] == 100
        assert TextTokenizer(tok).fast
        assert not TextTokenizer(tok, cache_bytes=0).fast


# ---------------------------------------------------------------------------
# 4. encode does not depend on the path


@pytest.fixture(scope="module")
def model_folders(full_small, tmp_path_factory, tokenizer_json):
    """As shipped by the teacher (truncation 128) and with truncation off."""
    off = make_full(tmp_path_factory.mktemp("fast_off"), tokenizer_json, random_weights(30522, 40, seed=3), None)
    return {"trunc128": full_small[0], "trunc_off": off}


@pytest.mark.parametrize("which", ["trunc128", "trunc_off"])
def test_encode_identical_without_fast_path(model_folders, tokenizer_json, which):
    import sse_np

    fast = sse_np.load(model_folders[which], backend="numba")
    slow = sse_np.load(model_folders[which], backend="numpy")  # tokenizers only
    assert fast.engine.fast and not slow.engine.fast
    shared = list(shared_strings())
    rng = random.Random(11)
    texts = rng.sample(shared, min(len(shared), 1500))
    texts += list(strings(tokenizer_json, 4000 - len(texts), seed=12))
    for kwargs in ({}, {"dim": 17, "normalize": False}, {"batch_size": 7}):
        a = fast.encode(texts, **kwargs)
        b = slow.encode(texts, **kwargs)
        assert a.dtype == b.dtype and a.shape == b.shape
        assert np.array_equal(a.view(np.uint32), b.view(np.uint32)), kwargs
    ids_a, off_a = fast.tokenize(texts)
    ids_b, off_b = slow.tokenize(texts)
    assert np.array_equal(ids_a, ids_b) and np.array_equal(off_a, off_b)
