"""A webhook record holding a lone surrogate (valid JSON text, ``"\\ud800"``, but no UTF-8 can encode
the decoded value) is parked in quarantine at once with the field named; the delivery's other records
go through and the inbox row is done, not retried five times into ``error``."""
from __future__ import annotations

import hashlib
import hmac
import json
from pathlib import Path

from .helpers import SECRET, Served, customer_row, rows, wait_for, write_project

CONFIG = f"""
connectors:
  erp: {{type: file, path: ./exports, direction: in, webhook_secret: {SECRET}, entities: [customer]}}
matching: {{customer: {{exact: [tax_id]}}}}
serve: {{window_ms: 20}}
"""


def ascii_signed(doc: dict) -> tuple[bytes, dict[str, str]]:
    """The body as a sender escaping non-ASCII writes it: the lone surrogate travels as ``\\ud800``."""
    body = json.dumps(doc).encode("ascii")
    sig = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    return body, {"Content-Type": "application/json", "X-Triad-Signature": sig}


def as_dict(value):
    return value if isinstance(value, (dict, list)) or value is None else json.loads(value)


def test_lone_surrogate_is_quarantined_naming_the_field(tmp_path: Path, store_url: str):
    cfg = write_project(tmp_path / "p", CONFIG, store_url)
    bad = customer_row(1, "Acme \ud800 Ltd")
    unmapped = customer_row(2, "Beta Ltd", junk="\udfff")        # a field the mapping does not read
    good = customer_row(3, "Gamma Ltd")
    body, headers = ascii_signed({"entity": "customer", "records": [bad, unmapped, good]})
    assert b"\\ud800" in body
    with Served(cfg) as s:
        assert s.post("erp", body, headers).status_code == 202
        settled = wait_for(lambda: [r for r in rows(s.engine, "select status, attempts, error from inbox")
                                    if r.status != "pending"], 10, "the delivery to be settled")
        assert [(r.status, r.attempts) for r in settled] == [("done", 1)], settled
        assert sorted(r.name for r in rows(s.engine, "select name from customer")) == ["Beta Ltd", "Gamma Ltd"]
        [parked] = rows(s.engine, "select source_id, kind, status, reasons, raw from quarantine")
        assert (parked.source_id, parked.kind, parked.status) == ("C0001", "mapping", "parked")
        [reason] = as_dict(parked.reasons)
        assert reason["field"] == "name" and "lone surrogate" in reason["message"], reason
        assert "U+D800" in reason["message"]
        assert as_dict(parked.raw)["name"] == "Acme \\ud800 Ltd"       # visible to the steward as text
