"""Where a benchmark's figures go: bench_out/NAME.json always, and with ``--publish`` the
committed benchmarks/results/NAME-cpu.json - each with the commit, machine, load and command
that made it, so every figure in README and docs can be traced (tests/test_published_figures.py
checks README's against them)."""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
PUBLISH_HELP = "also write benchmarks/results/NAME-cpu.json (the figures README and docs quote)"


def write_result(name: str, rows: Any, publish: bool = False, **extra: Any) -> Path:
    from quality import machine  # commit, machine, load, command

    doc = {"meta": machine(), **extra, "rows": rows}
    text = json.dumps(doc, indent=1, default=str)
    out = ROOT / "bench_out" / f"{name}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(text)
    print(f"-> {out}")
    if publish:
        published = ROOT / "benchmarks" / "results" / f"{name}-cpu.json"
        published.write_text(text)
        print(f"-> {published}")
    return out


def text_table(rows: list[dict[str, Any]], keys: list[str], headers: list[str]) -> str:
    """``rows`` as left-aligned columns ``keys`` under ``headers``, for a benchmark's stdout."""
    widths = [max(len(h), *(len(str(r[k])) for r in rows)) for h, k in zip(headers, keys)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths))]
    lines += ["  ".join(str(r[k]).ljust(w) for k, w in zip(keys, widths)) for r in rows]
    return "\n".join(lines)


def table_main(
    doc: str, name: str, run: Callable[[], list[dict[str, Any]]], keys: list[str]
) -> None:
    """A one-table benchmark's command line: ``[--publish]``, one thread, run, save, print."""
    p = argparse.ArgumentParser(description=doc.splitlines()[0])
    p.add_argument("--publish", action="store_true", help=PUBLISH_HELP)
    a = p.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    rows = run()
    write_result(name, rows, a.publish)
    print(text_table(rows, keys, keys))
