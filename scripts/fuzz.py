"""Fuzz the Python API in-process: any text or bytes gives diagnostics or a QruleError.

Each input is a structure-aware mutation of real .qrule text (the built-in rulesets,
the diagnostic fixtures, the docs' examples): tokens of the language are deleted,
duplicated, swapped and replaced by keywords from the grammar, op names from the
prelude, punctuation or hostile strings; chunks of one file are spliced into another;
``include`` lines name hostile paths (NUL, ``..``, very long, absolute, devices, a
FIFO, a directory, a symlink loop, all set up in a sandbox directory). The input goes
to ``qrules.parse``, ``qrules.check`` (text, bytes or a file), ``qrules.load_text``
with random parameter values, or ``qrules.load`` of a file. Anything raised but
``QruleError`` is a finding: its input and traceback are saved.

Input number ``i`` of seed ``s`` is the same on every machine, whatever ``--jobs``:

    PYTHONPATH=. python scripts/fuzz.py --count 1000000 --jobs 2
    PYTHONPATH=. python scripts/fuzz.py --seed 0 --only 12345     # replay one input

The test suite runs a short seeded run (tests/test_fuzz.py).
"""

from __future__ import annotations

import argparse
import atexit
import hashlib
import multiprocessing
import os
import random
import re
import shutil
import signal
import sys
import tempfile
import time
import traceback
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import qrules  # noqa: E402
from qrules.errors import QruleError  # noqa: E402
from qrules.syntax.grammar import parser as lark_parser  # noqa: E402

#: Seconds one input may take before it counts as a hang (a blocking read, a loop).
HANG_SECONDS = 20

PUNCTUATION = list("(){}[]:,.=<>+-*/!|&?@#\"\\") + ["->", "**", "==", "!=", "<=", ">=",
                                                   "\n", "\n\n", "\t", " ", '"', "//"]
HOSTILE_STRINGS = ['"\0"', '"\ud800"', "\udc80", "\ufeff", "\u202e", "\x0b", "\r", "\x85",
                   "\u2028", "9" * 400, "1e999", "-0", "0x", "nan", "inf", "1" * 30,
                   '"' + "\\" * 7 + '"', '"a\\', "é", "😀", "\\n", "x" * 5000]
#: What an include may name: every way a path can hurt the loader.
INCLUDE_TARGETS = ["a\0b", "\0", "..", "../..", "../../../../etc/passwd", "/etc/passwd",
                   "/dev/zero", "/dev/stdin", "/dev/tty", "/dev/random", "/dev/null",
                   "/proc/self/fd/0", "/", "", ".", "x" * 300, "/".join(["y" * 200] * 30),
                   "dir.qrule", "fifo.qrule", "loop.qrule", "devlink.qrule", "ok.qrule",
                   "self.qrule", "\ud800.qrule", "\udcff.qrule", "C:\\x.qrule", "~/x.qrule",
                   "ok.qrule/..", "./ok.qrule", "ok.qrule\n", "xnnpack", "_prelude"]
PARAM_VALUES = [True, False, 0, 1, -1, 2**70, 1.5, float("nan"), float("inf"), "", "int8",
                "x" * 10_000, None, [], {}, (1,), b"\0", object()]


def corpus() -> list[str]:
    """Real .qrule text: every built-in ruleset, every fixture case, every docs example."""
    texts = [p.read_text() for p in sorted((ROOT / "rulesets").glob("*.qrule"))]
    for path in sorted((ROOT / "tests" / "fixtures").glob("*.qrule")):
        texts.extend(c for c in re.split(r"\n(?=# ---)", path.read_text()) if c.strip())
    for path in sorted((ROOT / "docs").glob("*.md")):
        texts.extend(re.findall(r"```qrule[-\w]*\n(.*?)```", path.read_text(), re.S))
    return texts


def vocabulary(texts: list[str]) -> list[str]:
    keywords = re.findall(r'"([a-z_]+)"', (ROOT / "grammar" / "qrule.lark").read_text())
    prelude = (ROOT / "rulesets" / "_prelude.qrule").read_text()
    ops = re.findall(r"^op\s+(\w+)", prelude, re.M)
    lexed = set()
    for text in texts:
        try:
            lexed.update(t.value for t in lark_parser().lex(text))
        except Exception:  # a fixture of broken syntax lexes only partly; skip it
            continue
    return sorted(set(keywords) | set(ops) | lexed) + PUNCTUATION + HOSTILE_STRINGS


_TOKEN = re.compile(r'"(?:[^"\\\n]|\\.)*"|#[^\n]*|\w+|\s+|\S')


