"""The per-user cache of parser tables: where it lives, how a file is read and written.

It holds only data derived from our grammar (never anything from a .qrule file), in
``marshal`` format, in a directory only the user can write; a file that is missing,
unreadable, truncated or owned by someone else reads as absent and is rebuilt. Keys
are hashes of what the tables are built from, so a stale file is never read.
Imports neither lark nor pydantic: lint reads its tables through this.
"""

from __future__ import annotations

import hashlib
import marshal
import os
import tempfile
from pathlib import Path


def cache_dir() -> Path:
    base = os.environ.get("QRULES_CACHE_DIR") or os.environ.get("XDG_CACHE_HOME")
    return Path(base) / "qrules" if base else Path.home() / ".cache" / "qrules"


def enabled() -> bool:
    """``QRULES_NO_CACHE=1`` switches the cache off (a first run on a new machine)."""
    return not os.environ.get("QRULES_NO_CACHE")


def cache_file(kind: str, *inputs: str) -> Path:
    """The file for tables of ``kind`` built from ``inputs``."""
    key = hashlib.sha256("\0".join(inputs).encode()).hexdigest()[:24]
    return cache_dir() / f"qrule-{kind}-{key}.marshal"


def read(path: Path):
    """The data stored at ``path``, or None."""
    try:
        if path.stat().st_uid != os.getuid():
            return None
        return marshal.loads(path.read_bytes())
    except Exception:  # missing, truncated or from another Python: rebuild
        return None


def store(path: Path, data) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        payload = marshal.dumps(data)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
        os.replace(tmp, path)
    except OSError:
        pass  # a read-only home only costs speed
