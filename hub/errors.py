"""Errors classified by what happens next (config, fatal, retriable, skippable, conflict).

Only ``cli.py`` turns these into messages and exit codes; everything below it
raises them with enough context (connector, entity, run, batch) to act on.
"""
from __future__ import annotations


class TriadError(Exception):
    """Base class. ``context`` names where it happened (connector, entity, run, batch)."""

    exit_code = 1

    def __init__(self, message: str, **context: object) -> None:
        super().__init__(message)
        self.message = message
        self.context = {k: v for k, v in context.items() if v is not None}

    def __str__(self) -> str:
        if not self.context:
            return self.message
        where = ", ".join(f"{k}={v}" for k, v in self.context.items())
        return f"{self.message} ({where})"


class ConfigError(TriadError):
    """Bad configuration or mapping: fix the file and run again (exit 2)."""

    exit_code = 2


class UsageError(TriadError):
    """Bad command-line usage (exit 2)."""

    exit_code = 2


class PermissionDenied(TriadError):
    """The caller lacks a role permission (exit 2, audited)."""

    exit_code = 2


class NotFound(TriadError):
    """A named object (record, conflict, run ...) does not exist."""

    exit_code = 1


class FatalError(TriadError):
    """The stream cannot go on this run (auth refused, schema mismatch). Nothing is retried."""


class RetriableError(TriadError):
    """A transient failure (429, 5xx, connection): try again later, after ``retry_after`` seconds if given."""

    def __init__(self, message: str, retry_after: float | None = None, **context: object) -> None:
        super().__init__(message, **context)
        self.retry_after = retry_after


class LimitExceeded(RetriableError):
    """The system's request budget is spent: stop the stream cleanly, resume next run."""


class SkippableRecordError(TriadError):
    """One record cannot be processed (bad value, rejected write); it goes to quarantine or the dead letter."""


class MappingError(SkippableRecordError):
    """A source value does not fit the mapping (type, transform, unknown value)."""

    def __init__(self, message: str, field: str | None = None,
                 problems: list[tuple[str | None, str]] | None = None, **context: object) -> None:
        super().__init__(message, field=field, **context)
        self.field = field
        # every (field, message) of the record when several of its values do not fit; the first is this one
        self.problems = problems or [(field, message)]
