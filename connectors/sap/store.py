"""The simulator's data: entity sets with key and navigation indexes, change stamps, persistence.

Tests edit records "as a user" through :meth:`SapStore.update` (which stamps
the change like SAP does) and may replace :attr:`SapStore.clock` to place
changes in one chosen second.
"""
from __future__ import annotations

import threading
from datetime import datetime, timezone
from typing import Any, Callable, Iterable

from connectors.sap import data, wire
from connectors.sap.schema import ENTITY_SETS, EntitySet
from connectors.simkit import JsonState, SimOptions

UTC = timezone.utc
Key = tuple[str, ...]


def _fk_props() -> dict[str, set[tuple[str, ...]]]:
    """Per entity set: the property tuples that navigation properties look records up by."""
    out: dict[str, set[tuple[str, ...]]] = {name: set() for name in ENTITY_SETS}
    for es in ENTITY_SETS.values():
        for nav in es.navs:
            out[nav.target].add(tuple(dep for _, dep in nav.pairs))
        if es.parent:
            out[es.parent[0]].add(tuple(parent for _, parent in es.parent[1]))
    return out


FK_PROPS = _fk_props()
# what SAP shows for a property nobody filled in (dates stay null)
INITIAL = {"Edm.String": "", "Edm.Boolean": False, "Edm.Decimal": "0", "Edm.Time": "PT00H00M00S"}


