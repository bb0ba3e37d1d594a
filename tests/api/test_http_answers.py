"""Answers worded for an HTTP client: a 404 names the API path to use (never a CLI command), and a
single-valued query parameter given twice is refused with 422 instead of keeping one of its values."""
from __future__ import annotations

import pytest

MISSING = "01ZZZZZZZZZZZZZZZZZZZZZZZZ"


def _detail(r) -> str:
    assert r.status_code == 404, r.text
    detail = r.json()["detail"]
    assert "triad " not in detail and "`" not in detail, detail
    return detail


def test_provenance_404_names_the_api_path_not_a_cli_command(api):
    detail = _detail(api.get(f"/records/customer/{MISSING}/provenance"))
    assert detail == f"no customer {MISSING}; GET /api/v1/records/customer lists them"


def test_a_source_id_given_as_record_id_points_to_its_golden_record(api):
    rid = api.get("/xref/erp/customer/C0001").json()["record"]["id"]
    for path in ("/records/customer/C0001/provenance", "/records/customer/C0001", "/records/customer/C0001/history"):
        detail = _detail(api.get(path))
        assert f"/api/v1/records/customer/{rid}/provenance" in detail, detail
        assert "/api/v1/xref/erp/customer/C0001" in detail


def test_steward_404s_name_the_api_path(api):
    assert _detail(api.get(f"/conflicts/{MISSING}")) == f"no conflict {MISSING}; GET /api/v1/conflicts lists them"
    resolve = api.post(f"/conflicts/{MISSING}/resolve", "bob", json={"keep": True})
    assert _detail(resolve) == f"no conflict {MISSING}; GET /api/v1/conflicts lists them"
    assert _detail(api.get(f"/quarantine/{MISSING}")) == \
        f"no quarantine item {MISSING}; GET /api/v1/quarantine lists them"


@pytest.mark.parametrize("path, query", [
    ("/records/customer", "limit=5&limit=10"),
    ("/records/customer", "code=C0001&code=C0002"),                # a filter
    ("/records/customer", "sort=id&limit=2&sort=updated_at"),
    ("/records/customer/{rid}/history", "field=phone&field=email"),
    ("/changes", "limit=1&limit=2"),
    ("/conflicts", "status=open&status=auto"),
    ("/quarantine", "cursor=a&cursor=b"),
])
def test_a_repeated_single_valued_parameter_is_422_naming_it(api, path, query):
    rid = api.get("/xref/erp/customer/C0001").json()["record"]["id"]
    r = api.client.get(f"/api/v1{path.format(rid=rid)}?{query}", headers=api.h())
    assert r.status_code == 422, r.text
    (problem,) = r.json()["detail"]               # the shape of every malformed-parameter 422 (loc, msg, type)
    name = query.split("=")[0]
    assert problem["loc"] == ["query", name] and problem["type"] == "repeated_parameter"
    assert f"'{name}'" in problem["msg"] and "2 times" in problem["msg"]


def test_parameters_meant_to_be_repeated_still_work(api):
    both = api.client.get("/api/v1/changes?entity=customer&entity=order&limit=1000", headers=api.h())
    assert both.status_code == 200, both.text
    assert {c["entity"] for c in both.json()["changes"]} == {"customer", "order"}
    one = api.client.get("/api/v1/changes?entity=customer&limit=1000", headers=api.h()).json()
    assert {c["entity"] for c in one["changes"]} == {"customer"}
    assert api.client.get("/api/v1/records/customer?limit=5", headers=api.h()).status_code == 200
