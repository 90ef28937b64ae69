"""The terminal tables of ``sse-np bench``, and ``--compare``: ratios against an earlier run's JSON."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from .stats import Summary, spread


def _num(value: float | None, digits: int = 0) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def _cell(s: Summary | None, digits: int = 0) -> str:
    """``median ±spread%``."""
    if not s or s.get("median") is None:
        return "-"
    return f"{_num(s['median'], digits)} ±{spread(s) * 50:.0f}%"


def _table(head: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]

    def line(cells: list[str]) -> str:
        first = [cells[0].ljust(widths[0])]
        return "  ".join(first + [c.rjust(w) for c, w in zip(cells[1:], widths[1:])]).rstrip()

    return [line(head), "  ".join("-" * w for w in widths), *map(line, rows)]


def header(res: dict[str, Any]) -> list[str]:
    m = res["machine"]
    caches = ", ".join(f"{k} {v}" for k, v in m["caches"].items()) or "not readable"
    lines = [
        f"sse_np {res['sse_np']} bench, {res['started']}",
        f"machine   {m['cpu']}; {m['cores_usable']} usable cores; caches {caches}",
        f"software  {m['os']}; {m['python']}; numpy {m['numpy']}; numba {m['numba']}; tokenizers {m['tokenizers']}",
    ]
    model = res.get("model")
    if model:
        lines.append(
            f"model     {model['path']} ({model['layout']}, {model['dtype']}, V={model['vocab_size']:,}, "
            f"D={model['dim']}, {model['storage']}, fingerprint {model['fingerprint']}); dim {res['dim']}"
        )
        lines.append(f"back-end  {model['backend']}; threads {model['threads']}")
    t = res["texts"]
    lines.append(
        f"texts     {t['source']}: {t['short']['count']:,} short ({t['short']['mean_chars']:.0f} chars), "
        f"{t['documents']['count']:,} documents ({t['documents']['mean_chars']:.0f} chars)"
    )
    lines.append("figures   medians of repeated runs, ±half the min-max spread")
    return lines


def render(res: dict[str, Any]) -> str:
    """The whole report as text."""
    lines = header(res)
    if "http" in res:
        lines += ["", *render_http(res["http"])]
        return "\n".join(lines) + "\n"
    w = res["workloads"]
    lat = w["latency"]
    lines += ["", "single-text latency (µs)"]
    lines += _table(
        ["", "p50", "p90", "p99", "p99.9"],
        [["one call, one text", *(_cell(lat[f"p{q}_us"], 1) for q in ("50", "90", "99", "99.9"))]],
    )
    lines += ["", "calls of N short texts, one caller (texts/s)"]
    rows = [[f"calls of {n}", _cell(s)] for n, s in w["calls"].items()]
    d = w["documents"]
    rows.append([f"documents, {d['texts']:,} in one call ({d['MB']:.2f} MB)", _cell(d)])
    lines += _table(["workload", "texts/s"], rows)
    lines += ["", "threads sweep, one call; ceiling = that many forked processes of one thread (texts/s)"]
    rows = []
    for r in w["threads"]:
        rows.append(
            [
                str(r["threads"]),
                _cell(r["documents_per_s"]),
                _cell(r.get("ceiling_documents_per_s")),
                _num(r.get("ratio_documents"), 2),
                _cell(r["short_per_s"]),
                _cell(r.get("ceiling_short_per_s")),
                _num(r.get("ratio_short"), 2),
            ]
        )
    lines += _table(["threads", "documents", "ceiling", "ratio", "short texts", "ceiling", "ratio"], rows)
    lines += ["", "concurrent callers, each making calls of 32 short texts (texts/s)"]
    lines += _table(["callers", "texts/s"], [[str(c["callers"]), _cell(c["texts_per_s"])] for c in w["callers"]])
    mem = w["memory"]
    lines += [
        "",
        f"memory    table {_num(mem['table_MiB'], 1)} MiB; RSS after load {_num(mem['rss_after_load_MiB'], 1)} MiB; "
        f"peak RSS {_num(mem['peak_rss_MiB'], 1)} MiB "
        + ("(loading included)" if mem["peak_counts_loading"] else "(while the workloads ran)"),
    ]
    if res.get("peers"):
        lines += ["", *render_peers(res["peers"])]
    lines.append(f"elapsed   {res['elapsed_s']:.1f} s")
    return "\n".join(lines) + "\n"


def render_peers(peers: dict[str, Any]) -> list[str]:
    lines = ["peers, same model and vectors, timed interleaved (texts/s; ratio = sse_np / peer)"]
    rows = [
        [f"{name}, {work}", _cell(r["sse_np"]), _cell(r["peer"]), _cell(r["ratio"], 2)]
        for name, p in peers.items()
        for work, r in p.get("workloads", {}).items()
    ]
    if rows:
        lines += _table(["peer, workload", "sse_np", "peer", "ratio"], rows)
    return lines + [f"{name} refused: {p['refused']}" for name, p in peers.items() if "refused" in p]


def render_http(http: dict[str, Any]) -> list[str]:
    lines = [f"HTTP {http['url']} ({http['generator']}; model {http['model']!r}; 1 text per request)"]
    rows = [
        [
            str(level["concurrency"]),
            _cell(level["requests_per_s"]),
            _num(level["p50_ms"], 2),
            _num(level["p99_ms"], 2),
            f"{level['requests']:,}",
            str(level["errors"]),
        ]
        for level in http["levels"]
    ]
    return lines + _table(["concurrency", "req/s", "p50 ms", "p99 ms", "requests", "errors"], rows)


# ------------------------------------------------------------------ compare
def figures(res: dict[str, Any]) -> Iterator[tuple[str, Summary, bool]]:
    """Every measured figure: (name, summary, higher is better)."""
    if "http" in res:
        for level in res["http"]["levels"]:
            yield f"HTTP c={level['concurrency']} req/s", level["requests_per_s"], True
        return
    w = res["workloads"]
    for q in ("50", "90", "99", "99.9"):
        yield f"latency p{q} µs", w["latency"][f"p{q}_us"], False
    for n, s in w["calls"].items():
        yield f"calls of {n}/s", s, True
    yield "documents in one call/s", w["documents"], True
    for r in w["threads"]:
        for key in ("documents", "short"):
            for prefix in ("", "ceiling_"):
                if f"{prefix}{key}_per_s" in r:
                    label = f"{'ceiling ' if prefix else ''}{key}/s, {r['threads']} threads"
                    yield label, r[f"{prefix}{key}_per_s"], True
    for c in w["callers"]:
        yield f"{c['callers']} callers x 32/s", c["texts_per_s"], True


def compare(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """Ratios new/old of every figure both runs have; a change is flagged when the runs' ranges do not overlap."""
    before = {name: (s, up) for name, s, up in figures(old)}
    rows = []
    for name, s, up in figures(new):
        if name not in before or not s.get("median") or not before[name][0].get("median"):
            continue
        o = before[name][0]
        ratio = s["median"] / o["median"]
        flag = ""
        if s["min"] > o["max"] or s["max"] < o["min"]:
            flag = "better" if (ratio > 1) == up else "worse"
        rows.append({"figure": name, "old": o["median"], "new": s["median"], "ratio": ratio, "flag": flag})
    notes = []
    for key, label in (("model", "fingerprint"), ("machine", "cpu"), ("machine", "cores_usable")):
        a, b = (old.get(key) or {}).get(label), (new.get(key) or {}).get(label)
        if a != b:
            notes.append(f"{key} {label} differs: {a} -> {b}")
    return {"rows": rows, "notes": notes}


def render_compare(cmp: dict[str, Any]) -> str:
    lines = ["compared with the earlier run (ratio = new / old; flagged where the runs' min-max ranges do not overlap)"]
    lines += [f"note: {n}" for n in cmp["notes"]]
    rows = [
        [r["figure"], _num(r["old"], 1), _num(r["new"], 1), f"{r['ratio']:.2f}x", r["flag"].upper()]
        for r in cmp["rows"]
    ]
    lines += _table(["figure", "old", "new", "ratio", "change"], rows)
    flagged = sum(1 for r in cmp["rows"] if r["flag"])
    lines.append(f"{flagged} of {len(cmp['rows'])} figures changed beyond the measured spread")
    return "\n".join(lines) + "\n"
