"""The Unicode tables the package ships are what the installed ``tokenizers`` derives, and a cold start uses
them instead of deriving (the derivation is ~2 s of the cold start)."""

from __future__ import annotations

import numpy as np
import pytest
import tokenizers

from sse_np.engine import unicode_tables


@pytest.mark.parametrize("settings", unicode_tables.SHIPPED_SETTINGS, ids=["uncased", "cased"])
def test_shipped_tables_equal_a_fresh_derivation(settings) -> None:
    path = unicode_tables.shipped_path(settings)
    assert path.is_file(), f"no shipped tables for tokenizers {tokenizers.__version__}: scripts/build_unicode_tables.py"
    shipped, derived = unicode_tables.load(settings, None), unicode_tables.derive(settings)
    for name, a, b in zip(unicode_tables.UnicodeTables._fields, shipped, derived):
        assert a.dtype == b.dtype and np.array_equal(a, b), name


def test_a_cold_cache_reads_the_shipped_tables(tmp_path, monkeypatch) -> None:
    settings = unicode_tables.SHIPPED_SETTINGS[0]
    monkeypatch.setattr(unicode_tables, "derive", lambda s: pytest.fail("derived although shipped"))
    tables = unicode_tables.load(settings, tmp_path)
    assert tables.stage1.shape == (unicode_tables.N_CODE_POINTS // unicode_tables.BLOCK,)


def test_damaged_shipped_tables_are_derived_again(tmp_path, monkeypatch) -> None:
    settings = unicode_tables.SHIPPED_SETTINGS[1]
    damaged = tmp_path / "shipped"
    damaged.mkdir()
    (damaged / unicode_tables.shipped_path(settings).name).write_bytes(b"not an npz")
    monkeypatch.setattr(unicode_tables, "SHIPPED", damaged)
    derived = []
    real = unicode_tables.derive
    monkeypatch.setattr(unicode_tables, "derive", lambda s: derived.append(s) or real(s))
    tables = unicode_tables.load(settings, tmp_path / "cache")
    assert derived == [settings] and np.array_equal(tables.stage2, real(settings).stage2)
