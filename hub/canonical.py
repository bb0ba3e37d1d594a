"""The canonical model as data: entities, their fields and types (SPEC section 2).

The store's tables (hub/models.py), the mapping engine, validation suites and
the CLI all read this one catalogue, so a field is declared once.
"""
from __future__ import annotations

from dataclasses import dataclass

# type names shared with mappings: string, int, decimal, bool, date, datetime (+ list for order lines)


@dataclass(frozen=True)
class EntityDef:
    name: str
    table: str
    fields: dict[str, str]                 # canonical field -> type
    refs: dict[str, str]                   # field -> referenced entity
    natural_key: str                       # the business number stewards search by
    enums: dict[str, tuple[str, ...]]


ORDER_LINE_FIELDS: dict[str, str] = {
    "line_no": "int", "sku": "string", "description": "string",
    "quantity": "decimal", "unit_price": "decimal", "amount": "decimal",
}

ENTITIES: dict[str, EntityDef] = {
    "customer": EntityDef(
        name="customer", table="customer", natural_key="code",
        fields={
            "code": "string", "name": "string", "customer_type": "string", "tax_id": "string",
            "email": "string", "phone": "string", "country": "string", "province": "string",
            "city": "string", "address": "string", "postal_code": "string", "currency": "string",
            "credit_limit": "decimal", "payment_terms": "string", "status": "string",
            "tier": "string", "owner": "string", "created_at": "datetime",
        },
        refs={},
        enums={"customer_type": ("company", "person"), "status": ("active", "inactive", "blocked")},
    ),
    "order": EntityDef(
        name="order", table="order", natural_key="order_no",
        fields={
            "order_no": "string", "customer_id": "string", "contract_id": "string",
            "order_date": "date", "status": "string", "currency": "string",
            "total_amount": "decimal", "tax_amount": "decimal", "shipping_status": "string",
            "tracking_no": "string", "opportunity_id": "string", "satisfaction_score": "int", "lines": "list",
        },
        refs={"customer_id": "customer", "contract_id": "contract", "opportunity_id": "opportunity"},
        enums={"status": ("draft", "confirmed", "shipped", "delivered", "cancelled", "closed")},
    ),
    # a CRM deal before it becomes an order (an extension of SPEC section 2 for the lead-to-order flow)
    "opportunity": EntityDef(
        name="opportunity", table="opportunity", natural_key="opportunity_no",
        fields={
            "opportunity_no": "string", "customer_id": "string", "name": "string", "stage": "string",
            "amount": "decimal", "currency": "string", "close_date": "date", "owner": "string",
            "lost_reason": "string", "approval_id": "string",
        },
        refs={"customer_id": "customer", "approval_id": "approval"},
        enums={"stage": ("prospecting", "qualification", "proposal", "negotiation", "closed_won", "closed_lost")},
    ),
    "contract": EntityDef(
        name="contract", table="contract", natural_key="contract_no",
        fields={
            "contract_no": "string", "customer_id": "string", "title": "string", "status": "string",
            "start_date": "date", "end_date": "date", "total_value": "decimal", "currency": "string",
            "signed_date": "date", "approval_id": "string",
        },
        refs={"customer_id": "customer", "approval_id": "approval"},
        enums={"status": ("draft", "pending_approval", "active", "expired", "terminated")},
    ),
    "payment": EntityDef(
        name="payment", table="payment", natural_key="payment_no",
        fields={
            "payment_no": "string", "customer_id": "string", "order_id": "string",
            "contract_id": "string", "amount": "decimal", "currency": "string",
            "paid_at": "datetime", "method": "string", "status": "string", "reference": "string",
        },
        refs={"customer_id": "customer", "order_id": "order", "contract_id": "contract"},
        enums={"status": ("pending", "received", "reconciled", "refunded")},
    ),
    "approval": EntityDef(
        name="approval", table="approval", natural_key="approval_no",
        fields={
            "approval_no": "string", "kind": "string", "subject_entity": "string",
            "subject_id": "string", "status": "string", "applicant": "string", "approver": "string",
            "amount": "decimal", "currency": "string", "submitted_at": "datetime",
            "decided_at": "datetime", "comment": "string", "score": "int",
        },
        refs={},
        enums={"status": ("pending", "approved", "rejected", "cancelled")},
    ),
}

TYPES = ("string", "int", "decimal", "bool", "date", "datetime")

# (precision, scale) of the store's decimal columns (hub/models.py Money and Quantity): mapped values are
# rounded and bounded to these, so SQLite and PostgreSQL keep the same number
MONEY_DIGITS = (18, 2)
QUANTITY_DIGITS = (18, 4)
_QUANTITY_FIELDS = frozenset({("order", "lines.quantity")})


def decimal_digits(entity_name: str, field_path: str) -> tuple[int, int]:
    """(precision, scale) of the column a decimal field is stored in; an order line's field is
    named with its list field (``lines.quantity``). Every decimal field but a line's quantity is money."""
    return QUANTITY_DIGITS if (entity_name, field_path) in _QUANTITY_FIELDS else MONEY_DIGITS


def entity(name: str) -> EntityDef:
    from hub.errors import UsageError
    try:
        return ENTITIES[name]
    except KeyError:
        raise UsageError(f"unknown entity '{name}'; known: {', '.join(ENTITIES)}") from None
