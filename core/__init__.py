"""The application core: one instance's services, built once per process by the web
app (`create_app`) and by the CLI.  Use cases live here or in the libraries; web/ and
cli.py translate requests and arguments into calls and render what comes back."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .kb_answer import KbAnswers
from .search import Answer, SearchService


@dataclass(frozen=True)
class Settings:
    instance: Path
    database_url: str | None = None  # None: the SQLite file in the instance folder
    index_dir: Path | None = None  # None: <instance>/index
    scripts_dirs: tuple[str, ...] = field(default_factory=tuple)


class Services:
    """What one process serves for one instance."""

    def __init__(self, settings: Settings):
        from kb import pins
        from kb.service import KnowledgeBase
        from scripts_lib.library import load_library
        from scripts_lib.usage import default_library, register_source

        self.settings = settings
        self.kb = KnowledgeBase(
            settings.instance, index_dir=settings.index_dir, database_url=settings.database_url
        )
        dirs = tuple(settings.scripts_dirs or ())
        self.scripts = load_library(dirs) if dirs else default_library()
        register_source(self.kb, self.scripts)  # standard scripts indexed beside articles
        pins.attach(self.kb)  # pinned answers first in every search of this process
        self.search = SearchService(self.kb, self.scripts)
        self.kb_answers = KbAnswers(self.kb)  # 知识库中有答案 on audit findings
        self.audit_worker = None

    def start_worker(self, interval: float, checker_for, *, lease: float | None = None) -> None:
        """Help check running audit runs in a thread, looking for batches to claim every
        `interval` seconds; `checker_for(version)` is the Checker of a rule version."""
        from .audits import AuditWorker

        if self.audit_worker is None or not self.audit_worker.is_alive():
            self.audit_worker = AuditWorker(self, interval, checker_for, lease=lease)
            self.audit_worker.start()

    def stop_worker(self) -> None:
        if self.audit_worker is not None:
            self.audit_worker.stop()
            self.audit_worker = None

    @property
    def database(self):
        return self.kb.database

    def accounts(self):
        """Accounts over this thread's store."""
        from kb.accounts import Accounts

        return Accounts(self.kb.store)

    def close(self) -> None:
        self.kb.close()


def configured_database_url(instance: Path) -> str | None:
    """DATABASE_URL of `<instance>/config.py` (the file the web app reads settings
    from), so the CLI and the server agree on the database."""
    import runpy

    path = Path(instance) / "config.py"
    if not path.is_file():
        return None
    return runpy.run_path(str(path)).get("DATABASE_URL") or None


def open_instance(settings: Settings) -> Services:
    """Open (creating or upgrading if needed) an instance and its services."""
    return Services(settings)


__all__ = [
    "Answer",
    "KbAnswers",
    "SearchService",
    "Services",
    "Settings",
    "configured_database_url",
    "open_instance",
]
