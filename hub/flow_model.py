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

References are ``trigger.<field>`` or ``<step name>.<field>`` (``.id`` is the record's id).
"""
from __future__ import annotations

from datetime import date, datetime, timezone
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from hub.canonical import ENTITIES, ORDER_LINE_FIELDS
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
            raise ValueError(f"unknown entity '{self.entity}'; known: {', '.join(ENTITIES)}")
        if self.field not in ENTITIES[self.entity].fields:
            raise ValueError(f"{self.entity} has no field '{self.field}'")
        try:   # a value the field can never take would make the flow silently never start
            constant(self.field, self.becomes, ENTITIES[self.entity].fields[self.field])
        except ValueError as exc:
            raise ValueError(f"becomes: {exc}") from None
        return self


class WaitFor(_Strict):
    record: str                         # `trigger` or a step name
    field: str
    in_: list[Any] | None = Field(default=None, alias="in")
    present: bool = False               # any non-empty value

    @model_validator(mode="after")
    def _one(self) -> "WaitFor":
        if not self.in_ and not self.present:
            raise ValueError("give `in: [values]` or `present: true`")
        return self


class LineSpec(_Strict):
    set: dict[str, Any] = Field(default_factory=dict)
    copy_: dict[str, str] = Field(default_factory=dict, alias="copy")


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
        if self.action == "raise_approval":
            self.entity = "approval"
        if self.action == "create_record" and not self.entity:
            raise ValueError("create_record needs `entity`")
        if self.entity and self.entity not in ENTITIES:
            raise ValueError(f"unknown entity '{self.entity}'")
        if self.action == "update_record" and not self.target:
            raise ValueError("update_record needs `target` (trigger or a step name)")
        if self.line is not None and self.entity != "order":
            raise ValueError("`line` is for orders")
        if self.action == "wait" and not self.wait_for:
            raise ValueError("wait needs `wait_for`")
        return self


class Flow(_Strict):
    name: str
    when: Trigger
    steps: list[Step]
    description: str | None = None

    @model_validator(mode="after")
    def _references(self) -> "Flow":
        seen = {"trigger"}
        for i, step in enumerate(self.steps):
            refs = [v.split(".")[0] for v in step.copy_.values()] + [k.split(".")[0] for k in step.when]
            refs += [v.split(".")[0] for v in (step.line.copy_.values() if step.line else ())]
            if step.target:
                refs.append(step.target)
            for r in refs:
                if r not in seen:
                    raise ValueError(f"steps[{i}] ({step.name}): '{r}' is not the trigger or an earlier step")
            self._check_constants(i, step)
            seen.add(step.name)
            if step.wait_for and step.wait_for.record not in seen:
                raise ValueError(f"steps[{i}] ({step.name}): wait_for.record '{step.wait_for.record}' is unknown")
        return self

    def _check_constants(self, i: int, step: Step) -> None:
        """A `set:` value that cannot be a value of its field fails when the config is read, not in a run."""
        if step.action == "update_record":
            entity = self.entity_of(step.target or "trigger")
        else:
            entity = step.entity or self.when.entity
        types = ENTITIES[entity].fields
        checks = [(f, v, types.get(f), f) for f, v in step.set.items()]
        checks += [(f, v, ORDER_LINE_FIELDS.get(f, "string"), f"line.{f}") for f, v in (step.line.set.items() if step.line else ())]
        for f, v, type_name, label in checks:
            if type_name is None:
                raise ValueError(f"steps[{i}] ({step.name}): set: {entity} has no field '{f}'")
            try:
                constant(label, v, type_name)
            except ValueError as exc:
                raise ValueError(f"steps[{i}] ({step.name}): set: {exc}") from None

    def entity_of(self, ref: str) -> str:
        if ref == "trigger":
            return self.when.entity
        step = next(s for s in self.steps if s.name == ref)
        if step.action == "update_record":
            return self.entity_of(step.target or "trigger")
        return step.entity or self.when.entity


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
