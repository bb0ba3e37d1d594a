"""Validate batches of canonical rows against an entity's expectation suite (SPEC section 5).

Each batch is one great-expectations run over a pandas DataFrame; rows that
fail a column expectation are reported by their position in the batch so the
pipeline can quarantine them and let the rest proceed. A GE call has a fixed
cost of tens of milliseconds whatever the batch size, so build one
:class:`Validator` per (entity, suite) and feed it whole batches.

Example::

    validator = Validator(load_suite("customer", override_path=None))
    result = validator.validate(rows)
    for index, failures in result.row_failures.items():
        quarantine(rows[index], reasons=failures)
"""
from __future__ import annotations

import json
import logging
import math
import threading
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any

from hub.canonical import ENTITIES
from hub.validation_suites import ExpectationSpec, Suite, gx_module, load_suite

__all__ = ["ValidationResult", "Validator", "DeferredValidator", "load_suite", "Suite", "ExpectationSpec"]

log = logging.getLogger(__name__)

# numeric canonical types become float64 columns: vectorized range checks and
# working aggregates (GE's mean/sum fail on object columns of Decimal)
NUMERIC_TYPES = ("decimal", "int")
META_INDEX = "triad_index"   # ties a GE result back to its item in the suite file
RESULT_FORMAT = {"result_format": "COMPLETE"}   # the full unexpected_index_list, not the first 20


