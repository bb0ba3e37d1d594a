"""Business APIs of the YonBIP simulator (PROTOCOLS 4.3, 4.4): customers, sales orders, receipts.

Each handler takes the data set and the request and returns the response
envelope ``{"code": "200", "message", "data"}``, or raises :class:`ApiError`
for a ``{"code": "999", ...}`` business failure. A list envelope shares objects
with the data set: the simulator serializes it before releasing the state lock. Creates carrying a
``resubmitCheckKey`` are idempotent: the same key returns the stored result
and makes no second record.
"""
from __future__ import annotations

import copy
import math
from datetime import datetime
from typing import Any, Callable

from connectors.yonyou.sim_data import CURRENCIES, ORDER_STATUSES, ORG, TRANS_TYPE, stamp

OK_MESSAGE = "操作成功"
MAX_PAGE_SIZE = 5000
MERCHANT_FIELDS = ("creditCode", "contactTel", "email", "countryCode", "province", "city", "address", "zipCode",
                   "currencyCode", "stopstatus", "customerClassCode", "taxPayingCategories")
ORDER_HEADER_FIELDS = ("vouchdate", "payMoney", "orderPrices!currency", "memo")
# the language key of the multilingual name each write API documents (PROTOCOLS 4.3); lists answer simplifiedName
INSERT_NAME_KEY, BATCH_NAME_KEY = "simplifiedName", "zh_CN"
LINE_FIELDS = ("lineno", "qty", "oriTaxUnitPrice", "oriSum", "orderDetailPrices!natMoney", "taxRate")


