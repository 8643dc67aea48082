"""The search log, written off the request path.

Every query is recorded (text, filters, hit count, latency), but a write transaction
per search made all workers queue on SQLite's single write lock under load.  Entries
are buffered per process and written in one transaction at most every FLUSH_EVERY
seconds by a daemon thread, and at exit; a crash loses at most that last second of
analytics, never an article.
"""

from __future__ import annotations

import atexit
import threading
import time

FLUSH_EVERY = 1.0
MAX_BUFFER = 10_000  # beyond this (a stuck database) the oldest entries are dropped


class SearchLog:
    def __init__(self, database):
        self.database = database
        self._entries: list[dict] = []
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._repo = None
        atexit.register(self._flush_quietly)

    def add(self, entries: list[dict]) -> None:
        with self._lock:
            self._entries.extend(entries)
            if len(self._entries) > MAX_BUFFER:
                del self._entries[: len(self._entries) - MAX_BUFFER]
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="kbcoach-search-log", daemon=True
                )
                self._thread.start()

    def flush(self) -> int:
        """Write what is buffered now; returns how many entries were written."""
        with self._lock:
            entries, self._entries = self._entries, []
        if not entries:
            return 0
        from .gaps import query_key

        for entry in entries:  # the content-gap group, computed here off the request path
            entry.setdefault("qkey", query_key(entry["q"]))
        if self._repo is None:
            from storage.articles import SearchLogRepository

            self._repo = SearchLogRepository(self.database)
        self._repo.add(entries)  # one transaction, one executemany
        return len(entries)

    def _flush_quietly(self) -> None:
        try:
            self.flush()
        except Exception:  # noqa: BLE001 - analytics must never take the service down
            pass

    def _run(self) -> None:
        while True:
            time.sleep(FLUSH_EVERY)
            self._flush_quietly()
