"""The small parts of the rest connector: record paths, templates, body conditions, lower-bound formats."""
from __future__ import annotations

from datetime import datetime, timezone
from zoneinfo import ZoneInfo

import pytest

from connectors.rest.auth import canonical_query
from connectors.rest.connector import format_since, parse_stamp
from connectors.rest.paging import condition_holds
from connectors.rest.paths import compile_path, get_path, placeholders, render, set_path
from connectors.rest.spec import Condition, SinceSpec

BODY = {"data": {"items": [{"id": 1}, {"id": 2}]}, "odd.key": {"v": 3}, "ok": False, "code": 0, "empty": None}


@pytest.mark.parametrize("path, expected", [
    ("$", BODY), ("", BODY), ("data.items", BODY["data"]["items"]), ("$.data.items[*]", BODY["data"]["items"]),
    ("data.items[1].id", 2), ("data.items[-1].id", 2), ("data.items[5].id", None), ("['odd.key'].v", 3),
    ('["odd.key"]', {"v": 3}), ("data.nothing.deeper", None), ("ok", False)])
def test_record_paths(path: str, expected: object) -> None:
    assert get_path(BODY, path) == expected


@pytest.mark.parametrize("bad", ["data..items", "data[x]", "items[*].id", "a['b"])
def test_bad_paths_are_refused(bad: str) -> None:
    with pytest.raises(ValueError):
        compile_path(bad)


def test_templates_keep_whole_values_and_format_text() -> None:
    ctx = {"fields_list": ["name", "city"], "values": {"properties": {"name": "ACME"}}, "id": "7", "n": None}
    template = {"properties": "{fields_list}", "q": "{fields_list}", "path": "/x/{id}/y",
                "name": "{values.properties.name}", "braces": "{{literal}}", "none": "{n}", "list": ["{id}", 1]}
    assert render(template, ctx) == {"properties": ["name", "city"], "q": ["name", "city"], "path": "/x/7/y",
                                     "name": "ACME", "braces": "{literal}", "none": None, "list": ["7", 1]}
    assert render("a {fields_list} b", ctx) == "a name,city b"
    assert placeholders(template) == {"fields_list", "id", "values.properties.name", "n"}
    body: dict = {}
    set_path(body, "paging.after", "abc")
    assert body == {"paging": {"after": "abc"}}


@pytest.mark.parametrize("condition, holds", [
    ({"path": "ok", "equals": False}, True), ({"path": "ok", "equals": "false"}, True),
    ({"path": "code", "not_equals": 0}, False), ({"path": "code", "in": [0, 200]}, True),
    ({"path": "code", "not_in": ["0"]}, False), ({"path": "empty", "exists": True}, True),
    ({"path": "missing", "exists": False}, True), ({"path": "missing", "equals": None}, False),
    ({"path": "empty", "equals": None}, True), ({"path": "data.items[0].id", "matches": "^1$"}, True)])
def test_body_conditions(condition: dict, holds: bool) -> None:
    assert condition_holds(Condition.model_validate(condition), BODY) is holds


def test_lower_bound_formats_and_record_timestamps() -> None:
    when = datetime(2026, 3, 1, 8, 30, 5, 250000, tzinfo=timezone.utc)
    shanghai = {"timezone": "Asia/Shanghai"}
    assert [format_since(when, SinceSpec(format=f, **shanghai)) for f in
            ("iso", "iso_ms", "iso_offset", "unix", "unix_ms", "date", "%Y%m%d %H%M")] == [
        "2026-03-01T08:30:05Z", "2026-03-01T08:30:05.250Z", "2026-03-01T16:30:05+08:00", "1772353805",
        "1772353805250", "2026-03-01", "20260301 1630"]
    tz = ZoneInfo("Asia/Shanghai")
    assert parse_stamp(1772353805250, tz) == parse_stamp("1772353805", tz).replace(microsecond=250000)
    assert parse_stamp("2026-03-01 16:30:05", tz) == when.replace(microsecond=0)
    assert parse_stamp("2026-03-01T08:30:05.250Z", tz) == when and parse_stamp("", tz) is None


def test_canonical_query_for_signatures() -> None:
    assert canonical_query("b=2&a=x y&a=1&c=") == "a=1&a=x%20y&b=2&c="
