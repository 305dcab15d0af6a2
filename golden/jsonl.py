"""Resumable JSON-lines files: one record per line, appended as work finishes, read back on resume.

Every long run of the project that can be interrupted and resumed (``bench.sweep``'s results, the
accuracy study's) keeps its records this way, through these two functions, so that a crash loses
nothing that was finished:

* :func:`append_jsonl` writes whole lines under an exclusive lock and flushes them to disk. A process
  killed in the middle of a write leaves a *partial last line*; the next append first repairs it —
  ends it with a newline if what is there is a complete record, drops it otherwise — so the new record
  never lands on the end of the torn one (where both would be lost: 21 runs once left 20 valid lines).
* :func:`read_jsonl` returns every valid record and warns about (and skips) a line that is not one.

The module lives in ``golden`` because every layer above may write such a file and imports point down.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import BinaryIO

_TAIL_CHUNK = 1 << 16
"""Bytes read per step while looking back for the start of a partial last line."""


def record_key(ident: dict) -> str:
    """A record's key in a resumable results file: 16 hex digits of the SHA-256 of ``ident`` (everything
    the record depends on) as sorted JSON, so a rerun finds what is done whatever the order it was
    described in. Keys are stored in the files: the formula must not change."""
    return hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:16]


def read_jsonl(path: str | Path) -> list[dict]:
    """Every record of the JSON-lines file ``path`` (``[]`` if it does not exist). A line that is not valid
    JSON (a write torn by a crash that no append has repaired yet) is skipped with a warning on stderr
    naming the file and line."""
    path = Path(path)
    if not path.exists():
        return []
    out = []
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            print(f"warning: {path}:{n} is not valid JSON (interrupted write?); ignored", file=sys.stderr)
    return out


def append_jsonl(path: str | Path, records: Iterable[dict]) -> None:
    """Append ``records`` to ``path`` as JSON lines (keys sorted), under an exclusive lock, flushed and
    fsynced; the directory is created. A partial last line left by a killed writer is repaired first
    (:func:`repair_tail`)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = "".join(json.dumps(r, sort_keys=True) + "\n" for r in records).encode()
    with open(path, "a+b") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            repair_tail(f)
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def repair_tail(f: BinaryIO) -> str | None:
    """Make the file ``f`` (open for reading and appending, locked by the caller) end with a newline.

    A last line without one is the trace of a writer killed mid-write: if it is a complete JSON record
    it is kept and ended; otherwise it is cut off. Returns what was done (``"ended"``, ``"dropped"``) or
    ``None`` when the file was already whole, and warns on stderr when a line is dropped.
    """
    size = f.seek(0, os.SEEK_END)
    if size == 0:
        return None
    f.seek(size - 1)
    if f.read(1) == b"\n":
        return None
    start = _last_line_start(f, size)
    f.seek(start)
    tail = f.read(size - start)
    try:
        json.loads(tail)
    except (json.JSONDecodeError, UnicodeDecodeError):
        f.truncate(start)
        print(f"warning: {getattr(f, 'name', 'JSONL file')}: dropped a partial last line of {len(tail)} bytes "
              "(a write interrupted by a crash)", file=sys.stderr)
        return "dropped"
    f.seek(0, os.SEEK_END)
    f.write(b"\n")
    return "ended"


def _last_line_start(f: BinaryIO, size: int) -> int:
    """Offset just after the last newline of ``f`` (0 if it has none)."""
    end = size
    while end > 0:
        begin = max(0, end - _TAIL_CHUNK)
        f.seek(begin)
        at = f.read(end - begin).rfind(b"\n")
        if at >= 0:
            return begin + at + 1
        end = begin
    return 0
