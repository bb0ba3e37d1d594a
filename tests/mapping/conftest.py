"""Helpers for the mapping tests: write small mapping files in tmp_path."""
from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Callable

import pytest

from hub.mapping import Mapping, load_mapping


@pytest.fixture
def write_yaml(tmp_path: Path) -> Callable[..., Path]:
    """Write dedented YAML text to a file under tmp_path and return its path."""
    def write(text: str, name: str = "mapping.yaml") -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
        return path
    return write


@pytest.fixture
def make_mapping(write_yaml: Callable[..., Path]) -> Callable[..., Mapping]:
    """Build a mapping from YAML text (the header defaults to source: Obj, key: Id)."""
    def make(text: str, entity: str = "customer", header: str | None = None) -> Mapping:
        body = textwrap.dedent(text).lstrip("\n")
        head = header if header is not None else "source: Obj\nkey: Id\n"
        return load_mapping(write_yaml(head + body), entity)
    return make
