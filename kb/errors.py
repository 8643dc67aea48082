"""Domain exceptions of every library (kb, coach, scripts_lib): one base, KbError, carrying
a Chinese message and a status; web/ maps it to the one error shape, the CLI to exit 1."""

from __future__ import annotations


class KbError(Exception):
    """Base class of every knowledge-base error a user can see."""

    status = 400


class NotFound(KbError):
    status = 404


class ValidationError(KbError):
    """Bad input, located by file and line where known."""

    def __init__(self, message: str, *, path: str = "", line: int | None = None):
        self.message = message
        self.path = path
        self.line = line
        super().__init__(str(self))

    def __str__(self) -> str:
        where = self.path
        if self.line is not None:
            where = f"{where}:{self.line}" if where else f"第{self.line}行"
        return f"{where}: {self.message}" if where else self.message
