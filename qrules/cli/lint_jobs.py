"""Check the files ``qrules lint`` was given, on two cores when the command has its
process to itself and the machine a core to spare.

Checking a file is deterministic and independent of the other files, so a forked
worker can check part of the list while the command checks the rest; the results
are put back in file order, so the output is the one a single process would print.
The first file is checked before the fork: the worker inherits the LALR tables and
the prelude, parsed once. Anything that goes wrong in the worker (an exception, a
crash, a result that does not arrive whole) only means its files are checked again
here, which gives the answer (or raises the error) a single process would have.
"""

from __future__ import annotations

import os
import pickle
import sys
from typing import Callable, Sequence

#: Below this many bytes left to check after the first file, the fork and the
#: transfer of results cost more than the second core saves.
MIN_PARALLEL_BYTES = 16_000


def check_files(files: Sequence[str], check: Callable, parallel: bool) -> list:
    """``[check(file) for file in files]``, in order; an exception ``check`` raises
    for a file is returned in its place (the caller raises the first one). With
    ``parallel`` (callers ask ``spare_core()``), a forked worker checks part of the
    files when there are enough of them."""
    if not files:
        return []
    results = [_attempt(check, files[0])]
    rest = list(files[1:])
    every = list(range(len(rest)))
    mine, theirs = _split(rest) if parallel and _worth_forking(rest) else (every, [])
    worker = _fork(check, [rest[i] for i in theirs]) if theirs else None
    if worker is None:
        mine, theirs = every, []
    by_index = dict(zip(mine, (_attempt(check, rest[i]) for i in mine)))
    if worker is not None:
        done = _collect(*worker)
        for n, i in enumerate(theirs):
            by_index[i] = done[n] if done is not None and done[n] is not _REDO else \
                _attempt(check, rest[i])
    return results + [by_index[i] for i in range(len(rest))]


def _attempt(check: Callable, file: str):
    try:
        return check(file)
    except Exception as err:  # the caller raises it, in file order
        return err


def spare_core() -> bool:
    """Whether a second core is likely free: the machine has two or more and its load
    (the last minute's average of runnable processes) leaves one. On a busy machine a
    worker would only compete with this process and add the cost of forking."""
    if not hasattr(os, "fork") or not hasattr(os, "getloadavg"):
        return False
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    try:
        return (cores or 1) - os.getloadavg()[0] >= 1
    except OSError:
        return False


def _worth_forking(files: list[str]) -> bool:
    return len(files) >= 2 and sum(_size(f) for f in files) >= MIN_PARALLEL_BYTES


def _size(file: str) -> int:
    try:
        return os.path.getsize(file)
    except OSError:  # checking it will say why
        return 0


def _split(files: list[str]) -> tuple[list[int], list[int]]:
    """Indices of ``files`` for this process and for the worker: about half the bytes
    each, largest files first."""
    mine, theirs, load = [], [], [0, 0]
    for i in sorted(range(len(files)), key=lambda i: -_size(files[i])):
        side = 0 if load[0] <= load[1] else 1
        (mine, theirs)[side].append(i)
        load[side] += _size(files[i])
    return sorted(mine), sorted(theirs)


_REDO = None  # a file the worker could not check: this process checks it again


def _fork(check: Callable, files: list[str]):
    """Start a worker checking ``files``: (pid, read end of its pipe), or None."""
    for stream in (sys.stdout, sys.stderr):
        stream.flush()  # else the worker's copy of a buffer could be written twice
    read, write = os.pipe()
    try:
        pid = os.fork()
    except OSError:
        os.close(read)
        os.close(write)
        return None
    if pid:
        os.close(write)
        return pid, read
    status = 1
    try:  # the worker: never returns, never writes to stdout or stderr
        os.close(read)
        results = []
        for file in files:
            try:
                results.append(check(file))
            except Exception:
                results.append(_REDO)
        with os.fdopen(write, "wb") as out:
            pickle.dump(results, out, protocol=pickle.HIGHEST_PROTOCOL)
        status = 0
    finally:
        os._exit(status)


def _collect(pid: int, read: int):
    """The worker's results, or None when they did not arrive whole."""
    with os.fdopen(read, "rb") as pipe:
        data = pipe.read()
    _, status = os.waitpid(pid, 0)
    if status != 0:
        return None
    try:
        return pickle.loads(data)
    except Exception:
        return None
