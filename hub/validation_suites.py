"""Expectation suites as data: load and check ``config/expectations/<entity>.yaml``.

A suite file is a YAML list; each item names a great-expectations expectation
and gives its keyword arguments inline::

    - {expectation: expect_column_values_to_not_be_null, column: code}
    - {expectation: expect_column_values_to_be_in_set, column: status, value_set: [active, inactive]}

Every item is checked at load time (known expectation, accepted kwargs,
compilable regexes, columns that exist on the canonical entity), so a bad
deployment override fails fast with the file, item and line instead of
failing on the first batch.
"""
from __future__ import annotations

import difflib
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import yaml

from hub import yamlio

from hub.canonical import entity as entity_def
from hub.errors import ConfigError

log = logging.getLogger(__name__)

SHIPPED_DIR = Path(__file__).resolve().parent.parent / "config" / "expectations"

# kwargs that name the columns an expectation reads (GE domain keys)
COLUMN_KWARGS = ("column", "column_A", "column_B")
COLUMN_LIST_KWARGS = ("column_list",)
# kwargs that hold regular expressions, compiled at load time to fail early
REGEX_KWARGS = ("regex",)
REGEX_LIST_KWARGS = ("regex_list",)
# GE model fields a suite file may not set: the validator needs complete
# results and caught exceptions, the rest is GE bookkeeping
RESERVED_KWARGS = frozenset(
    {"id", "rendered_content", "batch_id", "result_format", "catch_exceptions", "windows"}
)
# expectations that only run against SQL sources, never on a pandas batch
SQL_ONLY = frozenset({"unexpected_rows_expectation", "expect_query_results_to_match_comparison"})


@dataclass(frozen=True)
class ExpectationSpec:
    """One expectation of a suite, as written in the file.

    Attributes:
        name: the GE expectation name (snake case), e.g. ``expect_column_values_to_not_be_null``.
        kwargs: its keyword arguments, plain YAML data (JSON-safe).
        index: position in the file's list (0-based).
        line: 1-based line of the item in the file.
    """

    name: str
    kwargs: dict[str, Any]
    index: int
    line: int

    @property
    def columns(self) -> tuple[str, ...]:
        """The canonical columns this expectation reads, in kwarg order."""
        cols = [self.kwargs[k] for k in COLUMN_KWARGS if k in self.kwargs]
        for k in COLUMN_LIST_KWARGS:
            cols.extend(self.kwargs.get(k) or ())
        return tuple(cols)


@dataclass(frozen=True)
class Suite:
    """A checked expectation suite for one canonical entity.

    Attributes:
        entity: canonical entity name.
        path: the file it was read from (shipped default or override).
        expectations: the items in file order.
    """

    entity: str
    path: str
    expectations: tuple[ExpectationSpec, ...]


def gx_module() -> ModuleType:
    """Import great_expectations quietly (no analytics, INFO chatter off) and return it.

    Kept out of module import time so ``triad --help`` stays fast.
    """
    # must be set before the first import: GE reads it when a context starts
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
    gx_log = logging.getLogger("great_expectations")
    if gx_log.level == logging.NOTSET:
        # GE logs every decorator registration at INFO; keep an explicit app setting if any
        gx_log.setLevel(logging.WARNING)
    from hub.deferred_imports import defer
    from hub.gc_pause import cyclic_gc_paused
    defer("scipy.stats", "altair")   # imported by expectations the shipped suites do not use
    # the import makes some 400,000 containers and next to no garbage: the collector's passes over
    # them while it runs were a fifth of its time
    with cyclic_gc_paused():
        import great_expectations
        from great_expectations.execution_engine import pandas_execution_engine

    # GE fingerprints every batch under this size by hashing all its cells, a fifth of a batch's
    # validation; Triad never reads the fingerprint (batches are validated once, by position)
    if hasattr(pandas_execution_engine, "HASH_THRESHOLD"):
        pandas_execution_engine.HASH_THRESHOLD = 0
    return great_expectations


def shipped_path(entity: str) -> Path:
    """Return the path of the shipped default suite of ``entity``."""
    return SHIPPED_DIR / f"{entity}.yaml"