@dataclass
class ValidationResult:
    """The outcome of validating one batch.

    Attributes:
        row_failures: position in the batch -> the failures of that row, in suite
            order; each is ``{"expectation", "column", "value", "kwargs"}`` where
            ``value`` is the offending value as a JSON-safe string (``None`` when
            the value is missing). Multi-column expectations name their columns
            comma-separated and give the values as a JSON object string.
        table_failures: failures that belong to no single row (table or aggregate
            expectations, or an expectation that raised), each
            ``{"expectation", "column", "kwargs", "observed_value", "error"}``.
    """

    row_failures: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    table_failures: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when no row and no table expectation failed."""
        return not self.row_failures and not self.table_failures


class Validator:
    """Runs one entity's suite over batches; build once, reuse for every batch.

    The GE ephemeral context, pandas datasource, dataframe asset, batch
    definition and suite are created once here; :meth:`validate` only wraps
    the rows in a DataFrame and runs the suite. Calls are serialized with a
    lock because the GE objects are not meant to be shared between threads.

    Args:
        suite: a suite from :func:`load_suite`.
    """

    def __init__(self, suite: Suite) -> None:
        self.suite = suite
        self.entity = suite.entity
        fields = ENTITIES[suite.entity].fields
        scalar = tuple(name for name, typ in fields.items() if typ != "list")
        used = {col for spec in suite.expectations for col in spec.columns}
        # only the columns the suite reads (building a column costs ~5 ms per
        # 50,000 rows); a table-level expectation (shape, row count) or a
        # row_condition may read any column, so those get every scalar field
        needs_all = any(not spec.columns or "row_condition" in spec.kwargs
                        for spec in suite.expectations)
        self.columns = scalar if needs_all else tuple(c for c in scalar if c in used)
        self._numeric = frozenset(c for c in self.columns if fields[c] in NUMERIC_TYPES)
        self._specs = {spec.index: spec for spec in suite.expectations}
        self._lock = threading.Lock()
        self._batch_definition = None
        self._gx_suite = None
        if suite.expectations:
            self._build()

    def __repr__(self) -> str:
        return f"Validator(entity={self.entity!r}, suite={self.suite.path!r}, " \
               f"expectations={len(self._specs)})"

    def _build(self) -> None:
        gx = gx_module()
        from great_expectations.data_context.types.base import (
            DataContextConfig,
            InMemoryStoreBackendDefaults,
            ProgressBarsConfig,
        )
        from great_expectations.expectations.registry import get_expectation_impl

        config = DataContextConfig(
            store_backend_defaults=InMemoryStoreBackendDefaults(init_temp_docs_sites=False),
            analytics_enabled=False,
            progress_bars=ProgressBarsConfig(globally=False, metric_calculations=False),
        )
        context = gx.get_context(mode="ephemeral", project_config=config)
        asset = context.data_sources.add_pandas("triad").add_dataframe_asset(self.entity)
        self._batch_definition = asset.add_batch_definition_whole_dataframe("batch")
        gx_suite = gx.ExpectationSuite(name=f"triad-{self.entity}")
        for spec in self.suite.expectations:
            kwargs = dict(spec.kwargs)
            kwargs["meta"] = {**(kwargs.get("meta") or {}), META_INDEX: spec.index}
            gx_suite.add_expectation(get_expectation_impl(spec.name)(**kwargs))
        self._gx_suite = context.suites.add(gx_suite)
        log.debug("built validator for %s from %s", self.entity, self.suite.path)

    def validate(self, rows: list[dict[str, Any]]) -> ValidationResult:
        """Validate one batch of canonical rows.

        Args:
            rows: canonical values (str, Decimal, date, datetime, None ...); keys
                that are not scalar fields of the entity (``lines``, ``id``) are ignored.

        Returns:
            The failing rows by position in ``rows`` and the table-level failures.
        """
        if not rows or self._gx_suite is None:
            return ValidationResult()
        frame = self._frame(rows)
        with self._lock:
            batch = self._batch_definition.get_batch(batch_parameters={"dataframe": frame})
            outcome = batch.validate(self._gx_suite, result_format=RESULT_FORMAT)
        return self._collect(rows, outcome.results)

    def _frame(self, rows: list[dict[str, Any]]) -> Any:
        import pandas as pd

        data = {}
        for col in self.columns:
            values = [row.get(col) for row in rows]
            floats = _as_floats(values) if col in self._numeric else None
            # object dtype keeps Decimal/date/str values as they are (pandas 3
            # would otherwise infer its string dtype)
            data[col] = pd.Series(values, dtype=object) if floats is None \
                else pd.Series(floats, dtype="float64")
        # the default RangeIndex maps GE's unexpected indexes back to positions in ``rows``
        return pd.DataFrame(data)

    def _collect(self, rows: list[dict[str, Any]], results: list[Any]) -> ValidationResult:
        row_failures: dict[int, list[dict[str, Any]]] = defaultdict(list)
        table_failures: list[dict[str, Any]] = []
        ordered = sorted(results, key=lambda r: r.expectation_config.meta.get(META_INDEX, -1))
        for res in ordered:
            spec = self._specs[res.expectation_config.meta[META_INDEX]]
            column = ",".join(spec.columns) or None
            kwargs = _plain(spec.kwargs)
            error = _exception_message(res.exception_info)
            if error is not None:
                log.warning("expectation %s (%s item %d) raised on a %s batch: %s",
                            spec.name, self.suite.path, spec.index, self.entity, error)
                table_failures.append({"expectation": spec.name, "column": column, "kwargs": kwargs,
                                       "observed_value": None, "error": error})
                continue
            if res.success:
                continue
            indexes = res.result.get("unexpected_index_list")
            if indexes is None:
                table_failures.append({"expectation": spec.name, "column": column, "kwargs": kwargs,
                                       "observed_value": _plain(res.result.get("observed_value")),
                                       "error": None})
                continue
            for index in indexes:
                position = int(index)
                row_failures[position].append({
                    "expectation": spec.name, "column": column,
                    "value": _offending(rows[position], spec.columns), "kwargs": kwargs,
                })
        if table_failures:
            log.info("%d table-level expectation(s) failed on a %s batch of %d rows",
                     len(table_failures), self.entity, len(rows))
        return ValidationResult(row_failures=dict(sorted(row_failures.items())),
                                table_failures=table_failures)


class DeferredValidator:
    """A :class:`Validator` built on first use.

    Loading a suite checks it against great-expectations, whose import costs
    seconds; a run whose rows are all unchanged never needs it. The suite is
    limited to the expectations whose columns are in ``mapped`` (a system that
    has no customer code must not fail ``code is not null``).
    """

    def __init__(self, entity: str, override_path: str | None, mapped: frozenset[str]) -> None:
        self.entity, self.override_path, self.mapped = entity, override_path, mapped
        self._inner: Validator | None = None
        self._lock = threading.Lock()

    def prepare(self) -> Validator:
        """Load, check and build the suite now (raises ConfigError for a bad suite)."""
        with self._lock:
            if self._inner is None:
                from dataclasses import replace
                suite = load_suite(self.entity, self.override_path)
                suite = replace(suite, expectations=tuple(e for e in suite.expectations
                                                          if set(e.columns) <= self.mapped))
                self._inner = Validator(suite)
            return self._inner

    def validate(self, rows: list[dict[str, Any]]) -> ValidationResult:
        if not rows:
            return ValidationResult()
        return self.prepare().validate(rows)

    def __getattr__(self, name: str) -> Any:   # suite, columns ... of the built validator
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self.prepare(), name)


def _as_floats(values: list[Any]) -> list[float] | None:
    """Decimal/int values as floats (None -> NaN); None if any value is not a number."""
    out: list[float] = []
    for value in values:
        if value is None:
            out.append(math.nan)
        elif isinstance(value, (Decimal, int, float)) and not isinstance(value, bool):
            out.append(float(value))
        else:
            # a stray non-number (a mapping bug): keep the raw objects so GE
            # reports it instead of this conversion failing the whole batch
            return None
    return out


def _exception_message(info: Any) -> str | None:
    """The message of an expectation that raised, from GE's flat or per-metric exception_info."""
    if not isinstance(info, dict):
        return None
    if info.get("raised_exception"):
        return str(info.get("exception_message") or "error")
    messages = [str(v.get("exception_message") or "error") for v in info.values()
                if isinstance(v, dict) and v.get("raised_exception")]
    return "; ".join(dict.fromkeys(messages)) or None


def _offending(row: dict[str, Any], columns: tuple[str, ...]) -> str | None:
    if len(columns) == 1:
        return _text(row.get(columns[0]))
    return json.dumps({c: _text(row.get(c)) for c in columns}, ensure_ascii=False)


def _text(value: Any) -> str | None:
    """A value as a JSON-safe string; None stays None (a missing value)."""
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, (datetime, date, time)):
        return value.isoformat()
    return str(value)


def _plain(value: Any) -> Any:
    """Make kwargs and observed values JSON-safe (dates from YAML, numpy scalars)."""
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_plain(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, Decimal):   # numpy scalar
        return _plain(value.item())
    return _text(value)
