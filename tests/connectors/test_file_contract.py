"""The file connector against the shared connector contract."""
from __future__ import annotations

import csv
import os
import random
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from contract import ConnectorContract

from connectors.file.connector import FileConnector
from hub.connector import StreamSpec, WriteChange

TZ = "Asia/Shanghai"
HEADER = ["customer_no", "name", "email", "phone", "city", "credit_limit", "updated_at"]
ROWS = 70


def customer_rows(n: int = ROWS) -> list[list[str]]:
    """Deterministic rows, deliberately not in updated_at order (exports rarely are)."""
    start = datetime(2024, 3, 1, 9, 0, 0)
    rows = [[f"C{i:04d}", f"客户 {i}", f"c{i}@example.com", f"+86 21 5555 {i:04d}", "上海", f"{i * 1000}.00",
             (start + timedelta(minutes=i)).strftime("%Y-%m-%d %H:%M:%S")] for i in range(1, n + 1)]
    random.Random(7).shuffle(rows)
    return rows


def write_csv(path: Path, header: list[str], rows: list[list[str]], encoding: str = "utf-8") -> None:
    tmp = path.with_suffix(".partial")
    with tmp.open("w", encoding=encoding, newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(rows)
    os.replace(tmp, path)


class TestFileContract(ConnectorContract):
    @pytest.fixture
    def folder(self, tmp_path: Path) -> Path:
        folder = tmp_path / "erp"
        folder.mkdir()
        write_csv(folder / "customers.csv", HEADER, customer_rows())
        return folder

    @pytest.fixture
    def connector(self, folder: Path):
        conn = FileConnector("erp", {"path": str(folder), "direction": "both"})
        yield conn
        conn.close()

    @pytest.fixture
    def stream(self) -> StreamSpec:
        return StreamSpec(entity="customer", source="customers.csv", key="customer_no", updated_at="updated_at",
                          timezone=TZ, batch_size=25, fields=tuple(HEADER))

    @pytest.fixture
    def readback_stream(self, stream: StreamSpec) -> StreamSpec:
        # the file connector writes to its outbox folder, which lies inside the read folder by default
        return StreamSpec(entity="customer", source="outbox/customer-*.jsonl", key="customer_no",
                          updated_at="updated_at", timezone=TZ, batch_size=25, fields=tuple(HEADER))

    @pytest.fixture
    def seed_change(self, folder: Path):
        def change() -> str:
            path = folder / "customers.csv"
            with path.open(encoding="utf-8", newline="") as fh:
                header, *rows = list(csv.reader(fh))
            for row in rows:
                if row[0] == "C0007":
                    row[1] = "客户 7 (renamed)"
                    row[-1] = datetime.now(ZoneInfo(TZ)).strftime("%Y-%m-%d %H:%M:%S")
            write_csv(path, header, rows)
            return "C0007"
        return change

    @pytest.fixture
    def new_change(self) -> WriteChange:
        return WriteChange(change_id="chg-1", record_id="01HZX0000000000000000000A1", source_id=None,
                           values={"name": "Acme Trading", "email": "buy@acme.example", "city": "Hangzhou",
                                   "credit_limit": Decimal("5000.00")})

    @pytest.fixture
    def bad_change(self) -> WriteChange:
        return WriteChange(change_id="chg-bad", record_id="01HZX0000000000000000000B1", source_id=None,
                           values={}, delete=True)