class Mutator:
    def __init__(self, texts: list[str]):
        self.texts = texts
        self.words = vocabulary(texts)

    def text(self, rng: random.Random) -> str:
        tokens = _TOKEN.findall(rng.choice(self.texts))
        for _ in range(rng.choice((0, 1, 1, 2, 3, 5, 8))):
            self._mutate(rng, tokens)
        if rng.random() < 0.25:
            tokens.insert(rng.randint(0, len(tokens)), self._include(rng))
        return "".join(tokens)

    def _mutate(self, rng: random.Random, tokens: list[str]) -> None:
        i = rng.randint(0, max(0, len(tokens) - 1))
        action = rng.randrange(8)
        if not tokens or action == 0:
            tokens.insert(i, rng.choice(self.words))
        elif action == 1:
            del tokens[i]
        elif action == 2:
            tokens.insert(i, tokens[i])
        elif action == 3:
            j = rng.randint(0, len(tokens) - 1)
            tokens[i], tokens[j] = tokens[j], tokens[i]
        elif action == 4:
            tokens[i] = rng.choice(self.words)
        elif action == 5:  # splice a run of another file's tokens in
            other = _TOKEN.findall(rng.choice(self.texts))
            start = rng.randint(0, max(0, len(other) - 1))
            tokens[i:i] = other[start:start + rng.randint(1, 40)]
        elif action == 6:
            del tokens[i:i + rng.randint(1, 30)]
        else:  # repeat a run: deep nesting, long lines, many items
            run = tokens[i:i + rng.randint(1, 4)]
            tokens[i:i] = run * rng.choice((2, 10, 100))

    def _include(self, rng: random.Random) -> str:
        target = rng.choice(INCLUDE_TARGETS)
        if rng.random() < 0.3:
            target = target + rng.choice(("/", "/..", "\0", "/ok.qrule", "x" * 255))
        return f'\ninclude "{target}"\n'


def sandbox() -> Path:
    """A directory to run in, holding the hostile files the include targets name."""
    where = Path(tempfile.mkdtemp(prefix="qrules-fuzz-"))
    atexit.register(shutil.rmtree, where, ignore_errors=True)
    (where / "ok.qrule").write_text("rule ok: relu : none\n")
    (where / "self.qrule").write_text('include "self.qrule"\n')
    (where / "dir.qrule").mkdir()
    (where / "loop.qrule").symlink_to("loop2.qrule")
    (where / "loop2.qrule").symlink_to("loop.qrule")
    (where / "devlink.qrule").symlink_to("/dev/zero")
    if hasattr(os, "mkfifo"):
        os.mkfifo(where / "fifo.qrule")
    return where


def _params(rng: random.Random, text: str) -> dict:
    names = re.findall(r"param\s+(\w+)", text) + ["unknown_param"]
    return {rng.choice(names): rng.choice(PARAM_VALUES) for _ in range(rng.randint(0, 3))}


def run_one(mutator: Mutator, seed: int, index: int, workdir: Path) -> list[str]:
    """Feed input ``index`` to one entry point; its diagnostic codes. Raises a finding."""
    rng = random.Random(f"{seed}:{index}")
    text = mutator.text(rng)
    roots = ["/dev", workdir] if rng.random() < 0.2 else ()
    entry = rng.randrange(6)
    if entry == 0:
        try:
            qrules.parse(text, "fuzz.qrule")
        except QruleError as err:
            return [d.code for d in err.diagnostics]
        return []
    if entry == 1:
        return [d.code for d in qrules.check(text, "fuzz.qrule", include_roots=roots)]
    if entry == 2:
        data = text.encode("utf-8", "surrogatepass")
        for _ in range(rng.choice((0, 1, 3))):
            if data:
                at = rng.randrange(len(data))
                data = data[:at] + bytes([rng.randrange(256)]) + data[at + 1:]
        return [d.code for d in qrules.check(data, "fuzz.qrule", include_roots=roots)]
    if entry == 3:
        try:
            qrules.load_text(text, "fuzz.qrule", include_roots=roots, **_params(rng, text))
        except QruleError as err:
            return [d.code for d in err.diagnostics]
        return []
    path = workdir / f"case{os.getpid()}.qrule"
    path.write_bytes(text.encode("utf-8", "surrogatepass"))
    if entry == 4:
        return [d.code for d in qrules.check(path, include_roots=roots)]
    try:
        qrules.load(path, include_roots=roots, **_params(rng, text))
    except QruleError as err:
        return [d.code for d in err.diagnostics]
    return []


class Hang(Exception):
    pass


def _alarm(signum, frame):
    raise Hang(f"no answer in {HANG_SECONDS}s")


