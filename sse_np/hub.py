"""Downloading SSE checkpoints from the Hugging Face hub (standard library only).

Only the files an SSE model needs are fetched (``*.json``, the weight files),
into a local cache, atomically; later calls reuse the cache without network.
The hub address follows ``HF_ENDPOINT`` (mirrors, tests), the token
``HF_TOKEN``, and ``HF_HUB_OFFLINE=1`` forbids any network access.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path, PurePosixPath

from .errors import ModelNotFoundError
from .loading import FULL_FILE, Q4_FILE, REST_FILE

DEFAULT_ENDPOINT = "https://huggingface.co"
_WEIGHT_FILES = {FULL_FILE, REST_FILE, Q4_FILE}
_COMPLETE = ".sse_np_complete"
_TIMEOUT = 60


def cache_root() -> Path:
    """``$SSE_NP_CACHE``, else ``$XDG_CACHE_HOME/sse_np``, else ``~/.cache/sse_np``."""
    if os.environ.get("SSE_NP_CACHE"):
        return Path(os.environ["SSE_NP_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "sse_np"


def _wanted(name: str) -> bool:
    path = PurePosixPath(name)
    return path.name in _WEIGHT_FILES or path.suffix == ".json"


def _get(url: str, token: str | None):
    request = urllib.request.Request(url, headers={"User-Agent": "sse_np"})
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        return urllib.request.urlopen(request, timeout=_TIMEOUT)
    except urllib.error.HTTPError as exc:
        hint = {401: " (private or gated repository: set HF_TOKEN)", 404: " (no such repository, revision or file)"}
        raise ModelNotFoundError(f"{url}: HTTP {exc.code}{hint.get(exc.code, '')}") from None
    except urllib.error.URLError as exc:
        raise ModelNotFoundError(f"{url}: cannot reach the hub ({exc.reason}); set HF_ENDPOINT for a mirror") from None


def download(
    repo_id: str,
    *,
    revision: str = "main",
    cache_dir: str | os.PathLike | None = None,
    endpoint: str | None = None,
    token: str | None = None,
    force: bool = False,
) -> Path:
    """Fetch a model repository's SSE files into the local cache.

    Parameters
    ----------
    repo_id : str
        ``"owner/name"`` on the hub.
    revision : str
        Branch, tag or commit.
    cache_dir : path, optional
        Cache root (default :func:`cache_root`).
    endpoint : str, optional
        Hub address (default ``$HF_ENDPOINT`` or https://huggingface.co).
    token : str, optional
        Access token (default ``$HF_TOKEN``).
    force : bool
        Download again even if cached.

    Returns
    -------
    Path
        Local folder, loadable with :func:`sse_np.load`.
    """
    root = Path(cache_dir) if cache_dir is not None else cache_root()
    target = root / repo_id.replace("/", "--") / revision.replace("/", "--")
    if (target / _COMPLETE).exists() and not force:
        return target
    if os.environ.get("HF_HUB_OFFLINE", "").strip() in ("1", "true", "yes", "on"):
        raise ModelNotFoundError(f"{repo_id}@{revision}: not in the cache {target} and HF_HUB_OFFLINE is set")
    endpoint = (endpoint or os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT).rstrip("/")
    token = token or os.environ.get("HF_TOKEN")
    quoted_rev = urllib.parse.quote(revision, safe="")
    with _get(f"{endpoint}/api/models/{repo_id}/revision/{quoted_rev}", token) as resp:
        info = json.load(resp)
    names = sorted(s["rfilename"] for s in info.get("siblings", []) if _wanted(s.get("rfilename", "")))
    if not any(PurePosixPath(n).name in _WEIGHT_FILES for n in names):
        raise ModelNotFoundError(f"{repo_id}@{revision}: the repository has no SSE weight files ({names})")
    root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".partial-", dir=root))
    try:
        for name in names:
            if ".." in PurePosixPath(name).parts:
                raise ModelNotFoundError(f"{repo_id}: refusing file name {name!r}")
            dest = staging / name
            dest.parent.mkdir(parents=True, exist_ok=True)
            url = f"{endpoint}/{repo_id}/resolve/{quoted_rev}/{urllib.parse.quote(name)}"
            with _get(url, token) as resp, open(dest, "wb") as fh:
                shutil.copyfileobj(resp, fh, 1 << 20)
        (staging / _COMPLETE).write_text(json.dumps({"repo_id": repo_id, "revision": revision, "files": names}))
        if target.exists():
            shutil.rmtree(target)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(staging, target)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return target
