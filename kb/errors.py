"""Domain exceptions of every library (kb, coach, scripts_lib): one base, KbError, carrying
a Chinese message and a status; web/ maps it to the one error shape, the CLI to exit 1."""

from __future__ import annotations


class KbError(Exception):
    """Base class of every knowledge-base error a user can see."""

    status = 400
    field = ""  # the form field the error is about, when there is one


class NotFound(KbError):
    status = 404


class ValidationError(KbError):
    """Bad input, located by file and line where known."""

    def __init__(self, message: str, *, path: str = "", line: int | None = None, field: str = ""):
        self.message = message
        self.path = path
        self.line = line
        self.field = field
        super().__init__(str(self))

    def __str__(self) -> str:
        where = self.path
        if self.line is not None:
            where = f"{where}:{self.line}" if where else f"第{self.line}行"
        return f"{where}: {self.message}" if where else self.message


class Conflict(KbError):
    """The change clashes with what is stored (an id taken, a stale version)."""

    status = 409


class StaleVersion(Conflict):
    """A save based on a version that is no longer the current one: nothing was
    written.  `current_version` is the stored version (0: none); `details` carries
    what a surface shows beside the message (the current record, a diff)."""

    def __init__(self, message: str, *, current_version: int, details: dict | None = None):
        super().__init__(message)
        self.message = message
        self.current_version = current_version
        self.details = details or {}
