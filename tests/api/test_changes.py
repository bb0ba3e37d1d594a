"""The change feed: grouped per record change, resumable exactly, filtered by role."""
from __future__ import annotations

from sqlalchemy import func, select

from hub.models import FieldHistory


def _drain(api, since: str | None = None, user: str = "alice", **params) -> tuple[list[dict], str]:
    out = []
    while True:
        page = api.get("/changes", user, params=dict(params, **({"since": since} if since else {}))).json()
        out += page["changes"]
        if not page["changes"]:
            return out, page["next"]
        since = page["next"]


def test_feed_groups_history_per_record_change_and_resumes_without_gaps_or_repeats(api):
    whole = api.get("/changes", params={"limit": 1000}).json()
    changes = whole["changes"]
    with api.engine.connect() as conn:
        total_rows = conn.scalar(select(func.count()).select_from(FieldHistory.__table__))
    assert sum(c["seq"] - c["first_seq"] + 1 for c in changes) == total_rows   # every history row, once
    creates = [c for c in changes if c["kind"] == "create"]
    assert {c["entity"] for c in creates} == {"customer", "order"}
    first = changes[0]
    assert first["kind"] == "create" and first["system"] == "erp" and first["fields"]["code"] == {"old": None,
                                                                                                 "new": "C0001"}
    seqs = [c["seq"] for c in changes]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)

    paged, nxt = _drain(api, limit=1)          # one change per page, resuming from each `next`
    assert paged == changes
    assert api.get("/changes", params={"since": nxt}).json() == {"changes": [], "next": nxt}

    # a steward decision made after the consumer's cursor shows up next, and only it
    conflict = api.get("/conflicts", params={"status": "open"}).json()["conflicts"][0]
    assert api.post(f"/conflicts/{conflict['id']}/resolve", "bob", json={"take": "crm"}).status_code == 200
    more, nxt2 = _drain(api, nxt)
    assert len(more) == 1
    c = more[0]
    assert (c["kind"], c["user"], c["record_id"], c["reasons"]) == ("update", "bob", conflict["record_id"], ["resolve"])
    assert c["fields"] == {"email": {"old": "ap@yuntu.com.cn", "new": "purchasing@yuntu.com.cn"}}
    assert api.get("/changes", params={"since": nxt2}).json()["changes"] == []


def test_since_now_and_entity_filter(api):
    now = api.get("/changes", params={"since": "now"}).json()
    assert now["changes"] == []
    assert api.get("/changes", params={"since": now["next"]}).json()["changes"] == []
    orders = api.get("/changes", params={"entity": "order", "limit": 1000}).json()["changes"]
    assert orders and {c["entity"] for c in orders} == {"order"}
    both = api.get("/changes", params={"entity": ["order", "customer"], "limit": 1000}).json()["changes"]
    assert len(both) == len(api.get("/changes", params={"limit": 1000}).json()["changes"])


def test_feed_respects_roles_and_denied_fields(api):
    mine = api.get("/changes", "bob", params={"limit": 1000}).json()["changes"]
    assert mine and all("credit_limit" not in c["fields"] for c in mine)
    assert any("code" in c["fields"] for c in mine)
    assert api.get("/changes", "bob", params={"entity": "payment"}).status_code == 403
    assert api.get("/changes", "nobody").status_code == 403
    assert {c["entity"] for c in api.get("/changes", "fin", params={"limit": 1000}).json()["changes"]} == {"customer"}


def test_a_bad_cursor_is_400(api):
    for bad in ("garbage", "WyJpZCIsIngiXQ", "WyJzZXEiLC0xXQ"):   # not base64 JSON; another kind; negative
        r = api.get("/changes", params={"since": bad})
        assert r.status_code == 400 and "cursor" in r.json()["detail"]
