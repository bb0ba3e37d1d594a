"""A file system's re-export of what the hub wrote to it is an echo, not that system's edit (SPEC §5).

A `file` connector's writes land in its outbox folder; the system imports them later and exports the
record again, stamped with the time of that export. Under `most_recent` that stamp must not vouch for the
golden value: a real edit made elsewhere between the hub's write and the re-export still wins.
"""
from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from hub.models import SourceState, Xref
from hub.push import push

from .test_push_deleted_and_conflicts import export, make_hub, sent, sync

T1, T2, T3 = "2026-01-01 08:00:00", "2026-01-02 09:00:00", "2026-01-03 10:00:00"


def source_id(engine, system: str) -> str:
    with engine.connect() as conn:
        return conn.scalar(select(Xref.__table__.c.source_id).where(Xref.__table__.c.system == system))


def pending(engine, system: str):
    st = SourceState.__table__
    with engine.connect() as conn:
        return conn.scalar(select(st.c.written).where(st.c.system == system))


def golden_city(engine) -> tuple[str, list]:
    from hub import golden
    with engine.connect() as conn:
        rid = conn.scalar(select(Xref.__table__.c.record_id).where(Xref.__table__.c.system == "a"))
        row = golden.load(conn, "customer", [rid])[rid]
    from hub.merge import provenance_of
    return row.values["city"], list(provenance_of(row.provenance, "city", row.values["city"]))


def test_a_re_export_of_our_write_does_not_beat_an_earlier_real_edit(tmp_path: Path, store_url: str):
    root, _, engine, parts = make_hub(tmp_path, store_url)
    for s in "bc":                                        # read once: they hold nothing yet
        export(root, s, [])
        sync(engine, parts, s)
    export(root, "a", [f"a1,Acme,91310000AB0001,acme@x.cn,Shanghai,{T1}"])
    sync(engine, parts, "a")
    push(engine, parts)                                   # creates it in b and c (files in their outboxes)
    assert sent(root, "b")[-1]["city"] == "Shanghai"
    assert pending(engine, "b")["city"] == ["Shanghai"]   # written, not yet shown back

    # b imports the file and exports the record a day later: our own values, with b's later stamp
    sid_b = source_id(engine, "b")
    export(root, "b", [f"{sid_b},Acme,91310000AB0001,acme@x.cn,Shanghai,{T3}"])
    sync(engine, parts, "b")
    assert golden_city(engine) == ("Shanghai", ["a", "2026-01-01T08:00:00+00:00"])   # still a's value and time
    assert pending(engine, "b") is None                   # everything written has come back

    # c's user had moved the customer to Beijing at T2: after a's edit (T1), before b's re-export (T3)
    sid_c = source_id(engine, "c")
    export(root, "c", [f"{sid_c},Acme,91310000AB0001,acme@x.cn,Beijing,{T2}"])
    sync(engine, parts, "c")
    assert golden_city(engine) == ("Beijing", ["c", "2026-01-02T09:00:00+00:00"])


def test_a_system_of_its_own_still_witnesses_a_value_it_gave_too(tmp_path: Path, store_url: str):
    """Without a write of ours behind it, the same value from another system is that system's word (and the
    later witness under most_recent): only echoes are set apart."""
    root, _, engine, parts = make_hub(tmp_path, store_url)
    export(root, "a", [f"a1,Acme,91310000AB0001,acme@x.cn,Shanghai,{T1}"])
    sync(engine, parts, "a")
    export(root, "b", [f"b1,Acme,91310000AB0001,acme@x.cn,Shanghai,{T3}"])
    sync(engine, parts, "b")
    assert golden_city(engine) == ("Shanghai", ["b", "2026-01-03T10:00:00+00:00"])