class SapStore:
    """All entity sets of both services, in wire form, indexed by key and by navigation keys.

    Args:
        options: seed, records and the ``--state`` file.
    """

    def __init__(self, options: SimOptions) -> None:
        self.state = JsonState(options.state, lambda: data.generate(options.seed, options.records))
        self.lock: threading.RLock = self.state.lock
        self.clock: Callable[[], datetime] = lambda: datetime.now(UTC)
        self.user = data.sap_user(options.user)
        self._reindex()

    # ----- reading

    def _reindex(self) -> None:
        self.by_key: dict[str, dict[Key, dict]] = {}
        self.by_fk: dict[tuple[str, tuple[str, ...]], dict[Key, list[dict]]] = {}
        for name, es in ENTITY_SETS.items():
            self.state.data["sets"].setdefault(name, [])
            self.by_key[name] = {}
            for props in FK_PROPS[name]:
                self.by_fk[(name, props)] = {}
            for rec in self.rows(name):
                self._add_index(es, rec)

    def _add_index(self, es: EntitySet, rec: dict) -> None:
        self.by_key[es.name][self.key_of(es, rec)] = rec
        for props in FK_PROPS[es.name]:
            self.by_fk[(es.name, props)].setdefault(tuple(rec.get(p) for p in props), []).append(rec)

    def rows(self, name: str) -> list[dict]:
        """The live list of records of an entity set (edit through :meth:`update` to keep stamps right)."""
        return self.state.data["sets"][name]

    @staticmethod
    def key_of(es: EntitySet, rec: dict) -> Key:
        return tuple(str(rec.get(p.name)) for p in es.keys)

    def get(self, name: str, key: Key | str) -> dict | None:
        """One record by key (a string for single-key sets)."""
        return self.by_key[name].get((key,) if isinstance(key, str) else tuple(key))

    def related(self, es: EntitySet, rec: dict, nav_name: str) -> list[dict]:
        """The records a navigation property of ``rec`` leads to."""
        nav = es.nav(nav_name)
        assert nav is not None, nav_name
        props = tuple(dep for _, dep in nav.pairs)
        values = tuple(rec.get(src) for src, _ in nav.pairs)
        return list(self.by_fk[(nav.target, props)].get(values, []))

    def parent_of(self, es: EntitySet, rec: dict) -> dict | None:
        """The record whose change stamp covers ``rec`` (an address's business partner ...)."""
        if es.parent is None:
            return None
        props = tuple(parent for _, parent in es.parent[1])
        found = self.by_fk[(es.parent[0], props)].get(tuple(rec.get(child) for child, _ in es.parent[1]))
        return found[0] if found else None

    def resolve(self, es: EntitySet) -> Callable[[dict, tuple[str, ...]], Any]:
        """A member-path reader for ``$filter`` (properties, then single-valued navigations)."""
        def read(rec: dict, path: tuple[str, ...]) -> Any:
            current, cur_es = rec, es
            for step in path[:-1]:
                found = self.related(cur_es, current, step)
                if not found:
                    return None
                current, cur_es = found[0], ENTITY_SETS[cur_es.nav(step).target]  # type: ignore[union-attr]
            return current.get(path[-1])
        return read

    # ----- stamps

    def now(self) -> datetime:
        return self.clock().astimezone(UTC)

    @staticmethod
    def changed_at(es: EntitySet, rec: dict) -> datetime | None:
        """The record's change instant as SAP exposes it (None for sets without a stamp)."""
        if es.stamp == "offset":
            ms = wire.date_ms(rec.get("LastChangeDateTime") or "")
            return wire.from_ms(ms) if ms is not None else None
        if es.stamp == "date_time":
            date_field, time_field = ("LastChangeDate", "LastChangeTime") if rec.get("LastChangeDate") \
                else ("CreationDate", "CreationTime")
            ms = wire.date_ms(rec.get(date_field) or "")
            if ms is None:
                return None
            return wire.from_ms(ms + 1000 * wire.time_seconds(rec.get(time_field) or "PT00H00M00S"))
        return None

    def etag(self, es: EntitySet, rec: dict) -> str | None:
        at = self.changed_at(es, rec)
        return wire.etag_for(es.stamp or "", at) if at is not None else None

    def _stamp(self, es: EntitySet, rec: dict, now: datetime, created: bool) -> None:
        if es.stamp == "date_time":
            now = now.replace(microsecond=0)            # BUT000 keeps date and time to the second
            if created:
                rec.update(CreationDate=data.d_date(now), CreationTime=data.d_time(now), CreatedByUser=self.user,
                           LastChangeDate=None, LastChangeTime="PT00H00M00S", LastChangedByUser="")
            else:
                rec.update(LastChangeDate=data.d_date(now), LastChangeTime=data.d_time(now),
                           LastChangedByUser=self.user)
            rec["ETag"] = now.strftime("%Y%m%d%H%M%S") + ".0000000 "
        elif es.stamp == "offset":
            if created:
                rec.update(CreationDate=data.d_date(now), CreatedByUser=self.user)
            rec.update(LastChangeDate=data.d_date(now), LastChangeDateTime=data.d_offset(now))

    def touch(self, es: EntitySet, rec: dict, now: datetime | None = None) -> None:
        """Stamp a change on ``rec``, or on the record above it when its set has no stamp.

        A changed address, e-mail, tax number or customer record marks its
        business partner changed; a changed item marks its sales order.
        """
        now = now or self.now()
        while es.stamp is None and es.parent is not None:
            parent = self.parent_of(es, rec)
            if parent is None:
                return
            es, rec = ENTITY_SETS[es.parent[0]], parent
        if es.stamp is not None:
            self._stamp(es, rec, now, created=False)

    # ----- writing

    def next_number(self, counter: str) -> str:
        with self.lock:
            counters = self.state.data.setdefault("counters", {})
            value = int(counters.get(counter, 1))
            counters[counter] = value + 1
            return str(value)

    def insert(self, name: str, rec: dict[str, Any], *, touch_parent: bool = True) -> dict:
        """Add a record (values in wire form, keys filled in); stamps creation. Returns the stored record."""
        es = ENTITY_SETS[name]
        with self.lock:
            full = {p.name: rec.get(p.name, INITIAL.get(p.type)) for p in es.props}
            if es.stamp:
                self._stamp(es, full, self.now(), created=True)
            self.rows(name).append(full)
            self._add_index(es, full)
            if touch_parent and es.stamp is None:
                self.touch(es, full)
            return full

    def update(self, name: str, key: Key | str, values: dict[str, Any], *, at: datetime | None = None,
               save: bool = True) -> dict:
        """Change a record as a user would (values as Python or wire values) and stamp the change.

        Args:
            name: the entity set.
            key: the record's key.
            values: property -> new value; Python dates, datetimes and Decimals are encoded.
            at: the change instant (default: the store clock).
            save: write the ``--state`` file afterwards.

        Raises:
            KeyError: no such record or property.
        """
        es = ENTITY_SETS[name]
        with self.lock:
            rec = self.get(name, key)
            if rec is None:
                raise KeyError(f"{name}{key!r} does not exist")
            for prop_name, value in values.items():
                prop = es.by_name[prop_name]
                rec[prop_name] = wire.encode(prop.type, value, date_only=prop.display_format == "Date")
            self.touch(es, rec, at)
            if save:
                self.save()
            return rec

    def delete(self, name: str, key: Key | str) -> bool:
        """Remove a record and everything below it; False when it did not exist."""
        es = ENTITY_SETS[name]
        with self.lock:
            rec = self.get(name, key)
            if rec is None:
                return False
            for nav in es.navs:
                if nav.many:
                    target = ENTITY_SETS[nav.target]
                    for child in self.related(es, rec, nav.name):
                        self.delete(target.name, self.key_of(target, child))
            if es.stamp is None:
                self.touch(es, rec)      # removing a child is a change of the record above it
            self.rows(name).remove(rec)
            self._reindex()
            return True

    def save(self) -> None:
        self.state.save()

    def count(self, name: str) -> int:
        return len(self.rows(name))

    def all(self, name: str) -> Iterable[dict]:
        return list(self.rows(name))
