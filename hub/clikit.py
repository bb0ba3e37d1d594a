"""Pieces shared by the CLI's command modules: the context decorator, --json, rendering switch."""
from __future__ import annotations

import functools
import sys
from contextlib import contextmanager
from typing import Any, Callable, Iterator

import click

from hub.context import Context

pass_ctx = click.make_pass_decorator(Context)


def reporting(fn: Callable) -> Callable:
    """Adds ``--json`` to a command (also accepted before the command name)."""
    @click.option("--json", "as_json", is_flag=True, help="Print one JSON document on stdout.")
    @functools.wraps(fn)
    def wrapper(*args: Any, as_json: bool = False, **kwargs: Any) -> Any:
        ctx = click.get_current_context().find_object(Context)
        if as_json and ctx is not None:
            ctx.as_json = True
        return fn(*args, **kwargs)
    return wrapper


def emit(ctx: Context, data: Any, human: Callable[[], None]) -> None:
    from hub import render
    if ctx.as_json:
        render.print_json(data)
    else:
        human()


@contextmanager
def count_bar(ctx: Context, label: str, total: int) -> Iterator[Callable[[int], None] | None]:
    """A progress bar on a terminal for long work of ``total`` items: yields a callback taking the
    number done so far (None without a terminal or under --json: nothing is drawn)."""
    if ctx.as_json or not sys.stderr.isatty():
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
    with Progress(TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                  console=Console(stderr=True), transient=True) as bar:   # stdout stays the command's output
        task = bar.add_task(label, total=total)
        yield lambda n: bar.update(task, completed=n)


@contextmanager
def spinner(ctx: Context, first: str) -> Iterator[Callable[[str], None] | None]:
    """A one-line spinner on a terminal for long work of unknown length: yields a callback taking the
    line to show (None without a terminal or under --json: nothing is drawn)."""
    if ctx.as_json or not sys.stderr.isatty():
        yield None
        return
    from rich.console import Console
    from rich.progress import Progress, SpinnerColumn, TextColumn
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), console=Console(stderr=True),
                  transient=True) as bar:   # on stderr: stdout stays the command's output
        task = bar.add_task(first)
        yield lambda text: bar.update(task, description=text)
