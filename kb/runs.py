"""Long-running jobs (imports, rebuilds) recorded so a killed one is found and
marked interrupted at the next start.  The index it left behind needs no flag: its
committed batches carry their changes, which the next catch-up applies.  The rows
live in the runs table (storage/runs.py)."""

from __future__ import annotations

import json
import os
import socket

from storage import runs as repo

from .store import Store, now_iso

HOST = socket.gethostname()


def process_alive(pid: int) -> bool:
    """Whether a process with this id still exists (on this machine)."""
    if not pid or pid < 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OverflowError:  # not a process id at all
        return False
    return True


class Runs:
    def __init__(self, store: Store):
        self.store = store
        self.database = store.database

    def mark_interrupted(self) -> list[dict]:
        """Runs still 'running' whose process is gone: mark them interrupted.  Only this
        machine's (a process id means nothing on another node sharing the database)."""
        stale = [
            r
            for r in repo.running(self.database)
            if r["host"] in (None, HOST) and not process_alive(r["pid"])
        ]
        repo.mark_interrupted(self.database, [r["id"] for r in stale], now_iso())
        return stale

    def any_running(self) -> bool:
        """Some job still marked running (call mark_interrupted() first to drop dead ones)."""
        return repo.any_running(self.database)

    def start(self, kind: str, source: str) -> int:
        self.mark_interrupted()
        return repo.start(self.database, kind, source, HOST, os.getpid(), now_iso())

    def finish(self, run_id: int, status: str, detail: dict | None = None) -> None:
        repo.finish(
            self.database, run_id, status, now_iso(), json.dumps(detail or {}, ensure_ascii=False)
        )

    def recent(self, limit: int = 20) -> list[dict]:
        return repo.recent(self.database, limit)
