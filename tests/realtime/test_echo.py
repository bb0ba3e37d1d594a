"""Echo suppression, round trip ERP -> Triad -> CRM -> Triad with the Kingdee and Salesforce simulators:
when the CRM returns what Triad wrote, nothing changes, nothing is recorded and nothing is queued;
the loop stops after one hop. Once through scheduled-style sync/push, once in real time through `triad serve`."""
from __future__ import annotations

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from connectors.kingdee.sim_forms import kd_time
from connectors.salesforce.webhook import envelope
from hub.config import load_config
from hub.push import push
from hub.store import make_engine
from hub.streams import Parts
from hub.sync import run_stream

from .helpers import SECRET, SF_AUTH, Served, rows, signed, wait_for, write_project

CONFIG = """
connectors:
  erp: {{type: kingdee, base_url: '{kd}/k3cloud', acct_id: triad-acct, username: demo@triad.local,
         password: triad-pass, backoff: 0.01, webhook_secret: {secret}, entities: [customer]}}
  crm: {{type: salesforce, base_url: '{sf}', auth: {auth}, webhook_token: om-token, entities: [customer]}}
matching: {{customer: {{exact: [tax_id]}}}}
survivorship:
  customer: {{fields: {{created_at: {{owner: erp}}}}}}     # each system stamps its own creation time
serve: {{window_ms: 50}}
"""


def systems(make_sim):
    kd = make_sim("kingdee", records=3)
    sf = make_sim("salesforce", records=1)
    for account in sf.sim.ids("Account"):            # an empty CRM: every account comes from the ERP
        sf.sim.remove("Account", account)
    return kd, sf


def ledger(engine) -> dict:
    """What an echo must leave alone: golden values, history, outbox, conflicts."""
    golden = rows(engine, "select id, code, name, phone, email, credit_limit, status, updated_at from customer "
                          "order by id")
    return {"golden": [tuple(g) for g in golden],
            "history": rows(engine, "select count(*) n from field_history")[0].n,
            "outbox": rows(engine, "select count(*) n from outbox")[0].n,
            "conflicts": rows(engine, "select count(*) n from conflict")[0].n}


def edit_in_erp(kd, index: int, **values) -> dict:
    """A user changes a customer in K3Cloud (the form is stamped with the local modify time)."""
    rec = kd.sim.state.data["forms"]["BD_Customer"][index]
    rec.update(values, FModifyDate=kd_time(datetime.now(ZoneInfo("Asia/Shanghai"))))
    return rec


def account_of(sf, code: str) -> dict:
    return next(a for a in sf.sim.records["Account"].values() if a["AccountNumber"] == code)


def test_round_trip_through_sync_and_push_stops_after_one_hop(tmp_path: Path, store_url: str, make_sim):
    kd, sf = systems(make_sim)
    cfg = load_config(str(write_project(tmp_path / "p", CONFIG.format(kd=kd.url, sf=sf.url, auth=SF_AUTH,
                                                                      secret=SECRET), store_url)))
    engine, parts = make_engine(cfg.store.url), Parts(cfg)

    def cycle() -> dict:
        out = {"erp": run_stream(engine, parts, "erp", "customer").counts,
               "crm": run_stream(engine, parts, "crm", "customer").counts}
        out["push"] = {p.connector: p.counts for p in push(engine, parts)}
        return out

    first = cycle()
    assert first["erp"]["created"] == 3 and first["push"]["crm"]["created"] == 3
    for _ in range(3):                                 # the CRM's own fields (owner, creation) settle once
        before = ledger(engine)
        cycle()
        if ledger(engine) == before:
            break
    else:
        raise AssertionError("the systems do not settle")

    edit_in_erp(kd, 0, FName="星海贸易（集团）有限公司", FCreditAmount=888000.0, FTEL="021-6666 0188")
    hop = run_stream(engine, parts, "erp", "customer").counts
    assert (hop["updated"], hop["queued"]) == (1, 1)
    assert push(engine, parts, ("crm",))[0].counts["written"] == 1
    code = kd.sim.state.data["forms"]["BD_Customer"][0]["FNumber"]
    assert account_of(sf, code)["Name"] == "星海贸易（集团）有限公司"
    assert account_of(sf, code)["CreditLimit__c"] == 888000

    before = ledger(engine)
    echo = run_stream(engine, parts, "crm", "customer").counts
    assert echo["read"] == 1                                   # the CRM returns what was written ...
    assert echo["updated"] == echo["queued"] == echo["conflicts"] == 0
    assert ledger(engine) == before                            # ... and nothing moves
    assert run_stream(engine, parts, "erp", "customer").counts["queued"] == 0
    assert sum(p.counts["written"] for p in push(engine, parts)) == 0
    parts.close()
    engine.dispose()


