"""Reports of :func:`sse_np.eval.evaluate`: text tables, JSON and a plot."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..errors import missing_extra

_METRIC_LABELS = {"ndcg@10": "nDCG@10", "mrr@10": "MRR@10", "map@100": "MAP@100", "recall@100": "Recall@100"}


def _dim_key(mapping: Mapping[Any, Any], dim: int) -> Any:
    """Look a dimension up under int or str keys (reports loaded from JSON)."""
    return mapping[dim] if dim in mapping else mapping[str(dim)]


def format_report(report: Mapping[str, Any]) -> str:
    """Render a report as plain-text tables (one per metric, datasets x dims).

    Parameters
    ----------
    report : mapping
        Result of :func:`evaluate` (or the same loaded from JSON).

    Returns
    -------
    str
        The tables, ending with a newline.
    """
    info = report["model"]
    dims = [int(d) for d in report["dims"]]
    names = list(report["datasets"])
    width = max([len(n) for n in names] + [len("dataset"), len("mean")]) + 2
    lines = [
        f"model: {info['path']} (layout {info['layout']}, V={info['vocab_size']}, D={info['dim']}"
        + (f", {info['dtype']}" if info.get("dtype") else "")
        + ")",
        "",
        f"{'dataset':<{width}}{'docs':>9}{'queries':>9}{'skipped':>9}",
    ]
    for name in names:
        d = report["datasets"][name]
        lines.append(f"{name:<{width}}{d['n_docs']:>9}{d['n_queries']:>9}{d['n_queries_skipped']:>9}")
    for metric in report["metrics"]:
        lines += [
            "",
            _METRIC_LABELS.get(metric, metric) + " by dimension",
            f"{'dataset':<{width}}" + "".join(f"{d:>8}" for d in dims),
        ]
        for name in names:
            values = report["datasets"][name]["metrics"]
            lines.append(f"{name:<{width}}" + "".join(f"{_dim_key(values, d)[metric]:>8.4f}" for d in dims))
        if len(names) > 1:
            lines.append(f"{'mean':<{width}}" + "".join(f"{_dim_key(report['mean'], d)[metric]:>8.4f}" for d in dims))
    for mode in report.get("retrieval") or ():
        lines += _mode_tables(report, mode, names, dims, width)
    if report.get("precisions"):
        label = "mean over datasets" if len(names) > 1 else names[0]
        lines += [
            "",
            f"nDCG@10 by precision ({label}); bytes per document in brackets",
            f"{'precision':<{width}}" + "".join(f"{d:>16}" for d in dims),
        ]
        for p in report["precisions"]:
            means, sizes = report["mean_by_precision"][p], report["bytes_per_doc"][p]
            lines.append(
                f"{p:<{width}}"
                + "".join(f"{_dim_key(means, d)['ndcg@10']:>9.4f} ({_dim_key(sizes, d):>4})" for d in dims)
            )
    return "\n".join(lines) + "\n"


def _mode_tables(report: Mapping[str, Any], mode: str, names: list[str], dims: list[int], width: int) -> list[str]:
    """The metric tables of one retrieval mode (``evaluate(..., retrieval=...)``)."""
    lines = ["", f"== retrieval: {mode} =="]
    for metric in report["metrics"]:
        lines += ["", f"{mode}: {_METRIC_LABELS.get(metric, metric)} by dimension"]
        lines.append(f"{'dataset':<{width}}" + "".join(f"{d:>8}" for d in dims))
        rows = [(n, report["datasets"][n]["metrics_by_retrieval"][mode]) for n in names]
        if len(names) > 1:
            rows.append(("mean", report["mean_by_retrieval"][mode]))
        for name, values in rows:
            lines.append(f"{name:<{width}}" + "".join(f"{_dim_key(values, d)[metric]:>8.4f}" for d in dims))
    return lines


def save_report(report: Mapping[str, Any], path: str | os.PathLike[str]) -> None:
    """Write a report as indented JSON (dimension keys become strings)."""
    with open(path, "w", encoding="utf-8") as fh:
        json.dump(report, fh, indent=2, ensure_ascii=False)
        fh.write("\n")


def require_matplotlib() -> Any:
    """Import matplotlib with a non-interactive backend, or explain the extra."""
    try:
        import matplotlib
    except ImportError:
        raise missing_extra("plotting (matplotlib)", "plot") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_report(report: Mapping[str, Any], path: str | os.PathLike[str], metric: str = "ndcg@10") -> None:
    """Save the Matryoshka curve (metric vs dimension, one line per dataset).

    Parameters
    ----------
    report : mapping
        Result of :func:`evaluate`.
    path : path-like
        Output image (format from the extension, e.g. ``.png``).
    metric : str
        One of :data:`METRICS`.

    Raises
    ------
    MissingDependencyError
        matplotlib is not installed (the ``plot`` extra).
    """
    plt = require_matplotlib()
    if report.get("precisions") and len(report["precisions"]) > 1:
        _plot_by_bytes(plt, report, path, metric)
        return
    dims = sorted(int(d) for d in report["dims"])
    fig, ax = plt.subplots(figsize=(6.4, 4.4), dpi=120)
    for name, data in report["datasets"].items():
        ax.plot(dims, [_dim_key(data["metrics"], d)[metric] for d in dims], marker="o", label=name)
    if len(report["datasets"]) > 1:
        mean = [_dim_key(report["mean"], d)[metric] for d in dims]
        ax.plot(dims, mean, marker="s", color="black", linewidth=2.2, label="mean")
    ax.set_xscale("log", base=2)
    ax.set_xticks(dims)
    ax.set_xticklabels([str(d) for d in dims])
    ax.set_xlabel("embedding dimension")
    ax.set_ylabel(_METRIC_LABELS.get(metric, metric))
    ax.set_title(f"{_METRIC_LABELS.get(metric, metric)} vs dimension: {Path(str(report['model']['path'])).name}")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _plot_by_bytes(plt: Any, report: Mapping[str, Any], path: str | os.PathLike[str], metric: str) -> None:
    """Quality against bytes per document: one line per precision, a point per dimension."""
    dims = sorted(int(d) for d in report["dims"])
    fig, ax = plt.subplots(figsize=(6.8, 4.6), dpi=120)
    for p in report["precisions"]:
        xs = [_dim_key(report["bytes_per_doc"][p], d) for d in dims]
        ys = [_dim_key(report["mean_by_precision"][p], d)[metric] for d in dims]
        ax.plot(xs, ys, marker="o", label=p)
        for x, y, d in zip(xs, ys, dims):
            ax.annotate(str(d), (x, y), textcoords="offset points", xytext=(3, 3), fontsize=7)
    ax.set_xscale("log", base=2)
    ax.set_xlabel("bytes per document (labels: dimension)")
    ax.set_ylabel(_METRIC_LABELS.get(metric, metric) + (" (mean over datasets)" if len(report["datasets"]) > 1 else ""))
    ax.set_title(
        f"{_METRIC_LABELS.get(metric, metric)} vs bytes per document: {Path(str(report['model']['path'])).name}"
    )
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
