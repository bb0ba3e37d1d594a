"""The OpenAPI document tells the truth about the real-time routes: every status a webhook delivery
can be answered with is declared, with the body it carries, and the answers given match it."""
from __future__ import annotations

from pathlib import Path

from sqlalchemy import text

from .helpers import Served, customer_row, signed, write_project
from .test_webhooks import CONFIG

WEBHOOK_CODES = {"200", "202", "401", "404", "413", "503"}


def _document(s: Served) -> dict:
    r = s.http.get(f"{s.url}/api/v1/openapi.json", timeout=10)
    assert r.status_code == 200
    return r.json()


def _declared(doc: dict, path: str, method: str) -> dict:
    return doc["paths"][path][method]["responses"]


def test_every_webhook_route_declares_the_codes_it_can_answer(tmp_path: Path, sqlite_url: str):
    with Served(write_project(tmp_path / "p", CONFIG, sqlite_url), worker=False) as s:
        doc = _document(s)
    webhook_routes = [p for p in doc["paths"] if p.startswith("/webhooks/")]
    assert webhook_routes == ["/webhooks/{connector}"]
    for path in webhook_routes:
        declared = _declared(doc, path, "post")
        assert WEBHOOK_CODES <= set(declared), sorted(declared)
        for code in ("401", "404", "413", "503"):
            schema = declared[code]["content"]["application/json"]["schema"]
            assert schema["$ref"] == "#/components/schemas/WebhookError" and declared[code]["description"]
        assert declared["202"]["content"]["application/json"]["schema"]["$ref"].endswith("/WebhookAccepted")
    assert doc["components"]["schemas"]["WebhookError"]["required"] == ["error"]
    assert {"200", "503"} <= set(_declared(doc, "/healthz", "get"))
    assert set(_declared(doc, "/metrics", "get")["200"]["content"]) == {"text/plain"}


def test_the_answers_given_are_the_ones_declared(tmp_path: Path, sqlite_url: str):
    doc_body, headers = signed({"entity": "customer", "records": [customer_row(1, "Acme")]})
    with Served(write_project(tmp_path / "p", CONFIG, sqlite_url), worker=False) as s:
        declared = _declared(_document(s), "/webhooks/{connector}", "post")
        answers = {
            "accepted": s.post("erp", doc_body, headers),
            "bad signature": s.post("erp", doc_body, {**headers, "X-Triad-Signature": "sha256=00"}),
            "unknown connector": s.post("nosuch", doc_body, headers),
            "too large": s.post("erp", b"x" * (1024 * 1024 + 1), headers),
        }
        with s.engine.begin() as conn:              # the store cannot take the event any more
            conn.execute(text("DROP TABLE inbox"))
        answers["store unavailable"] = s.post("erp", doc_body, headers)
        answers["health, store unavailable"] = s.http.get(f"{s.url}/healthz", timeout=10)
    codes = {what: r.status_code for what, r in answers.items()}
    assert codes == {"accepted": 202, "bad signature": 401, "unknown connector": 404, "too large": 413,
                     "store unavailable": 503, "health, store unavailable": 503}
    for what, r in answers.items():
        if what.startswith("health"):
            continue
        assert str(r.status_code) in declared, what
        if r.status_code >= 400:                    # the body is the declared WebhookError
            assert set(r.json()) == {"error"} and r.json()["error"], what
