"""The SOQL subset: operators, literals, ordering, limits and child subqueries, checked
against plain Python over the same records."""
from __future__ import annotations

import pytest

from connectors.salesforce.data import generate
from connectors.salesforce.query import Executor, normalize_datetime
from connectors.salesforce.soql import SoqlError, parse


@pytest.fixture(scope="module")
def records() -> dict:
    return generate(11, 80)["objects"]


def run(records, q: str, include_deleted: bool = False) -> list[dict]:
    return Executor(records, "60.0").run(parse(q), include_deleted)[1]


def accounts(records) -> list[dict]:
    return list(records["Account"].values())


def test_comparisons_on_datetimes_numbers_and_text(records) -> None:
    stamp = sorted(a["SystemModstamp"] for a in accounts(records))[40]
    lit = stamp[:19] + "Z"
    got = {r["Id"] for r in run(records, f"SELECT Id FROM Account WHERE SystemModstamp > {lit} AND CreditLimit__c >= 200000")}
    want = {a["Id"] for a in accounts(records)
            if a["SystemModstamp"] > normalize_datetime(lit) and a["CreditLimit__c"] >= 200000}
    assert got == want and got
    offset = run(records, f"SELECT Id FROM Account WHERE SystemModstamp >= {lit[:-1]}+08:00")
    assert len(offset) == sum(a["SystemModstamp"] >= normalize_datetime(lit[:-1] + "+08:00") for a in accounts(records))
    name = accounts(records)[0]["Name"]
    assert [r["Id"] for r in run(records, f"SELECT Id FROM Account WHERE Name = '{name.upper()}'")] == \
        [accounts(records)[0]["Id"]]                                  # text compares case-insensitively


def test_in_like_not_or_and_null(records) -> None:
    got = run(records, "SELECT Id FROM Account WHERE BillingCountry IN ('Germany', 'United Kingdom') "
                       "AND (Tier__c = 'Gold' OR Tier__c = 'Platinum')")
    want = [a for a in accounts(records) if a["BillingCountry"] in ("Germany", "United Kingdom")
            and a["Tier__c"] in ("Gold", "Platinum")]
    assert len(got) == len(want) and want
    assert len(run(records, "SELECT Id FROM Account WHERE Name LIKE '%有限公司'")) == \
        sum(a["Name"].endswith("有限公司") for a in accounts(records))
    assert len(run(records, "SELECT Id FROM Account WHERE NOT Name LIKE '%有限公司'")) == \
        sum(not a["Name"].endswith("有限公司") for a in accounts(records))
    assert len(run(records, "SELECT Id FROM Account WHERE Description = null")) == 80
    assert run(records, "SELECT Id FROM Account WHERE Description != null") == []
    assert len(run(records, "SELECT Id FROM Account WHERE Active__c = false")) == \
        sum(not a["Active__c"] for a in accounts(records))
    assert len(run(records, "SELECT Id FROM Contract WHERE StartDate < 2026-06-01")) == \
        sum(c["StartDate"] < "2026-06-01" for c in records["Contract"].values())


def test_order_by_limit_offset_and_count(records) -> None:
    rows = run(records, "SELECT Name, CreditLimit__c FROM Account ORDER BY CreditLimit__c DESC, Name LIMIT 5 OFFSET 2")
    want = sorted(accounts(records), key=lambda a: a["Name"].casefold())
    want = sorted(want, key=lambda a: a["CreditLimit__c"], reverse=True)[2:7]
    assert [r["Name"] for r in rows] == [a["Name"] for a in want]
    total, none = Executor(records, "60.0").run(parse("SELECT COUNT() FROM Order WHERE Status = 'Draft'"), False)
    assert none == [] and total == sum(o["Status"] == "Draft" for o in records["Order"].values())
    nulls = run(records, "SELECT Id, ContractId FROM Order ORDER BY ContractId NULLS LAST")
    assert nulls[-1]["ContractId"] is None and nulls[0]["ContractId"] is not None


def test_relationship_filters_and_subquery_filters(records) -> None:
    owner = next(iter(records["User"].values()))["Name"]
    got = run(records, f"SELECT Id, Owner.Name FROM Account WHERE Owner.Name = '{owner}'")
    assert got and all(r["Owner"]["Name"] == owner for r in got)
    orders = run(records, "SELECT Id, (SELECT Quantity FROM OrderItems WHERE Quantity > 5 ORDER BY Quantity DESC) "
                          "FROM Order")
    for o in orders:
        kids = o["OrderItems"]
        if kids is not None:
            qs = [k["Quantity"] for k in kids["records"]]
            assert all(q > 5 for q in qs) and qs == sorted(qs, reverse=True) and kids["totalSize"] == len(qs)
    assert any(o["OrderItems"] is None for o in orders)               # no matching children: null, as Salesforce


@pytest.mark.parametrize("q, code", [
    ("SELECT FROM Account", "MALFORMED_QUERY"),
    ("SELECT Id FROM Account WHERE", "MALFORMED_QUERY"),
    ("SELECT Id FROM Account LIMIT x", "MALFORMED_QUERY"),
    ("SELECT Id FROM Account WHERE Name = 'unterminated", "MALFORMED_QUERY"),
    ("SELECT Id FROM Account WHERE CreditLimit__c = '5'", "INVALID_FIELD"),
    ("SELECT Id FROM Account WHERE Name = 5", "INVALID_FIELD"),
    ("SELECT Id FROM Account WHERE Active__c LIKE 'x%'", "INVALID_FIELD"),
    ("SELECT Bogus.Name FROM Account", "INVALID_FIELD"),
    ("SELECT Id, (SELECT Id FROM Nothing) FROM Account", "INVALID_TYPE"),
])
def test_refused_queries(records, q: str, code: str) -> None:
    with pytest.raises(SoqlError) as exc:
        run(records, q)
    assert exc.value.code == code
