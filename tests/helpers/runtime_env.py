"""A fresh Python that can import only sse_np's run-time dependencies.

The test process has torch, sentence-transformers, pytest... imported, and
they import parts of shared packages (huggingface_hub's submodules, say) that
sse_np may silently rely on. A user who installed only sse_np has none of
that. :class:`RuntimeEnv` builds, once per session, a folder of symlinks to
the installed top-level packages of exactly the run-time dependency closure
of sse_np (the ``dependencies`` of pyproject.toml, then each installed
distribution's requirements, recursively, without extras) plus the checkout's
``sse_np``, and runs ``python -S -s`` with ``PYTHONPATH`` pointing only there:
no site-packages, no ``.pth`` files, no user site.

A preamble run before the code under test refuses to resolve any host but
the loopback (tests never reach the network) and proves the isolation:
``import torch`` / ``sentence_transformers`` / ``pytest`` / ``hypothesis``
must fail, or the run stops with exit status 97.
"""

from __future__ import annotations

import importlib.metadata as metadata
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from packaging.requirements import Requirement

from .paths import REPO

# Importable in the test process (test extra), never in the run-time environment.
TEST_ONLY = ("torch", "sentence_transformers", "pytest", "hypothesis", "transformers", "matplotlib")

PREAMBLE = f"""
import socket, sys
_real = socket.getaddrinfo
def _loopback_only(host, *args, **kwargs):
    if host not in ("127.0.0.1", "localhost", "::1", None, b"127.0.0.1", b"localhost"):
        raise OSError(f"runtime_env: no network in tests (asked for {{host!r}})")
    return _real(host, *args, **kwargs)
socket.getaddrinfo = _loopback_only
import importlib.util
_leaks = [m for m in {TEST_ONLY!r} if importlib.util.find_spec(m) is not None]
if _leaks or any("site-packages" in p for p in sys.path):
    print("runtime_env: not isolated:", _leaks, sys.path, file=sys.stderr)
    sys.exit(97)
del _leaks, _loopback_only
"""


def _project() -> dict:
    """``[project]`` of the checkout's pyproject.toml (tomllib: Python >= 3.11)."""
    try:
        import tomllib
    except ImportError:  # Python 3.10: the installed metadata says the same
        return {
            "dependencies": metadata.requires("sse_np") or [],
            "scripts": {
                ep.name: ep.value for ep in metadata.entry_points(group="console_scripts") if ep.name == "sse-np"
            },
        }
    return tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]


def runtime_requirements() -> list[Requirement]:
    """``[project].dependencies`` of the checkout's pyproject.toml."""
    return [Requirement(spec) for spec in _project()["dependencies"]]


def _applies(req: Requirement) -> bool:
    return req.marker is None or req.marker.evaluate({"extra": ""})


def _applies_with(req: Requirement, extra: str) -> bool:
    """``req`` is needed here when its distribution is installed with ``extra`` ("" for none)."""
    if req.marker is None:
        return extra == ""
    return req.marker.evaluate({"extra": extra}) and (extra == "" or "extra" in str(req.marker))


def extra_requirements(extra: str) -> list[Requirement]:
    """The requirements an optional extra of sse_np adds (from the installed metadata: pyproject's table)."""
    reqs = [Requirement(spec) for spec in metadata.requires("sse_np") or []]
    return [
        r for r in reqs if r.marker is not None and "extra" in str(r.marker) and r.marker.evaluate({"extra": extra})
    ]


def installed(req: Requirement) -> bool:
    try:
        metadata.distribution(req.name)
    except metadata.PackageNotFoundError:
        return False
    return True


def dependency_closure(without: tuple[str, ...] = (), extras: tuple[str, ...] = ()) -> list[metadata.Distribution]:
    """Installed distributions sse_np needs at run time, with the ``extras`` named (not the ``without`` ones).

    A requirement's own extras count (``sqlalchemy[asyncio]`` brings greenlet); the run-time
    dependencies of sse_np name none, so its closure is unchanged by that.
    """
    seen: dict[str, metadata.Distribution] = {}
    done: set[tuple[str, str]] = set()  # (distribution, extra or "") whose requirements were added
    todo = [r for r in runtime_requirements() if _applies(r) and r.name not in without]
    todo += [
        Requirement(f"{r.name}{''.join(f'[{e}]' for e in sorted(r.extras))}{r.specifier}")
        for extra in extras
        for r in extra_requirements(extra)
        if installed(r)
    ]
    while todo:
        req = todo.pop()
        key = req.name.lower().replace("_", "-")
        wanted = [e for e in ("", *sorted(req.extras)) if (key, e) not in done]
        if not wanted:
            continue
        try:
            dist = seen.get(key) or metadata.distribution(req.name)
        except metadata.PackageNotFoundError:
            raise RuntimeError(f"run-time dependency {req.name} is not installed") from None
        seen[key] = dist
        for extra in wanted:
            done.add((key, extra))
            todo += [r for r in map(Requirement, dist.requires or []) if _applies_with(r, extra)]
    return list(seen.values())