def work(job: tuple[int, range, str]) -> tuple[int, Counter, list[tuple[int, str]]]:
    """Run a range of inputs; (inputs run, diagnostic codes seen, findings)."""
    seed, indices, findings_dir = job
    mutator = _mutator()
    workdir = _sandbox()
    here = os.getcwd()
    os.chdir(workdir)  # a text's relative includes resolve in the sandbox
    codes, findings = Counter(), []
    if hasattr(signal, "SIGALRM"):
        signal.signal(signal.SIGALRM, _alarm)
    for index in indices:
        if hasattr(signal, "SIGALRM"):
            signal.alarm(HANG_SECONDS)
        try:
            codes.update(run_one(mutator, seed, index, workdir))
        except BaseException as err:  # noqa: BLE001 - every escape is a finding
            if isinstance(err, KeyboardInterrupt):
                raise
            findings.append((index, _save(seed, index, mutator, findings_dir)))
        finally:
            if hasattr(signal, "SIGALRM"):
                signal.alarm(0)
    os.chdir(here)
    return len(indices), codes, findings


_STATE: dict = {}


def _mutator() -> Mutator:
    if "mutator" not in _STATE:
        _STATE["mutator"] = Mutator(corpus())
    return _STATE["mutator"]


def _sandbox() -> Path:
    if "sandbox" not in _STATE:
        _STATE["sandbox"] = sandbox()
    return _STATE["sandbox"]


def _save(seed: int, index: int, mutator: Mutator, findings_dir: str) -> str:
    """Write the input and its traceback; the traceback's last line."""
    text = mutator.text(random.Random(f"{seed}:{index}"))
    tb = traceback.format_exc()
    name = hashlib.sha1(f"{seed}:{index}".encode()).hexdigest()[:12]
    out = Path(findings_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}.qrule").write_bytes(text.encode("utf-8", "surrogatepass"))
    (out / f"{name}.txt").write_text(f"seed {seed} input {index}\n"
                                     f"replay: python scripts/fuzz.py --seed {seed} "
                                     f"--only {index}\n\n{tb}")
    return tb.strip().splitlines()[-1]


def run(count: int, seed: int = 0, jobs: int = 1, findings_dir: str = "fuzz-findings",
        start: int = 0, progress=None) -> dict:
    """Run ``count`` inputs from ``start``; a summary dict."""
    chunk = 2000
    batches = [(seed, range(i, min(i + chunk, start + count)), findings_dir)
               for i in range(start, start + count, chunk)]
    total, codes, findings = 0, Counter(), []
    began = time.monotonic()
    if jobs > 1:
        pool = multiprocessing.get_context("fork").Pool(jobs)
        results = pool.imap_unordered(work, batches)
    else:
        pool, results = None, map(work, batches)
    try:
        for done, seen, found in results:
            total += done
            codes.update(seen)
            findings.extend(found)
            if progress:
                progress(total, len(findings), time.monotonic() - began)
    finally:
        if pool is not None:
            pool.terminate()
    return {"inputs": total, "tracebacks": len(findings), "findings": findings,
            "codes": codes, "seconds": time.monotonic() - began}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=10_000, help="inputs to run")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--start", type=int, default=0, help="first input number")
    parser.add_argument("--jobs", type=int, default=1, help="worker processes")
    parser.add_argument("--only", type=int, help="replay one input and show what it does")
    parser.add_argument("--findings", default="fuzz-findings",
                        help="directory for the inputs that raised (default: fuzz-findings)")
    args = parser.parse_args(argv)
    if args.only is not None:
        mutator = Mutator(corpus())
        print(repr(mutator.text(random.Random(f"{args.seed}:{args.only}"))))
        os.chdir(sandbox())
        print(run_one(mutator, args.seed, args.only, Path.cwd()))
        return 0

    def progress(done, found, seconds):
        print(f"{done:,} inputs, {found} tracebacks, {done / max(seconds, 1e-9):,.0f}/s",
              flush=True)

    summary = run(args.count, args.seed, args.jobs, args.findings, args.start, progress)
    print(f"\n{summary['inputs']:,} inputs in {summary['seconds']:,.0f}s, "
          f"{summary['tracebacks']} tracebacks, "
          f"{len(summary['codes'])} distinct diagnostic codes:")
    print("  " + ", ".join(f"{c} {n:,}" for c, n in sorted(summary["codes"].items())))
    for index, last_line in summary["findings"]:
        print(f"  input {index}: {last_line}")
    return 1 if summary["tracebacks"] else 0


if __name__ == "__main__":
    sys.exit(main())
