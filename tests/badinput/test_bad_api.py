"""Hostile requests to the data API (/api/v1) in-process: path parameters with traversal, SQL and NUL,
huge query strings, forged cursors and tokens get a 4xx, never a 5xx; hypothesis fuzzes cursors and ids."""
from __future__ import annotations

import base64
import json
import shutil
from pathlib import Path
from typing import Any, Iterator
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from .conftest import CORPUS, SQL_ID, Project

FUZZ = settings(max_examples=60, deadline=None, database=None, derandomize=True,
                suppress_health_check=list(HealthCheck))
HOSTILE = [SQL_ID, "%", "%25", "_", "..%2F..%2Fetc%2Fpasswd", "%00", "x" * 5000, "%C0%AE%C0%AE", "%FF%FE", "a%5Cb",
           "%2e%2e", "%20", "%0d%0aSet-Cookie:%20x=1", "[/x]", "'%20OR%20'1'='1"]


class Api:
    def __init__(self, client: Any, token: str, project: Project) -> None:
        self.client, self.token, self.project = client, token, project

    def get(self, path: str, **kw: Any) -> Any:
        return self.client.get("/api/v1" + path, headers={"Authorization": f"Bearer {self.token}"}, **kw)

    def post(self, path: str, body: bytes) -> Any:
        return self.client.post("/api/v1" + path, content=body, headers={
            "Authorization": f"Bearer {self.token}", "Content-Type": "application/json"})


