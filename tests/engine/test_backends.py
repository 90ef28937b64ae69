"""The two back-ends give the same bits; "auto" answers on NumPy while numba loads.

Also: encoding from 8 threads at once, fork during a warm-up, and numba's
cache on a read-only install (as on AWS Lambda).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import threading
import warnings
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save_file

import sse_np
from helpers.models import random_weights, write_tokenizer
from helpers.paths import REPO

pytest.importorskip("numba", reason="these tests compare numba with NumPy")

ROOT = REPO
KINDS = ("float32", "float16", "bfloat16", "q4")


@pytest.fixture(scope="module", params=KINDS)
def stored(request, tmp_path_factory, tokenizer_json) -> Path:
    """A random checkpoint (D=96, tokenizer truncating at 128) with its table stored as each kind."""
    kind = request.param
    folder = tmp_path_factory.mktemp(kind)
    weights = random_weights(30522, 96, seed=11)
    if kind == "q4":
        from helpers.reference import quantize_q4

        (folder / "embedding.q4_k_m.bin").write_bytes(quantize_q4(weights["embedding.weight"]))
        save_file({k: v for k, v in weights.items() if k.startswith("dyt.")}, str(folder / "model_rest.safetensors"))
    elif kind == "float32":
        save_file(weights, str(folder / "model.safetensors"))
    else:
        import torch
        from safetensors.torch import save_file as save_torch

        save_torch(
            {k: torch.from_numpy(v).to(getattr(torch, kind)) for k, v in weights.items()},
            str(folder / "model.safetensors"),
        )
    write_tokenizer(tokenizer_json, folder / "tokenizer.json", 128)
    return folder


@pytest.mark.parametrize("threads", [1, None])
def test_backends_agree_bit_for_bit(stored, texts, threads):
    """numba (fused fast path, holes, parallel) and NumPy: identical float32 bits, every storage kind."""
    texts = [t for t in texts if t.encode("utf-8", "surrogatepass") == t.encode("utf-8", "ignore")]
    fast = sse_np.load(stored, backend="numba", threads=threads)
    slow = sse_np.load(stored, backend="numpy", threads=threads)
    assert fast.engine.fast and not slow.engine.fast
    for dim in (96, 64, 31, 1):
        for normalize in (True, False):
            a = fast.encode(texts, dim, normalize=normalize)
            b = slow.encode(texts, dim, normalize=normalize)
            assert a.tobytes() == b.tobytes(), f"{stored.name} dim={dim} normalize={normalize}"


def test_arrow_columns_encode_like_lists(stored, texts):
    """A pyarrow string column goes to the kernels in Arrow's own buffers: the same bits as a list.

    Every layout a column comes in: string (int32 offsets), large_string,
    a slice (offsets not from 0), several chunks; with holes, empty texts
    and batches that cut the column.
    """
    pa = pytest.importorskip("pyarrow")
    texts = [t for t in texts if t.encode("utf-8", "surrogatepass") == t.encode("utf-8", "ignore")][:300]
    columns = {
        "string": pa.array(texts, pa.string()),
        "large_string": pa.array(texts, pa.large_string()),
        "slice": pa.array(["padding", *texts, "more"], pa.string()).slice(1, len(texts)),
        "chunked": pa.chunked_array([texts[:101], texts[101:102], texts[102:]], pa.string()),
    }
    for backend in ("numba", "numpy"):
        model = sse_np.load(stored, backend=backend)
        want = model.encode(texts, 64)
        for name, column in columns.items():
            for batch_size in (1000, 7):
                got = model.encode(column, 64, batch_size=batch_size)
                assert got.tobytes() == want.tobytes(), f"{stored.name} {backend} {name} batch_size={batch_size}"
        ids, offsets = model.tokenize(columns["slice"])
        want_ids, want_offsets = model.tokenize(texts)
        assert np.array_equal(ids, want_ids) and np.array_equal(offsets, want_offsets)


def _run(code: str, env: dict | None = None, **kw) -> subprocess.CompletedProcess:
    out = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=300,
        **kw,
    )
    assert out.returncode == 0, out.stderr
    return out


_NO_BACKEND_ENV = {"SSE_NP_BACKEND": "", "SSE_NP_DISABLE_NUMBA": ""}


def test_auto_answers_on_numpy_then_switches(full_small):
    """Load never imports numba; the first call starts the warm-up and does not wait for it."""
    out = _run(
        f"""
        import sys, numpy as np, sse_np
        m = sse_np.load({str(full_small[0])!r})
        assert m.backend == "auto"
        print("numba" in sys.modules)
        texts = ["first request", "naïve café", ""]
        gate = m.engine._load_lock  # held here, the background warm-up cannot finish before the check
        gate.acquire()
        first = m.encode(texts, 32)
        print(m.engine.status == "loading")
        gate.release()
        assert m.warmup() == "numba"
        later = m.encode(texts, 32)
        ref = sse_np.load({str(full_small[0])!r}, backend="numpy").encode(texts, 32)
        print(first.tobytes() == later.tobytes() == ref.tobytes())
    """,
        _NO_BACKEND_ENV,
    )
    assert out.stdout.split() == ["False", "True", "True"]
    assert out.stderr == ""


def test_auto_waits_for_numba_on_a_large_call(full_small):
    out = _run(
        f"""
        import time, sse_np, sse_np.engine.core
        sse_np.engine.core.WAIT_FOR_NUMBA_CHARS = 100
        m = sse_np.load({str(full_small[0])!r})
        m.encode(["short"], 32)          # small: NumPy, warm-up in the background
        print(m.engine.status)
        m.warmup()                       # waits for the background thread
        n = sse_np.load({str(full_small[0])!r})
        n.encode(["a longer text " * 10], 32)   # large: loads numba first, no thread
        print(m.engine.status, n.engine.status)
    """,
        _NO_BACKEND_ENV,
    )
    assert out.stdout.split() == ["loading", "numba", "numba"]


def test_calls_never_wait_for_a_background_warm_up(full_small, monkeypatch):
    """While numba loads (held here until released), further small calls keep answering on NumPy."""
    monkeypatch.delenv("SSE_NP_BACKEND", raising=False)
    monkeypatch.delenv("SSE_NP_DISABLE_NUMBA", raising=False)
    release, entered = threading.Event(), threading.Event()
    real = sse_np.engine.core.exercise

    def slow_kernels(backend):
        entered.set()
        assert release.wait(60)
        real(backend)

    monkeypatch.setattr(sse_np.engine.core, "exercise", slow_kernels)
    model = sse_np.load(full_small[0])
    ref = sse_np.load(full_small[0], backend="numpy")
    first = model.encode(["one"], 32)
    assert entered.wait(60)  # the warm-up thread holds the model's loading lock now
    done: list = []
    caller = threading.Thread(target=lambda: done.append(model.encode(["two", "three"], 32)))
    caller.start()
    caller.join(60)
    assert done and model.engine.status == "loading", "a call waited for numba to load"
    release.set()
    assert model.warmup() == "numba" and model.engine.status == "numba"
    assert first.tobytes() == ref.encode(["one"], 32).tobytes()
    assert done[0].tobytes() == ref.encode(["two", "three"], 32).tobytes()


def test_a_failed_warm_up_stays_on_numpy(full_small, monkeypatch):
    monkeypatch.delenv("SSE_NP_BACKEND", raising=False)
    monkeypatch.delenv("SSE_NP_DISABLE_NUMBA", raising=False)

    def broken(backend):
        raise RuntimeError("no locator available for file")

    monkeypatch.setattr(sse_np.engine.core, "exercise", broken)
    monkeypatch.setattr(sse_np.engine.core, "WAIT_FOR_NUMBA_CHARS", 10)
    model = sse_np.load(full_small[0])
    texts = ["a text longer than ten characters", "b"]
    with pytest.warns(RuntimeWarning, match="numba kernels failed to load .*no locator"):
        got = model.encode(texts, 32)  # large: tries numba in this call, falls back
    assert got.tobytes() == sse_np.load(full_small[0], backend="numpy").encode(texts, 32).tobytes()
    assert model.engine.status == "failed"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model.encode(texts, 32)  # no second attempt, no second warning
    with pytest.raises(RuntimeError, match="no locator"):
        sse_np.load(full_small[0], backend="numba")  # asked for numba explicitly: load fails loudly


def test_backend_numpy_never_imports_numba_and_numba_loads_at_load(full_small):
    out = _run(
        f"""
        import sys, sse_np
        m = sse_np.load({str(full_small[0])!r}, backend="numpy")
        m.encode(["x " * 2_000_000], 32)
        print("numba" in sys.modules, m.warmup())
        n = sse_np.load({str(full_small[0])!r}, backend="numba")
        print("numba" in sys.modules, n.engine.status == "numba")
    """,
        _NO_BACKEND_ENV,
    )
    assert out.stdout.split() == ["False", "numpy", "True", "True"]


def test_disable_numba_setting_keeps_auto_on_numpy(full_small):
    """$SSE_NP_DISABLE_NUMBA=1 (numba installed): the default back-end answers on NumPy and never imports
    numba, a large call included (without the setting, auto imports numba at load)."""
    out = _run(
        f"""
        import sys, sse_np
        m = sse_np.load({str(full_small[0])!r})
        m.encode(["x " * 2_000_000], 32)
        print("numba" in sys.modules, m.warmup())
    """,
        {**_NO_BACKEND_ENV, "SSE_NP_DISABLE_NUMBA": "1"},
    )
    assert out.stdout.split() == ["False", "numpy"]


def test_auto_without_numba_installed_looks_for_it_once(full_small, monkeypatch):
    """A slim install (no numba): NumPy answers, and the import system is searched once, not per call."""
    from sse_np.engine import jit

    searched: list[str] = []
    monkeypatch.setattr(jit, "find_spec", lambda name: searched.append(name))  # -> None: not installed
    monkeypatch.setattr(jit, "_numba_state", "unknown")
    monkeypatch.delenv("SSE_NP_BACKEND", raising=False)
    monkeypatch.delenv("SSE_NP_DISABLE_NUMBA", raising=False)
    model = sse_np.load(full_small[0])
    ref = sse_np.load(full_small[0], backend="numpy")
    for text in ("one", "two", "three " * 10):
        assert model.encode([text], 32).tobytes() == ref.encode([text], 32).tobytes()
    assert searched == ["numba"] and model.engine.status == "numpy" and model.warmup() == "numpy"


def test_backend_setting_is_validated(full_small, monkeypatch):
    with pytest.raises(ValueError, match="backend must be one of auto, numba, numpy; got 'gpu'"):
        sse_np.load(full_small[0], backend="gpu")
    monkeypatch.setenv("SSE_NP_BACKEND", "fast")
    with pytest.raises(ValueError, match=r"SSE_NP_BACKEND must be one of .*'fast'"):
        sse_np.load(full_small[0])
    monkeypatch.setenv("SSE_NP_BACKEND", "NumPy")
    assert sse_np.load(full_small[0]).backend == "numpy"


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_fork_while_numba_loads(full_small):
    """A fork right after the first call waits for the warm-up: the child is never left half-imported."""
    out = _run(
        f"""
        import os, sse_np
        m = sse_np.load({str(full_small[0])!r})
        a = m.encode(["fork me"] * 3, 32)
        pid = os.fork()
        if pid == 0:
            b = m.encode(["fork me"] * 3000, 32)
            os._exit(0 if b[:3].tobytes() == a.tobytes() else 3)
        _, status = os.waitpid(pid, 0)
        print(os.waitstatus_to_exitcode(status), m.warmup())
    """,
        _NO_BACKEND_ENV,
    )
    assert out.stdout.split() == ["0", "numba"]
    assert out.stderr == ""


def test_encode_from_8_threads_matches_serial(full_small, texts):
    """One model, 8 threads at once (small, medium and parallel-sized batches, warm-up under way)."""
    folder = full_small[0]
    serial = sse_np.load(folder, backend="numpy")
    jobs = [texts[i::8][: 40 * (i + 1)] for i in range(7)] + [texts]  # the last one is long (parallel)
    jobs = [[t for t in job if t.encode("utf-8", "surrogatepass") == t.encode("utf-8", "ignore")] for job in jobs]
    want = [serial.encode(job, 48) for job in jobs]
    model = sse_np.load(folder, backend="auto")
    got: list = [None] * 8
    errors: list = []
    barrier = threading.Barrier(8)

    def run(k: int) -> None:
        try:
            barrier.wait()
            got[k] = [model.encode(jobs[k], 48, batch_size=b) for b in (1000, 7)]
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    workers = [threading.Thread(target=run, args=(k,)) for k in range(8)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert not errors, errors
    for k in range(8):
        for g in got[k]:
            assert g.tobytes() == want[k].tobytes(), f"thread {k}"


# ---------------------------------------------------------------------------
# Read-only install: numba's cache goes to a private temporary folder


def _as_unprivileged() -> list[str] | None:
    """Command prefix that runs as an ordinary user (root ignores file modes)."""
    if os.getuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    return [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups"] if setpriv else None


@pytest.mark.skipif(not hasattr(os, "getuid"), reason="POSIX file modes")
def test_read_only_install_caches_numba_kernels_in_temp():
    prefix = _as_unprivileged()
    if prefix is None:
        pytest.skip("running as root without setpriv: cannot drop privileges to test file modes")
    model_dir = sse_np.default_model_path()
    if not (model_dir / "model.safetensors").is_file():
        pytest.skip("the default model is not in weights/")
    root = Path(tempfile.mkdtemp(prefix="sse_np-ro-"))
    try:
        root.chmod(0o755)
        site, home, tmp = root / "site", root / "home", root / "tmp"
        # With the repository's compiled kernels, when it has them (same sources: numba reuses them).
        shutil.copytree(ROOT / "sse_np", site / "sse_np", ignore=shutil.ignore_patterns("*.pyc"))
        home.mkdir()
        tmp.mkdir()
        tmp.chmod(0o777)
        script = textwrap.dedent(f"""
            import json, sys, sse_np, numpy as np
            m = sse_np.load({str(model_dir)!r}, backend="numba")  # imports the kernels, cache settled first
            import numba
            from sse_np.engine import cache, pooling, wordpiece
            v = m.encode(["read-only install", "café"], 64)
            kernels = (pooling.embed_items, wordpiece.tokenize_items)
            print(json.dumps({{"file": sse_np.__file__, "cache": cache.cache_dir(numba),
                              "misses": sum(len(f.stats.cache_misses) for f in kernels),
                              "v": v.tolist()}}))
        """)
        env = {
            k: v
            for k, v in os.environ.items()
            if k not in ("NUMBA_CACHE_DIR", "XDG_CACHE_HOME", "SSE_NP_DISABLE_NUMBA", "SSE_NP_BACKEND")
        }
        env.update(PYTHONPATH=str(site), HOME=str(home), TMPDIR=str(tmp))

        def run(unprivileged: bool) -> dict:
            out = subprocess.run(
                [*(prefix if unprivileged else []), sys.executable, "-c", script],
                capture_output=True,
                text=True,
                env=env,
                cwd=str(root),
                timeout=600,
            )
            assert out.returncode == 0, out.stderr
            return json.loads(out.stdout)

        # 1. Build step: the package folder is writable, so numba keeps the
        #    kernels in sse_np/__pycache__ (a warm cache shipped in the image).
        first = run(unprivileged=False)
        assert first["file"].startswith(str(site))
        assert first["cache"] == str(site / "sse_np" / "engine" / "__pycache__")
        shipped = sorted(p.name for p in (site / "sse_np" / "engine" / "__pycache__").glob("*.nb[ic]"))
        assert shipped
        # 2. Run time, as an ordinary user: all read-only but TMPDIR, home too.
        #    (Without the fallback numba raises "no locator available".)
        for path in [site, *site.rglob("*"), home]:
            path.chmod(0o555 if path.is_dir() else 0o444)
        before = sorted(str(p) for p in site.rglob("*"))
        second = run(unprivileged=True)
        assert second["cache"].startswith(str(tmp / "sse_np-numba-cache-"))
        assert second["misses"] == 0, "the shipped kernels were compiled again"
        assert sorted(str(p) for p in site.rglob("*")) == before  # nothing written in the install
        assert not any(home.iterdir())
        cache = Path(second["cache"])
        assert (cache.stat().st_mode & 0o777) == 0o700
        assert {p.name for p in cache.rglob("*.nb[ic]")} >= set(shipped)
        np.testing.assert_array_equal(np.float32(second["v"]), np.float32(first["v"]))
    finally:
        for path in [root, *root.rglob("*")]:
            with contextlib.suppress(OSError):
                path.chmod(0o755 if path.is_dir() else 0o644)
        shutil.rmtree(root, ignore_errors=True)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
@pytest.mark.parametrize("backend", ["numba", "numpy"])
def test_fork_pool_after_parallel_encode(full_small, backend):
    """After a parallel-sized encode, a fork pool's children encode (no OpenMP layer to break them)."""
    out = _run(
        f"""
        import multiprocessing, numpy as np, sse_np
        m = sse_np.load({str(full_small[0])!r}, backend={backend!r}, threads=2)
        texts = [f"text {{i}} with a few words, some café" for i in range(20000)]
        want = m.encode(texts, 32)                      # large: split over 2 threads
        def work(chunk):
            return m.encode(chunk, 32)
        with multiprocessing.get_context("fork").Pool(2) as pool:
            parts = pool.map_async(work, [texts[i:i + 5000] for i in range(0, 20000, 5000)]).get(120)
        print(np.concatenate(parts).tobytes() == want.tobytes())
    """,
        _NO_BACKEND_ENV,
    )
    assert out.stdout.split() == ["True"]
    assert "unsafe" not in out.stderr and "OpenMP" not in out.stderr