def _top_level(dist: metadata.Distribution) -> set[Path]:
    """Absolute paths of the distribution's top-level entries (packages, modules, .libs, dist-info)."""
    out = set()
    for file in dist.files or []:
        parts = Path(file).parts
        if not parts or parts[0] in ("..", "__pycache__") or parts[0].endswith(".pth"):
            continue  # scripts outside site-packages, bytecode, path hooks
        out.add(Path(dist.locate_file(parts[0])).resolve())
    return {p for p in out if p.exists()}


@dataclass
class RuntimeEnv:
    """The symlink folder and how to run Python (and ``sse-np``) against it."""

    root: Path

    @classmethod
    def build(cls, root: Path, without: tuple[str, ...] = (), extras: tuple[str, ...] = ()) -> RuntimeEnv:
        """Link the closure into ``root``; ``without=("numba",)`` is the slim install, ``extras`` adds extras."""
        root.mkdir(parents=True, exist_ok=True)
        for dist in dependency_closure(without, extras):
            for target in _top_level(dist):
                link = root / target.name
                if not link.exists():
                    link.symlink_to(target, target_is_directory=target.is_dir())
        (root / "sse_np").symlink_to(REPO / "sse_np", target_is_directory=True)
        return cls(root)

    def names(self) -> list[str]:
        return sorted(p.name for p in self.root.iterdir())

    def env(self, extra: dict[str, str] | None = None, home: Path | None = None) -> dict[str, str]:
        """A minimal environment: PATH, a private HOME and HF_HOME, PYTHONPATH = the folder only."""
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "PYTHONPATH": str(self.root),
            "LANG": "C.UTF-8",
            "PYTHONDONTWRITEBYTECODE": "1",
            "HF_HUB_DISABLE_TELEMETRY": "1",
            "HF_HUB_DISABLE_XET": "1",
            "HF_HUB_DISABLE_PROGRESS_BARS": "1",
            "SSE_NP_DISABLE_NUMBA": "1",
        }
        if home is not None:
            env["HOME"] = str(home)
            env["HF_HOME"] = str(home / "hf_home")
        env.update(extra or {})
        return {k: v for k, v in env.items() if v is not None}

    def python(
        self,
        code: str,
        *args: str,
        env: dict[str, str],
        cwd: Path | None = None,
        stdin: bytes | None = None,
        timeout: float = 120,
    ) -> subprocess.CompletedProcess:
        """Run ``code`` (after the preamble) with ``sys.argv[1:] = args``."""
        # Not the caller's folder: `python -c` puts it first on sys.path, and
        # pytest runs from the checkout, whose sse_np/ would win over the env's.
        return subprocess.run(
            [sys.executable, "-S", "-s", "-c", PREAMBLE + code, *args],
            env=env,
            cwd=self.root.parent if cwd is None else cwd,
            input=stdin,
            capture_output=True,
            timeout=timeout,
        )

    def script(self, path: Path, *args: str, **kwargs) -> subprocess.CompletedProcess:
        """Run a Python file as ``python path args`` would (``__name__ == "__main__"``)."""
        code = f"import runpy; sys.argv[0] = {str(path)!r}; runpy.run_path({str(path)!r}, run_name='__main__')"
        return self.python(code, *args, **kwargs)

    def cli(self, *args: str, **kwargs) -> subprocess.CompletedProcess:
        """Run the ``sse-np`` console script as installed (its entry point from pyproject.toml)."""
        module, func = _project()["scripts"]["sse-np"].split(":")
        code = f"sys.argv[0] = 'sse-np'\nfrom {module} import {func}\nsys.exit({func}())"
        return self.python(code, *args, **kwargs)
