"""The compiled mapping: source record <-> canonical values, both directions.

A :class:`Mapping` is built once from a checked :class:`~hub.mapping_model.MappingPlan`;
each field becomes one small closure with its options bound, so mapping a
record does no spec look-ups, no regex compilation and no validation-model work.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Callable, Iterable

from hub.canonical import decimal_digits
from hub.errors import MappingError
from hub.mapping_model import FieldPlan, MappingPlan
from hub.mapping_types import decimal_for_column, datetime_parser, formatter_for, parser_for, to_bool, to_string
from hub.mapping_yaml import scalar_key

Reader = Callable[[dict], Any]
Writer = Callable[[Any, dict], None]


@dataclass(slots=True)
class MappedRecord:
    """One source record in canonical terms.

    ``refs`` names the referenced entity of each reference field that has a
    value; the value itself is still the *source* id, resolved later through xref.
    """

    source_id: str
    source_ts: datetime | None
    values: dict[str, Any]
    refs: dict[str, str]
    deleted: bool = False


def _getter(path: tuple[str, ...]) -> Reader:
    """Read a (dotted) source path; a missing step gives None."""
    if len(path) == 1:
        key = path[0]
        return lambda raw: raw.get(key)
    first, rest, literal = path[0], path[1:], ".".join(path)

    def get_path(raw: dict) -> Any:
        value = raw.get(first)
        if value is None:
            # flat result sets name nested fields with the dotted path itself (Kingdee FieldKeys)
            return raw.get(literal)
        for part in rest:
            if not isinstance(value, dict):
                return None
            value = value.get(part)
            if value is None:
                return None
        return value
    return get_path


def _setter(path: tuple[str, ...]) -> Writer:
    """Write a (dotted) path into an outbound dict, creating nested dicts."""
    if len(path) == 1:
        key = path[0]

        def set_key(value: Any, out: dict) -> None:
            out[key] = value
        return set_key
    parents, last = path[:-1], path[-1]

    def set_path(value: Any, out: dict) -> None:
        node = out
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = value
    return set_path


def _describe(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _canonical_parser(plan: FieldPlan, tz: Any) -> Callable[[Any], Any]:
    """Source value -> canonical type, reading it first as the mapping's `type:` if that differs."""
    parse = parser_for(plan.type, tz)
    if not plan.source_type or plan.source_type == plan.type:
        return parse
    read_as = parser_for(plan.source_type, tz)
    if plan.source_type == "datetime" and plan.type == "date":
        return lambda value: read_as(value).astimezone(tz).date()    # the local calendar day
    return lambda value: parse(read_as(value))


def _source_converter(plan: FieldPlan, tz: Any) -> Callable[[Any], Any]:
    """Canonical value -> the system's representation (its `type:` if given), formatted."""
    kind = plan.source_type or plan.type
    fmt = formatter_for(kind, tz)
    if kind == plan.type:
        return fmt
    if plan.type == "datetime" and kind == "date":
        return lambda value: fmt(value.astimezone(tz).date())
    convert = parser_for(kind, tz)
    return lambda value: fmt(convert(value))


def _plain_key(plan: FieldPlan) -> str | None:
    """The source key of a field that is a plain rename of one top-level text value."""
    if (len(plan.source) == 1 and plan.type == "string" and not plan.source_type and not plan.transforms
            and plan.values is None):
        return plan.source[0]
    return None


def _carried_by(plan: FieldPlan) -> tuple[str, str] | None:
    """The keys a raw record must hold one of to carry the field (its top-level key, or a dotted path as one
    key, as a CSV header may name it); None for a field with a default, which stands in for what is missing.

    A record without them says nothing about the field: an export without that column, a webhook or
    JSON record that leaves it out must not empty the golden value (and every system's after it)."""
    if not plan.source or plan.default is not None:
        return None
    return (plan.source[0], ".".join(plan.source))


def _compile_reader(plan: FieldPlan, tz: Any, entity: str, within: str = "") -> Reader:
    """One closure per field of ``entity`` (``within`` a list field, for a line's field): read,
    blank -> None, transforms, values map, type, default; decimals fitted to their store column."""
    if plan.type == "list":
        return _compile_lines(plan, tz, entity)
    read = _compile_value_reader(plan, tz)
    if plan.type == "decimal":
        return _fitted_to_column(read, plan, decimal_digits(entity, within + plan.name))
    return read


