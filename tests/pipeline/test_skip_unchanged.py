"""Re-reading a source: identical rows are skipped before mapping, older versions never turn the golden
record back, and a changed mapping makes every row count again."""
from __future__ import annotations

import json
import re
from pathlib import Path

from click.testing import CliRunner
from sqlalchemy import create_engine, func, select

from cli import main
from hub.models import FieldHistory, SourceState


def sync(*args: str) -> dict:
    r = CliRunner().invoke(main, ["--json", "sync", "run", "-c", "erp", "-e", "customer", *args])
    assert r.exit_code == 0, r.output
    (run,) = json.loads(r.stdout)["runs"]
    assert run["status"] == "ok", run
    return run


def history_rows(project: Path) -> int:
    engine = create_engine(f"sqlite:///{project / 'triad.db'}")
    with engine.connect() as conn:
        return conn.scalar(select(func.count()).select_from(FieldHistory.__table__))


def raw_hashes(project: Path) -> dict[str, str | None]:
    engine = create_engine(f"sqlite:///{project / 'triad.db'}")
    st = SourceState.__table__
    with engine.connect() as conn:
        return dict(conn.execute(select(st.c.source_id, st.c.raw_hash).where(st.c.system == "erp")).all())


def golden_names(project: Path) -> dict[str, str]:
    r = CliRunner().invoke(main, ["--json", "records", "list", "customer", "--limit", "100"])
    return {rec["fields"]["code"]: rec["fields"]["name"] for rec in json.loads(r.stdout)["records"]}


def golden_limits(project: Path) -> dict[str, str]:
    r = CliRunner().invoke(main, ["--json", "records", "list", "customer", "--limit", "100"])
    return {rec["fields"]["code"]: rec["fields"]["credit_limit"] for rec in json.loads(r.stdout)["records"]}


def test_a_full_reread_of_an_unchanged_export_changes_nothing(project: Path):
    first = sync()
    taken = first["created"] + first["linked"]
    assert taken >= 3
    hashes = raw_hashes(project)
    assert len(hashes) == taken and all(hashes.values())    # every row taken in notes its raw digest
    before = history_rows(project)
    again = sync("--full")
    # every row counts as unchanged: those taken in, and the bad rows already in quarantine
    assert again["unchanged"] == again["read"] == first["read"]
    assert again["updated"] == again["created"] == again["quarantined"] == 0
    assert history_rows(project) == before


def test_a_changed_mapping_maps_every_row_again(project: Path):
    sync()
    mapping = project / "mappings" / "erp_customer.yaml"
    mapping.write_text(mapping.read_text(encoding="utf-8").replace(
        "name: {from: name, transform: strip}", "name: {from: name, transform: upper}"), encoding="utf-8")
    again = sync("--full")
    assert again["updated"] >= 1           # the Latin names of the export now arrive upper-cased
    assert golden_names(project)["C0004"] == "MÜLLER MASCHINENBAU GMBH"


def test_an_older_export_read_again_does_not_turn_the_record_back(project: Path):
    mapping = project / "mappings" / "erp_customer.yaml"
    mapping.write_text(mapping.read_text(encoding="utf-8").replace("source: customers.csv", "source: customers*.csv"),
                       encoding="utf-8")
    config = project / "triad.yaml"             # small batches: the two versions arrive in different ones
    text, n = re.subn(r"(\n    path: ./exports/erp[^\n]*\n)", r"\1    batch_size: 2\n", config.read_text(encoding="utf-8"))
    assert n == 1
    config.write_text(text, encoding="utf-8")
    sync()
    exports = project / "exports" / "erp"
    lines = (exports / "customers.csv").read_text(encoding="utf-8").splitlines()
    header, first = lines[0], lines[1]
    code = first.split(",")[0]
    # credit_limit is owned by erp: an older erp value read again would win, if it were taken
    newer = first.replace("500000.00", "600000.00").replace("2026-11-01 09:00:00", "2026-11-20 09:00:00")
    (exports / "customers_update.csv").write_text(f"{header}\n{newer}\n", encoding="utf-8")
    assert sync()["updated"] == 1
    before = history_rows(project)
    again = sync("--full")                 # customers.csv (older) is read before customers_update.csv
    assert again["updated"] == 0
    assert again["older"] == 1              # not taken, but counted and said: it may be a real edit
    shown = CliRunner().invoke(main, ["sync", "run", "-c", "erp", "-e", "customer", "--full"])
    assert "1 row(s) not taken: older than the version taken in" in shown.output, shown.output
    assert golden_limits(project)[code] == "600000"
    assert history_rows(project) == before


def test_a_key_twice_in_one_batch_takes_the_newer_version_wherever_it_stands(project: Path):
    """Within a batch as across batches: the newer row wins, not the later line of the file."""
    exports = project / "exports" / "erp"
    lines = (exports / "customers.csv").read_text(encoding="utf-8").splitlines()
    code = lines[1].split(",")[0]
    newer = lines[1].replace("500000.00", "600000.00").replace("2026-11-01 09:00:00", "2026-11-20 09:00:00")
    # the newer version first, the older one after it, in one file (one batch)
    (exports / "customers.csv").write_text("\n".join([lines[0], newer, *lines[1:]]) + "\n", encoding="utf-8")
    sync()
    assert golden_limits(project)[code] == "600000"


def test_a_record_deleted_then_sent_again_unchanged_comes_back(project: Path):
    from hub.models import Xref
    sync()
    exports = project / "exports" / "erp"
    (exports / "customers.deleted.csv").write_text("customer_no\nC0004\n", encoding="utf-8")
    assert sync()["deleted"] == 1
    (exports / "customers.deleted.csv").unlink()
    sync("--full")                         # the very row it had before: not skipped as unchanged
    engine = create_engine(f"sqlite:///{project / 'triad.db'}")
    xt = Xref.__table__
    with engine.connect() as conn:
        status = conn.scalar(select(xt.c.status).where(xt.c.system == "erp", xt.c.source_id == "C0004"))
    assert status == "active"
