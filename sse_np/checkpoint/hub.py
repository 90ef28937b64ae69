"""Downloading SSE checkpoints from the Hugging Face hub.

Built on ``huggingface_hub`` (installed with ``tokenizers``; imported only when
a download is asked for, so ``import sse_np`` stays fast). Files land in the
standard hub cache, shared with transformers, sentence-transformers and
``hf download``::

    $HF_HUB_CACHE (default $HF_HOME/hub, i.e. ~/.cache/huggingface/hub)
    └── models--owner--name/
        ├── blobs/<etag>                   file contents, shared across revisions
        ├── refs/<revision>                commit a branch or tag resolved to
        ├── snapshots/<commit>/<file>      symlinks into blobs/
        └── trees/<commit>.json            the file listing (huggingface_hub's)

Only the files the loader reads are fetched: ``*.json`` (config, tokenizer,
``modules.json``) and the weight files, at the root or in module folders such
as ``0_StaticEmbedding/``; never ``README.md`` or ``pytorch_model.bin``.
Sizes are checked against the repository listing. A connection cut mid-file
is resumed with a ``Range`` request (within the call; huggingface_hub keeps
what arrived in 10 MiB pieces), and files already complete are kept for the
next call. ``huggingface_hub`` reads its environment
once, at import, so the variables that matter here (``HF_ENDPOINT``,
``HF_TOKEN``, ``HF_HUB_OFFLINE``, ``HF_HOME``, ``HF_HUB_CACHE``,
``HF_HUB_ETAG_TIMEOUT``) are read at each call and passed explicitly.
"""

from __future__ import annotations

import fnmatch
import logging
import os
import re
import sys
from pathlib import Path, PurePosixPath

from .._version import __version__
from ..errors import MissingDependencyError, ModelLoadError, ModelNotFoundError
from .layout import FULL_FILE, Q4_FILE, REST_FILE

DEFAULT_ENDPOINT = "https://huggingface.co"
WEIGHT_FILES = (FULL_FILE, REST_FILE, Q4_FILE)
# huggingface_hub matches with fnmatch, where "*" also crosses "/": "*.json"
# takes JSON files in every folder and "*/model.safetensors" the weights of
# any module folder (modules.json may name any path, see layout.locate).
ALLOW_PATTERNS = ("*.json", *WEIGHT_FILES, *(f"*/{name}" for name in WEIGHT_FILES))

_COMMIT = re.compile(r"[0-9a-f]{40}")
_TRUE = {"1", "true", "yes", "on"}
_DEFAULT_TIMEOUT = 10.0
_log = logging.getLogger(__name__)


