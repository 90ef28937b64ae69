"""A fake Hugging Face hub on 127.0.0.1, for download tests without network.

It answers the requests huggingface_hub's ``snapshot_download`` and
``HfApi.model_info`` make, with the headers they read:

* ``GET /api/models/{repo}/revision/{rev}[?blobs=true]`` -> ``{"id", "sha",
  "siblings"}`` (with ``size``/``blobId``/``lfs`` when ``blobs``);
* ``GET /api/models/{repo}/tree/{rev}?recursive=true`` -> files and folders;
* ``HEAD|GET /{repo}/resolve/{rev}/{path}``: small files directly (``ETag`` =
  git blob sha1, ``X-Repo-Commit``, ``Content-Length``); weight files as LFS,
  a 302 to a CDN on another port with ``X-Linked-Etag`` (sha256) and
  ``X-Linked-Size``, like the real hub;
* CDN ``GET /blobs/{sha256}``, honouring ``Range: bytes=N-`` (206).

Errors carry the hub's ``X-Error-Code``: unknown or private repository 401
``RepoNotFound``, gated 403 ``GatedRepo``, unknown revision 404
``RevisionNotFound``, unknown file 404 ``EntryNotFound``.

Faults, keyed by file path: ``truncate[path] = k`` serves k bytes less with a
matching ``Content-Length`` (a broken mirror); ``drop_after[path] = n`` sends
the full ``Content-Length`` but closes the connection after n bytes, once;
``listed_size[path] = n`` makes both listings lie. ``log`` records every
request as ``(server, method, path, headers)`` with lower-case header names.
"""

from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

LFS_SUFFIXES = (".safetensors", ".bin", ".onnx")


