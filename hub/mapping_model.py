"""The typed mapping model: YAML file -> checked field plans, or a list of issues.

Structure (keys, value shapes) is checked by pydantic models; meaning (canonical
fields, types, transforms, invertible value maps, references) by
:func:`resolve_mapping`, against ``hub.canonical``. Every issue names the file,
the line and the YAML key path, and all issues of a file are reported at once.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable
from datetime import tzinfo

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from hub.canonical import ENTITIES, ORDER_LINE_FIELDS, TYPES, EntityDef
from hub.mapping_types import parser_for, zone
from hub.mapping_yaml import LineMap, MappingIssue, KeyPath, format_path, parse_yaml, scalar_key
from hub.transforms import TransformFunc, get_transform

# canonical list fields and the fields of one element
LIST_FIELDS: dict[str, dict[str, str]] = {"lines": ORDER_LINE_FIELDS}


class FieldSpec(BaseModel):
    """One canonical field's source spec as written (a plain string means ``{from: <string>}``)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    from_: str | None = Field(None, alias="from")
    type: str | None = None
    transform: list[str] = Field(default_factory=list)
    values: dict[Any, Any] | None = None
    readonly: bool = False
    to: Any = None
    ref: str | None = None
    each: dict[str, Any] | None = None
    default: Any = None

    @model_validator(mode="before")
    @classmethod
    def _plain_string(cls, data: Any) -> Any:
        return {"from": data} if isinstance(data, str) else data

    @field_validator("transform", mode="before")
    @classmethod
    def _one_transform(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value


class DeletedSpec(BaseModel):
    """Which source field flags a deleted/inactive record, and which of its values mean so."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    from_: str = Field(alias="from")
    values: list[Any] | None = None

    @model_validator(mode="before")
    @classmethod
    def _plain_string(cls, data: Any) -> Any:
        return {"from": data} if isinstance(data, str) else data


class MappingSpec(BaseModel):
    """The top level of a mapping file; ``fields`` entries are checked one by one afterwards."""

    model_config = ConfigDict(extra="forbid")

    source: str
    key: str
    updated_at: str | None = None
    timezone: str = "UTC"
    fields: dict[str, Any]
    deleted: DeletedSpec | None = None
    options: dict[str, Any] = Field(default_factory=dict)


@dataclass
class FieldPlan:
    """A checked field spec, ready to be compiled into per-record functions."""

    name: str
    type: str                                   # canonical type; "list" for each-lines
    source: tuple[str, ...]                     # `from` split on dots
    target: tuple[str, ...]                     # outbound path (`to:` or `from`)
    source_type: str | None = None              # `type:` as written: how the source value is read
    transforms: tuple[TransformFunc, ...] = ()
    transform_names: tuple[str, ...] = ()       # as written, e.g. ('strip', 'phone_e164:US')
    values: dict[str, Any] | None = None        # str(source value) -> canonical value
    outbound_values: dict[Any, Any] | None = None  # canonical value -> source value
    readonly: bool = False
    ref: str | None = None
    each: list["FieldPlan"] | None = None
    default: Any = None


@dataclass
class MappingPlan:
    """A checked mapping file."""

    file: str
    entity: EntityDef
    source: str
    key: tuple[str, ...]
    updated_at: tuple[str, ...] | None
    timezone: str
    tz: tzinfo
    fields: list[FieldPlan]
    deleted_from: tuple[str, ...] | None = None
    deleted_values: frozenset[str] | None = None
    options: dict[str, Any] = field(default_factory=dict)


class _Issues:
    """Collects issues with file and line for one file."""

    def __init__(self, file: str, lines: LineMap) -> None:
        self.file = file
        self.lines = lines
        self.items: list[MappingIssue] = []

    def add(self, path: KeyPath, message: str, line: int | None = None) -> None:
        line = line if line is not None else self.lines.line(path)
        self.items.append(MappingIssue(self.file, line, format_path(path), message))

    def add_pydantic(self, prefix: KeyPath, exc: ValidationError, known: list[str]) -> None:
        for err in exc.errors():
            loc = (*prefix, *err["loc"])
            if err["type"] == "extra_forbidden":
                message = f"unknown key '{loc[-1]}'; known: {', '.join(known)}"
            elif err["type"] == "missing":
                message = f"required key '{loc[-1]}' is missing"
            elif err["type"] in ("model_type", "model_attributes_type"):
                message = f"expected a source field name or a map with {', '.join(known)}"
            else:
                message = err["msg"]
            self.add(loc, message)


def _split(path_text: str) -> tuple[str, ...]:
    return tuple(path_text.split("."))


_FIELD_KEYS = ["from", "type", "transform", "values", "readonly", "to", "ref", "each", "default"]
# (source type, canonical type) pairs a value converts between both ways; anything goes to/from string
_COMPATIBLE = {(t, "string") for t in TYPES} | {("string", t) for t in TYPES} | {
    ("int", "decimal"), ("decimal", "int"), ("date", "datetime"), ("datetime", "date")}
_TOP_KEYS = ["source", "key", "updated_at", "timezone", "fields", "deleted", "options"]


def _convert(parse: Callable[[Any], Any], value: Any) -> Any:
    if value is None or value == "":
        return None
    return parse(value)


def _resolve_field(name: str, raw: Any, fields_def: dict[str, str], entity: EntityDef | None,
                   path: KeyPath, tz: tzinfo, issues: _Issues) -> FieldPlan | None:
    """Check one field spec; report issues and return its plan (None when it cannot be used)."""
    if name not in fields_def:
        issues.add(path, f"unknown canonical field '{name}'; known: {', '.join(fields_def)}")
        return None
    try:
        spec = FieldSpec.model_validate(raw)
    except ValidationError as exc:
        issues.add_pydantic(path, exc, _FIELD_KEYS)
        return None
    before = len(issues.items)
    ftype = fields_def[name]
    if spec.type is not None:
        if spec.type not in TYPES:
            issues.add((*path, "type"), f"unknown type '{spec.type}'; known: {', '.join(TYPES)}")
        elif ftype == "list":
            issues.add((*path, "type"), f"{name} is a list of lines; give types inside `each`")
        elif (spec.type, ftype) not in _COMPATIBLE and spec.type != ftype:
            issues.add((*path, "type"), f"a {spec.type} source value cannot be stored in {name}, "
                                         f"a {ftype} field")
    source_text = spec.from_ if spec.from_ is not None else name
    source = _split(source_text)
    if any(not part for part in source):
        issues.add((*path, "from"), f"bad source path '{source_text}'")

    transforms = []
    for i, tname in enumerate(spec.transform):
        try:
            transforms.append(get_transform(tname))
        except ValueError as exc:
            tpath = (*path, "transform", i) if isinstance(raw.get("transform"), list) else (*path, "transform")
            issues.add(tpath, str(exc))

    each = None
    if ftype == "list":
        if spec.each is None:
            issues.add(path, f"{name} is a list of lines: give `each:` with the fields of one line")
        else:
            each = [p for sub, sub_raw in spec.each.items()
                    if (p := _resolve_field(str(sub), sub_raw, LIST_FIELDS[name], None,
                                            (*path, "each", str(sub)), tz, issues)) is not None]
        for key in ("values", "ref", "default"):
            if getattr(spec, key) is not None:
                issues.add((*path, key), f"`{key}` does not apply to the list field {name}")
    elif spec.each is not None:
        issues.add((*path, "each"), f"`each` only applies to list fields ({', '.join(LIST_FIELDS)})")

    if spec.ref is not None:
        declared = entity.refs.get(name) if entity else None
        if entity is None:
            issues.add((*path, "ref"), "references are not supported inside `each`")
        elif spec.ref not in ENTITIES:
            issues.add((*path, "ref"), f"unknown entity '{spec.ref}'; known: {', '.join(ENTITIES)}")
        elif declared is not None and declared != spec.ref:
            issues.add((*path, "ref"), f"{name} refers to {declared}, not {spec.ref}")
        elif ftype != "string":
            issues.add((*path, "ref"), f"a reference must be a string field ({name} is {ftype})")

    parse = parser_for(ftype, tz) if ftype in TYPES else None
    enum = entity.enums.get(name) if entity else None

    def canonical(value: Any, vpath: KeyPath) -> Any:
        try:
            result = _convert(parse, value) if parse else value
        except ValueError as exc:
            issues.add(vpath, f"{exc} (the canonical type of {name} is {ftype})")
            return None
        if enum and result is not None and result not in enum:
            issues.add(vpath, f"'{result}' is not a valid {name}; expected one of {', '.join(enum)}")
        return result

    # `to:` is an outbound field name, a canonical -> source value map, or both: {field: F, values: {...}}
    target, to_values = source, None
    to = spec.to
    if isinstance(to, dict) and to and set(to) <= {"field", "values"} and isinstance(to.get("values", {}), dict):
        target = _split(str(to["field"])) if "field" in to else source
        to = to.get("values")
    if isinstance(to, str):
        target = _split(to)
    elif isinstance(to, dict):
        to_values = {canonical(k, (*path, "to", scalar_key(k))): v for k, v in to.items()}
    elif to is not None:
        issues.add((*path, "to"), "expected a source field name or a map of canonical -> source values")

    values = None
    outbound = to_values
    if spec.values is not None and ftype != "list":
        values, sources_of = {}, {}
        for key, val in spec.values.items():
            skey = scalar_key(key)
            cval = canonical(val, (*path, "values", skey))
            values[skey] = cval
            sources_of.setdefault(cval, []).append(key)
        clashes = {cval: keys for cval, keys in sources_of.items() if len(keys) > 1}
        if to_values is None:
            outbound = {cval: keys[0] for cval, keys in sources_of.items()}
            if clashes and not spec.readonly:
                cval, keys = next(iter(clashes.items()))
                issues.add((*path, "values"),
                           f"cannot be inverted for writing: {', '.join(repr(k) for k in keys)} all map to "
                           f"{cval!r}; mark the field `readonly: true` or give `to:` with canonical -> source "
                           f"values (e.g. to: {{{cval}: {keys[0]}}})")

    default = canonical(spec.default, (*path, "default")) if spec.default is not None else None
    if len(issues.items) > before:
        return None
    return FieldPlan(name=name, type=ftype, source_type=spec.type, source=source, target=target,
                     transforms=tuple(transforms), transform_names=tuple(spec.transform),
                     values=values, outbound_values=outbound, readonly=spec.readonly, ref=spec.ref,
                     each=each, default=default)


def resolve_mapping(text: str, file: str, entity_name: str) -> tuple[MappingPlan | None, list[MappingIssue]]:
    """Parse and check a mapping document.

    Args:
        text: the YAML text.
        file: the file name to put in issues.
        entity_name: the canonical entity the file maps.

    Returns:
        (plan, []) when the file is good, else (None, every issue found).
    """
    try:
        doc = parse_yaml(text)
    except (RecursionError, ValueError) as exc:   # self-referencing aliases, absurd nesting or numbers
        return None, [MappingIssue(file, 1, "", f"cannot be read as a mapping: {type(exc).__name__}: {str(exc)[:200]}")]
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else 1
        problem = getattr(exc, "problem", None) or str(exc)
        return None, [MappingIssue(file, line, "", f"invalid YAML: {problem}")]
    issues = _Issues(file, doc.lines)
    for path, message, line in doc.problems:
        issues.add(path, message, line)
    entity = ENTITIES.get(entity_name)
    if entity is None:
        issues.add((), f"unknown entity '{entity_name}'; known: {', '.join(ENTITIES)}")
        return None, issues.items
    if not isinstance(doc.data, dict):
        issues.add((), "a mapping file must be a YAML map with source, key and fields")
        return None, issues.items
    try:
        spec = MappingSpec.model_validate(doc.data)
    except ValidationError as exc:
        issues.add_pydantic((), exc, _TOP_KEYS)
        spec = None
    tz = None
    tz_name = doc.data.get("timezone", "UTC")
    try:
        tz = zone(str(tz_name))
    except ValueError as exc:
        issues.add(("timezone",), str(exc))
    raw_fields = doc.data.get("fields")
    plans: list[FieldPlan] = []
    if isinstance(raw_fields, dict):
        if not raw_fields:
            issues.add(("fields",), "no fields are mapped")
        for name, raw in raw_fields.items():
            plan = _resolve_field(str(name), raw, entity.fields, entity, ("fields", str(name)),
                                  tz or zone("UTC"), issues)
            if plan is not None:
                plans.append(plan)
    deleted_values = None
    if spec is not None and spec.deleted is not None and spec.deleted.values is not None:
        deleted_values = frozenset(scalar_key(v).casefold() for v in spec.deleted.values)
    if spec is None or tz is None or issues.items:
        return None, sorted(issues.items, key=lambda issue: issue.line)
    return MappingPlan(
        file=file, entity=entity, source=spec.source, key=_split(spec.key),
        updated_at=_split(spec.updated_at) if spec.updated_at else None,
        timezone=str(tz_name), tz=tz, fields=plans,
        deleted_from=_split(spec.deleted.from_) if spec.deleted else None,
        deleted_values=deleted_values, options=spec.options,
    ), []
