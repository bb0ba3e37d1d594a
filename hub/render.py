"""Output for the CLI: one JSON document with --json, tables and hints on a terminal.

Only the CLI calls this module; the hub never prints.
"""
from __future__ import annotations

import json
import sys
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Iterable, Sequence


def _default(o: Any) -> Any:
    if isinstance(o, (datetime, date)):
        return o.isoformat()
    if isinstance(o, Decimal):
        return str(o)
    if isinstance(o, (set, tuple)):
        return list(o)
    return str(o)


def dumps(data: Any) -> str:
    return json.dumps(data, default=_default, ensure_ascii=False, indent=2)


_json_printed = False   # a command prints one JSON document: a failure after it adds none


def print_json(data: Any) -> None:
    global _json_printed
    _json_printed = True
    sys.stdout.write(dumps(data) + "\n")


def start_command() -> None:
    global _json_printed
    _json_printed = False


def json_failure(message: str, exit_code: int) -> None:
    """Under --json, a command that failed before it printed its document prints this one instead, so a
    script reading stdout always gets one (the message also goes to stderr)."""
    if not _json_printed:
        print_json({"ok": False, "error": message, "exit_code": exit_code})


def console():  # noqa: ANN201 - rich imported lazily to keep `triad --help` fast
    from rich.console import Console
    # piped output (less, files, CI logs) gets a wide table instead of 80 folded columns
    return Console(soft_wrap=False, width=None if sys.stdout.isatty() else 200)


def cell(v: Any, width: int = 60) -> str:
    if v is None:
        return ""
    if isinstance(v, (dict, list)):
        v = json.dumps(v, default=_default, ensure_ascii=False)
    elif isinstance(v, datetime):
        v = v.strftime("%Y-%m-%d %H:%M:%S")
    s = str(v)
    s = s if len(s) <= width else s[: width - 1] + "…"
    from rich.markup import escape
    return escape(s)      # data is shown as it is, never read as markup


def table(title: str | None, columns: Sequence[str], rows: Iterable[Sequence[Any]], width: int = 60) -> None:
    """``width``: characters a cell shows before it is cut (a list keeps its rows short; a detail view
    whose text is the point, a quarantine reason, passes more)."""
    from rich.markup import escape
    from rich.table import Table
    t = Table(title=escape(title) if title else None, show_lines=False, header_style="bold")
    for c in columns:
        t.add_column(c, overflow="fold")
    n = 0
    for r in rows:
        t.add_row(*[cell(v, width) for v in r])
        n += 1
    if n == 0:
        from rich.markup import escape as esc
        console().print(f"[dim]{esc(title) + ': ' if title else ''}nothing to show[/dim]")
    else:
        console().print(t)


def kv(title: str | None, pairs: Iterable[tuple[str, Any]]) -> None:
    table(title, ["key", "value"], pairs)


def say(text: str) -> None:
    console().print(text, highlight=False)


def hint(text: str) -> None:
    console().print(f"[dim]→ {text}[/dim]", highlight=False)


def error(text: str) -> None:
    sys.stderr.write(f"error: {text}\n")


def note(text: str) -> None:
    """Something to know about a command that did not fail (on stderr, like errors)."""
    sys.stderr.write(f"note: {text}\n")