def _fitted_to_column(read: Reader, plan: FieldPlan, digits: tuple[int, int]) -> Reader:
    """Round a decimal field's value to its column's scale and refuse one too large for the column,
    whether it was read, looked up in a values map or defaulted: a row-level error, not a failed batch."""
    name, source_text = plan.name, ".".join(plan.source)
    fit = decimal_for_column(*digits)

    def read_decimal(raw: dict) -> Any:
        value = read(raw)
        if value is None:
            return None
        try:
            return fit(value)
        except ValueError as exc:
            raise MappingError(f"{name}: {exc} (from {source_text})", field=name) from None
    return read_decimal


def _compile_value_reader(plan: FieldPlan, tz: Any) -> Reader:
    """Read one scalar field: blank -> None, transforms, values map, type, default."""
    name = plan.name
    source_text = ".".join(plan.source)
    get = _getter(plan.source)
    default = plan.default
    parse = _canonical_parser(plan, tz)
    # `type:` says how to read the source value; a values map then looks up what was read
    read_as = parser_for(plan.source_type, tz) if plan.source_type else None
    transforms = plan.transforms
    values = plan.values
    folded = {k.casefold(): v for k, v in values.items()} if values is not None else None
    # a values map that lists "" (SAP's blank flag) maps blanks too; otherwise blank means no value
    blank = values[""] if values is not None and "" in values else default

    if not transforms and values is None and parse is to_string:
        # the common case, kept short: rename a text field
        def read_text(raw: dict) -> Any:
            value = get(raw)
            if value.__class__ is str:
                if value and not value.isspace():
                    return value
                return default
            if value is None:
                return default
            try:
                return to_string(value)
            except ValueError as exc:
                raise MappingError(f"{name}: {exc} (from {source_text})", field=name) from None
        return read_text

    def read(raw: dict) -> Any:
        value = get(raw)
        if value is None:
            return default
        if value.__class__ is str and (not value or value.isspace()):
            return blank
        try:
            if transforms:
                value = to_string(value)
                for func in transforms:
                    value = func(value)
                    if not value:
                        return default
            if values is not None:
                key = scalar_key(read_as(value) if read_as is not None else value)
                if key in values:
                    return values[key]
                key = key.strip().casefold()
                if key in folded:
                    return folded[key]
                raise MappingError(f"{name}: unknown value {_describe(value)} from {source_text}; "
                                   f"known: {', '.join(values)}", field=name)
            return parse(value)
        except MappingError as exc:
            if exc.field == name:
                raise
            raise MappingError(f"{name}: {exc.message} (from {source_text})", field=name) from None
        except ValueError as exc:
            raise MappingError(f"{name}: {exc} (from {source_text})", field=name) from None
    return read


def _compile_lines(plan: FieldPlan, tz: Any, entity: str) -> Reader:
    """Each element of a source list through the nested field map."""
    name, source_text = plan.name, ".".join(plan.source)
    get = _getter(plan.source)
    readers = [(child.name, _compile_reader(child, tz, entity, f"{name}.")) for child in plan.each or ()]

    def read_lines(raw: dict) -> Any:
        items = get(raw)
        if items is None or items == "":
            return None
        if isinstance(items, str):      # a file cell holding JSON
            try:
                items = json.loads(items)
            except ValueError:
                raise MappingError(f"{name}: not a list of lines (from {source_text})", field=name) from None
        if not isinstance(items, list):
            raise MappingError(f"{name}: expected a list of lines, got {type(items).__name__} "
                               f"(from {source_text})", field=name)
        out = []
        for i, item in enumerate(items):
            if not isinstance(item, dict):
                raise MappingError(f"{name}[{i}]: a line must be a map", field=name)
            try:
                out.append({child: reader(item) for child, reader in readers})
            except MappingError as exc:
                raise MappingError(f"{name}[{i}].{exc.message}", field=name) from None
        return out
    return read_lines


def _lines_read_back(plan: MappingPlan) -> dict[str, Reader]:
    """Readers of the order lines a write will read back as: only the sub-fields written, so a line
    shows none of those the system does not hold (the merge then keeps the golden ones). Lines with a
    sub-field written elsewhere than it is read cannot be told."""
    out = {}
    for p in plan.fields:
        if p.each is None or p.readonly or p.target != p.source:
            continue
        written = [c for c in p.each if not c.readonly]
        if all(c.target == c.source for c in written):
            out[p.name] = _compile_lines(replace(p, each=written), plan.tz, plan.entity.name)
    return out


