"""Production serving: gunicorn with several worker processes on one instance.

Workers share the SQLite database (WAL: many readers, one writer at a time) and
the whoosh index (writes serialised by whoosh's lock file; each worker's search
view reopens within half a second of a commit or a swapped-in rebuild).
"""

from __future__ import annotations

import json
import logging
import sys
import time

from flask import Flask, g, request

access_log = logging.getLogger("kbcoach.access")


def install_request_log(app: Flask) -> None:
    """One JSON line per request: method, path, status, latency, user."""

    @app.before_request
    def _start():
        g.t0 = time.perf_counter()

    @app.after_request
    def _log(resp):
        if access_log.isEnabledFor(logging.INFO):
            from flask_login import current_user

            access_log.info(
                json.dumps(
                    {
                        "ts": round(time.time(), 3),
                        "method": request.method,
                        "path": request.path,
                        "status": resp.status_code,
                        "ms": round(
                            (time.perf_counter() - g.get("t0", time.perf_counter())) * 1000, 2
                        ),
                        "user": getattr(current_user, "username", None),
                        "remote": request.remote_addr,
                    },
                    ensure_ascii=False,
                )
            )
        return resp


def run_production(
    instance: str, host: str, port: int, workers: int, threads: int, database_url: str = ""
) -> None:
    """Serve with gunicorn (graceful stop on SIGTERM/SIGINT)."""
    from gunicorn.app.base import BaseApplication

    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter("%(message)s"))
    access_log.addHandler(handler)
    access_log.setLevel(logging.INFO)
    access_log.propagate = False

    class _App(BaseApplication):
        def load_config(self):
            self.cfg.set("bind", f"{host}:{port}")
            self.cfg.set("workers", workers)
            self.cfg.set("threads", threads)
            self.cfg.set("worker_class", "gthread" if threads > 1 else "sync")
            self.cfg.set("graceful_timeout", 20)
            self.cfg.set("timeout", 120)
            self.cfg.set("accesslog", None)
            self.cfg.set("control_socket_disable", True)

        def load(self):
            from . import create_app

            config = {"INSTANCE": instance}
            if database_url:
                config["DATABASE_URL"] = database_url
            return create_app(config)

    _App().run()
