"""The seeded data set of the YonBIP simulator: customers (merchant), sales orders, receipts.

Field names PROTOCOLS 4.3 / 4.4 document are used as given (``id``, ``code``,
``name.simplifiedName``, ``createOrgCode``, ``pubts``, ``vouchdate``,
``agentId``, ``agentId_name``, ``orderPrices!currency``, ``lineno``,
``productId``, ``qty``, ``oriTaxUnitPrice``, ``oriSum``,
``orderDetailPrices!natMoney``, ``statusCode``). The others are [unverified]:
contact fields of the merchant, ``<ref>!code`` reference codes in list rows,
``orderDetailId``, and the whole receipt (collection) record.
Timestamps are local Asia/Shanghai ``yyyy-MM-dd HH:mm:ss``.
"""
from __future__ import annotations

import random
from datetime import datetime
from typing import Any

from connectors import simdata_cn as cn_data

FMT = "%Y-%m-%d %H:%M:%S"
ORG = {"id": "2394702850162944", "code": "global00", "name": "企业账号级"}
TRANS_TYPE = {"id": "2394702850162950", "code": "SO01", "name": "普通销售"}
# statusCode -> nextStatusName [unverified values]
ORDER_STATUSES = {"CONFIRMORDER": "待确认", "DELIVERGOODS": "待发货", "TAKEDELIVERY": "待收货",
                  "ENDORDER": "已完成", "OPPOSE": "已取消"}
SETTLE_MODES = ("银行转账", "现金", "银行承兑汇票")
CURRENCIES = {"CNY": "人民币", "USD": "美元", "HKD": "港币", "EUR": "欧元"}


def stamp(value: datetime) -> str:
    """YonBIP's local timestamp text, ``yyyy-MM-dd HH:mm:ss``."""
    return value.strftime(FMT)


def merchant(rng: random.Random, index: int, ident: int, created: datetime, modified: datetime) -> dict[str, Any]:
    """One generated customer (merchant) record."""
    co = cn_data.company(rng, index)
    return {
        "id": ident, "code": f"C{index + 1:05d}", "name": {"simplifiedName": co.name},
        "createOrgId": ORG["id"], "createOrgCode": ORG["code"], "belongOrgId": ORG["id"], "belongOrgCode": ORG["code"],
        "transTypeId": "2394702850162960", "transTypeCode": "KH01",
        "customerClassId": "2394702850162970", "customerClassCode": "01",
        "taxPayingCategories": 0, "creditCode": co.tax_id, "contactTel": co.phone, "email": co.email,
        "countryCode": "CN", "province": co.province, "city": co.city.name, "address": co.address,
        "zipCode": co.city.postal, "currencyCode": "CNY", "stopstatus": rng.random() < 0.05,
        "createTime": stamp(created), "pubts": stamp(modified)}


def generate(seed: int, records: int) -> dict[str, Any]:
    """Merchants, products, sales orders (header + lines) and receipts for ``seed``."""
    rng = random.Random(seed + 1000003)
    start, end = datetime(2026, 1, 1, 8, 0), datetime(2026, 10, 31, 18, 0)
    next_id = 2394702850200000

    def new_id() -> int:
        nonlocal next_id
        next_id += rng.randint(1, 97)
        return next_id

    def times() -> tuple[datetime, datetime]:
        created = cn_data.timestamp_between(rng, start, end).replace(microsecond=0)
        return created, cn_data.timestamp_between(rng, created, end).replace(microsecond=0)

    merchants = []
    for i in range(records):
        created, modified = times()
        merchants.append(merchant(rng, i, new_id(), created, modified))
    products = [{"id": new_id(), "code": f"P{i + 1:05d}", "name": name, "price": price}
                for i, (name, _unit, price) in enumerate(cn_data.PRODUCTS)]
    orders = []
    for i in range(records):
        cust = rng.choice(merchants)
        created, modified = times()
        lines, total = [], 0.0
        for n in range(1, rng.randint(1, 4) + 1):
            prod = rng.choice(products)
            qty = float(rng.randint(1, 40))
            amount = round(qty * prod["price"], 2)
            total += amount
            lines.append({"id": new_id(), "lineno": n * 10, "productId": prod["id"], "productId!code": prod["code"],
                          "productId_name": prod["name"], "qty": qty, "oriTaxUnitPrice": prod["price"],
                          "oriSum": amount, "orderDetailPrices!natMoney": amount, "taxRate": 13.0})
        status = rng.choices(list(ORDER_STATUSES), [10, 40, 20, 25, 5])[0]
        orders.append({
            "id": new_id(), "code": f"SO{created:%Y%m%d}{i + 1:04d}",
            "vouchdate": created.strftime("%Y-%m-%d 00:00:00"),
            "agentId": cust["id"], "agentId!code": cust["code"], "agentId_name": cust["name"]["simplifiedName"],
            "invoiceAgentId": cust["id"], "salesOrgId": ORG["id"], "salesOrgId!code": ORG["code"],
            "salesOrgId_name": ORG["name"], "settlementOrgId": ORG["id"], "transactionTypeId": TRANS_TYPE["id"],
            "transactionTypeId!code": TRANS_TYPE["code"], "orderPrices!currency": "CNY",
            "payMoney": round(total, 2), "statusCode": status, "nextStatusName": ORDER_STATUSES[status],
            "memo": "", "createTime": stamp(created), "pubts": stamp(modified), "orderDetails": lines})
    receipts = []
    for i in range(max(1, records // 2)):
        order = rng.choice(orders)
        created, modified = times()
        amount = round(order["payMoney"] * rng.choice([1.0, 1.0, 0.5]), 2)
        receipts.append({
            "id": new_id(), "code": f"SK{created:%Y%m%d}{i + 1:04d}", "billDate": created.strftime("%Y-%m-%d 00:00:00"),
            "customer": order["agentId"], "customer!code": order["agentId!code"],
            "customer_name": order["agentId_name"],
            "oriSum": amount, "natSum": amount, "currency!code": "CNY", "settleMode_name": rng.choice(SETTLE_MODES),
            "srcBillNo": order["code"], "verifyState": rng.choice([0, 1, 2]),
            "description": f"收{order['agentId_name'][:6]}货款", "pubts": stamp(modified)})
    return {"merchants": merchants, "products": products, "orders": orders, "receipts": receipts,
            "next_id": next_id + 1000, "idempotency": {}}
