"""Every code block of docs/**/*.md and README.md runs, and every output it shows is what it prints.

The convention and the comparison rules are in :mod:`helpers.docs`. Each page runs in one fresh process
of the run-time environment (:mod:`helpers.runtime_env`: sse_np's run-time dependencies only, plus the
extras its blocks declare with ``<!-- needs: x -->``), in a temporary working folder holding links to
the checkout's ``examples/`` and ``weights/``; the README's hub ids are served by a fake hub on
127.0.0.1, so nothing reaches the network. A page whose block needs an extra that is not installed and
is not part of the test extra runs up to that block and is then skipped, naming the extra; any other
missing extra fails.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import sse_np
from helpers import docs
from helpers.models import make_full, random_weights
from helpers.paths import REPO
from helpers.runtime_env import PREAMBLE, RuntimeEnv, extra_requirements, installed

PAGES = [*sorted((REPO / "docs").rglob("*.md")), REPO / "README.md"]
HUB_IDS = {
    "RikkaBotan/stable-static-embedding-fast-retrieval-mrl-en-v2": "full",
    "RikkaBotan/quantized-stable-static-embedding-fast-retrieval-mrl-en": "q4",
    "sentence-transformers/static-retrieval-mrl-en-v1": "static",
}
# A one-time line of numba's first compile on a machine: shown in the docs' prose, not in every sample.
VOLATILE = ("sse-np: compiling kernels for this machine",)
LINKED = ("examples", "weights")  # what a reader of the docs has beside them: a checkout


def _page_id(page: Path) -> str:
    return str(page.relative_to(REPO))


def _extras() -> set[str]:
    """The optional extras of sse_np, as installed (pyproject's table; no tomllib on Python 3.10)."""
    from importlib import metadata

    return set(metadata.metadata("sse_np").get_all("Provides-Extra") or [])


def _absent(extra: str) -> str | None:
    """None when ``extra`` can run here; else why it may be skipped (a failure if it may not)."""
    reqs = extra_requirements(extra)
    missing = [r.name for r in reqs if not installed(r)]
    if not missing:
        return None
    in_test = {r.name.lower() for r in extra_requirements("test")}
    promised = [name for name in missing if name.lower() in in_test]
    if promised:
        pytest.fail(f"extra {extra!r}: {promised} belong to the test extra but are not installed")
    if len(missing) < len(reqs):
        return None  # optional speed-ups of an extra (uvloop, httptools) that the test extra leaves out
    return f"the '{extra}' extra ({', '.join(missing)}) is not installed: not part of the test extra"


# -- the convention ------------------------------------------------------------------------------------
@pytest.mark.parametrize("page", PAGES, ids=_page_id)
def test_every_block_runs_or_says_why_not(page: Path) -> None:
    known = _extras()
    found = docs.blocks(page)
    issues = [issue for block in found for issue in docs.problems(block)]
    issues += [f"{b.where}: needs {n!r}, not an extra of sse_np" for b in found for n in b.needs if n not in known]
    for block in found:
        if block.lang == "console" and block.not_run is None and not docs.commands(block):
            issues.append(f"{block.where}: a console block without a `$ ` command")
    assert not issues, "\n".join(issues)


def test_every_page_is_in_the_site_navigation() -> None:
    """mkdocs.yml lists its pages; a page left out builds but cannot be reached from the menu."""
    import re

    listed = set(re.findall(r"^\s*-\s+[^:\n]+:\s+(\S+\.md)\s*$", (REPO / "mkdocs.yml").read_text(), flags=re.M))
    pages = {str(p.relative_to(REPO / "docs")) for p in (REPO / "docs").rglob("*.md")}
    assert pages - listed == set(), f"add these pages to nav in mkdocs.yml: {sorted(pages - listed)}"
    assert listed - pages == set(), f"mkdocs.yml lists pages that do not exist: {sorted(listed - pages)}"


def test_readme_test_command_is_what_ci_runs() -> None:
    """.ci/run copies the README's test command; the two must stay the same line."""
    ci = (REPO / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    marker = next(i for i, line in enumerate(ci) if "keep identical" in line)
    readme = [c.command for b in docs.blocks(REPO / "README.md") if b.lang == "console" for c in docs.commands(b)]
    assert ci[marker + 1] in readme, f"README.md does not show .ci/run's test command: {ci[marker + 1]}"


def test_the_site_has_its_pages() -> None:
    names = {_page_id(p) for p in PAGES}
    for page in ("docs/index.md", "docs/quickstart.md", "docs/cli.md", "docs/reference/spec.md", "README.md"):
        assert page in names


# -- the comparison itself can fail ------------------------------------------------------------------
def test_comparison_is_strict_except_for_its_markers() -> None:
    assert docs.output_matches(["a 0.471"], ["a 0.47118"])  # rounded where the docs round
    assert not docs.output_matches(["a 0.472"], ["a 0.47118"])  # not another value
    assert not docs.output_matches(["a 0.4711"], ["a 0.4712"])  # same precision: must be equal
    assert not docs.output_matches(["a b"], ["a  b"])
    assert not docs.output_matches(["x"], ["x", "y"])
    assert docs.output_matches(["x", "...", "z"], ["x", "y1", "y2", "z"])
    assert docs.output_matches(["x", "...", "z"], ["x", "z"])
    assert docs.output_matches(["took [...] s"], ["took 0.31 s"])
    assert not docs.output_matches(["took [...] s"], ["took 0.31 ms"])


def test_blocks_are_parsed_with_their_markers(tmp_path: Path) -> None:
    page = tmp_path / "p.md"
    page.write_text(
        "text\n\n<!-- needs: serve -->\n```python\nprint(1)\n```\n\n```text\n1\n```\n\n"
        "- item\n\n  ```console\n  $ echo a \\\n    b\n  a b\n  $ true\n  ```\n\n"
        "<!-- not-run: install, minutes -->\n```bash\npip install x\n```\n\n```yaml\nk: v\n```\n",
        encoding="utf-8",
    )
    found = docs.blocks(page)
    assert [b.lang for b in found] == ["python", "text", "console", "bash", "yaml"]
    assert found[0].needs == ("serve",) and found[0].output is found[1] and found[1].is_output
    cmds = docs.commands(found[2])
    assert [c.command for c in cmds] == ["echo a \\\n  b", "true"] and cmds[0].shown == ["a b"]
    assert [docs.problems(b) == [] for b in found] == [True, True, True, True, False]


# -- running the pages -----------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def hub_models(tmp_path_factory, tokenizer_json) -> dict[str, Path]:
    """Random models behind the documented hub ids: full (D=512, as published), its 4-bit copy, a StaticEmbedding."""
    from safetensors.numpy import save_file

    from sse_np.checkpoint.write import save_q4

    root = tmp_path_factory.mktemp("docs_hub")
    full = make_full(root / "full", tokenizer_json, random_weights(30522, 512, seed=31))
    q4 = save_q4(sse_np.load(full, backend="numpy"), root / "q4")
    static = root / "static" / "0_StaticEmbedding"
    static.mkdir(parents=True)
    table = np.random.default_rng(32).standard_normal((30522, 64), dtype=np.float32)
    save_file({"embedding.weight": table}, str(static / "model.safetensors"))
    (static / "tokenizer.json").write_bytes(tokenizer_json.read_bytes())
    module = {
        "idx": 0,
        "name": "0",
        "path": "0_StaticEmbedding",
        "type": "sentence_transformers.models.StaticEmbedding",
    }
    (root / "static" / "modules.json").write_text(json.dumps([module]))
    return {"full": full, "q4": q4, "static": root / "static"}


@pytest.fixture(scope="session")
def hub(hub_models):
    pytest.importorskip("huggingface_hub")
    from helpers.fake_hub import FakeHub

    with FakeHub() as fake:
        for repo_id, layout in HUB_IDS.items():
            fake.add_commit(repo_id, hub_models[layout])
        yield fake


@pytest.fixture(scope="session")
def envs(tmp_path_factory):
    """A run-time environment per set of extras, built once, with ``sse-np`` and ``python`` wrappers in bin/."""
    built: dict[tuple[str, ...], tuple[RuntimeEnv, Path]] = {}

    def get(extras: tuple[str, ...]) -> tuple[RuntimeEnv, Path]:
        if extras not in built:
            root = tmp_path_factory.mktemp("docs_env_" + ("_".join(extras) or "runtime"))
            env = RuntimeEnv.build(root / "site", extras=extras)
            built[extras] = (env, _wrappers(root / "bin"))
        return built[extras]

    return get


def _wrappers(bin_dir: Path) -> Path:
    """``python`` and ``sse-np`` as a reader's shell finds them: the isolated interpreter, the console script."""
    bin_dir.mkdir()
    python = bin_dir / "python"
    python.write_text(f'#!/bin/sh\nexec {sys.executable} -S -s "$@"\n')
    cli = bin_dir / "sse-np"
    code = "import sys; sys.argv[0] = 'sse-np'; from sse_np.cli import main; sys.exit(main())"
    cli.write_text(f'#!/bin/sh\nexec {sys.executable} -S -s -c "{code}" "$@"\n')
    for script in (python, cli):
        script.chmod(0o755)
    return bin_dir


def _steps(page: Path) -> tuple[list[tuple[docs.Block, list[docs.Command]]], str | None]:
    """The blocks to run in order (with their commands), stopping before one whose extra is absent."""
    steps = []
    for block in docs.blocks(page):
        if block.not_run is not None or block.lang not in ("python", "console"):
            continue
        reasons = [why for why in map(_absent, block.needs) if why]
        if reasons:
            return steps, f"{block.where} and after: " + "; ".join(reasons)
        steps.append((block, docs.commands(block) if block.lang == "console" else []))
    return steps, None


def _driver_input(steps) -> list[dict[str, str]]:
    out = []
    for block, cmds in steps:
        if block.lang == "python":
            out.append({"kind": "python", "code": block.text, "name": f"{block.path.name}:{block.line + 1}"})
        else:
            out += [{"kind": "console", "code": cmd.command} for cmd in cmds]
    return out


def _mismatch(where: str, shown: list[str], printed: str) -> str:
    return (
        f"{where}: shown output differs from what runs.\n--- shown\n" + "\n".join(shown) + f"\n--- printed\n{printed}"
    )


def _check(steps, results: list[dict], edits: list[tuple[int, int, list[str], int]]) -> list[str]:
    """Compare every shown output with the printed one; stop at the first block that raised.

    ``edits`` collects (first line (0-based), line count, printed lines, fence line) of every mismatch, for
    :func:`_write_outputs`.
    """
    failures: list[str] = []
    results = iter(results)
    for block, cmds in steps:
        if block.lang == "python":
            result = next(results, None)
            if result is None:
                return [*failures, f"{block.where}: did not run (an earlier block failed)"]
            if result["error"]:
                return [*failures, f"{block.where}: raised\n{result['error']}\nprinted:\n{result['out']}"]
            if block.output is not None and not docs.output_matches(
                block.output.text.splitlines(), result["out"].splitlines()
            ):
                failures.append(_mismatch(block.where, block.output.text.splitlines(), result["out"]))
                shown = block.output.text.splitlines()
                edits.append((block.output.line, len(shown), result["out"].splitlines(), block.output.line))
            elif block.output is None and result["out"].strip():
                # What a block prints is shown, or the reader cannot tell what to expect.
                failures.append(f"{block.where}: prints but shows no ```text block after it:\n{result['out']}")
                after = block.line + block.text.count("\n") + 1  # 0-based index of the line after the fence
                edits.append((after, 0, ["", "```text", *result["out"].splitlines(), "```"], block.line))
            continue
        for cmd in cmds:
            result = next(results, None)
            if result is None:
                return [*failures, f"{block.path.name}:{cmd.line}: did not run"]
            printed = [line for line in result["out"].splitlines() if not line.startswith(VOLATILE)]
            where = f"{block.path.name}:{cmd.line} `$ {cmd.command}`"
            # A failing command is fine where the page shows its error; silence is not.
            failed = result["rc"] != 0 and not any(line.strip() for line in cmd.shown)
            if failed or not docs.output_matches(cmd.shown, printed):
                failures.append(_mismatch(where + f" (exit status {result['rc']})", cmd.shown, "\n".join(printed)))
                edits.append((cmd.line + cmd.command.count("\n"), len(cmd.shown), printed, block.line))
    return failures


def _write_outputs(page: Path, edits: list[tuple[int, int, list[str], int]]) -> None:
    """``SSE_NP_DOCS_WRITE=1``: paste what the code printed over each differing output, for a writer to review.

    The test still fails on this run; the next run compares against what was pasted. Wildcards of a
    differing output are lost: put them back where the output is volatile.
    """
    lines = page.read_text(encoding="utf-8").splitlines()
    for start, count, printed, fence in sorted(edits, reverse=True):
        indent = lines[fence - 1][: len(lines[fence - 1]) - len(lines[fence - 1].lstrip())]
        lines[start : start + count] = [indent + line if line else "" for line in printed]
    page.write_text("\n".join(lines) + "\n", encoding="utf-8")


@pytest.mark.parametrize("page", PAGES, ids=_page_id)
def test_page_runs_and_prints_what_it_shows(page: Path, envs, hub, tmp_path: Path) -> None:
    steps, skipped = _steps(page)
    if not steps and skipped is None:
        return  # nothing to run (prose and tables only)
    extras = tuple(sorted({name for block, _ in steps for name in block.needs}))
    runtime, bin_dir = envs(extras)
    work, home = tmp_path / "work", tmp_path / "home"
    work.mkdir(), home.mkdir()
    for name in LINKED:
        (work / name).symlink_to(REPO / name, target_is_directory=True)
    # Unbuffered: standard output and error interleave as on a terminal, not as through a pipe.
    extra = {"HF_ENDPOINT": hub.endpoint, "SSE_NP_DISABLE_NUMBA": None, "PYTHONUNBUFFERED": "1"}
    env = runtime.env(extra, home=home)
    env["PATH"] = f"{bin_dir}{os.pathsep}{env['PATH']}"
    (tmp_path / "steps.json").write_text(json.dumps(_driver_input(steps)), encoding="utf-8")
    done = subprocess.run(
        [
            sys.executable,
            "-S",
            "-s",
            "-c",
            PREAMBLE + docs.DRIVER,
            str(tmp_path / "steps.json"),
            str(tmp_path / "r.json"),
        ],
        env={k: v for k, v in env.items() if v is not None},
        cwd=work,
        capture_output=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr.decode(errors="replace")[-3000:]
    edits: list[tuple[int, int, list[str], int]] = []
    failures = _check(steps, json.loads((tmp_path / "r.json").read_text(encoding="utf-8")), edits)
    if edits and os.environ.get("SSE_NP_DOCS_WRITE") == "1":
        _write_outputs(page, edits)
    assert not failures, "\n\n".join(failures)
    if skipped:
        pytest.skip(skipped)


def test_a_stale_output_or_a_silent_failure_fails(tmp_path: Path) -> None:
    """The page check itself, on results as the driver reports them."""
    page = tmp_path / "p.md"
    page.write_text(
        "```python\nprint(1)\n```\n\n```text\n2\n```\n\n```console\n$ false\n$ echo a\na\n$ false\nboom\n```\n",
        encoding="utf-8",
    )
    steps, skipped = _steps(page)
    assert skipped is None and [b.lang for b, _ in steps] == ["python", "console"]
    results = [{"out": "1\n", "error": None}, {"out": "", "rc": 1}, {"out": "a\n", "rc": 0}, {"out": "boom\n", "rc": 1}]
    edits: list = []
    failures = _check(steps, results, edits)
    assert len(failures) == 2 and failures[0].startswith("p.md:1: shown output differs") and "`$ false`" in failures[1]
    _write_outputs(page, edits)
    again = _check(_steps(page)[0], results, [])
    assert len(again) == 1 and "`$ false`" in again[0]  # a failing command that shows nothing stays a failure
    fixed = page.read_text(encoding="utf-8")
    assert "```text\n1\n```" in fixed and "$ false\n$ echo a" in fixed  # pasted what printed (nothing for false)
    unshown = tmp_path / "u.md"
    unshown.write_text("```python\nprint(3)\n```\n", encoding="utf-8")
    edits = []
    assert "shows no ```text block" in _check(_steps(unshown)[0], [{"out": "3\n", "error": None}], edits)[0]
    _write_outputs(unshown, edits)
    assert unshown.read_text(encoding="utf-8") == "```python\nprint(3)\n```\n\n```text\n3\n```\n"
    raised = [{"out": "", "error": "Traceback ...\nNameError: x"}]
    assert "raised" in _check(steps[:1], raised, [])[0]
