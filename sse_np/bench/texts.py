"""The texts ``sse-np bench`` encodes: the built-in sample, or the user's file (``--data``).

The built-in sample (``texts.json.gz`` beside this module, made by
``scripts/build_bench_texts.py``) holds 4,000 short texts (first sentences,
~50 characters) and 900 documents (~490 characters): docstrings of the
Python standard library, under the PSF License Agreement.

A ``--data`` file is plain lines, JSONL (a ``text`` field, or ``title`` +
``text``) or Parquet (a ``text`` column; needs pyarrow, the 'parquet'
extra). Its texts serve every workload: they are the user's own, whatever
their length; of a large file, the first 8 MB of text (MAX_DATA_BYTES).
"""

from __future__ import annotations

import gzip
import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from ..errors import DataError, missing_extra
from ..jsonl import json_line

SAMPLE = "texts.json.gz"
# A --data file's texts are used up to this much UTF-8 (the first texts, in file order): enough for calls
# of ~0.2 s on one thread, and the run's time does not grow with the file.
MAX_DATA_BYTES = 8_000_000


@dataclass(frozen=True)
class Texts:
    """Short texts (queries) and documents, and where they came from."""

    short: list[str]
    documents: list[str]
    source: str
    licence: str | None = None

    def describe(self) -> dict[str, object]:
        return {
            "source": self.source,
            "licence": self.licence,
            "short": _shape(self.short),
            "documents": _shape(self.documents),
        }


def _shape(texts: list[str]) -> dict[str, float]:
    return {"count": len(texts), "mean_chars": round(sum(map(len, texts)) / max(1, len(texts)), 1)}


def builtin() -> Texts:
    """The sample shipped in the package."""
    raw = resources.files(__package__).joinpath(SAMPLE).read_bytes()
    data = json.loads(gzip.decompress(raw))
    return Texts(data["short"], data["documents"], f"built-in sample ({data['source']})", data["licence"])


def load(path: str | None) -> Texts:
    """The built-in sample (``path`` None) or the texts of ``path``: every text serves every workload."""
    if path is None:
        return builtin()
    texts = read_file(Path(path))
    if not texts:
        raise DataError(path, "no texts in the file")
    used, size = 0, 0
    while used < len(texts) and size < MAX_DATA_BYTES:
        size += len(texts[used].encode("utf-8", "surrogatepass"))
        used += 1
    source = str(path) if used == len(texts) else f"{path} (the first {used:,} of its {len(texts):,} texts)"
    return Texts(texts[:used], texts[:used], source)


def read_file(path: Path) -> list[str]:
    """Texts of a lines, JSONL or Parquet file, in file order (empty lines of a lines file are skipped)."""
    if not path.is_file():
        raise DataError(path, "no such file")
    name = path.name.lower()
    if name.endswith(".parquet"):
        return _parquet(path)
    opener = gzip.open if name.endswith(".gz") else open
    stem = name.removesuffix(".gz")
    with opener(path, "rt", encoding="utf-8") as fh:
        try:
            lines = fh.read().splitlines()
        except UnicodeDecodeError as exc:
            raise DataError(path, f"not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    if stem.endswith((".jsonl", ".ndjson")):
        return [_record_text(json_line(line, str(path), i), path, i) for i, line in enumerate(lines, 1) if line.strip()]
    return [line for line in lines if line.strip()]


def _record_text(record: object, path: Path, number: int) -> str:
    if not isinstance(record, dict):
        raise DataError(path, "expected a JSON object with a 'text' field", number)
    text = record.get("text")
    if not isinstance(text, str):
        raise DataError(path, "no string 'text' field", number)
    title = record.get("title")
    return f"{title} {text}".strip() if isinstance(title, str) and title else text


def _parquet(path: Path) -> list[str]:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise missing_extra(f"reading {path.name} (Parquet)", "parquet") from None
    table = pq.read_table(path)
    if "text" not in table.column_names:
        raise DataError(path, f"no 'text' column (columns: {', '.join(table.column_names)})")
    texts = table.column("text").to_pylist()
    bad = next((i for i, t in enumerate(texts) if not isinstance(t, str)), None)
    if bad is not None:
        raise DataError(path, f"row {bad}: 'text' is {type(texts[bad]).__name__}, not a string")
    return texts