def test_kernels_run_as_python_under_numba_disable_jit(full_small):
    """pynndescent's rule: the kernels are plain Python too (NUMBA_DISABLE_JIT), with the same bits."""
    out = _run(
        f"""
        import warnings, numpy as np, sse_np
        warnings.simplefilter("ignore", RuntimeWarning)  # uint64 hash arithmetic wraps by design
        texts = ["plain ascii words", "naïve café [CLS] mixed", "", "a" * 150, "punct!? (yes)"]
        m = sse_np.load({str(full_small[0])!r}, backend="numba")
        ref = sse_np.load({str(full_small[0])!r}, backend="numpy")
        same = all(m.encode(texts, d, normalize=n).tobytes() == ref.encode(texts, d, normalize=n).tobytes()
                   for d in (48, 1) for n in (True, False))
        ids, off = m.tokenize(texts)
        rid, roff = ref.tokenize(texts)
        print(m.engine.status, same, np.array_equal(ids, rid) and np.array_equal(off, roff))
    """,
        {**_NO_BACKEND_ENV, "NUMBA_DISABLE_JIT": "1"},
    )
    assert out.stdout.split() == ["numba", "True", "True"]


def test_encode_with_progress_says_when_kernels_compile(full_small, monkeypatch, tmp_path, capsys):
    """No stamp for this model's kernels (as on a new machine): encode(show_progress_bar=True) says so, once."""
    from sse_np.engine import cache, core

    monkeypatch.delenv("SSE_NP_BACKEND", raising=False)
    monkeypatch.delenv("SSE_NP_DISABLE_NUMBA", raising=False)
    monkeypatch.setattr(core, "WAIT_FOR_NUMBA_CHARS", 10)  # this call waits for numba: deterministic
    monkeypatch.setattr(cache, "stamp_path", lambda numba, signature: tmp_path / "fresh.stamp")
    model = sse_np.load(full_small[0])
    model.encode(["a text long enough to wait for numba"] * 3, 32, show_progress_bar=True)
    err = capsys.readouterr().err
    assert err.count("compiling kernels for this machine (one time, ~") == 1, err
    assert (tmp_path / "fresh.stamp").is_file() and model.engine.status == "numba"
    again = sse_np.load(full_small[0])
    again.encode(["a text long enough to wait for numba"] * 3, 32, show_progress_bar=True)
    assert "compiling" not in capsys.readouterr().err