def git_blob_sha1(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\x00" % len(data) + data).hexdigest()


def lfs_pointer(data: bytes) -> bytes:
    digest = hashlib.sha256(data).hexdigest()
    return f"version https://git-lfs.github.com/spec/v1\noid sha256:{digest}\nsize {len(data)}\n".encode()


def read_folder(folder: Path) -> dict[str, bytes]:
    """All files under ``folder``, keyed by their POSIX path relative to it."""
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@dataclass
class Request:
    server: str
    method: str
    path: str
    headers: dict[str, str]


@dataclass
class Repo:
    refs: dict[str, str] = field(default_factory=dict)  # branch or tag -> commit
    commits: dict[str, dict[str, bytes]] = field(default_factory=dict)
    token: str | None = None  # private: only this bearer token may read
    gated: bool = False


class FakeHub:
    """Two HTTP servers (hub + CDN) on 127.0.0.1 serving in-memory repositories."""

    def __init__(self) -> None:
        self.repos: dict[str, Repo] = {}
        self.log: list[Request] = []
        self.truncate: dict[str, int] = {}
        self.drop_after: dict[str, int] = {}
        self.listed_size: dict[str, int] = {}
        self._blobs: dict[str, tuple[str, bytes]] = {}  # sha256 -> (path, data)
        self._lock = threading.Lock()
        self._hub = ThreadingHTTPServer(("127.0.0.1", 0), self._handler("hub"))
        self._cdn = ThreadingHTTPServer(("127.0.0.1", 0), self._handler("cdn"))
        self.endpoint = f"http://127.0.0.1:{self._hub.server_port}"
        self.cdn = f"http://127.0.0.1:{self._cdn.server_port}"
        for server in (self._hub, self._cdn):  # short poll: shutdown() returns quickly
            threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True).start()

    # ------------------------------------------------------------------ setup
    def add_commit(self, repo_id: str, files: dict[str, bytes] | Path, *, ref: str | None = "main", **repo_opts) -> str:
        """Add a commit holding ``files``; point ``ref`` (branch or tag) at it. Returns the commit hash."""
        if isinstance(files, Path):
            files = read_folder(files)
        repo = self.repos.setdefault(repo_id, Repo(**repo_opts))
        for key, value in repo_opts.items():
            setattr(repo, key, value)
        manifest = "".join(f"{name}\0{git_blob_sha1(data)}\n" for name, data in sorted(files.items()))
        commit = hashlib.sha1(f"{repo_id}\n{len(repo.commits)}\n{manifest}".encode()).hexdigest()
        repo.commits[commit] = dict(files)
        if ref is not None:
            repo.refs[ref] = commit
        for name, data in files.items():
            if name.endswith(LFS_SUFFIXES):
                self._blobs[hashlib.sha256(data).hexdigest()] = (name, data)
        return commit

    def close(self) -> None:
        for server in (self._hub, self._cdn):
            server.shutdown()
            server.server_close()

    def __enter__(self) -> FakeHub:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def requests(self, server: str | None = None, method: str | None = None) -> list[Request]:
        with self._lock:
            return [r for r in self.log if server in (None, r.server) and method in (None, r.method)]

    # ---------------------------------------------------------------- serving
    def _handler(self, server_name: str):
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_HEAD(self):
                hub._dispatch(self, server_name, head=True)

            def do_GET(self):
                hub._dispatch(self, server_name, head=False)

        return Handler

    def _dispatch(self, h: BaseHTTPRequestHandler, server: str, head: bool) -> None:
        with self._lock:
            self.log.append(Request(server, h.command, h.path, {k.lower(): v for k, v in h.headers.items()}))
        url = urlsplit(h.path)
        parts = url.path.split("/")
        if server == "cdn":
            if len(parts) == 3 and parts[1] == "blobs" and parts[2] in self._blobs:
                name, data = self._blobs[parts[2]]
                return self._send_file(h, name, data, head, {"ETag": f'"{parts[2]}"'})
            return self._error(h, 404, "NotFound", "no such blob")
        if parts[1:3] == ["api", "models"] and len(parts) >= 7 and parts[5] in ("revision", "tree"):
            repo_id = f"{unquote(parts[3])}/{unquote(parts[4])}"
            commit = self._check_access(h, repo_id, unquote(parts[6]))
            if commit is None:
                return
            query = parse_qs(url.query)
            flag = "blobs" if parts[5] == "revision" else "recursive"
            on = query.get(flag, [""])[0].lower() in ("1", "true")
            if parts[5] == "revision":
                return self._json(h, self._model_info(repo_id, commit, blobs=on))
            return self._json(h, self._tree(repo_id, commit, recursive=on))
        if len(parts) >= 6 and parts[3] == "resolve":
            repo_id = f"{unquote(parts[1])}/{unquote(parts[2])}"
            commit = self._check_access(h, repo_id, unquote(parts[4]))
            if commit is None:
                return
            name = unquote("/".join(parts[5:]))
            files = self.repos[repo_id].commits[commit]
            if name not in files:
                return self._error(h, 404, "EntryNotFound", f"{name} does not exist", {"X-Repo-Commit": commit})
            data = files[name]
            if name.endswith(LFS_SUFFIXES):
                digest = hashlib.sha256(data).hexdigest()
                h.send_response(302)
                for key, value in {
                    "Location": f"{self.cdn}/blobs/{digest}",
                    "X-Repo-Commit": commit,
                    "X-Linked-Etag": f'"{digest}"',
                    "X-Linked-Size": str(len(data)),
                    "ETag": f'"{git_blob_sha1(lfs_pointer(data))}"',
                    "Content-Length": "0",
                }.items():
                    h.send_header(key, value)
                h.end_headers()
                return
            return self._send_file(h, name, data, head, {"ETag": f'"{git_blob_sha1(data)}"', "X-Repo-Commit": commit})
        return self._error(h, 404, None, "not found")

    def _check_access(self, h, repo_id: str, revision: str) -> str | None:
        """The commit ``revision`` names, or None after answering with the hub's error."""
        repo = self.repos.get(repo_id)
        auth = h.headers.get("Authorization")
        if repo is None or (repo.token is not None and auth != f"Bearer {repo.token}"):
            self._error(h, 401, "RepoNotFound", "Repository not found")
            return None
        if repo.gated and auth is None:
            self._error(h, 403, "GatedRepo", f"Access to model {repo_id} is restricted. You must have access to it.")
            return None
        commit = repo.refs.get(revision, revision if revision in repo.commits else None)
        if commit is None:
            self._error(h, 404, "RevisionNotFound", f"Invalid rev id: {revision}")
        return commit

    def _size(self, name: str, data: bytes) -> int:
        return self.listed_size.get(name, len(data))

    def _lfs(self, name: str, data: bytes) -> dict:
        return {"size": self._size(name, data), "pointerSize": len(lfs_pointer(data))}

    def _model_info(self, repo_id: str, commit: str, *, blobs: bool) -> dict:
        siblings = []
        for name, data in sorted(self.repos[repo_id].commits[commit].items()):
            entry: dict = {"rfilename": name}
            if blobs:
                entry.update(blobId=git_blob_sha1(data), size=self._size(name, data))
                if name.endswith(LFS_SUFFIXES):
                    entry["lfs"] = {**self._lfs(name, data), "sha256": hashlib.sha256(data).hexdigest()}
            siblings.append(entry)
        repo = self.repos[repo_id]
        return {
            "_id": commit[:24],
            "id": repo_id,
            "modelId": repo_id,
            "sha": commit,
            "private": repo.token is not None,
            "gated": "auto" if repo.gated else False,
            "disabled": False,
            "tags": [],
            "siblings": siblings,
        }

    def _tree(self, repo_id: str, commit: str, *, recursive: bool) -> list[dict]:
        entries, folders = [], set()
        for name, data in sorted(self.repos[repo_id].commits[commit].items()):
            parents = name.split("/")[:-1]
            if parents and not recursive:
                folders.add(parents[0])
                continue
            folders.update("/".join(parents[: i + 1]) for i in range(len(parents)))
            entry = {"type": "file", "oid": git_blob_sha1(data), "size": self._size(name, data), "path": name}
            if name.endswith(LFS_SUFFIXES):
                entry["oid"] = git_blob_sha1(lfs_pointer(data))
                entry["lfs"] = {**self._lfs(name, data), "oid": hashlib.sha256(data).hexdigest()}
            entries.append(entry)
        dirs = [
            {"type": "directory", "oid": hashlib.sha1(d.encode()).hexdigest(), "size": 0, "path": d}
            for d in sorted(folders)
        ]
        return dirs + entries

    def _json(self, h, payload) -> None:
        body = json.dumps(payload).encode()
        h.send_response(200)
        h.send_header("Content-Type", "application/json; charset=utf-8")
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        h.wfile.write(body)

    def _error(self, h, status: int, code: str | None, message: str, extra: dict | None = None) -> None:
        body = json.dumps({"error": message}).encode()
        h.send_response(status)
        if code:
            h.send_header("X-Error-Code", code)
        h.send_header("X-Error-Message", message)
        for key, value in (extra or {}).items():
            h.send_header(key, value)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        if h.command != "HEAD":
            h.wfile.write(body)

    def _send_file(self, h, name: str, data: bytes, head: bool, extra: dict) -> None:
        start = 0
        wanted = h.headers.get("Range")
        if wanted and wanted.startswith("bytes=") and wanted.endswith("-"):
            start = int(wanted[len("bytes=") : -1])
        body = data[start:]
        with self._lock:
            cut = None if head else self.truncate.get(name)
            drop = None if head else self.drop_after.pop(name, None)
        if cut:
            body = body[: max(len(body) - cut, 0)]
        h.send_response(206 if start else 200)
        if start:
            h.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        h.send_header("Content-Length", str(len(body)))
        h.send_header("Accept-Ranges", "bytes")
        h.send_header("Content-Type", "application/octet-stream")
        for key, value in extra.items():
            h.send_header(key, value)
        h.end_headers()
        if head:
            return
        if drop is not None:  # announce everything, send part, hang up
            h.wfile.write(body[:drop])
            h.wfile.flush()
            h.close_connection = True
            return
        h.wfile.write(body)