@pytest.fixture(scope="module")
def api(template: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    """The sample project, with SQL-looking ERP ids, synced; the app in-process with an admin token."""
    from fastapi.testclient import TestClient

    from hub import tokens
    from hub.context import Context
    from hub.server import create_app
    mp = pytest.MonkeyPatch()
    for var in ("TRIAD_DATABASE_URL", "TRIAD_CONFIG", "TRIAD_USER"):
        mp.delenv(var, raising=False)
    root = tmp_path_factory.mktemp("api") / "p"
    shutil.copytree(template, root)
    project = Project(root)
    hostile_rows = (CORPUS / "files" / "sql_meta_ids.csv").read_text(encoding="utf-8").split("\n", 1)[1]
    with (project.erp / "customers.csv").open("a", encoding="utf-8") as fh:   # the sample rows stay (conflicts)
        fh.write(hostile_rows)
    project.sync(codes=(0,))
    ctx = Context(config_path=str(project.config), user_name="admin")
    token = tokens.create(ctx.engine(), "admin", by="admin", name="badinput")["token"]
    app = create_app(ctx, worker=False)
    try:
        with TestClient(app, raise_server_exceptions=False) as client:
            yield Api(client, token, project)
    finally:
        ctx.close()
        mp.undo()


def cursor(value: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


@pytest.mark.parametrize("template_path", [
    "/records/customer/{v}", "/records/customer/{v}/history", "/records/customer/{v}/provenance",
    "/xref/erp/customer/{v}", "/xref/{v}/customer/C1", "/conflicts/{v}", "/quarantine/{v}", "/records/{v}",
    "/records/customer?code={v}", "/records/customer?cursor={v}", "/changes?since={v}", "/conflicts?cursor={v}",
    "/quarantine?cursor={v}", "/changes?entity={v}"])
def test_hostile_path_and_query_values_are_4xx(api: Api, template_path: str):
    for value in HOSTILE:
        r = api.get(template_path.format(v=value))
        assert r.status_code < 500, (template_path, value, r.status_code, r.text[:300])
        if r.status_code == 200 and template_path.startswith("/xref/erp/"):   # an id that exists, taken literally
            assert r.json()["source_id"] == r.json()["record"]["fields"]["code"]
        elif "?" not in template_path:
            assert r.status_code in (400, 404, 405, 422), (template_path, value, r.status_code)


def test_sql_looking_source_ids_resolve_literally(api: Api):
    r = api.get(f"/xref/erp/customer/{quote(SQL_ID, safe='')}")
    assert r.status_code == 200, r.text
    assert r.json()["record"]["fields"]["code"] == SQL_ID
    assert api.get("/xref/erp/customer/%25").json()["record"]["fields"]["code"] == "%"
    assert api.get("/xref/erp/customer/C%25").status_code == 404
    listed = api.get("/records/customer", params={"code": "_"}).json()["records"]
    assert [r["fields"]["code"] for r in listed] == ["_"]


def test_huge_query_strings_are_4xx(api: Api):
    assert api.get("/records/customer", params={"code": "x" * 60_000}).status_code == 422
    many = "&".join(f"junk{i}=" + "x" * 50 for i in range(800))
    assert api.get("/records/customer?" + many).status_code == 422
    assert api.get("/records/customer", params={"limit": "9" * 40}).status_code == 422
    assert api.get("/records/customer", params={"credit_limit": "1e999999"}).status_code == 422
    assert api.get("/records/customer", params={"updated_since": "0001-01-01T00:00:00+14:00"}).status_code == 422


def test_tampered_cursors_are_400(api: Api):
    first = api.get("/records/customer", params={"limit": 2}).json()
    token = first["next"]
    assert token
    for bad in [token[:-2], token + "AAAA", token.upper(), token[::-1], "A" * 600, "%%%", cursor(["seq", 1]),
                cursor({"id": "x"}), cursor(["id"]), cursor(["id", 5]), cursor(["id", "a", "b"])]:
        r = api.get("/records/customer", params={"limit": 2, "cursor": bad})
        assert r.status_code in (400, 422), (bad, r.status_code, r.text[:200])
    for bad in [cursor(["seq", -1]), cursor(["seq", "1"]), cursor(["seq", True]), "now!", cursor(["id", "x"])]:
        assert api.get("/changes", params={"since": bad}).status_code in (400, 422), bad


def test_change_cursor_beyond_64_bits_is_400(api: Api):
    assert api.get("/changes", params={"since": cursor(["seq", 2**63])}).status_code == 400


@pytest.mark.parametrize("stamp", ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00"])
def test_records_cursor_with_out_of_range_time_is_400(api: Api, stamp: str):
    r = api.get("/records/customer", params={"sort": "updated_at", "cursor": cursor(["updated_at", stamp, "x"])})
    assert r.status_code == 400


@pytest.mark.parametrize("header", ["Bearer", "Bearer " + "x" * 10_000, "Basic Zm9vOmJhcg==", "Bearer a.b.c",
                                    "Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJhZG1pbiJ9.", "bearer " + SQL_ID,
                                    b"Bearer \xff\xfe", "Bearer é".encode("latin-1")])
def test_forged_tokens_are_401(api: Api, header: Any):
    r = api.client.get("/api/v1/records/customer", headers={"Authorization": header})
    assert r.status_code == 401
    assert "records" not in r.text


@pytest.mark.parametrize("body", [b"{", b"[]", b"null", b'{"take": 5}', b'{"take": "erp", "value": "x"}',
                                  b"\x00\xff", b'{"value": "' + b"x" * 200_000 + b'"}', b'{"note": "\\u0000"}'])
def test_malformed_resolve_bodies_are_4xx(api: Api, body: bytes):
    conflict = api.get("/conflicts", params={"status": "open"}).json()["conflicts"][0]["id"]
    r = api.post(f"/conflicts/{conflict}/resolve", body)
    assert 400 <= r.status_code < 500, (body[:40], r.status_code, r.text[:200])
    assert api.get(f"/conflicts/{conflict}").json()["status"] == "open"      # nothing was half-applied


@FUZZ
@given(value=st.text(max_size=300))
def test_fuzz_cursors_and_ids_never_5xx(api: Api, value: str):
    for path, params in (("/records/customer", {"cursor": value}), ("/changes", {"since": value}),
                         ("/conflicts", {"cursor": value}), (f"/records/customer/{quote(value, safe='')}", None),
                         (f"/xref/erp/customer/{quote(value, safe='')}", None)):
        r = api.get(path, params=params)
        assert r.status_code < 500, (path, value, r.status_code, r.text[:200])
