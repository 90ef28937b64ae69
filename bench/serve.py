"""HTTP serving benchmark: ``sse-np serve`` against sentence-transformers behind the same stack.

Usage (from the repository root; needs ``wrk`` -- ``apt-get install wrk`` --
and ``pip install -e ".[serve]" -r bench/requirements.txt``)::

    python bench/serve.py                 # ~9 minutes on 2 cores; writes bench/results/SERVE_RESULTS.md
                                          # and serve_results.json
    python bench/serve.py --quick         # smoke run (~2 minutes; numbers meaningless)
    python bench/serve.py --render        # rewrite SERVE_RESULTS.md from serve_results.json

Servers (all on 127.0.0.1, started once, measured interleaved round after round so that
load from elsewhere on the machine hits every server alike):

* ``sse_np``: ``sse-np serve`` as it comes (numba back-end; small requests encoded on the event loop and
  micro-batched, larger ones in the thread pool);
* ``sse_np pool-only``: ``--inline-chars 0``: every request encoded in the thread pool;
* ``sse_np inline-no-batching``: ``--no-batching``: small requests on the event loop, one call each;
* ``sse_np stdlib-json``: the same with orjson hidden (float responses by the standard library);
* ``sse_np h11``: the same with httptools and uvloop hidden (uvicorn's pure-Python HTTP parser);
* ``sentence-transformers``: the same weights as a StaticEmbedding + DyT SentenceTransformer
  behind the same starlette + uvicorn stack, encoding in starlette's thread pool
  (``run_in_threadpool``), usage from its tokenizer, responses through the same serializer
  -- the server a user would otherwise write; ``torch.set_num_threads(1)`` (the variant
  ``sentence-transformers 2 torch threads`` measured no better: 0.8-1.0x).

Cases: one query per request at concurrency 1, 8 and 64; 32 queries per request at
concurrency 8. Queries are the real ones in ``../shared/data/*/queries.jsonl``. ``wrk``
(one thread, keep-alive connections) sends the requests, cycling through the bodies;
CPU per request is the server process's utime+stime (``/proc/<pid>/stat``) over the run
divided by the requests answered.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"

LUA = r"""
local bodies = {}
for line in io.lines(os.getenv("BODIES")) do bodies[#bodies + 1] = line end
local i = 0
request = function()
  i = i % #bodies + 1
  return wrk.format("POST", "/v1/embeddings", {["Content-Type"] = "application/json"}, bodies[i])
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'RESULT {"requests": %d, "duration_us": %d, "p50_us": %d, "p99_us": %d, "mean_us": %.1f, ' ..
    '"errors": %d, "non2xx": %d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99), latency.mean,
    e.connect + e.read + e.write + e.timeout, e.status))