def test_round_trip_in_real_time_through_serve(tmp_path: Path, sqlite_url: str, make_sim):
    kd, sf = systems(make_sim)
    cfg_path = write_project(tmp_path / "p", CONFIG.format(kd=kd.url, sf=sf.url, auth=SF_AUTH, secret=SECRET),
                             sqlite_url)
    cfg = load_config(str(cfg_path))
    engine, parts = make_engine(cfg.store.url), Parts(cfg)
    run_stream(engine, parts, "erp", "customer")               # the initial load, as a scheduler would
    push(engine, parts)                                        # (the CRM not read yet: its creates wait)
    run_stream(engine, parts, "crm", "customer")
    push(engine, parts)
    run_stream(engine, parts, "crm", "customer")               # what the CRM filled in on the new accounts
    push(engine, parts)
    erp = parts.connector("erp")
    spec = parts.stream_spec("erp", "customer", None)

    def erp_record(code: str) -> dict:
        """The record as a K3Cloud plugin would post it: exactly what a read gives."""
        for batch in erp.read(spec, None):
            for r in batch.records:
                if r["FNumber"] == code:
                    return r
        raise AssertionError(code)

    def outbound_message(account_id: str) -> bytes:
        return envelope(sf.sim.org_id, "Account", [sf.sim.get("Account", account_id)])

    with Served(cfg_path) as s:
        # ERP -> Triad -> CRM with no sync run (latency: benchmarks/realtime_latency.py)
        rec = edit_in_erp(kd, 1, FName="云图科技股份有限公司", FCreditAmount=123000.0)
        body, headers = signed({"entity": "customer", "records": [erp_record(rec["FNumber"])],
                                "event_id": f"kd-{rec['FModifyDate']}"})
        assert s.post("erp", body, headers).status_code == 202
        account = wait_for(lambda: (a := account_of(sf, rec["FNumber"]))["Name"] == "云图科技股份有限公司" and a,
                           10.0, "the ERP change to reach the CRM without a sync run")
        # the CRM's outbound message for our own write: recognised as an echo
        wait_for(lambda: rows(engine, "select count(*) n from outbox where status = 'pending'")[0].n == 0, 2,
                 "the push to settle")
        before = ledger(engine)
        r = s.post("crm", outbound_message(account["Id"]), {"Content-Type": "text/xml"}, params={"token": "om-token"})
        assert r.status_code == 200 and b"<Ack>true</Ack>" in r.content
        wait_for(lambda: rows(engine, "select count(*) n from inbox where status = 'pending'")[0].n == 0, 2,
                 "the echo to be processed")
        assert ledger(engine) == before

        # CRM -> Triad -> ERP, and the ERP's echo changes nothing either
        sf.sim.edit("Account", account["Id"], {"Phone": "+86 10 8888 0199"})
        r = s.post("crm", outbound_message(account["Id"]), {"Content-Type": "text/xml"}, params={"token": "om-token"})
        assert r.status_code == 200
        erp_row = wait_for(lambda: (x := next(c for c in kd.sim.state.data["forms"]["BD_Customer"]
                                              if c["FNumber"] == rec["FNumber"]))["FTEL"] == "+861088880199" and x,
                           10.0, "the CRM change to reach the ERP without a sync run")
        wait_for(lambda: rows(engine, "select count(*) n from outbox where status = 'pending'")[0].n == 0, 2,
                 "the push to settle")
        before = ledger(engine)
        body, headers = signed({"entity": "customer", "records": [erp_record(erp_row["FNumber"])],
                                "event_id": f"kd-{erp_row['FModifyDate']}"})
        assert s.post("erp", body, headers).status_code == 202
        wait_for(lambda: rows(engine, "select count(*) n from inbox where status = 'pending'")[0].n == 0, 2,
                 "the ERP echo to be processed")
        assert ledger(engine) == before
        assert rows(engine, "select count(*) n from inbox where status = 'error'")[0].n == 0
    parts.close()
    engine.dispose()
