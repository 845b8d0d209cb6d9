"""Helpers shared by the benchmarks: machine facts, a small table, JSON output."""

from __future__ import annotations

import json
import os
import platform
import statistics
import sys
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def ensure_repo_on_path() -> None:
    """Let ``python bench/x.py`` import qrules from the checkout without an install."""
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))


def machine() -> dict:
    info = {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "loadavg_1_5_15": [round(x, 2) for x in os.getloadavg()],  # others' work skews numbers
    }
    try:
        import lark

        info["lark"] = lark.__version__
    except ImportError:  # pragma: no cover - lark is a dependency
        pass
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    info["cpu"] = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return info


def summary(times: list[float]) -> dict:
    return {
        "runs": len(times),
        "best_s": min(times),
        "median_s": statistics.median(times),
        "mean_s": statistics.fmean(times),
        "worst_s": max(times),
        "stdev_s": statistics.stdev(times) if len(times) > 1 else 0.0,
    }


def table(rows: list[tuple[str, str]], title: str) -> str:
    width = max(len(k) for k, _ in rows)
    vwidth = max(len(v) for _, v in rows)
    rule = "-" * (width + vwidth + 3)
    lines = [title, rule]
    lines += [f"{k:<{width}}   {v:>{vwidth}}" for k, v in rows]
    lines.append(rule)
    return "\n".join(lines)


def write_json(path: str | os.PathLike, benchmark: str, params: dict, results: dict) -> Path:
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "benchmark": benchmark,
        "when": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": machine(),
        "params": params,
        "results": results,
    }
    out.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    return out
