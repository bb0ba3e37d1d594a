"""The shipped file and sql mappings: valid, and they carry real export rows through both directions."""
from __future__ import annotations

import json
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import Column, DateTime, MetaData, Numeric, String, Table, create_engine

from connectors.file.connector import FileConnector
from connectors.sql.connector import SqlConnector
from hub.connector import StreamSpec, WriteChange
from hub.mapping import Mapping, load_mapping, shipped_mappings_dir, validate_mapping_file

ENTITIES = ["customer", "order", "contract", "payment"]
CUSTOMER_COLUMNS = ["customer_no", "name", "type", "tax_id", "email", "phone", "country", "province", "city",
                    "address", "postal_code", "currency", "credit_limit", "payment_terms", "status", "tier",
                    "owner", "updated_at"]


@pytest.mark.parametrize("kind", ["file", "sql"])
@pytest.mark.parametrize("entity", ENTITIES)
def test_shipped_mapping_is_valid(kind: str, entity: str) -> None:
    path = shipped_mappings_dir() / kind / f"{entity}.yaml"
    assert validate_mapping_file(path, entity) == []


def stream_of(mapping: Mapping, entity: str, **kw) -> StreamSpec:
    plan = mapping.plan
    return StreamSpec(entity=entity, source=plan.source, key=".".join(plan.key),
                      updated_at=".".join(plan.updated_at) if plan.updated_at else None, timezone=plan.timezone,
                      fields=tuple(mapping.source_fields()), **kw)


def test_file_customer_export_round_trip(tmp_path: Path) -> None:
    folder = tmp_path / "erp"
    folder.mkdir()
    row = ["C-00123", " 上海  远景贸易有限公司 ", "企业", "91310000MA1FL0B12X", "Sales@Yuanjing.CN", "021 5555 0101",
           "中国", "上海", "上海", "浦东新区 世纪大道 100号", "200120", "RMB", "150000.00", "NET30", "正常", "A",
           "王芳", "2024-05-01 08:30:00"]
    (folder / "customers.csv").write_text(",".join(CUSTOMER_COLUMNS) + "\n" + ",".join(row) + "\n",
                                          encoding="utf-8-sig")
    mapping = load_mapping(shipped_mappings_dir() / "file" / "customer.yaml", "customer")
    conn = FileConnector("erp", {"path": str(folder)})
    spec = stream_of(mapping, "customer")
    (raw,) = [r for b in conn.read(spec, None) for r in b.records]
    record = mapping.to_canonical(raw)
    assert record.source_id == "C-00123"
    assert record.source_ts == datetime(2024, 5, 1, 8, 30, tzinfo=timezone.utc)
    v = record.values
    assert (v["name"], v["customer_type"], v["status"], v["country"], v["currency"]) == \
        ("上海 远景贸易有限公司", "company", "active", "CN", "CNY")
    assert v["credit_limit"] == Decimal("150000.00") and v["phone"] == "+862155550101"
    assert v["email"] == "sales@yuanjing.cn" and v["postal_code"] == "200120"

    (result,) = conn.write(spec, [WriteChange("ch1", "REC1", "C-00123", mapping.to_source(v))])
    assert result.ok
    (out,) = (folder / "outbox").iterdir()
    written = json.loads(out.read_text(encoding="utf-8"))
    assert written["customer_no"] == "C-00123" and written["type"] == "company" and written["status"] == "active"
    assert written["credit_limit"] == "150000.00"


def test_file_order_lines_from_a_json_cell(tmp_path: Path) -> None:
    folder = tmp_path / "erp"
    folder.mkdir()
    lines = json.dumps([{"line_no": 1, "sku": "A-100", "description": "阀门", "quantity": "2",
                         "unit_price": "10.00", "amount": "20.00"}], ensure_ascii=False).replace('"', '""')
    (folder / "orders.csv").write_text(
        "order_no,customer_no,contract_no,order_date,status,currency,total_amount,tax_amount,shipping_status,"
        f"tracking_no,lines,updated_at\nSO-1,C-00123,,2024-05-02,Confirmed,CNY,20.00,2.60,,,\"{lines}\","
        "2024-05-02 09:00:00\n", encoding="utf-8")
    mapping = load_mapping(shipped_mappings_dir() / "file" / "order.yaml", "order")
    (raw,) = [r for b in FileConnector("erp", {"path": str(folder)}).read(stream_of(mapping, "order"), None)
              for r in b.records]
    record = mapping.to_canonical(raw)
    assert record.values["customer_id"] == "C-00123" and record.refs == {"customer_id": "customer"}
    assert record.values["contract_id"] is None and record.values["status"] == "confirmed"
    assert record.values["lines"] == [{"line_no": 1, "sku": "A-100", "description": "阀门",
                                       "quantity": Decimal("2"), "unit_price": Decimal("10.00"),
                                       "amount": Decimal("20.00")}]


def test_sql_customer_table_round_trip(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'erp.db'}"
    engine = create_engine(url)
    md = MetaData()
    cols = [Column("customer_no", String(32), primary_key=True), Column("credit_limit", Numeric(18, 2)),
            Column("updated_at", DateTime)]
    cols += [Column(c, String(200)) for c in CUSTOMER_COLUMNS if c not in ("customer_no", "credit_limit",
                                                                           "updated_at")]
    customers = Table("customers", md, *cols)
    md.create_all(engine)
    with engine.begin() as c:
        c.execute(customers.insert().values(customer_no="C1", name="Acme", type="company", country="US",
                                            currency="usd", credit_limit=Decimal("99.90"), status="blocked",
                                            updated_at=datetime(2024, 5, 1, 8, 0)))
    engine.dispose()
    mapping = load_mapping(shipped_mappings_dir() / "sql" / "customer.yaml", "customer")
    conn = SqlConnector("erpdb", {"url": url})
    spec = stream_of(mapping, "customer")
    (raw,) = [r for b in conn.read(spec, None) for r in b.records]
    record = mapping.to_canonical(raw)
    assert record.values["credit_limit"] == Decimal("99.90") and record.values["status"] == "blocked"
    assert record.values["currency"] == "USD" and record.source_ts == datetime(2024, 5, 1, 8, tzinfo=timezone.utc)
    out = mapping.to_source({**record.values, "credit_limit": Decimal("120.00"), "status": "inactive"})
    (result,) = conn.write(spec, [WriteChange("ch1", "REC1", "C1", out)])
    assert result.ok, result.error
    (raw,) = [r for b in conn.read(spec, None) for r in b.records]
    assert raw["credit_limit"] == "120.00" and raw["status"] == "inactive"
    conn.close()