class ApiError(Exception):
    """A business failure answered as ``{"code": code, "message": message}``."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def ok(data: Any) -> dict[str, Any]:
    """The success envelope."""
    return {"code": "200", "message": OK_MESSAGE, "data": data}


def _new_id(data: dict[str, Any]) -> int:
    data["next_id"] += 17
    return data["next_id"]


def _page(body: dict[str, Any], default_size: int = 500) -> tuple[int, int]:
    try:
        index, size = int(body.get("pageIndex") or 1), int(body.get("pageSize") or default_size)
    except (TypeError, ValueError):
        raise ApiError("999", "pageIndex、pageSize 必须为整数") from None
    if size > MAX_PAGE_SIZE or size < 1 or index < 1:
        raise ApiError("999", f"pageSize 取值范围为 1-{MAX_PAGE_SIZE}，pageIndex 从 1 开始")
    return index, size


def _idempotent(data: dict[str, Any], kind: str, item: dict[str, Any]) -> tuple[str | None, Any]:
    key = item.get("resubmitCheckKey")
    if key in (None, ""):
        return None, None
    if len(str(key)) > 32:
        raise ApiError("999", "resubmitCheckKey 长度不能超过32位")
    return f"{kind}:{key}", copy.deepcopy(data["idempotency"].get(f"{kind}:{key}"))


# -- customers (merchant) ---------------------------------------------------------------

def merchant_list(data: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
    """``data`` is a bare array, no total; ``pubts`` means changed at or after."""
    index, size = _page(body)
    rows = data["merchants"]
    if body.get("code"):
        rows = [r for r in rows if r["code"] == body["code"]]
    for key in ("name", "fuzzyName"):
        if body.get(key):
            rows = [r for r in rows if str(body[key]) in r["name"]["simplifiedName"]]
    if body.get("creditCode"):
        rows = [r for r in rows if r.get("creditCode") == body["creditCode"]]
    if body.get("pubts"):
        rows = [r for r in rows if r["pubts"] >= str(body["pubts"])]
    if body.get("beganTime"):
        rows = [r for r in rows if r["pubts"] >= str(body["beganTime"])]
    if body.get("endTime"):
        rows = [r for r in rows if r["pubts"] <= str(body["endTime"])]
    rows = sorted(rows, key=lambda r: r["id"])
    return ok(rows[(index - 1) * size:index * size])


def _name_of(item: dict[str, Any], language: str) -> str | None:
    """The customer name under the language key the called API reads; None when ``item`` names none.

    Raises:
        ApiError: the name comes in another form (the other API's key, a bare string): the
            gateway does not read it, so a create would be nameless and an update would lose it
            (refused here, per record; the vendor's own message for it is [unverified]).
    """
    if "name" not in item:
        return None
    value = item["name"]
    if not isinstance(value, dict) or language not in value:
        raise ApiError("0", f'客户名称格式不正确，应为 {{"{language}": "..."}}')
    return str(value[language] or "")


def _apply_merchant(rec: dict[str, Any], item: dict[str, Any], name: str | None) -> None:
    if name is not None:
        rec["name"] = {"simplifiedName": name}
    for key in MERCHANT_FIELDS:
        if key in item:
            rec[key] = item[key]


def _create_merchant(data: dict[str, Any], item: dict[str, Any], now: datetime, language: str) -> dict[str, Any]:
    name = _name_of(item, language)
    if not name:
        raise ApiError("0", "客户名称不能为空!")
    if not (item.get("createOrgCode") or item.get("createOrgId")):
        raise ApiError("0", "管理组织不能为空!")
    if item.get("createOrgCode") not in (None, ORG["code"]) or item.get("createOrgId") not in (None, ORG["id"]):
        raise ApiError("0", f"管理组织[{item.get('createOrgCode') or item.get('createOrgId')}]不存在!")
    taken = {m["code"] for m in data["merchants"]}
    code = str(item.get("code") or "")
    serial = len(taken) + 1
    while not code or (not item.get("code") and code in taken):   # 编码规则: next free number
        code, serial = f"C{serial:05d}", serial + 1
    if item.get("code") and code in taken:
        raise ApiError("0", f"客户编码[{code}]已存在!")
    rec = {"id": _new_id(data), "code": code, "name": {}, "createOrgId": ORG["id"], "createOrgCode": ORG["code"],
           "belongOrgId": ORG["id"], "belongOrgCode": ORG["code"], "transTypeId": "2394702850162960",
           "transTypeCode": "KH01", "customerClassId": "2394702850162970", "customerClassCode": "01",
           "taxPayingCategories": 0, "creditCode": "", "contactTel": "", "email": "", "countryCode": "CN",
           "province": "", "city": "", "address": "", "zipCode": "", "currencyCode": "CNY", "stopstatus": False,
           "createTime": stamp(now), "pubts": stamp(now)}
    _apply_merchant(rec, item, name)
    data["merchants"].append(rec)
    return rec


def merchant_insert(data: dict[str, Any], body: dict[str, Any], now: datetime) -> dict[str, Any]:
    """MDD idempotent create; failures answer ``{"message", "code": 0, "data": null}`` (PROTOCOLS 4.3).

    The name is ``{"simplifiedName": ...}`` here.
    """
    item = body.get("data")
    if not isinstance(item, dict):
        raise ApiError("999", "data 不能为空")
    key, done = _idempotent(data, "merchant", item)
    if done is not None:
        return done
    try:
        rec = _create_merchant(data, item, now, INSERT_NAME_KEY)
    except ApiError as exc:
        if exc.code == "0":
            return {"message": exc.message, "code": 0, "data": None}
        raise
    result = {"code": "200", "success": True, "message": OK_MESSAGE, "data": [{"id": rec["id"], "code": rec["code"]}]}
    if key:
        data["idempotency"][key] = copy.deepcopy(result)
    return result


def merchant_batch_save(data: dict[str, Any], body: dict[str, Any], now: datetime) -> dict[str, Any]:
    """Insert / Update many; partial failure is still code "200" with ``failCount`` (and ``sucessCount``, sic).

    The name is ``{"zh_CN": ...}`` here (newinsert's ``simplifiedName`` form is refused per record).
    """
    items = body.get("data")
    if not isinstance(items, list) or not items:
        raise ApiError("999", "data 不能为空")
    messages, infos = [], []
    for n, item in enumerate(items, start=1):
        try:
            if not isinstance(item, dict):
                raise ApiError("0", "数据格式不正确")
            if item.get("_status", "Insert") == "Update":
                rec = next((m for m in data["merchants"] if str(m["id"]) == str(item.get("id"))
                            or (not item.get("id") and m["code"] == item.get("code"))), None)
                if rec is None:
                    raise ApiError("0", f"客户[{item.get('id') or item.get('code')}]不存在")
                name = _name_of(item, BATCH_NAME_KEY)
                if name == "":
                    raise ApiError("0", "客户名称不能为空!")
                if item.get("code") and item["code"] != rec["code"] and any(
                        m["code"] == item["code"] for m in data["merchants"]):
                    raise ApiError("0", f"客户编码[{item['code']}]已存在!")
                _apply_merchant(rec, item, name)
                rec["code"] = item.get("code") or rec["code"]
                rec["pubts"] = stamp(now)
            else:
                rec = _create_merchant(data, item, now, BATCH_NAME_KEY)
            infos.append({"id": rec["id"], "code": rec["code"]})
        except ApiError as exc:
            messages.append(f"第{n}条数据：{exc.message}")
    return ok({"count": len(items), "sucessCount": len(infos), "failCount": len(items) - len(infos),
               "messages": messages, "infos": infos})


# -- list queries shared by orders and receipts ------------------------------------------

def _match(row: dict[str, Any], vo: dict[str, Any]) -> bool:
    field, op = vo.get("field"), str(vo.get("op", "eq")).lower()
    value, v1, v2 = row.get(field), vo.get("value1"), vo.get("value2")

    def cmp(a: Any, b: Any) -> int:
        try:
            fa, fb = float(a), float(b)
            return (fa > fb) - (fa < fb)
        except (TypeError, ValueError):
            sa, sb = str(a), str(b)
            return (sa > sb) - (sa < sb)

    if value is None:
        return op == "neq"
    checks = {"eq": lambda: cmp(value, v1) == 0, "neq": lambda: cmp(value, v1) != 0, "gt": lambda: cmp(value, v1) > 0,
              "egt": lambda: cmp(value, v1) >= 0, "lt": lambda: cmp(value, v1) < 0, "elt": lambda: cmp(value, v1) <= 0,
              "between": lambda: cmp(value, v1) >= 0 and cmp(value, v2) <= 0,
              "in": lambda: str(value) in {str(v) for v in (v1 if isinstance(v1, list) else str(v1).split(","))},
              "like": lambda: str(v1).strip("%") in str(value)}
    if op not in checks:
        raise ApiError("999", f"不支持的查询操作符: {op}")
    return checks[op]()


def _list(units: list[dict[str, Any]], body: dict[str, Any], date_field: str, date_shortcuts: tuple[str, ...],
          expand: Callable[[dict[str, Any]], list[dict[str, Any]]] | None = None,
          line_keys: frozenset[str] = frozenset()) -> dict[str, Any]:
    """Filter, sort and page a list; ``expand`` turns a unit (an order) into its rows (one per line).

    Filters and sorts on header fields work on whole units and only the page is expanded;
    one on a line field expands everything first.
    """
    index, size = _page(body)
    vos = body.get("simpleVOs") or []
    orders = body.get("queryOrders") or [{"field": "id", "order": "asc"}]
    if expand is not None and any(spec.get("field") in line_keys for spec in [*vos, *orders]):
        units, expand = [row for unit in units for row in expand(unit)], None
    for vo in vos:
        units = [u for u in units if _match(u, vo)]
    for prefix in date_shortcuts:
        begin, end = body.get(f"open_{prefix}_begin"), body.get(f"open_{prefix}_end")
        if begin:
            units = [u for u in units if str(u.get(date_field, "")) >= str(begin)]
        if end:
            units = [u for u in units if str(u.get(date_field, "")) <= str(end)]
    for key in ("code", "nextStatusName"):
        if body.get(key):
            units = [u for u in units if u.get(key) == body[key]]
    for spec in reversed(orders):
        field = spec.get("field")
        units = sorted(units, key=lambda u: (u.get(field) is None, u.get(field) if u.get(field) is not None else 0),
                       reverse=str(spec.get("order", "asc")).lower() == "desc")
    first, last = (index - 1) * size, index * size
    if expand is None:
        count, page = len(units), units[first:last]
    else:
        count, page = 0, []
        for unit in units:
            width = max(1, len(unit.get("orderDetails") or []))
            if count + width > first and count < last:
                page += expand(unit)[max(0, first - count):last - count]
            count += width
    return ok({"pageIndex": index, "pageSize": size, "recordCount": count, "pageCount": math.ceil(count / size),
               "recordList": page})


def _order_rows(order: dict[str, Any], with_lines: bool) -> list[dict[str, Any]]:
    header = {k: v for k, v in order.items() if k != "orderDetails"}
    if not with_lines or not order["orderDetails"]:
        return [header]
    rows = []
    for line in order["orderDetails"]:
        row = dict(header)
        row.update({("orderDetailId" if k == "id" else k): v for k, v in line.items()})
        rows.append(row)
    return rows


LINE_KEYS = frozenset({"orderDetailId", "lineno", "productId", "productId!code", "productId_name", "qty",
                       "oriTaxUnitPrice", "oriSum", "orderDetailPrices!natMoney", "taxRate"})


def order_list(data: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
    """``data.recordList``: with ``isSum`` false one row per order line (header + line, flattened)."""
    if body.get("isSum", False):
        return _list([_order_rows(o, False)[0] for o in data["orders"]], body, "vouchdate", ("vouchdate", "orderDate"))
    return _list(data["orders"], body, "vouchdate", ("vouchdate", "orderDate"),
                 expand=lambda order: _order_rows(order, True), line_keys=LINE_KEYS)


def receipt_list(data: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
    """Receipts (收款单) [unverified API]: same envelope as the order list."""
    return _list(list(data["receipts"]), body, "billDate", ("billDate",))


def order_detail(data: dict[str, Any], query: dict[str, str]) -> dict[str, Any]:
    """``GET detail?id=``: one order with its ``orderDetails``."""
    order = next((o for o in data["orders"] if str(o["id"]) == str(query.get("id"))), None)
    if order is None:
        raise ApiError("999", f"销售订单[{query.get('id')}]不存在")
    return ok(copy.deepcopy(order))


# -- sales order save -----------------------------------------------------------------------

def _ref(item: dict[str, Any], field: str, rows: list[dict[str, Any]], label: str) -> dict[str, Any] | None:
    """A reference given as id or code under ``field``, or as code under ``field!code``."""
    value = item.get(f"{field}!code", item.get(field))
    if value in (None, ""):
        return None
    found = next((r for r in rows if str(r["id"]) == str(value) or r["code"] == str(value)), None)
    if found is None:
        raise ApiError("999", f"{label}[{value}]不存在")
    return found


def _apply_lines(data: dict[str, Any], order: dict[str, Any], details: list[Any]) -> None:
    lines = {str(line["id"]): line for line in order["orderDetails"]}
    for n, item in enumerate(details, start=1):
        if not isinstance(item, dict):
            raise ApiError("999", f"表体第{n}行数据格式不正确")
        status = item.get("_status", "Insert")
        if status in ("Update", "Delete"):
            line = lines.get(str(item.get("id")))
            if line is None:
                raise ApiError("999", f"表体第{n}行[{item.get('id')}]不存在")
            if status == "Delete":
                order["orderDetails"].remove(line)
                continue
        else:
            line = {"id": _new_id(data), "lineno": max([l["lineno"] for l in order["orderDetails"]] + [0]) + 10,
                    "taxRate": 13.0}
        product = _ref(item, "productId", data["products"], "物料")
        if product is None and status == "Insert":
            raise ApiError("999", f"表体第{n}行物料不能为空")
        if product is not None:
            line.update({"productId": product["id"], "productId!code": product["code"],
                         "productId_name": product["name"]})
        for key in LINE_FIELDS:
            if key in item:
                line[key] = item[key]
        try:
            qty, price = float(line.get("qty") or 0), float(line.get("oriTaxUnitPrice") or 0)
        except (TypeError, ValueError):
            raise ApiError("999", f"表体第{n}行数量或单价不是数字") from None
        if qty <= 0:
            raise ApiError("999", f"表体第{n}行数量必须大于0")
        line["qty"], line["oriTaxUnitPrice"] = qty, price
        line["oriSum"] = round(qty * price, 2) if "oriSum" not in item else float(item["oriSum"])
        line["orderDetailPrices!natMoney"] = line["oriSum"]
        if status == "Insert":
            order["orderDetails"].append(line)


def order_save(data: dict[str, Any], body: dict[str, Any], now: datetime) -> dict[str, Any]:
    """``singleSave``: ``_status`` Insert or Update; flat keys with ``!`` address sub-objects."""
    item = body.get("data")
    if not isinstance(item, dict):
        raise ApiError("999", "data 不能为空")
    key, done = _idempotent(data, "order", item)
    if done is not None:
        return done
    inserting = item.get("_status", "Insert") != "Update"
    if inserting:
        order: dict[str, Any] = {"id": None, "orderDetails": [], "memo": "", "statusCode": "CONFIRMORDER",
                                 "nextStatusName": ORDER_STATUSES["CONFIRMORDER"], "createTime": stamp(now)}
    else:
        current = next((o for o in data["orders"] if str(o["id"]) == str(item.get("id"))), None)
        if current is None:
            raise ApiError("999", f"销售订单[{item.get('id')}]不存在")
        order = copy.deepcopy(current)
    agent = _ref(item, "agentId", data["merchants"], "客户")
    if agent is not None:
        order.update({"agentId": agent["id"], "agentId!code": agent["code"],
                      "agentId_name": agent["name"]["simplifiedName"], "invoiceAgentId": agent["id"]})
    org = _ref(item, "salesOrgId", [ORG], "销售组织")
    if org is not None:
        order.update({"salesOrgId": org["id"], "salesOrgId!code": org["code"], "salesOrgId_name": org["name"],
                      "settlementOrgId": org["id"]})
    ttype = _ref(item, "transactionTypeId", [TRANS_TYPE], "交易类型") or (TRANS_TYPE if inserting else None)
    if ttype is not None:
        order.update({"transactionTypeId": ttype["id"], "transactionTypeId!code": ttype["code"]})
    for field in ORDER_HEADER_FIELDS:
        if field in item:
            order[field] = item[field]
    if order.get("orderPrices!currency", "CNY") not in CURRENCIES:
        raise ApiError("999", f"币种[{order['orderPrices!currency']}]不存在")
    order.setdefault("orderPrices!currency", "CNY")
    for field, label in (("agentId", "客户"), ("salesOrgId", "销售组织"), ("vouchdate", "单据日期")):
        if not order.get(field):
            raise ApiError("999", f"{label}不能为空")
    _apply_lines(data, order, item.get("orderDetails") or [])
    if not order["orderDetails"]:
        raise ApiError("999", "订单表体不能为空")
    order["payMoney"] = round(sum(l["oriSum"] for l in order["orderDetails"]), 2)
    if item.get("code"):
        if any(o["code"] == item["code"] and o["id"] != order["id"] for o in data["orders"]):
            raise ApiError("999", f"单据编号[{item['code']}]已存在")
        order["code"] = item["code"]
    elif inserting:
        order["code"] = f"SO{now:%Y%m%d}{len(data['orders']) + 1:04d}"
    order["pubts"] = stamp(now)
    if inserting:
        order["id"] = _new_id(data)
        data["orders"].append(order)
    else:
        data["orders"][next(i for i, o in enumerate(data["orders"]) if o["id"] == order["id"])] = order
    result = ok(copy.deepcopy(order))
    if key:
        data["idempotency"][key] = copy.deepcopy(result)
    return result
