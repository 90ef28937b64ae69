"""Each store adapter, imported without its package, fails with one line naming its extra."""

from __future__ import annotations

import subprocess
import sys

from helpers.extras import install_commands

# adapter module -> (the package it needs, its import name, the extra)
ADAPTERS = {
    "chroma": ("chromadb", "chromadb", "chroma"),
    "lancedb": ("lancedb", "lancedb", "lancedb"),
    "qdrant": ("qdrant-client", "qdrant_client", "qdrant"),
    "haystack": ("haystack-ai", "haystack", "haystack"),
}


def test_missing_store_packages_give_one_line_errors() -> None:
    blocked = "".join(f"sys.modules[{imp!r}] = None\n" for _, imp, _ in ADAPTERS.values())
    code = (
        "import sys\n"
        + blocked
        + f"for mod in {list(ADAPTERS)!r}:\n"
        + "    try:\n"
        + "        __import__('sse_np.integrations.' + mod)\n"
        + "    except ImportError as e:\n"
        + "        print(e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == [
        f"sse_np.integrations.{mod} ({pkg}) needs the '{extra}' extra: {install_commands(extra)}"
        for mod, (pkg, _, extra) in ADAPTERS.items()
    ]


def test_import_sse_np_loads_no_store_package() -> None:
    names = [imp for _, imp, _ in ADAPTERS.values()]
    code = f"import sys, sse_np\nprint(sorted(m for m in {names!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
