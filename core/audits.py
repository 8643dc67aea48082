"""The audit worker of a serving process: checks batches of whatever audit runs are
running, whichever process or node started them (coach/audits.py claims them in the
database), so the nodes sharing a PostgreSQL database check a large upload together;
with no batch to claim, it reads an upload whose files are still to be read."""

from __future__ import annotations

import atexit
import logging
import threading
import weakref
from collections.abc import Callable

log = logging.getLogger(__name__)


class AuditWorker(threading.Thread):
    """Claims, checks and saves batches while there are any, then looks again every
    `interval` seconds.  Holds its services weakly: it ends when they are gone, on
    stop(), or at interpreter exit."""

    def __init__(
        self, services, interval: float, checker_for: Callable, *, lease: float | None = None
    ):
        super().__init__(name="kbcoach-audit-worker", daemon=True)
        self._services = weakref.ref(services)
        self.interval = interval
        self.checker_for = checker_for  # rule-pack version -> Checker
        self.lease = lease
        self._stopping = threading.Event()
        atexit.register(self.stop)

    def run(self) -> None:
        from coach.audits import LEASE_SECONDS, AuditStore, new_claimer

        claimer = new_claimer()
        failing = False
        try:
            while not self._stopping.wait(self.interval):
                while not self._stopping.is_set():
                    services = self._services()
                    if services is None:
                        return
                    try:
                        store = AuditStore(
                            services.kb.store,
                            lease=self.lease or LEASE_SECONDS,
                            annotate=services.kb_answers.annotate,
                        )
                        checked = store.work(self.checker_for, claimer=claimer)
                        if failing:
                            log.warning("audit worker works again")
                        failing = False
                    except Exception:  # recorded on the run as failed; the worker lives on
                        if not failing:  # once, not every look while the database is down
                            log.exception("audit worker: a batch failed")
                        failing = True
                        checked = 0
                    del services
                    if not checked:
                        break  # nothing to claim: wait for the next look
        finally:
            services = self._services()
            if services is not None:
                services.kb.close()  # this thread's database connection

    def stop(self) -> None:
        self._stopping.set()
        if self.is_alive() and threading.current_thread() is not self:
            self.join(timeout=30)
