"""Business flows as data (`flows:` in triad.yaml): when a golden field becomes a value, run steps.

    flows:
      - name: lead_to_order
        when: {entity: opportunity, field: stage, becomes: proposal, system: crm}
        steps:
          - name: budget
            action: raise_approval          # create_record | update_record | raise_approval | wait
            systems: [oa]                   # where the new record is created (default: every out system)
            set: {kind: budget}             # constants
            copy: {amount: trigger.amount, subject_id: trigger.id}   # from the trigger or an earlier step
            wait_for: {record: budget, field: status, in: [approved, rejected]}
          - {name: won, when: {budget.status: approved}, action: update_record, target: trigger, set: {stage: closed_won}}

References are ``trigger.<field>`` or ``<step name>.<field>`` (``.id`` is the record's id) of an earlier
step that made a record (create_record, raise_approval). Step names are unique and ``trigger`` is reserved;
every field named is checked against the canonical model when the config is read.
"""
from __future__ import annotations

from datetime import date, datetime, timezone
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from hub.canonical import ENTITIES, ORDER_LINE_FIELDS
from hub.config_checks import did_you_mean, expected_among
from hub.values import decode, encode


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class Trigger(_Strict):
    entity: str
    field: str
    becomes: Any
    system: str | None = None          # only changes that came from this connector
    on_create: bool = False            # also records created with the value (else only changes to it)

    @model_validator(mode="after")
    def _known(self) -> "Trigger":
        if self.entity not in ENTITIES:
            raise ValueError(f"unknown entity '{self.entity}'" + expected_among(self.entity, ENTITIES))
        fields = ENTITIES[self.entity].fields
        if self.field not in fields:
            raise ValueError(f"{self.entity} has no field '{self.field}'" + did_you_mean(self.field, fields))
        try:   # a value the field can never take would make the flow silently never start
            value_check(self.entity, self.field, self.becomes)
        except ValueError as exc:
            raise ValueError(f"becomes: {exc}") from None
        return self


class WaitFor(_Strict):
    record: str                         # `trigger` or a step name
    field: str
    in_: list[Any] | None = Field(default=None, alias="in")
    present: bool = False               # any non-empty value
    # values after which the awaited one never comes: the step fails (a cancelled approval by default)
    fail_on: list[Any] | None = None

    @model_validator(mode="after")
    def _one(self) -> "WaitFor":
        if not self.in_ and not self.present:
            raise ValueError("give `in: [values]` or `present: true`")
        return self


class LineSpec(_Strict):
    set: dict[str, Any] = Field(default_factory=dict)
    copy_: dict[str, str] = Field(default_factory=dict, alias="copy")


# the keys each action reads besides name, action, when and wait_for: any other would be silently ignored
_ACTION_KEYS = {
    "create_record": {"entity", "systems", "set", "copy", "line", "number", "number_prefix"},
    "raise_approval": {"entity", "systems", "set", "copy", "number", "number_prefix"},
    "update_record": {"target", "systems", "set", "copy"},
    "wait": set(),
}
_EVERY_ACTION_KEYS = {"name", "action", "when", "wait_for"}


class Step(_Strict):
    name: str
    action: Literal["create_record", "update_record", "raise_approval", "wait"]
    entity: str | None = None           # create_record: which entity
    target: str | None = None           # update_record: `trigger` or a step name
    systems: list[str] | None = None    # where a created record goes (default: every out system of the entity)
    set: dict[str, Any] = Field(default_factory=dict)
    copy_: dict[str, str] = Field(default_factory=dict, alias="copy")
    line: "LineSpec | None" = None      # create_record of an order: its one line (ERPs want at least one)
    number: str | None = None           # create_record: give this field a new business number ...
    number_prefix: str = ""             # ... starting with this prefix
    when: dict[str, Any] = Field(default_factory=dict)   # {"<record>.<field>": value or [values]}
    wait_for: WaitFor | None = None

    @model_validator(mode="after")
    def _shape(self) -> "Step":
        self._only_keys_the_action_reads()
        if self.action == "raise_approval":
            if self.entity not in (None, "approval"):
                raise ValueError(f"raise_approval always makes an approval, not {self.entity}: "
                                 "use create_record for other entities")
            self.entity = "approval"
        if self.action == "create_record" and not self.entity:
            raise ValueError("create_record needs `entity`")
        if self.entity and self.entity not in ENTITIES:
            raise ValueError(f"unknown entity '{self.entity}'" + expected_among(self.entity, ENTITIES))
        if self.action == "update_record" and not self.target:
            raise ValueError("update_record needs `target` (trigger or a step name)")
        if self.line is not None and self.entity != "order":
            raise ValueError("`line` is for orders")
        if self.action == "wait" and not self.wait_for:
            raise ValueError("wait needs `wait_for`")
        if self.number_prefix and not self.number:
            raise ValueError("`number_prefix` needs `number` (the field that gets the new business number)")
        return self

    def _only_keys_the_action_reads(self) -> None:
        given = {type(self).model_fields[f].alias or f for f in self.model_fields_set}
        reads = _EVERY_ACTION_KEYS | _ACTION_KEYS[self.action]
        unread = sorted(given - reads)
        if unread:
            raise ValueError(f"{_a(self.action)} step does not use {', '.join(unread)}; "
                             f"it reads {', '.join(sorted(reads))}")


