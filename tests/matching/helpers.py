"""A small hub for identity tests: file connectors erp / crm / legacy, customers matched fuzzily.

Batches go straight through the pipeline (``process_batch``) without the
expectation suite, so the tests stay fast; one test runs the whole sync.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

CONFIG = """
store: {{url: "{url}"}}
connectors:
  erp: {{type: file, path: "{tmp}/erp", direction: both, entities: [customer, order]}}
  crm: {{type: file, path: "{tmp}/crm", direction: both, entities: [customer]}}
  legacy: {{type: file, path: "{tmp}/legacy", direction: in, entities: [customer]}}
survivorship:
  customer: {{default: priority, priority: [erp, crm, legacy]}}
matching:
  customer:
    exact: [tax_id, email]
    fuzzy: {{fields: {{name: 0.6, city: 0.2, phone: 0.2}}, link_at: 0.92, review_at: 0.75}}
"""


@dataclass
class Hub:
    engine: Any
    cfg: Any
    parts: Any

    def feed(self, system: str, rows: list[dict[str, Any]], entity: str = "customer", *, ids: bool = False) -> Any:
        """One batch of raw rows from ``system`` through the pipeline, committed."""
        from hub.pipeline import StreamContext, process_batch
        from hub.sync import _matcher
        from hub.types import new_id, utcnow
        p = self.parts
        ctx = StreamContext(system=system, entity=entity, mapping=p.mapping(system, entity), rules=p.rules(entity),
                            exact_keys=p.exact_keys(entity), out_systems=p.out_systems(entity),
                            delete_targets=p.delete_targets(entity), run_id=new_id(), now=utcnow(),
                            validator=None, matcher=_matcher(p, entity))
        raws = [{"updated_at": "2024-01-01 00:00:00", "type": "company", **r} for r in rows]
        with self.engine.begin() as conn:   # the batch settles its bridge merges itself
            return process_batch(conn, ctx, raws)

    def record_of(self, system: str, source_id: str, entity: str = "customer") -> str | None:
        from sqlalchemy import select

        from hub.models import Xref
        xt = Xref.__table__
        with self.engine.connect() as conn:
            return conn.scalar(select(xt.c.record_id).where(xt.c.entity == entity, xt.c.system == system,
                                                             xt.c.source_id == source_id))

    def candidates(self, status: str = "open") -> list[dict[str, Any]]:
        from sqlalchemy import select

        from hub.models import MatchCandidate
        ct = MatchCandidate.__table__
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(select(ct).where(ct.c.status == status)).mappings()]


def make_hub(url: str, tmp: Path, config: str = CONFIG) -> Hub:
    from hub.config import parse_config
    from hub.store import make_engine, upgrade
    from hub.streams import Parts
    for d in ("erp", "crm", "legacy"):
        (tmp / d).mkdir(exist_ok=True)
    cfg = parse_config(config.format(url=url, tmp=tmp), str(tmp / "triad.yaml"), env_override=False)
    engine = make_engine(url)
    upgrade(engine)
    return Hub(engine, cfg, Parts(cfg))