def _compile_writer(plan: FieldPlan, tz: Any) -> Callable[[Any, dict], None]:
    """One closure per writable field: canonical value -> the system's field (and format)."""
    name = plan.name
    put = _setter(plan.target)
    if plan.type == "list":
        children = [(c.name, _compile_writer(c, tz)) for c in plan.each or () if not c.readonly]

        def write_lines(lines: Any, out: dict) -> None:
            if lines is None:
                put(None, out)
                return
            rows = []
            for line in lines:
                row: dict = {}
                for child, writer in children:
                    if child in line:
                        writer(line[child], row)
                rows.append(row)
            put(rows, out)
        return write_lines
    outbound = plan.outbound_values
    fmt = _source_converter(plan, tz)
    # a value the field's transforms refuse (a German VAT id in a field read as a Chinese credit code) is
    # not written: the system would hold it, and every read of the record would park it as a mapping error
    checks = plan.transforms if outbound is None else ()

    def write(value: Any, out: dict) -> None:
        if value is None:
            put(None, out)
            return
        if outbound is not None:
            try:
                put(outbound[value], out)
            except (KeyError, TypeError):
                raise MappingError(f"{name}: no source value for {_describe(value)}; "
                                   f"known: {', '.join(map(str, outbound))}", field=name) from None
            return
        try:
            written = fmt(value)
        except (TypeError, ValueError, AttributeError) as exc:
            raise MappingError(f"{name}: cannot write {_describe(value)} as {plan.source_type or plan.type}: "
                               f"{exc}",
                               field=name) from None
        if checks and written is not None:
            _check_read_back(name, value, to_string(written), checks)
        put(written, out)
    return write


def _check_read_back(name: str, value: Any, text: str, checks: tuple[Callable[[str], Any], ...]) -> None:
    try:
        for func in checks:
            text = func(text)
            if not text:
                return
    except (MappingError, ValueError) as exc:
        why = exc.message if isinstance(exc, MappingError) else str(exc)
        raise MappingError(f"{name}: {_describe(value)} is not written, as reading it back would refuse it "
                           f"({why})", field=name) from None


