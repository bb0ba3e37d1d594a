"""find_mapping: the configured override, else the shipped default next to the package."""
from __future__ import annotations

from pathlib import Path

import pytest

from hub.errors import ConfigError
from hub.mapping import find_mapping, load_mapping, shipped_mappings_dir, validate_mapping_file


def test_shipped_dir_is_next_to_the_package() -> None:
    import hub
    assert shipped_mappings_dir() == Path(hub.__file__).resolve().parent.parent / "mappings"


def test_override_relative_to_base_dir(tmp_path: Path) -> None:
    (tmp_path / "mappings").mkdir()
    own = tmp_path / "mappings" / "erp_customer.yaml"
    own.write_text("source: A\nkey: Id\nfields: {name: N}\n", encoding="utf-8")
    found = find_mapping("file", "customer", "mappings/erp_customer.yaml", str(tmp_path))
    assert found == own
    assert load_mapping(found, "customer").source == "A"


def test_missing_override_names_both_places(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        find_mapping("file", "customer", "mappings/typo.yaml", str(tmp_path))
    message = str(info.value)
    assert str(tmp_path / "mappings" / "typo.yaml") in message
    assert str(shipped_mappings_dir() / "file" / "customer.yaml") in message


def test_shipped_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    shipped = tmp_path / "pkg" / "mappings"
    (shipped / "acme").mkdir(parents=True)
    (shipped / "acme" / "customer.yaml").write_text("source: A\nkey: Id\nfields: {name: N}\n", encoding="utf-8")
    monkeypatch.setattr("hub.mapping.shipped_mappings_dir", lambda: shipped)
    assert find_mapping("acme", "customer", None, str(tmp_path)) == shipped / "acme" / "customer.yaml"
    with pytest.raises(ConfigError) as info:
        find_mapping("acme", "order", None, str(tmp_path / "project"))
    message = str(info.value)
    assert str(shipped / "acme" / "order.yaml") in message
    assert str((tmp_path / "project").resolve()) in message


@pytest.mark.parametrize("path", sorted(shipped_mappings_dir().glob("*/*.yaml")),
                         ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_shipped_mapping_validates(path: Path) -> None:
    assert [str(issue) for issue in validate_mapping_file(path, path.stem)] == []