def _a(word: str) -> str:
    return ("an " if word[0] in "aeiou" else "a ") + word


class Flow(_Strict):
    name: str
    when: Trigger
    steps: list[Step]
    description: str | None = None

    @model_validator(mode="after")
    def _references(self) -> "Flow":
        problems = self.problems()
        if problems:   # one line each, so a config with several mistakes is mended in one pass
            raise ValueError("\n".join(problems))
        return self

    def problems(self) -> list[str]:
        """Every mistake of the steps, each ``steps[i] (name): <key path>: <what was expected>``.

        Checked against the canonical model: names are unique and not ``trigger``; references name the
        trigger or an earlier step that made a record, and a field of that record's entity; the fields
        written, compared and numbered are fields of the entity they belong to; constants fit their type.
        """
        out: list[str] = []
        earlier: dict[str, tuple[int, Step]] = {}
        for i, step in enumerate(self.steps):
            out += [f"steps[{i}] ({step.name}): {p}" for p in self._step_problems(step, earlier)]
            earlier.setdefault(step.name, (i, step))
        return out

    def _step_problems(self, step: Step, earlier: dict[str, tuple[int, Step]]) -> list[str]:
        out = self._name_problems(step, earlier)
        before = {n: s for n, (_, s) in earlier.items()}
        entity = None if step.action == "wait" else step.entity
        if step.target:
            entity, problem = self._record_entity(step.target, before)
            out += [f"target: {problem}"] if problem else []
        for key, ref in step.copy_.items():
            out += self._reference_problems(f"copy.{key}", ref, before)
            if entity and key not in ENTITIES[entity].fields:
                out.append(f"copy.{key}: {_no_field(entity, key)}")
        for key, ref in (step.line.copy_.items() if step.line else ()):
            out += self._reference_problems(f"line.copy.{key}", ref, before)
        out += self._line_field_problems(step)
        for ref, wanted in step.when.items():
            out += self._reference_problems("when", ref, before, wanted if isinstance(wanted, list) else [wanted])
        if entity:
            out += self._constant_problems(step, entity)
            out += _number_problems(step, entity)
        if step.wait_for:   # a step may wait on the record it made itself
            out += self._wait_problems(step.wait_for, {**before, step.name: step})
        return out

    @staticmethod
    def _name_problems(step: Step, earlier: dict[str, tuple[int, Step]]) -> list[str]:
        if step.name == "trigger":
            return ["name: 'trigger' is reserved for the record that started the flow"]
        if "." in step.name:
            return [f"name: '{step.name}' cannot contain '.' (references are <step>.<field>)"]
        if step.name in earlier:
            return [f"name: '{step.name}' is already the name of steps[{earlier[step.name][0]}]; "
                    "step names must be unique (references name steps)"]
        return []

    def _record_entity(self, name: str, records: dict[str, Step],
                       where: str = "an earlier step") -> tuple[str | None, str]:
        """The entity of the record ``name`` stands for, else None and why it stands for none.

        Only the trigger and steps that create a record hold one: a reference to any other step
        would always be empty.
        """
        if name == "trigger":
            return self.when.entity, ""
        step = records.get(name)
        if step is None:
            return None, f"'{name}' is not the trigger or {where}" + did_you_mean(name, ["trigger", *records])
        if step.action == "update_record":
            return None, (f"'{name}' is an update_record step, which makes no record; "
                          f"refer to its target '{step.target}' instead")
        if step.action == "wait":
            return None, f"'{name}' is a wait step, which makes no record"
        return step.entity, ""

    def _reference_problems(self, key: str, ref: str, before: dict[str, Step], values: list[Any] = ()) -> list[str]:
        """``<record>.<field>``: the record is the trigger or a record an earlier step made, the field one of its
        entity, and the values compared with it (``when:``) values that field can hold."""
        name, dot, field_name = ref.partition(".")
        where = f"{key}: '{ref}'"
        if not dot or not name or not field_name:
            return [f"{where}: not a reference; expected <trigger or step>.<field>, e.g. trigger.id"]
        entity, problem = self._record_entity(name, before)
        if entity is None:
            return [f"{where}: {problem}"]
        if field_name == "id":
            return []
        if field_name not in ENTITIES[entity].fields:
            return [f"{where}: {_no_field(entity, field_name)}"]
        return [f"{where}: {p}" for p in _values_problems(entity, field_name, values)]

    def _wait_problems(self, w: WaitFor, records: dict[str, Step]) -> list[str]:
        entity, problem = self._record_entity(w.record, records, "an earlier step or this step")
        if entity is None:
            return [f"wait_for.record: {problem}"]
        if w.field != "id" and w.field not in ENTITIES[entity].fields:
            return [f"wait_for.field: {_no_field(entity, w.field)}"]
        return [f"wait_for.in[{k}]: {p}" for k, v in enumerate(w.in_ or [])
                for p in _values_problems(entity, w.field, [v])]

    @staticmethod
    def _line_field_problems(step: Step) -> list[str]:
        if step.line is None:
            return []
        given = [("set", f) for f in step.line.set] + [("copy", f) for f in step.line.copy_]
        return [f"line.{part}.{f}: an order line has no field '{f}'" + expected_among(f, ORDER_LINE_FIELDS)
                for part, f in given if f not in ORDER_LINE_FIELDS]

    @staticmethod
    def _constant_problems(step: Step, entity: str) -> list[str]:
        """A `set:` value that cannot be a value of its field fails when the config is read, not in a run."""
        types = ENTITIES[entity].fields
        out = [f"set.{f}: {_no_field(entity, f)}" for f in step.set if f not in types]
        checks = [(f, v, types[f], f) for f, v in step.set.items() if f in types]
        checks += [(f, v, ORDER_LINE_FIELDS[f], f"line.{f}") for f, v in (step.line.set.items() if step.line else ())
                   if f in ORDER_LINE_FIELDS]
        for f, v, type_name, label in checks:
            try:
                constant(label, v, type_name)
            except ValueError as exc:
                out.append(f"set: {exc}")
        out += [f"set.{f}: {p}" for f, v in step.set.items() if f in types for p in _enum_problems(entity, f, v)]
        return out

    def entity_of(self, ref: str) -> str:
        if ref == "trigger":
            return self.when.entity
        step = next(s for s in self.steps if s.name == ref)
        if step.action == "update_record":
            return self.entity_of(step.target or "trigger")
        return step.entity or self.when.entity