end
"""

CASES = [  # (name, texts per request, connections)
    ("1 text, c=1", 1, 1),
    ("1 text, c=8", 1, 8),
    ("1 text, c=64", 1, 64),
    ("32 texts, c=8", 32, 8),
]


# --------------------------------------------------------------------------- the sentence-transformers server


def st_app(model_dir: str, torch_threads: int) -> Any:
    """The same weights through sentence-transformers, served by starlette (what a user would write)."""
    import numpy as np
    import torch
    from safetensors.numpy import load_file
    from sentence_transformers import SentenceTransformer
    from starlette.applications import Starlette
    from starlette.concurrency import run_in_threadpool
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route
    from tokenizers import Tokenizer

    sys.path.insert(0, str(REPO))
    from bench.engines import _make_dyt_module

    try:
        from sentence_transformers.sentence_transformer.modules import StaticEmbedding
    except ImportError:  # sentence-transformers < 6
        from sentence_transformers.models import StaticEmbedding
    try:
        from sentence_transformers.base.modules.module import Module as STModule
    except ImportError:
        STModule = torch.nn.Module
    from sse_np.serve.protocol import (
        dumps as _dumps,
    )  # the same serializer as sse_np's server: compare engines, not JSON

    torch.set_num_threads(torch_threads)
    tensors = load_file(str(Path(model_dir) / "model.safetensors"))
    tokenizer = Tokenizer.from_file(str(Path(model_dir) / "tokenizer.json"))
    static = StaticEmbedding(tokenizer, embedding_weights=tensors["embedding.weight"].astype(np.float32))
    dyt = _make_dyt_module(torch, STModule)(
        *(tensors[f"dyt.{k}"].astype(np.float32) for k in ("alpha", "beta", "bias"))
    )
    model = SentenceTransformer(modules=[static, dyt], device="cpu").eval()
    counter = Tokenizer.from_file(str(Path(model_dir) / "tokenizer.json"))
    counter.no_padding()

    def work(texts: list[str], dim: int | None) -> tuple[Any, int]:
        vectors = model.encode(
            texts,
            batch_size=max(1, len(texts)),
            truncate_dim=dim,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        tokens = sum(len(e.ids) for e in counter.encode_batch(texts, add_special_tokens=False))
        return vectors, tokens

    async def embeddings(request: Request) -> Response:
        body = await request.json()
        texts = body["input"] if isinstance(body["input"], list) else [body["input"]]
        vectors, tokens = await run_in_threadpool(work, texts, body.get("dimensions"))
        data = [{"object": "embedding", "index": i, "embedding": v} for i, v in enumerate(vectors)]
        return Response(
            _dumps(
                {
                    "object": "list",
                    "data": data,
                    "model": body.get("model", "st"),
                    "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
                }
            ),
            media_type="application/json",
        )

    async def health(request: Request) -> Response:
        return Response(b'{"status":"ok"}', media_type="application/json")

    work(["warm up"], None)
    return Starlette(
        routes=[Route("/v1/embeddings", embeddings, methods=["POST"]), Route("/health", health, methods=["GET"])]
    )


# --------------------------------------------------------------------------- driver


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


class Server:
    def __init__(self, label: str, argv: list[str], env: dict[str, str] | None = None) -> None:
        import urllib.request

        self.label = label
        self.port = _free_port()
        self.proc = subprocess.Popen(
            [*argv, "--port", str(self.port)],
            env={**os.environ, **(env or {})},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 180  # a first numba compile takes ~40 s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{label} exited: {self.proc.stderr.read().decode()[-2000:]}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/health", timeout=1) as resp:
                    if resp.status == 200:
                        return
            except OSError:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"{label} did not start in 180 s")

    def post(self, body: dict) -> dict:
        import urllib.request

        req = urllib.request.Request(
            f"http://127.0.0.1:{self.port}/v1/embeddings",
            json.dumps(body).encode(),
            {"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=30) as resp:
            return json.loads(resp.read())

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def _queries() -> list[str]:
    texts = []
    for path in sorted(DATA.glob("*/queries.jsonl")):
        with path.open(encoding="utf-8") as fh:
            texts += [json.loads(line)["text"] for line in fh]
    if not texts:
        raise SystemExit(f"no queries under {DATA}/*/queries.jsonl")
    return texts


def _bodies(queries: list[str], per_request: int, folder: Path, n: int = 1000) -> Path:
    path = folder / f"bodies-{per_request}.jsonl"
    with path.open("w", encoding="utf-8") as fh:
        for i in range(n):
            chunk = [queries[(i * per_request + j) % len(queries)] for j in range(per_request)]
            body = {"model": "sse", "input": chunk[0] if per_request == 1 else chunk, "encoding_format": "float"}
            fh.write(json.dumps(body, ensure_ascii=False) + "\n")
    return path


def _wrk(server: Server, bodies: Path, connections: int, seconds: float, script: Path) -> dict[str, Any]:
    cpu0 = _cpu_seconds(server.proc.pid)
    proc = subprocess.run(
        [
            "wrk",
            "-t1",
            f"-c{connections}",
            f"-d{max(1, round(seconds))}s",
            "--timeout",
            "10s",
            "-s",
            str(script),
            f"http://127.0.0.1:{server.port}",
        ],
        env={**os.environ, "BODIES": str(bodies)},
        capture_output=True,
        text=True,
        timeout=seconds + 60,
    )
    cpu = _cpu_seconds(server.proc.pid) - cpu0
    line = next((row for row in proc.stdout.splitlines() if row.startswith("RESULT ")), None)
    if line is None:
        raise RuntimeError(f"wrk failed: {proc.stdout}\n{proc.stderr}")
    out = json.loads(line[len("RESULT ") :])
    out["rps"] = out["requests"] / (out["duration_us"] / 1e6)
    out["cpu_ms_per_request"] = 1000 * cpu / max(1, out["requests"])
    return out


def _check_same_vectors(servers: list[Server], queries: list[str]) -> float:
    import numpy as np

    body = {"model": "sse", "input": queries[:64], "encoding_format": "float"}
    got = [np.array([d["embedding"] for d in s.post(body)["data"]], dtype=np.float32) for s in servers]
    worst = max(float(np.abs(g - got[0]).max()) for g in got)
    if worst > 1e-5:
        raise SystemExit(f"servers disagree: max |diff| {worst}")
    return worst


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=str(REPO / "weights"), help="model folder (default: weights/)")
    parser.add_argument("--duration", type=float, default=6.0, help="seconds per wrk run (default: 6)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default: 3)")
    parser.add_argument("--quick", action="store_true", help="smoke run: 2 s runs, one round")
    parser.add_argument("--out", default=str(REPO / "bench" / "results" / "SERVE_RESULTS.md"))
    parser.add_argument(
        "--servers",
        default="sse_np,sse_np pool-only,sse_np inline-no-batching,sse_np stdlib-json,sse_np h11,sentence-transformers",
        help="comma-separated subset of the servers",
    )
    parser.add_argument("--cases", default=None, help="comma-separated case indices (default: all)")
    parser.add_argument("--render", action="store_true", help="only rewrite OUT from serve_results.json beside it")
    sub = parser.add_subparsers(dest="cmd")
    p_st = sub.add_parser("st-server", help="(internal) run the sentence-transformers server")
    p_st.add_argument("--port", type=int, required=True)
    p_st.add_argument("--torch-threads", type=int, default=1)
    args = parser.parse_args(argv)

    if args.cmd == "st-server":
        import uvicorn

        uvicorn.run(
            st_app(args.model, args.torch_threads),
            host="127.0.0.1",
            port=args.port,
            log_level="warning",
            access_log=False,
        )
        return 0

    if args.render:
        out = Path(args.out)
        out.write_text(render(json.loads(out.with_name("serve_results.json").read_text())))
        return 0
    if args.quick:
        args.duration, args.rounds = 2.0, 1
    cases = CASES if args.cases is None else [CASES[int(i)] for i in args.cases.split(",")]
    wanted = args.servers.split(",")
    sse = [
        sys.executable,
        "-m",
        "sse_np",
        "serve",
        "--model",
        f"sse={args.model}",
        "--backend",
        "numba",
        "--log-level",
        "warning",
    ]

    def hiding(*modules: str) -> list[str]:  # the same server with optional speed-ups made unimportable
        hide = "".join(f"sys.modules[{m!r}] = None; " for m in modules)
        return [
            sys.executable,
            "-c",
            f"import sys; {hide}from sse_np.cli import main; sys.exit(main(sys.argv[1:]))",
            *sse[3:],
        ]

    specs = {
        "sse_np": (sse, None),
        "sse_np pool-only": ([*sse, "--inline-chars", "0"], None),
        "sse_np inline-no-batching": ([*sse, "--no-batching"], None),
        "sse_np stdlib-json": (hiding("orjson"), None),
        "sse_np h11": (hiding("httptools", "uvloop"), None),
        "sentence-transformers": (
            [sys.executable, str(Path(__file__).resolve()), "--model", args.model, "st-server"],
            None,
        ),
        "sentence-transformers 2 torch threads": (
            [sys.executable, str(Path(__file__).resolve()), "--model", args.model, "st-server", "--torch-threads", "2"],
            None,
        ),
    }
    queries = _queries()
    servers: list[Server] = []
    try:
        for label in wanted:
            argv_, env = specs[label]
            print(f"starting {label} ...", file=sys.stderr, flush=True)
            servers.append(Server(label, argv_, env))
        worst = _check_same_vectors(servers, queries)
        print(f"servers agree (max |diff| {worst:.2e})", file=sys.stderr)
        results: dict[str, dict[str, list[dict]]] = {s.label: {c[0]: [] for c in cases} for s in servers}
        with tempfile.TemporaryDirectory() as tmp:
            script = Path(tmp) / "post.lua"
            script.write_text(LUA)
            bodies = {n: _bodies(queries, n, Path(tmp)) for n in {1} | {c[1] for c in cases}}
            for server in servers:  # warm every code path once (JIT, caches, pools)
                _wrk(server, bodies[1], 8, 1, script)
            for rnd in range(args.rounds):
                for name, per_request, conns in cases:
                    order = servers if rnd % 2 == 0 else servers[::-1]
                    for server in order:
                        r = _wrk(server, bodies[per_request], conns, args.duration, script)
                        results[server.label][name].append(r)
                        print(
                            f"round {rnd + 1} {name:<14} {server.label:<22} {r['rps']:9.0f} req/s  "
                            f"p50 {r['p50_us'] / 1000:7.2f} ms  p99 {r['p99_us'] / 1000:7.2f} ms  "
                            f"cpu {r['cpu_ms_per_request']:.3f} ms/req  errors {r['errors'] + r['non2xx']}",
                            file=sys.stderr,
                            flush=True,
                        )
    finally:
        for server in servers:
            server.stop()
    report = {
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "duration_s": args.duration,
        "rounds": args.rounds,
        "cases": [c[0] for c in cases],
        "results": results,
    }
    out = Path(args.out)
    out.with_name("serve_results.json").write_text(json.dumps(report, indent=1) + "\n")
    out.write_text(render(report))
    print(f"wrote {out} and {out.with_name('serve_results.json')}", file=sys.stderr)
    return 0


def _median(runs: list[dict], key: str) -> float:
    return statistics.median(r[key] for r in runs)


def render(report: dict[str, Any]) -> str:
    results = report["results"]
    peer = "sentence-transformers"
    lines = [
        "# Serving benchmark (`bench/serve.py`)",
        "",
        f"{report['date']}, {report['machine']['cpus']} cores shared with other work (figures are noisy: the",
        f"servers ran interleaved, {report['rounds']} round(s) of {report['duration_s']:g} s per case and server;",
        "medians shown, ratios against sentence-transformers measured in the same rounds).",
        "`wrk -t1` on loopback, keep-alive; `POST /v1/embeddings` with real queries from",
        "`../shared/data/*/queries.jsonl`, `encoding_format: float`, full 512 dimensions; default model `weights/`.",
        "CPU = server process utime+stime per request answered.",
        "",
        "| case | server | req/s | p50 ms | p99 ms | CPU ms/req | errors | req/s vs ST |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for case in report["cases"]:
        base = _median(results[peer][case], "rps") if peer in results else None
        for label, by_case in results.items():
            runs = by_case[case]
            rps = _median(runs, "rps")
            errors = sum(r["errors"] + r["non2xx"] for r in runs)
            ratio = f"{rps / base:.1f}x" if base else "-"
            lines.append(
                f"| {case} | {label} | {rps:,.0f} | {_median(runs, 'p50_us') / 1000:.2f} | "
                f"{_median(runs, 'p99_us') / 1000:.2f} | {_median(runs, 'cpu_ms_per_request'):.3f} | "
                f"{errors} | {ratio} |"
            )
    lines += ["", "## Reading", ""]

    def ratio(a: str, b: str, case: str, key: str = "rps") -> str:
        if a not in results or b not in results:
            return "n/a"
        return f"{_median(results[a][case], key) / _median(results[b][case], key):.2f}x"

    for case in report["cases"]:
        if case.startswith("1 text") and "sse_np" in results:
            lines.append(
                f"* {case}: micro-batching (sse_np vs inline-no-batching) "
                f"{ratio('sse_np', 'sse_np inline-no-batching', case)} "
                f"req/s, {ratio('sse_np', 'sse_np inline-no-batching', case, 'cpu_ms_per_request')} CPU/req; "
                f"vs pool-only {ratio('sse_np', 'sse_np pool-only', case)} req/s, "
                f"{ratio('sse_np', 'sse_np pool-only', case, 'cpu_ms_per_request')} CPU/req; orjson vs stdlib json "
                f"{ratio('sse_np', 'sse_np stdlib-json', case)} req/s; httptools+uvloop vs h11 "
                f"{ratio('sse_np', 'sse_np h11', case)} req/s."
            )
        elif "sse_np" in results:
            lines.append(
                f"* {case}: orjson vs stdlib json {ratio('sse_np', 'sse_np stdlib-json', case)} req/s; "
                f"small-request path vs pool-only {ratio('sse_np', 'sse_np pool-only', case)} req/s."
            )
    total = sum(r["requests"] for by_case in results.values() for runs in by_case.values() for r in runs)
    errors = sum(r["errors"] + r["non2xx"] for by_case in results.values() for runs in by_case.values() for r in runs)
    lines += [
        f"* {total:,} requests in all, {errors} errors (connection errors, timeouts and non-2xx answers).",
        "* infinity-emb (0.0.78, the latest release) installs but cannot serve a StaticEmbedding model: it",
        "  requires a transformers `config.json` to pick an engine, and with one its sentence-transformers engine",
        "  reads `auto_model` of the first module, which a StaticEmbedding does not have (AttributeError at",
        "  start-up); nor could it load the DyT module. It is therefore not in the table.",
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
