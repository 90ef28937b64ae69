"""Varied texts: real queries and documents, edge cases, random junk."""

from __future__ import annotations

import json
import random

from .paths import SHARED_DATA


def _shared_texts(limit_docs: int) -> list[str]:
    texts: list[str] = []
    if not SHARED_DATA.is_dir():
        return texts
    for ds in sorted(SHARED_DATA.iterdir()):
        q = ds / "queries.jsonl"
        if q.is_file():
            texts += [json.loads(line)["text"] for line in q.open(encoding="utf-8")]
        c = ds / "corpus.jsonl"
        if c.is_file():
            with c.open(encoding="utf-8") as fh:
                for _, line in zip(range(limit_docs), fh):
                    doc = json.loads(line)
                    texts.append((doc.get("title", "") + " " + doc.get("text", "")).strip())
    return texts


EDGE_TEXTS = [
    "",
    " ",
    "   \t\n  ",
    "\n",
    "a\x00b",
    "\x00",
    "héllo wörld, café naïve résumé",
    "Ünïcödé ÀÉÎÕÜ ñ ç ø å",
    "日本語のテキストと漢字",
    "中文文本测试",
    "한국어 텍스트",
    "🙂 emoji 👍🏽 family 👨‍👩‍👧 flags 🇫🇷",
    "Zalgo t̶̢e̷x̸t̵",
    "[UNK] [CLS] [SEP] [PAD] [MASK]",
    "x" * 250,  # longer than max_input_chars_per_word -> [UNK]
    "antidisestablishmentarianism pneumonoultramicroscopicsilicovolcanoconiosis",
    "The quick brown fox jumps over the lazy dog.",
    "THE QUICK BROWN FOX",
    "12345 3.14159 1e-10 0xFF",
    "<html><body>tags &amp; entities</body></html>",
    "tabs\tand\nnewlines\r\nand\u00a0nbsp\u2028line sep",
    "\u200b\u200c\u200d zero width",
    "ﬁ ligature ＦＵＬＬＷＩＤＴＨ",
    "Ελληνικά Русский текст עברית العربية हिन्दी",
    " leading and trailing spaces ",
    "a",
    "?!.,;:",
]


def varied_texts(n_random: int = 1500, limit_docs: int = 250, seed: int = 7) -> list[str]:
    """A few thousand varied strings: real queries/docs, edge cases, random junk."""
    rng = random.Random(seed)
    alphabet = (
        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .,;:!?'\"()-\n\t"
        "éèêëàâäôöûüçñßøåæœ日本語中文한국🙂👍€£¥©®™°±×÷\u0301\u200b"
    )
    words = "the of and a to in is was for on with as by at from retrieval embedding static model vector".split()
    texts = list(EDGE_TEXTS)
    for _ in range(n_random):
        if rng.random() < 0.5:
            texts.append("".join(rng.choice(alphabet) for _ in range(rng.randint(0, 80))))
        else:
            texts.append(" ".join(rng.choice(words) for _ in range(rng.randint(0, 300))))
    texts += _shared_texts(limit_docs)
    texts.append("long text " * 100_000)  # ~1 MB
    return texts
