"""``sse-np bench`` from a non-editable install in a fresh venv, run outside the checkout.

The wheel is built from a copy of the checkout's package files (``pip wheel``,
nothing written into the checkout) and installed with ``pip install
--no-deps`` into a venv that sees only sse_np's run-time dependencies, numba
left out: the slim install, so the bench must say it measured the NumPy
back-end. No package index is reached. One venv per session.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import sysconfig
from importlib import metadata
from pathlib import Path

import pytest
from packaging.version import Version

from helpers.paths import REPO
from helpers.runtime_env import dependency_closure

pytestmark = pytest.mark.slow
SOURCES = ("pyproject.toml", "README.md", "sse_np", "weights/model.safetensors", "weights/tokenizer.json")


def _copy_sources(dest: Path) -> Path:
    for name in SOURCES:
        src, out = REPO / name, dest / name
        out.parent.mkdir(parents=True, exist_ok=True)
        if src.is_dir():
            shutil.copytree(src, out, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(src, out)
    return dest


def _link_runtime_deps(folder: Path) -> Path:
    """Symlinks to the installed run-time closure of sse_np without numba (no sse_np itself)."""
    folder.mkdir()
    for dist in dependency_closure(without=("numba",)):
        for file in dist.files or []:
            top = Path(file).parts[0] if Path(file).parts else ""
            if not top or top in ("..", "__pycache__") or top.endswith(".pth"):
                continue
            target = Path(dist.locate_file(top)).resolve()
            if target.exists() and not (folder / top).exists():
                (folder / top).symlink_to(target, target_is_directory=target.is_dir())
    return folder


@pytest.fixture(scope="session")
def installed(tmp_path_factory) -> Path:
    """A fresh venv with sse_np installed from its wheel; returns the venv folder."""
    if not (REPO / "weights" / "model.safetensors").is_file():
        pytest.skip("no default model in weights/")
    # Built without build isolation (no package index): this environment's setuptools must build wheels alone.
    if Version(metadata.version("setuptools")) < Version("70.1") and importlib.util.find_spec("wheel") is None:
        pytest.skip("setuptools < 70.1 without the wheel package cannot build the wheel offline")
    root = tmp_path_factory.mktemp("install")
    src = _copy_sources(root / "src")
    wheels = root / "wheels"
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-w", wheels, src], check=True)
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", venv], check=True)
    python = venv / "bin" / "python"
    purelib = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    (Path(purelib) / "runtime_deps.pth").write_text(str(_link_runtime_deps(root / "deps")) + "\n")
    wheel = next(wheels.glob("sse_np-*.whl"))
    subprocess.run([*pip, "--python", python, "install", "--no-deps", "--no-index", wheel], check=True)
    return venv


def test_bench_runs_from_a_wheel_without_numba(installed, tmp_path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SSE_NP_", "PYTHON", "VIRTUAL_ENV"))}
    where = subprocess.run(
        [installed / "bin" / "python", "-c", "import sse_np; print(sse_np.__file__, sse_np.default_model_path())"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
    )
    assert where.returncode == 0, where.stderr
    module, model = where.stdout.split()
    assert Path(module).is_relative_to(installed) and Path(model) == installed / "share" / "sse_np" / "weights"
    args = ["bench", "--duration", "0.5", "--repeats", "2", "--json", "out.json"]
    done = subprocess.run(
        [installed / "bin" / "sse-np", *args], capture_output=True, text=True, cwd=tmp_path, env=env, timeout=600
    )
    assert done.returncode == 0, done.stderr
    res = json.loads((tmp_path / "out.json").read_text())
    assert res["model"]["backend"] == "numpy" and res["machine"]["numba"] == "not installed"
    assert res["texts"]["short"]["count"] == 4000  # the built-in sample came with the wheel
    assert set(res["workloads"]) == {"latency", "calls", "documents", "threads", "callers", "memory"}
    assert "back-end  numpy" in done.stdout and str(REPO) not in json.dumps(res)
    assert sysconfig.get_paths()["purelib"] not in res["model"]["path"]
