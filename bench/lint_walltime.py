"""Wall time of ``qrules lint rulesets/`` as a user sees it, interpreter start included.

Runs the command as a subprocess: one warm-up run (which fills the per-user LALR
table cache, as any earlier lint run on the machine would have), then N timed runs;
reports the median. Target: under 0.3 s. The command runs as users run it (files
checked in one process per usable CPU); N more runs with ``--jobs 1`` show the one-
process time beside it. ``--cold`` also times runs with the cache switched off
(``QRULES_NO_CACHE=1``), i.e. a first run on a new machine.

    python bench/lint_walltime.py
    python bench/lint_walltime.py --runs 20 --cold --json bench/results/lint_walltime.json

The command is the ``qrules`` console script beside this interpreter (or on PATH);
without one (a checkout that was never installed) it falls back to
``python -c "from qrules.cli import main; ..."`` and says so.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

from _common import REPO, summary, table, write_json

TARGET_S = 0.3


def lint_command(target: str) -> tuple[list[str], str]:
    """The argv that runs ``qrules lint TARGET`` and a short label for it."""
    here = Path(sys.executable).parent
    script = shutil.which("qrules", path=str(here)) or shutil.which("qrules")
    if script:
        return [script, "lint", target], "qrules (console script)"
    code = "import sys; from qrules.cli import main; sys.exit(main())"
    return [sys.executable, "-c", code, "lint", target], "python -c qrules.cli.main (fallback)"


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def time_runs(argv: list[str], runs: int, env: dict,
              cwd: str) -> tuple[list[float], list[float], set[int]]:
    """Wall time and CPU time (user + sys) of each run, and the exit statuses seen."""
    times, cpu, codes = [], [], set()
    for _ in range(runs):
        start, start_cpu = time.perf_counter(), _children_cpu()
        proc = subprocess.run(argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False)
        times.append(time.perf_counter() - start)
        cpu.append(_children_cpu() - start_cpu)
        codes.add(proc.returncode)
        if proc.returncode not in (0, 1):  # 0 clean, 1 findings; anything else is a crash
            err = proc.stderr.decode(errors="replace").strip()[-2000:]
            raise SystemExit(f"{' '.join(argv)} exited {proc.returncode}:\n{err}")
    return times, cpu, codes


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=10, help="timed runs after one warm-up")
    ap.add_argument("--target", default=str(REPO / "rulesets"),
                    help="what to lint (default: the repo's rulesets/)")
    ap.add_argument("--cold", action="store_true",
                    help="also time runs without the LALR table cache")
    ap.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    ap.add_argument("--check", action="store_true",
                    help="exit 1 when the median misses the target")
    args = ap.parse_args(argv)

    command, label = lint_command(args.target)
    env = dict(os.environ)
    env.pop("QRULES_NO_CACHE", None)
    # Without an install, the fallback command must still find the checkout's package.
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    cwd = str(REPO)

    time_runs(command, 1, env, cwd)  # warm-up: fills the table cache, warms the page cache
    warm, warm_cpu, codes = time_runs(command, args.runs, env, cwd)
    # The same in one process (`--jobs 1`): what the default's parallel checking gains.
    serial, serial_cpu, _ = time_runs(command + ["--jobs", "1"], args.runs, env, cwd)
    stats = {"warm_cache": summary(warm), "warm_cache_cpu": summary(warm_cpu),
             "one_process": summary(serial), "one_process_cpu": summary(serial_cpu)}
    if args.cold:
        cold, cold_cpu, _ = time_runs(command, args.runs, {**env, "QRULES_NO_CACHE": "1"}, cwd)
        stats["no_cache"] = summary(cold)
        stats["no_cache_cpu"] = summary(cold_cpu)

    files = sorted(Path(args.target).rglob("*.qrule")) if Path(args.target).is_dir() else []
    median = stats["warm_cache"]["median_s"]
    ok = median < TARGET_S
    rows = [
        ("command", label),
        ("target", os.path.relpath(args.target, cwd)),
        (".qrule files", str(len(files)) if files else "-"),
        ("exit status", ",".join(map(str, sorted(codes)))),
        ("runs (after 1 warm-up)", str(args.runs)),
        ("median (cache warm)", f"{median * 1000:.0f} ms"),
        ("best / worst (cache warm)", f"{min(warm) * 1000:.0f} / {max(warm) * 1000:.0f} ms"),
        # CPU time (user + sys): the wall time with the cores to itself; on a loaded
        # machine the wall time mostly measures the others' work.
        ("median CPU time (cache warm)", f"{stats['warm_cache_cpu']['median_s'] * 1000:.0f} ms"),
        ("median, --jobs 1 (one process)", f"{stats['one_process']['median_s'] * 1000:.0f} ms"),
        ("usable CPUs", str(len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
                            else os.cpu_count())),
        ("PYTHONDONTWRITEBYTECODE", os.environ.get("PYTHONDONTWRITEBYTECODE") or "unset"),
        ("load average (1 min)", f"{os.getloadavg()[0]:.1f}"),
    ]
    if args.cold:
        rows.append(("median (no table cache)", f"{stats['no_cache']['median_s'] * 1000:.0f} ms"))
        rows.append(("median CPU time (no table cache)",
                     f"{stats['no_cache_cpu']['median_s'] * 1000:.0f} ms"))
    rows += [("target", f"< {TARGET_S * 1000:.0f} ms"),
             ("verdict", "PASS" if ok else "ABOVE TARGET")]
    print(table(rows, "qrules lint wall time"))
    if args.json:
        path = write_json(args.json, "lint_walltime",
                          {"runs": args.runs, "target": args.target, "command": label,
                           "files": len(files),
                           "PYTHONDONTWRITEBYTECODE": os.environ.get("PYTHONDONTWRITEBYTECODE")},
                          {**stats, "exit_codes": sorted(codes), "target_s": TARGET_S,
                           "meets_target": ok})
        print(f"wrote {path}")
    return 1 if args.check and not ok else 0


if __name__ == "__main__":
    sys.exit(main())
