"""Long-running jobs (imports, rebuilds) recorded so a killed one is found and
marked interrupted at the next start.  The index it left behind needs no flag: its
committed batches carry their changes, which the next catch-up applies."""

from __future__ import annotations

import json
import os

from .store import Store, now_iso


def process_alive(pid: int) -> bool:
    """Whether a process with this id still exists (on this machine)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Runs:
    def __init__(self, store: Store):
        self.store = store
        db = store.db
        if "runs" not in db.table_names():
            with db.conn:
                db["runs"].create(
                    {
                        "id": int,
                        "kind": str,
                        "source": str,
                        "pid": int,
                        "started_at": str,
                        "finished_at": str,
                        "status": str,
                        "detail": str,
                    },
                    pk="id",
                    if_not_exists=True,
                )

    def mark_interrupted(self) -> list[dict]:
        """Runs still 'running' whose process is gone: mark them interrupted."""
        stale = [
            r
            for r in self.store.db.query("SELECT * FROM runs WHERE status = 'running'")
            if not process_alive(r["pid"])
        ]
        if stale:
            with self.store.db.conn:
                for r in stale:
                    self.store.db.execute(
                        "UPDATE runs SET status = 'interrupted', finished_at = ? WHERE id = ?",
                        [now_iso(), r["id"]],
                    )
        return stale

    def any_running(self) -> bool:
        """Some job still marked running (call mark_interrupted() first to drop dead ones)."""
        return bool(
            self.store.db.execute("SELECT 1 FROM runs WHERE status = 'running' LIMIT 1").fetchone()
        )

    def start(self, kind: str, source: str) -> int:
        self.mark_interrupted()
        with self.store.db.conn:
            return (
                self.store.db["runs"]
                .insert(
                    {
                        "kind": kind,
                        "source": source,
                        "pid": os.getpid(),
                        "started_at": now_iso(),
                        "finished_at": "",
                        "status": "running",
                        "detail": "{}",
                    }
                )
                .last_pk
            )

    def finish(self, run_id: int, status: str, detail: dict | None = None) -> None:
        with self.store.db.conn:
            self.store.db.execute(
                "UPDATE runs SET status = ?, finished_at = ?, detail = ? WHERE id = ?",
                [status, now_iso(), json.dumps(detail or {}, ensure_ascii=False), run_id],
            )

    def recent(self, limit: int = 20) -> list[dict]:
        return list(self.store.db.query("SELECT * FROM runs ORDER BY id DESC LIMIT ?", [limit]))