class Mapping:
    """A loaded mapping file for one (system, entity) pair; use :func:`hub.mapping.load_mapping`."""

    def __init__(self, plan: MappingPlan) -> None:
        self.plan = plan
        self.file = plan.file
        self.entity = plan.entity.name
        self.source = plan.source
        self.key = ".".join(plan.key)
        self.updated_at = ".".join(plan.updated_at) if plan.updated_at else None
        self.timezone = plan.timezone
        self.options = plan.options
        self.ref_fields: dict[str, str] = {p.name: p.ref for p in plan.fields if p.ref}
        self.writable_fields: tuple[str, ...] = tuple(p.name for p in plan.fields if not p.readonly)
        # (field, top-level source key of a plain text field or None, reader): plain text fields
        # are read inline by to_canonical, saving a call per field; the reader handles the rest
        self._readers = tuple((p.name, _plain_key(p), _carried_by(p), _compile_reader(p, plan.tz, self.entity))
                              for p in plan.fields)
        self._writers = {p.name: _compile_writer(p, plan.tz) for p in plan.fields if not p.readonly}
        # fields read from where they are written: what a write of them will read back as can be told
        self._read_back = {name: read for (name, _, _, read), p in zip(self._readers, plan.fields)
                           if not p.readonly and not p.ref and p.each is None and p.target == p.source}
        self._read_back.update(_lines_read_back(plan))
        self._ref_items = tuple(self.ref_fields.items())
        self._get_key = _getter(plan.key)
        self._get_ts = _getter(plan.updated_at) if plan.updated_at else None
        self._parse_ts = datetime_parser(plan.tz)
        self._deleted = self._compile_deleted()
        # what the mapping file says, as a digest (set by hub.mapping.load_mapping): with the raw record
        # it tells whether a row can be skipped unread; None turns that skipping off
        self.fingerprint: str | None = None

    def source_id_of(self, raw: dict) -> str | None:
        """The source id :meth:`to_canonical` would give ``raw`` (None when it has none)."""
        try:
            key = self._get_key(raw)
        except Exception:  # noqa: BLE001 - the mapping proper reports it
            return None
        if key is None or key == "":
            return None
        if key.__class__ is str:
            return key
        try:
            return to_string(key)
        except (ValueError, TypeError, ArithmeticError):
            return None

    def __repr__(self) -> str:
        return f"<Mapping {self.file} ({self.source} -> {self.entity})>"

    def _compile_deleted(self) -> Callable[[dict], bool] | None:
        plan = self.plan
        if plan.deleted_from is None:
            return None
        get, flagged = _getter(plan.deleted_from), plan.deleted_values
        source_text = ".".join(plan.deleted_from)

        def is_deleted(raw: dict) -> bool:
            value = get(raw)
            if value is None or value == "":
                return False
            if flagged is not None:
                return scalar_key(value).casefold() in flagged
            try:
                return to_bool(value)
            except ValueError as exc:
                raise MappingError(f"deleted: {exc} (from {source_text})", field="deleted") from None
        return is_deleted

    def source_fields(self) -> list[str]:
        """Top-level source field names this mapping reads (for SELECT / $select / FieldKeys)."""
        return list(dict.fromkeys(p.split(".")[0] for p in self.source_paths()))

    def source_paths(self) -> list[str]:
        """Full source paths this mapping reads, dotted paths kept (``Owner.Name``)."""
        plan = self.plan
        paths = [plan.key, plan.updated_at, plan.deleted_from, *(p.source for p in plan.fields)]
        return list(dict.fromkeys(".".join(p) for p in paths if p))

    def to_canonical(self, raw: dict) -> MappedRecord:
        """Map one raw source record to canonical values (see :meth:`_to_canonical`); any value no
        type accepts -- a list as a key, an epoch past year 9999 -- is a MappingError, never a crash."""
        try:
            return self._to_canonical(raw)
        except MappingError:
            raise
        except (ValueError, ArithmeticError, TypeError) as exc:
            raise MappingError(f"a value cannot be read: {type(exc).__name__}: {exc}", field=None) from None

    def _to_canonical(self, raw: dict) -> MappedRecord:
        """Map one raw source record to canonical values.

        Raises:
            MappingError: a value does not fit its field (``field`` names it), or the key is missing.
        """
        key = self._get_key(raw)
        if key is None or key == "":
            raise MappingError(f"record has no {self.key} (the key of {self.source})", field=None)
        values = {}
        get = raw.get
        try:
            for name, plain, keys, read in self._readers:
                if plain is not None:
                    value = get(plain)
                    if value.__class__ is str and value and not value.isspace():
                        values[name] = value
                        continue
                if keys is not None and keys[0] not in raw and keys[-1] not in raw:
                    continue     # the record does not carry the field (a column not exported): it says nothing
                values[name] = read(raw)
        except MappingError as exc:
            raise self._every_problem(raw, exc) from None
        ts = None
        if self._get_ts is not None:
            ts_raw = self._get_ts(raw)
            if ts_raw is not None and ts_raw != "":
                try:
                    ts = self._parse_ts(ts_raw)
                except ValueError as exc:
                    raise MappingError(f"updated_at: {exc} (from {self.updated_at})",
                                       field="updated_at") from None
        refs = {f: e for f, e in self._ref_items if values.get(f) is not None} if self._ref_items else {}
        deleted = self._deleted(raw) if self._deleted is not None else False
        return MappedRecord(key if key.__class__ is str else to_string(key), ts, values, refs, deleted)

    def _every_problem(self, raw: dict, first: MappingError) -> MappingError:
        """``first`` with the problems of the record's other fields: a steward fixes the row once."""
        problems = []
        for _, _, _, read in self._readers:
            try:
                read(raw)
            except MappingError as exc:
                problems.append((exc.field, exc.message))
            except (ValueError, ArithmeticError, TypeError):
                continue       # reported as it is raised when the first problem is fixed
        if len(problems) < 2:
            return first
        return MappingError(first.message, field=first.field, problems=problems)

    def read_back(self, written: dict[str, Any]) -> dict[str, Any]:
        """The values the system will show for what :meth:`to_source` wrote (``written``, its output),
        for the fields that can be told: a value map that is not one to one (``blocked`` and
        ``inactive`` both written as ``false``) reads back as another value than was sent; order lines
        read back with only the sub-fields the mapping writes. References and fields written elsewhere
        than they are read are left out."""
        out: dict[str, Any] = {}
        for name, read in self._read_back.items():
            try:
                out[name] = read(written)
            except (MappingError, ValueError, ArithmeticError, TypeError):
                continue          # not readable as written: the value sent stands
        return out

    def to_source(self, values: dict[str, Any], fields: Iterable[str] | None = None) -> dict[str, Any]:
        """Map canonical values back to the system's field names, formatted as it expects.

        Readonly fields are skipped; reference fields are only renamed (pass the
        target system's ids); only fields present in ``values`` (and in ``fields``, if given) are written.

        Raises:
            MappingError: a value has no source form (unknown value in a value map, wrong type).
        """
        wanted = set(fields) if fields is not None else None
        out: dict[str, Any] = {}
        for name, value in values.items():
            writer = self._writers.get(name)
            if writer is None or (wanted is not None and name not in wanted):
                continue
            writer(value, out)
        return out