def _env_true(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in _TRUE


def default_cache_dir() -> Path:
    """The hub cache folder, read from the environment now.

    Returns
    -------
    Path
        ``$HF_HUB_CACHE``, else ``$HF_HOME/hub``, else
        ``$XDG_CACHE_HOME/huggingface/hub`` (``~/.cache/huggingface/hub``),
        as huggingface_hub itself resolves it.
    """
    explicit = os.environ.get("HF_HUB_CACHE") or os.environ.get("HUGGINGFACE_HUB_CACHE")
    if explicit:
        return Path(os.path.expandvars(explicit)).expanduser()
    home = os.environ.get("HF_HOME")
    if not home:
        home = os.path.join(os.environ.get("XDG_CACHE_HOME") or os.path.join("~", ".cache"), "huggingface")
    return Path(os.path.expandvars(home)).expanduser() / "hub"


def _wanted(name: str) -> bool:
    return any(fnmatch.fnmatchcase(name, pattern) for pattern in ALLOW_PATTERNS)


def _is_weight(name: str) -> bool:
    return PurePosixPath(name).name in WEIGHT_FILES


def _timeout() -> float:
    try:
        return float(os.environ.get("HF_HUB_ETAG_TIMEOUT") or _DEFAULT_TIMEOUT)
    except ValueError:
        return _DEFAULT_TIMEOUT


def _import_hub():
    try:
        # huggingface_hub resolves its top-level names lazily, but not its
        # submodules: ``hub.constants`` works only once something imported it
        # (in a test run, transformers had). Import every one used here.
        import huggingface_hub
        import huggingface_hub.constants
        import huggingface_hub.errors
    except ImportError:
        raise MissingDependencyError(
            "downloading from the Hugging Face hub needs the huggingface_hub package: "
            "pip install huggingface_hub (or load a local model folder by path)"
        ) from None
    return huggingface_hub


def _transport_errors(hub) -> tuple[type[BaseException], ...]:
    """Connection-level failures of whichever HTTP client this huggingface_hub uses."""
    found: list[type[BaseException]] = [ConnectionError, TimeoutError]
    for module, name in (("httpx2", "TransportError"), ("httpx", "TransportError"), ("requests", "RequestException")):
        cls = getattr(sys.modules.get(module), name, None)  # only clients already imported by huggingface_hub
        if isinstance(cls, type):
            found.append(cls)
    return tuple(found)


class _Context:
    """What every message needs: repository, revision, endpoint, where files go."""

    def __init__(self, repo_id: str, revision: str, endpoint: str, cache: Path, local_dir: Path | None):
        self.repo_id, self.revision, self.endpoint = repo_id, revision, endpoint
        self.cache, self.local_dir = cache, local_dir
        self.storage = cache / ("models--" + repo_id.replace("/", "--"))
        self.where = f"{repo_id}@{revision}"

    @property
    def target(self) -> Path:
        return self.local_dir if self.local_dir is not None else self.storage


def _hub_error(hub, exc: BaseException, ctx: _Context) -> ModelLoadError:
    """Turn a huggingface_hub / HTTP client exception into one clear sse_np error."""
    errors = hub.errors
    where, endpoint = ctx.where, ctx.endpoint
    if isinstance(exc, errors.RevisionNotFoundError):
        return ModelNotFoundError(
            f"{where}: no revision {ctx.revision!r} in {ctx.repo_id} on {endpoint}; check the branch, tag or commit"
        )
    if isinstance(exc, errors.GatedRepoError):
        return ModelNotFoundError(
            f"{where}: gated repository; accept its conditions at {endpoint}/{ctx.repo_id} "
            "and set HF_TOKEN to a token of that account"
        )
    if isinstance(exc, errors.RepositoryNotFoundError):
        return ModelNotFoundError(
            f"{where}: no repository {ctx.repo_id} on {endpoint}; check the name, or if it is private "
            "set HF_TOKEN to a token that can read it"
        )
    if isinstance(exc, getattr(errors, "RemoteEntryNotFoundError", ())):
        return ModelNotFoundError(f"{where}: a listed file is missing on {endpoint} ({_first_line(exc)})")
    if isinstance(exc, errors.HfHubHTTPError):
        status = getattr(getattr(exc, "response", None), "status_code", None)
        hint = "; check HF_TOKEN" if status in (401, 403) else ""
        return ModelNotFoundError(f"{where}: {endpoint} answered HTTP {status}{hint} ({_first_line(exc)})")
    if isinstance(exc, errors.OfflineModeIsEnabled):
        return ModelNotFoundError(
            f"{where}: not in the cache {ctx.target} and HF_HUB_OFFLINE was set when huggingface_hub was imported"
        )
    if isinstance(exc, _transport_errors(hub)):
        return ModelNotFoundError(
            f"{where}: cannot reach {endpoint} ({type(exc).__name__}: {_first_line(exc)}); "
            "check the network or proxy, or set HF_ENDPOINT to a reachable mirror"
        )
    if isinstance(exc, errors.HFValidationError):
        return ModelNotFoundError(f"{where}: not a valid hub repository id or revision ({_first_line(exc)})")
    return ModelLoadError(f"{where}: download from {endpoint} failed ({type(exc).__name__}: {_first_line(exc)})")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _unreachable(hub, exc: BaseException, ctx: _Context) -> str | None:
    """Why the hub is unusable right now (no connection, or 5xx), else None: then a cached copy serves."""
    if isinstance(exc, hub.errors.HfHubHTTPError):
        status = getattr(getattr(exc, "response", None), "status_code", 0) or 0
        return f"{ctx.endpoint} answered HTTP {status}" if status >= 500 else None
    if isinstance(exc, hub.errors.OfflineModeIsEnabled) or not isinstance(exc, _transport_errors(hub)):
        return None
    return f"cannot reach {ctx.endpoint} ({type(exc).__name__}: {_first_line(exc)})"


def _from_cache(hub, ctx: _Context, common: dict, reason: str, advice: str, strict: bool = False) -> Path:
    """The cached snapshot (or filled ``local_dir``) of this revision, without network.

    ``strict`` also requires the file listing cached at download time, which
    proves the folder holds exactly this revision (a ``local_dir`` may hold
    another one).
    """
    try:
        folder = hub.snapshot_download(ctx.repo_id, revision=ctx.revision, local_files_only=True, **common)
    except getattr(hub.errors, "IncompleteSnapshotError", ()) as exc:
        raise ModelNotFoundError(
            f"{ctx.where}: the cached copy in {ctx.target} is incomplete ({_first_line(exc)}) and {reason}; {advice}"
        ) from None
    except hub.errors.LocalEntryNotFoundError:
        raise ModelNotFoundError(f"{ctx.where}: not in the cache {ctx.target} and {reason}; {advice}") from None
    folder = Path(folder)
    sizes = _cached_sizes(hub, ctx, folder)
    if strict and not sizes:
        raise ModelNotFoundError(f"{ctx.where}: no cached file listing for {folder}")
    if not sizes and not any(p.name in WEIGHT_FILES for p in folder.rglob("*")):
        # No cached listing to check against (older huggingface_hub): at least a weight file.
        raise ModelNotFoundError(f"{ctx.where}: the cached copy in {folder} has no weight files and {reason}; {advice}")
    _verify(folder, sizes, ctx)
    return folder


def _cached_sizes(hub, ctx: _Context, folder: Path) -> dict[str, int | None]:
    """Expected sizes from the listing huggingface_hub cached at download time (empty if none)."""
    commit = folder.name if ctx.local_dir is None else _read_ref(ctx)
    get_tree = getattr(hub, "get_cached_repo_tree", None)  # huggingface_hub >= 1.x
    if get_tree is None or commit is None:
        return {}
    try:
        files = get_tree(ctx.repo_id, revision=commit, cache_dir=ctx.cache, local_dir=ctx.local_dir)
    except (getattr(hub.errors, "CachedRepoTreeNotFoundError", OSError), OSError, ValueError):
        return {}  # no cached listing (written by an older huggingface_hub): nothing to compare with
    return {f.path: f.size for f in files if _wanted(f.path)}


def _read_ref(ctx: _Context) -> str | None:
    if _COMMIT.fullmatch(ctx.revision):
        return ctx.revision
    try:
        return (ctx.storage / "refs" / ctx.revision).read_text().strip() or None
    except OSError:
        return None


def _write_ref(ctx: _Context, commit: str) -> None:
    """Record ``refs/<revision>`` -> commit, atomically, as huggingface_hub does."""
    if ctx.revision == commit:
        return
    ref = ctx.storage / "refs" / ctx.revision
    try:
        if ref.is_file() and ref.read_text() == commit:
            return
        ref.parent.mkdir(parents=True, exist_ok=True)
        tmp = ref.with_name(f".{ref.name}.{os.getpid()}.tmp")
        tmp.write_text(commit)
        os.replace(tmp, ref)
    except OSError as exc:  # a read-only cache still serves the snapshot we just verified
        _log.warning("%s: could not record %s (%s)", ctx.where, ref, exc)


def _listing_sizes(info) -> dict[str, int | None]:
    """``rfilename -> size`` for every file of a ``model_info(files_metadata=True)`` answer."""
    sizes: dict[str, int | None] = {}
    for sibling in info.siblings or []:
        lfs = getattr(sibling, "lfs", None)
        size = getattr(lfs, "size", None) if lfs is not None else None
        sizes[sibling.rfilename] = size if size is not None else getattr(sibling, "size", None)
    return sizes


def _discard(path: Path) -> None:
    """Remove a bad file; in the cache also the blob its snapshot link points to."""
    blob = path.resolve() if path.is_symlink() else None
    path.unlink(missing_ok=True)
    if blob is not None and blob.parent.name == "blobs":
        blob.unlink(missing_ok=True)


def _verify(folder: Path, sizes: dict[str, int | None], ctx: _Context) -> None:
    """Refuse a missing file or one whose size differs from the repository listing."""
    for name, expected in sorted(sizes.items()):
        path = folder / name
        if not path.is_file():
            raise ModelLoadError(f"{ctx.where}: {name} is missing from {folder}; run the download again")
        actual = path.stat().st_size
        if expected is not None and actual != expected:
            _discard(path)
            raise ModelLoadError(
                f"{ctx.where}: {name} has {actual} bytes but the repository listing says {expected}; "
                f"the file was removed from {folder}. Run the download again; if it persists, "
                "the hub or mirror (HF_ENDPOINT) serves inconsistent files"
            )


def _fetch(hub, ctx: _Context, commit: str, sizes: dict[str, int | None], common: dict, force: bool) -> Path:
    """Download the wanted files of ``commit``; errors name the files that did not arrive."""
    folder = ctx.local_dir if ctx.local_dir is not None else ctx.storage / "snapshots" / commit
    try:
        folder = Path(hub.snapshot_download(ctx.repo_id, revision=commit, force_download=force, **common))
    except Exception as exc:
        missing = [name for name in sorted(sizes) if not (folder / name).is_file()]
        what = ", ".join(missing) or "the model files"
        match = re.search(r"should be of size (\d+) but has size (\d+)", str(exc))
        if match:  # huggingface_hub's own check against the announced size
            raise ModelLoadError(
                f"{ctx.where}: {what}: received {match.group(2)} bytes of {match.group(1)} from {ctx.endpoint}; "
                "the partial file was discarded. Run the download again"
            ) from None
        lost = exc.__cause__ if isinstance(exc, hub.errors.LocalEntryNotFoundError) and exc.__cause__ else exc
        if isinstance(lost, _transport_errors(hub)) and not isinstance(lost, hub.errors.OfflineModeIsEnabled):
            # The hub answered the listing, then went away (after huggingface_hub's own retries).
            raise ModelNotFoundError(
                f"{ctx.where}: lost {ctx.endpoint} during the download ({type(lost).__name__}: {_first_line(lost)}); "
                f"not fetched: {what}. Completed files are kept: run the download again to finish"
            ) from None
        error = _hub_error(hub, exc, ctx)
        raise type(error)(f"{error}; not fetched: {what}") from None
    _verify(folder, sizes, ctx)
    return folder


def download(
    repo_id: str,
    *,
    revision: str = "main",
    cache_dir: str | os.PathLike | None = None,
    local_dir: str | os.PathLike | None = None,
    endpoint: str | None = None,
    token: str | None = None,
    force: bool = False,
) -> Path:
    """Fetch the files of an SSE model repository from the Hugging Face hub.

    Online, one metadata request resolves ``revision`` to a commit and lists
    the files with their sizes; files already in the cache are not fetched
    again. If the hub cannot be reached (or answers 5xx), the cached copy of
    ``revision`` is used. With ``HF_HUB_OFFLINE=1`` no request is made at all.

    Parameters
    ----------
    repo_id : str
        ``"owner/name"`` on the hub.
    revision : str
        Branch, tag or full commit hash (default ``"main"``). A commit hash
        already in the cache is served without any request.
    cache_dir : path, optional
        Hub cache folder (default :func:`default_cache_dir`: ``$HF_HUB_CACHE``,
        else ``$HF_HOME/hub``, else ``~/.cache/huggingface/hub``).
    local_dir : path, optional
        Put plain copies of the files in this folder and return it, instead
        of returning the snapshot folder of the cache.
    endpoint : str, optional
        Hub address (default ``$HF_ENDPOINT``, else https://huggingface.co).
    token : str, optional
        Access token for private or gated repositories (default ``$HF_TOKEN``,
        else the token saved by ``hf auth login``).
    force : bool
        Download the files again even if cached.

    Returns
    -------
    Path
        The local folder (``snapshots/<commit>`` of the cache, or
        ``local_dir``), loadable with :func:`sse_np.load`.

    Raises
    ------
    sse_np.ModelNotFoundError
        Unknown repository or revision, no access, no SSE weight files, the hub
        unreachable (or ``HF_HUB_OFFLINE`` set) and no cached copy; the message
        names the repository, revision and what to do.
    sse_np.ModelLoadError
        A file arrived truncated or with a size other than the listing's; the
        message names the file, and the bad copy is not kept.
    sse_np.MissingDependencyError
        ``huggingface_hub`` is not installed.

    Notes
    -----
    The environment is read at each call: ``HF_ENDPOINT``, ``HF_TOKEN``,
    ``HF_HUB_OFFLINE``, ``HF_HUB_CACHE`` / ``HF_HOME`` and
    ``HF_HUB_ETAG_TIMEOUT`` (seconds to wait for the metadata answer,
    default 10).
    """
    hub = _import_hub()
    revision = revision or "main"
    endpoint = (endpoint or os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT).rstrip("/")
    token = token or os.environ.get("HF_TOKEN") or None  # None: huggingface_hub's saved login, if any
    cache = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    local = Path(local_dir).expanduser() if local_dir is not None else None
    ctx = _Context(repo_id, revision, endpoint, cache, local)
    common = dict(
        cache_dir=cache,
        local_dir=local,
        endpoint=endpoint,
        token=token,
        allow_patterns=list(ALLOW_PATTERNS),
        library_name="sse_np",
        library_version=__version__,
    )

    offline = _env_true("HF_HUB_OFFLINE") or _env_true("TRANSFORMERS_OFFLINE") or hub.constants.is_offline_mode()
    if offline:
        if force:
            raise ModelNotFoundError(f"{ctx.where}: force=True needs the network but HF_HUB_OFFLINE is set")
        return _from_cache(hub, ctx, common, "HF_HUB_OFFLINE is set", "unset HF_HUB_OFFLINE to download it")

    if _COMMIT.fullmatch(revision) and not force:
        try:  # a commit never changes: a complete cached copy needs no request
            return _from_cache(hub, ctx, common, "", "", strict=True)
        except ModelLoadError:
            pass

    try:
        # Our own metadata request, with a timeout: huggingface_hub's would wait
        # without limit on a hub that accepts connections but never answers.
        info = hub.HfApi(endpoint=endpoint, token=token, library_name="sse_np", library_version=__version__).model_info(
            repo_id, revision=revision, files_metadata=True, timeout=_timeout()
        )
    except Exception as exc:
        reason = _unreachable(hub, exc, ctx)
        if reason is None:
            raise _hub_error(hub, exc, ctx) from None
        advice = "check the network or proxy, or set HF_ENDPOINT to a reachable mirror"
        folder = _from_cache(hub, ctx, common, reason, advice)
        _log.warning("%s: %s; using the cached copy %s", ctx.where, reason, folder)
        return folder

    if not info.sha:
        raise ModelNotFoundError(f"{ctx.where}: {endpoint} answered without a commit hash; is HF_ENDPOINT a hub?")
    sizes = {name: size for name, size in _listing_sizes(info).items() if _wanted(name)}
    if not any(_is_weight(name) for name in sizes):
        found = sorted(_listing_sizes(info))[:12]
        raise ModelNotFoundError(
            f"{ctx.where}: the repository has no SSE weight files ({FULL_FILE}, or {REST_FILE} + {Q4_FILE}, "
            f"at the root or in a module folder); it holds {found}"
        )
    folder = _fetch(hub, ctx, info.sha, sizes, common, force)
    _write_ref(ctx, info.sha)
    return folder
