"""Shared fixtures: one Validator per shipped suite for the whole session (building is cheap,
importing great-expectations is not), and good canonical rows per entity."""
from __future__ import annotations

from datetime import date, datetime, timezone
from decimal import Decimal

import pytest

from hub.validation import Validator, load_suite


@pytest.fixture(scope="session")
def validator_for():
    """``validator_for(entity)``: the shipped-suite Validator of ``entity``, built once per session."""
    built: dict[str, Validator] = {}

    def get(entity: str) -> Validator:
        if entity not in built:
            built[entity] = Validator(load_suite(entity))
        return built[entity]

    return get


@pytest.fixture(scope="session")
def good_row():
    """``good_row(entity, n=0)``: a canonical row of ``entity`` that passes the shipped suite."""
    return _good_row


def _good_row(entity: str, n: int = 0) -> dict:
    if entity == "customer":
        return {
            "code": f"C{n:05d}", "name": f"Acme {n}", "customer_type": "company",
            "tax_id": "91310000MA1FL8XX1X", "email": f"buyer{n}@acme.cn", "phone": "+8613800000000",
            "country": "CN", "province": "Shanghai", "city": "Shanghai", "address": "1 Century Ave",
            "postal_code": "200120", "currency": "CNY", "credit_limit": Decimal("1234.50"),
            "payment_terms": "NET30", "status": "active", "tier": "A", "owner": "alice",
            "created_at": datetime(2024, 3, 1, 8, 0, tzinfo=timezone.utc),
        }
    if entity == "order":
        return {
            "order_no": f"SO{n:05d}", "customer_id": "C00001", "contract_id": None,
            "order_date": date(2024, 3, 2), "status": "confirmed", "currency": "CNY",
            "total_amount": Decimal("113.00"), "tax_amount": Decimal("13.00"),
            "shipping_status": None, "tracking_no": None, "opportunity_id": None, "satisfaction_score": 9,
            "lines": [{"line_no": 1, "sku": "SKU-1", "description": "bolt", "quantity": Decimal("10"),
                       "unit_price": Decimal("10.00"), "amount": Decimal("100.00")}],
        }
    if entity == "opportunity":
        return {
            "opportunity_no": f"OPP{n:05d}", "customer_id": "C00001", "name": "Framework 2027",
            "stage": "proposal", "amount": Decimal("120000.00"), "currency": "CNY", "close_date": date(2027, 1, 31),
            "owner": "alice", "lost_reason": None, "approval_id": None,
        }
    if entity == "contract":
        return {
            "contract_no": f"HT{n:05d}", "customer_id": "C00001", "title": "Supply 2024",
            "status": "active", "start_date": date(2024, 1, 1), "end_date": date(2024, 12, 31),
            "total_value": Decimal("50000.00"), "currency": "CNY", "signed_date": date(2023, 12, 20),
            "approval_id": None,
        }
    if entity == "payment":
        return {
            "payment_no": f"PAY{n:05d}", "customer_id": "C00001", "order_id": "SO00001",
            "contract_id": None, "amount": Decimal("113.00"), "currency": "CNY",
            "paid_at": datetime(2024, 3, 5, tzinfo=timezone.utc), "method": "bank_transfer",
            "status": "received", "reference": "BANK-REF-1",
        }
    if entity == "approval":
        return {
            "approval_no": f"AP{n:05d}", "kind": "contract", "subject_entity": "contract",
            "subject_id": "HT00001", "status": "approved", "applicant": "bob", "approver": "alice",
            "amount": Decimal("50000.00"), "currency": "CNY",
            "submitted_at": datetime(2023, 12, 18, tzinfo=timezone.utc),
            "decided_at": datetime(2023, 12, 19, tzinfo=timezone.utc), "comment": "ok", "score": None,
        }
    raise KeyError(entity)
