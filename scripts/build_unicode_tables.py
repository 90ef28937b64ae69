"""Write ``sse_np/engine/shipped/``: the jitted tokenizer's Unicode tables, made ahead of time.

``python scripts/build_unicode_tables.py``

Derives the tables (``sse_np.engine.unicode_tables.derive``) from the
installed ``tokenizers`` for the BertNormalizer settings of uncased and cased
BERT vocabularies, and writes each under its cache key, which names the
``tokenizers`` release. Rerun it after moving to another ``tokenizers``
release (tests/engine/test_unicode_shipped.py fails until then); the old
files can go, since no other release reads them.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from sse_np.engine import unicode_tables


def main() -> None:
    unicode_tables.SHIPPED.mkdir(exist_ok=True)
    for old in unicode_tables.SHIPPED.glob("sse_np-unicode-*.npz"):
        old.unlink()
    for settings in unicode_tables.SHIPPED_SETTINGS:
        path = unicode_tables.shipped_path(settings)
        unicode_tables.save(path, unicode_tables.derive(settings), compress=True)
        path.chmod(0o644)
        print(f"{path.name}: {path.stat().st_size:,} bytes for {settings}")


if __name__ == "__main__":
    main()
