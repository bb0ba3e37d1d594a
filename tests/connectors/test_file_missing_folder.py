"""The file connector's writer makes its outbox folder, never a missing connector folder (a typo stays reported)."""
from __future__ import annotations

from pathlib import Path

from connectors.file.connector import FileConnector
from hub.connector import StreamSpec, WriteChange


def stream() -> StreamSpec:
    return StreamSpec(entity="customer", source="customers.csv", key="customer_no", updated_at=None,
                      timezone="UTC", batch_size=100, run_started_at=None)


def changes() -> list[WriteChange]:
    return [WriteChange("ch1", "REC1", None, {"name": "new"}), WriteChange("ch2", "REC2", "C2", {"name": "renamed"})]


def test_a_missing_connector_folder_is_not_created_and_fails_the_writes_as_retriable(tmp_path: Path) -> None:
    missing = tmp_path / "exports" / "missing"
    conn = FileConnector("crm", {"path": "./exports/missing", "direction": "both"}, base_dir=str(tmp_path))
    results = conn.write(stream(), changes())
    assert [(r.ok, r.retriable) for r in results] == [(False, True), (False, True)]
    assert all(f"folder {missing} does not exist" in r.error for r in results)
    assert not missing.exists() and not (tmp_path / "exports").exists()
    missing.mkdir(parents=True)        # the folder back: the retry writes, making only the outbox folder
    assert all(r.ok for r in conn.write(stream(), changes()))
    assert len(list((missing / "outbox").iterdir())) == 1


def test_an_outbox_symlinked_out_of_the_folder_is_not_written_through(tmp_path: Path) -> None:
    import pytest

    from hub.errors import ConfigError
    (tmp_path / "exports").mkdir()
    (tmp_path / "outside").mkdir()
    (tmp_path / "exports" / "outbox").symlink_to(tmp_path / "outside")
    conn = FileConnector("crm", {"path": "./exports", "direction": "both"}, base_dir=str(tmp_path))
    with pytest.raises(ConfigError, match="outside the folder"):
        conn.write(stream(), changes())
    assert list((tmp_path / "outside").iterdir()) == []
    # an outbox the config names elsewhere is the admin's choice: written there
    elsewhere = FileConnector("crm", {"path": "./exports", "direction": "both", "outbox": "./outside"},
                              base_dir=str(tmp_path))
    assert all(r.ok for r in elsewhere.write(stream(), changes()))
