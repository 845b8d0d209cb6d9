"""``qrules lint --jobs``: check files in several processes, results in file order.

The ``qrules lint`` process forks after its imports (``lint.start_program``), so each
child starts with everything loaded and checks its share of the files; it sends its
findings back as plain data (``marshal``: strings, numbers and tuples, never code or
objects) and the parent rebuilds them. Files are handed out largest first, each to
whichever process is free. A child that fails, or whose answer does not read back,
costs only time: the parent checks its files itself, so the output is the same as
``--jobs 1`` whatever happens. Without ``os.fork`` (Windows) files are checked in one
process.
"""

from __future__ import annotations

import marshal
import os
from typing import Callable, NamedTuple, Optional, Sequence


class Failed(NamedTuple):
    """A file that could not be read (``check`` raised OSError)."""

    message: str


def usable_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def check_all(files: Sequence[str], check: Callable[[str], object], jobs: int) -> list:
    """``check(file)`` for every file, in order, using up to ``jobs`` processes. An
    OSError from ``check`` becomes ``Failed(message)`` in that file's place."""
    jobs = min(jobs, len(files))
    if jobs < 2 or not hasattr(os, "fork"):
        return [_one(check, file) for file in files]
    # The work queue: batches of file indices, largest files first, as records in one
    # pipe every process reads from, a record at a time, until it is empty. Whoever
    # is free takes the next batch, so a process that drew a slow file does not hold
    # the others back. Batches are single files up to _BATCHES files: the whole queue
    # is written before anyone reads, so it must fit in a pipe's smallest buffer.
    order = sorted(range(len(files)), key=lambda index: -_size(files[index]))
    size = -(-len(order) // _BATCHES)
    batches = [order[start:start + size] for start in range(0, len(order), size)]
    queue, fill = os.pipe()
    os.write(fill, b"".join(number.to_bytes(_RECORD, "little")
                            for number in range(len(batches))))
    os.close(fill)
    children = [_fork(files, batches, queue, check) for _ in range(jobs - 1)]
    results: list = [None] * len(files)
    for index, result in _work(files, batches, queue, check):
        results[index] = result
    os.close(queue)
    for child in children:
        for index, result in (_collect(child) or {}).items():
            results[index] = result
    # A child that failed lost the files it took: check them here.
    return [result if result is not None else _one(check, files[index])
            for index, result in enumerate(results)]


#: Bytes per record in the queue, and how many records fit in a pipe's buffer (4 KiB,
#: one page, the least Linux gives a pipe).
_RECORD = 4
_BATCHES = 1024


def _work(files: Sequence[str], batches: list, queue: int, check):
    while True:
        record = os.read(queue, _RECORD)
        if len(record) < _RECORD:
            return
        for index in batches[int.from_bytes(record, "little")]:
            yield index, _one(check, files[index])


def _one(check, file: str):
    try:
        return check(file)
    except OSError as err:
        return Failed(err.strerror or str(err))


def _size(file: str) -> int:
    try:
        return os.path.getsize(file)
    except OSError:
        return 0


class _Child(NamedTuple):
    pid: int
    pipe: int


def _fork(files: Sequence[str], batches: list, queue: int, check) -> Optional[_Child]:
    read, write = os.pipe()
    try:
        pid = os.fork()
    except OSError:
        os.close(read)
        os.close(write)
        return None
    if pid:
        os.close(write)
        return _Child(pid, read)
    status = 1
    try:  # the child: check, answer, and leave without running the parent's exit code
        os.close(read)
        answer = [(index, _flatten(result))
                  for index, result in _work(files, batches, queue, check)]
        with os.fdopen(write, "wb") as pipe:
            pipe.write(marshal.dumps(answer))
        status = 0
    finally:
        os._exit(status)


def _collect(child: Optional[_Child]) -> Optional[dict]:
    """The child's results by file index, or None if it failed."""
    if child is None:
        return None
    with os.fdopen(child.pipe, "rb") as pipe:
        data = pipe.read()
    _, status = os.waitpid(child.pid, 0)
    if status != 0:
        return None
    try:
        return {index: _rebuild(flat) for index, flat in marshal.loads(data)}
    except Exception:  # a truncated or garbled answer: check those files here
        return None


def _flatten(result) -> tuple:
    if isinstance(result, Failed):
        return ("failed", result.message)
    diagnostics = tuple((d.code, d.severity.value, d.message, _span(d.span),
                         tuple((n.message, _span(n.span)) for n in d.notes))
                        for d in result.diagnostics)
    return ("checked", diagnostics, dict(result.sources))


def _span(span) -> Optional[tuple]:
    return None if span is None else tuple(span.__dict__.items())


def _rebuild(flat: tuple):
    from qrules.checking import CheckResult
    from qrules.diagnostics import Severity, diagnostic, note
    from qrules.span import Span

    def span(items):
        return None if items is None else Span.model_construct(**dict(items))

    if flat[0] == "failed":
        return Failed(flat[1])
    _, diagnostics, sources = flat
    return CheckResult(tuple(
        diagnostic(code, message, span(where), severity=Severity(severity),
                   notes=[note(text, span(place)) for text, place in notes])
        for code, severity, message, where, notes in diagnostics), sources)