def load_suite(entity: str, override_path: str | None = None) -> Suite:
    """Load and check the expectation suite of a canonical entity.

    Args:
        entity: canonical entity name (customer, order, contract, payment, approval).
        override_path: a deployment's suite file, read *instead of* the shipped default.

    Returns:
        The checked suite.

    Raises:
        UsageError: ``entity`` is not a canonical entity.
        ConfigError: the file is missing or unreadable, is not a list of
            expectations, or an item has an unknown expectation, bad kwargs, a bad
            regex or a column the entity does not have. The message names the
            file, the item index and line, and the problem.
    """
    edef = entity_def(entity)
    path = Path(override_path) if override_path else shipped_path(entity)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read expectation suite: {exc.strerror or exc}",
                          entity=entity) from None
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yamlio.load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: invalid YAML: {exc}", entity=entity) from None
    if not isinstance(data, list) or not isinstance(root, yaml.SequenceNode):
        got = "nothing" if data is None else type(data).__name__
        raise ConfigError(f"{path}: expected a list of expectations, got {got}", entity=entity)

    columns = {name for name, typ in edef.fields.items() if typ != "list"}
    specs = tuple(
        _check_item(path, entity, columns, index, node.start_mark.line + 1, item)
        for index, (node, item) in enumerate(zip(root.value, data))
    )
    log.debug("loaded %d expectations for %s from %s", len(specs), entity, path)
    return Suite(entity=entity, path=str(path), expectations=specs)


def _check_item(path: Path, entity: str, columns: set[str], index: int, line: int,
                item: Any) -> ExpectationSpec:
    """Check one list item and return it as a spec; raise ConfigError naming file:line."""
    def fail(problem: str) -> ConfigError:
        return ConfigError(f"{path}:{line}: expectation #{index}: {problem}", entity=entity)

    if not isinstance(item, dict):
        raise fail(f"expected a mapping with an 'expectation' key, got {type(item).__name__}")
    kwargs = dict(item)
    name = kwargs.pop("expectation", None)
    if not isinstance(name, str) or not name:
        raise fail("missing 'expectation' (the great-expectations name, "
                   "e.g. expect_column_values_to_not_be_null)")
    cls = _expectation_class(name)
    if cls is None or name in SQL_ONLY:
        known = sorted(n for n in _registered_names() if n not in SQL_ONLY)
        close = difflib.get_close_matches(name, known, n=1)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        raise fail(f"unknown expectation '{name}'{hint}")
    reserved = sorted(RESERVED_KWARGS.intersection(kwargs))
    if reserved:
        raise fail(f"{name}: argument(s) {', '.join(reserved)} cannot be set in a suite file")
    for key in COLUMN_KWARGS:
        if key in kwargs:
            _check_column(fail, name, key, kwargs[key], columns)
    for key in COLUMN_LIST_KWARGS:
        if key in kwargs:
            if not isinstance(kwargs[key], list):
                raise fail(f"{name}: {key} must be a list of column names")
            for col in kwargs[key]:
                _check_column(fail, name, key, col, columns)
    for key in REGEX_KWARGS + REGEX_LIST_KWARGS:
        if key in kwargs:
            patterns = kwargs[key] if key in REGEX_LIST_KWARGS and isinstance(kwargs[key], list) \
                else [kwargs[key]]
            for pattern in patterns:
                try:
                    re.compile(pattern)
                except (re.error, TypeError) as exc:
                    raise fail(f"{name}: {key} {pattern!r} is not a valid regular expression: {exc}")
    try:
        cls(**kwargs)
    except Exception as exc:  # pydantic ValidationError or a GE check in a validator
        raise fail(f"{name}: bad arguments: {_describe(exc)}") from None
    return ExpectationSpec(name=name, kwargs=kwargs, index=index, line=line)


def _check_column(fail: Any, name: str, key: str, col: Any, columns: set[str]) -> None:
    if not isinstance(col, str) or col not in columns:
        raise fail(f"{name}: {key} {col!r} is not a column of this entity; "
                   f"columns: {', '.join(sorted(columns))}")


def _expectation_class(name: str) -> type | None:
    gx_module()
    from great_expectations.exceptions import ExpectationNotFoundError
    from great_expectations.expectations.registry import get_expectation_impl

    try:
        return get_expectation_impl(name)
    except ExpectationNotFoundError:
        return None


def _registered_names() -> list[str]:
    gx_module()
    from great_expectations.expectations.registry import list_registered_expectation_implementations

    return list_registered_expectation_implementations()


def _describe(exc: Exception) -> str:
    """One line out of a pydantic error: 'field: message; ...', duplicates dropped."""
    errors = getattr(exc, "errors", None)
    if not callable(errors):
        return str(exc)
    parts: list[str] = []
    for err in errors():
        loc = ".".join(str(p) for p in err.get("loc", ()) if p != "__root__")
        msg = err.get("msg", "invalid")
        part = f"{loc}: {msg}" if loc else msg
        if part not in parts:
            parts.append(part)
    return "; ".join(parts[:4])