def _number_problems(step: Step, entity: str) -> list[str]:
    if not step.number:
        return []
    fields = ENTITIES[entity].fields
    if step.number not in fields:
        return [f"number: {_no_field(entity, step.number)}"]
    if fields[step.number] != "string":
        return [f"number: {step.number} is a {fields[step.number]} field; a business number needs a string field "
                f"(the business number of {entity} is {ENTITIES[entity].natural_key})"]
    return []


def _no_field(entity: str, name: str) -> str:
    return f"{entity} has no field '{name}'" + did_you_mean(name, ENTITIES[entity].fields)


def _values_problems(entity: str, field_name: str, values: list[Any]) -> list[str]:
    """Values compared with a field (``when:``, ``wait_for.in``) that it can never hold would never match."""
    out = []
    for v in values:
        try:
            value_check(entity, field_name, v)
        except ValueError as exc:
            out.append(str(exc))
    return out


def value_check(entity: str, field_name: str, value: Any) -> None:
    """Raises ValueError when ``value`` can never be a value of the field: wrong type, or not one of its enum."""
    if value is None:
        return
    constant(field_name, value, ENTITIES[entity].fields.get(field_name, "string"))   # `id` is a string
    problems = _enum_problems(entity, field_name, value)
    if problems:
        raise ValueError(problems[0])


def _enum_problems(entity: str, field_name: str, value: Any) -> list[str]:
    enum = ENTITIES[entity].enums.get(field_name)
    if not enum or value is None or value in enum:
        return []
    return [f"{value!r} is not a {field_name} of {entity}" + expected_among(str(value), enum)]


_KINDS = {"decimal": "a decimal number", "int": "a whole number", "date": "a date (YYYY-MM-DD)",
          "datetime": "a date and time (ISO 8601)"}
_PYTHON_TYPES: dict[str, type] = {"date": date, "datetime": datetime}


def constant(field_name: str, value: Any, type_name: str, now: datetime | None = None) -> Any:
    """The encoded value of a ``set:`` constant for a field of ``type_name``.

    ``now`` / ``today`` are the run's time for datetime / date fields. Also usable without
    ``now`` to check a flow's constants when the config is loaded.

    Raises:
        ValueError: the value cannot be one of that type, naming the field and the value.
    """
    if value == "now" and type_name == "datetime":
        return encode(now or datetime.now(timezone.utc))
    if value == "today" and type_name == "date":
        return encode((now or datetime.now(timezone.utc)).date())
    wrong = ValueError(f"{field_name}: {value!r} is not {_KINDS.get(type_name, type_name)}")
    try:
        decoded = decode(value, type_name)
    except (ValueError, TypeError, ArithmeticError):
        raise wrong from None
    if type_name == "decimal" and not decoded.is_finite():
        raise wrong
    if type_name in _PYTHON_TYPES and not isinstance(decoded, _PYTHON_TYPES[type_name]):
        raise wrong                        # decode passes a non-string through (a YAML number for a date)
    return encode(decoded)
