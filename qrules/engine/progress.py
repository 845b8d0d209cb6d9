"""Progress of the pipeline's stages on stderr: one line per stage (export, annotate and
prepare, calibrate, convert, lower, run), with its time.

Shown when stderr is a terminal, unless a caller decides otherwise for the code it runs
(``with showing(True):``, what the CLI's ``--progress`` does). A ContextVar holds that
decision, so the stages deep in the engine need no flag passed down to them.
"""

from __future__ import annotations

import sys
import time
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Optional

_SHOWING: ContextVar[Optional[bool]] = ContextVar("qrules_progress", default=None)
BAR_WIDTH = 30


def shown(progress: Optional[bool] = None) -> bool:
    """Whether to show progress: ``progress`` when given, else the caller's ``showing``,
    else whether stderr is a terminal."""
    if progress is not None:
        return progress
    decided = _SHOWING.get()
    return sys.stderr.isatty() if decided is None else decided


@contextmanager
def showing(enabled: Optional[bool]):
    """Show (True), hide (False) or decide by the terminal (None) inside the block."""
    token = _SHOWING.set(enabled)
    try:
        yield
    finally:
        _SHOWING.reset(token)


@contextmanager
def stage(label: str):
    """``label ...`` when the stage starts, `` done (1.2 s)`` on the same line after."""
    if not shown():
        yield
        return
    sys.stderr.write(f"{label} ...")
    sys.stderr.flush()
    start = time.perf_counter()
    yield
    sys.stderr.write(f" done ({time.perf_counter() - start:.1f} s)\n")
    sys.stderr.flush()


def bar(label: str, done: int, total: int) -> None:
    """Redraw a ``label [####....] done/total`` bar; a newline after the last step."""
    filled = int(BAR_WIDTH * done / total)
    sys.stderr.write(f"\r{label} [{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {done}/{total}"
                     + ("\n" if done == total else ""))
    sys.stderr.flush()
