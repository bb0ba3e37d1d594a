"""Form metadata and the seeded data set of the Kingdee K3Cloud simulator.

Field keys follow PROTOCOLS 3.6. Keys the public material does not confirm are
marked [unverified]; ``CRM_Contract`` as a whole is unverified. Field keys are
case-insensitive, as on the real server. Base-data references are stored as
``{"Id", "FNumber", "FName"}``; timestamps as local Asia/Shanghai strings
without offset (``2026-03-01T09:30:15.123``).
"""
from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from connectors import simdata_cn as cn_data

FMT_MS = "%Y-%m-%dT%H:%M:%S.%f"


def kd_time(value: datetime) -> str:
    """Kingdee's JSON timestamp: local time, milliseconds, no offset."""
    text = value.strftime(FMT_MS)[:-3]
    return text[:-4] if text.endswith(".000") else text


@dataclass(frozen=True)
class Field:
    """One field key of a form or entry, with its type and Chinese label (for messages)."""

    key: str
    kind: str = "str"            # str | int | decimal | datetime | ref
    label: str = ""
    ref: str | None = None       # lookup table of a base-data reference
    required: bool = False


@dataclass(frozen=True)
class Entry:
    """A bill's entry (单据体): lines with their own primary key."""

    name: str                    # e.g. FSaleOrderEntry
    pk: str                      # entry primary key, queried as "<name>_<pk>"
    fields: tuple[Field, ...]

    def field(self, key: str) -> Field | None:
        low = key.lower()
        return next((f for f in self.fields if f.key.lower() == low), None)


@dataclass(frozen=True)
class Form:
    """A business object (FormId): header fields, entries, numbering, create defaults."""

    form_id: str
    label: str
    pk: str
    number: str                  # the business number (FNumber / FBillNo)
    number_prefix: str
    number_digits: int
    fields: tuple[Field, ...]
    entries: tuple[Entry, ...] = ()
    defaults: dict[str, Any] = field(default_factory=dict)
    subheads: dict[str, tuple[str, ...]] = field(default_factory=dict)   # sub-head -> its field keys (1:1)

    def field(self, key: str) -> Field | None:
        low = key.lower()
        return next((f for f in self.fields if f.key.lower() == low), None)

    def entry(self, name: str) -> Entry | None:
        low = name.lower()
        return next((e for e in self.entries if e.name.lower() == low), None)

    def subhead_of(self, key: str) -> str | None:
        """The sub-head a field lives in (Save takes it there; queries name it bare), or None for the header."""
        low = key.lower()
        return next((name for name, keys in self.subheads.items() if low in (k.lower() for k in keys)), None)


def _f(key: str, kind: str = "str", label: str = "", ref: str | None = None, required: bool = False) -> Field:
    return Field(key, kind, label or key, ref, required)


STATUS_FIELDS = (_f("FDocumentStatus", label="数据状态"), _f("FModifyDate", "datetime", "修改日期"),
                 _f("FCreateDate", "datetime", "创建日期"))
# A tenant's extension field (custom keys start with F_): the text field a tenant adds to hold the
# hub's change id (the connector's change_id_field). Not a standard K3Cloud key.
CHANGE_ID_FIELD = _f("F_TRIAD_ChangeId", label="Triad 变更号")

FORMS: dict[str, Form] = {f.form_id.lower(): f for f in (
    Form("BD_Customer", "客户", "FCUSTID", "FNumber", "CUST", 5, (
        _f("FCUSTID", "int", "客户内码"), _f("FNumber", label="编码"), _f("FName", label="客户名称", required=True),
        _f("FShortName", label="简称"), _f("FCreateOrgId", "ref", "创建组织", "org", required=True),
        _f("FUseOrgId", "ref", "使用组织", "org"), _f("FTEL", label="联系电话"),
        _f("FEMail", label="邮箱"),                                   # [unverified] header e-mail key
        _f("FTAXREGISTERCODE", label="纳税登记号"), _f("FCOUNTRY", "ref", "国家", "country"),
        _f("FPROVINCIAL", "ref", "省份", "province"), _f("FCITY", label="城市"),  # FCITY [unverified]
        _f("FADDRESS", label="通讯地址"), _f("FZIP", label="邮政编码"),
        _f("FTRADINGCURRID", "ref", "结算币别", "currency"),
        _f("FCreditAmount", "decimal", "信用额度"),                     # [unverified]
        _f("FForbidStatus", label="禁用状态"), *STATUS_FIELDS, CHANGE_ID_FIELD),
        defaults={"FDocumentStatus": "A", "FForbidStatus": "A"}),
    Form("SAL_SaleOrder", "销售订单", "FID", "FBillNo", "XSDD", 6, (
        _f("FID", "int", "实体主键"), _f("FBillNo", label="单据编号"), _f("FDate", "datetime", "日期", required=True),
        _f("FBillTypeID", "ref", "单据类型", "billtype"), _f("FCustId", "ref", "客户", "customer", required=True),
        _f("FSaleOrgId", "ref", "销售组织", "org", required=True), _f("FSettleCurrId", "ref", "结算币别", "currency"),
        _f("FBillAllAmount", "decimal", "价税合计"), _f("FBillTaxAmount", "decimal", "税额"),  # FBillTaxAmount [unverified]
        _f("FCloseStatus", label="关闭状态"), _f("FNote", label="备注"), *STATUS_FIELDS, CHANGE_ID_FIELD),
        entries=(Entry("FSaleOrderEntry", "FEntryID", (
            _f("FEntryID", "int", "分录内码"), _f("FSeq", "int", "序号"),       # FSeq [unverified]
            _f("FMaterialId", "ref", "物料编码", "material", required=True), _f("FQty", "decimal", "销售数量"),
            _f("FPrice", "decimal", "单价"), _f("FTaxPrice", "decimal", "含税单价"),
            _f("FTaxRate", "decimal", "税率"), _f("FAllAmount", "decimal", "价税合计"),
            _f("FEntryNote", label="备注"))),),
        defaults={"FDocumentStatus": "A", "FCloseStatus": "A"},
        subheads={"FSaleOrderFinance": ("FSettleCurrId",)}),     # 财务信息 (PROTOCOLS 3.6)
    Form("AR_RECEIVEBILL", "收款单", "FID", "FBILLNO", "SKD", 8, (
        _f("FID", "int", "实体主键"), _f("FBILLNO", label="单据编号"), _f("FDATE", "datetime", "业务日期", required=True),
        _f("FBILLTYPEID", "ref", "单据类型", "billtype"), _f("FCONTACTUNITTYPE", label="往来单位类型"),
        _f("FCONTACTUNIT", "ref", "往来单位", "customer", required=True), _f("FPAYUNITTYPE", label="付款单位类型"),
        _f("FPAYUNIT", "ref", "付款单位", "customer"), _f("FCURRENCYID", "ref", "币别", "currency"),
        _f("FSETTLEORGID", "ref", "结算组织", "org"), _f("FPAYORGID", "ref", "收款组织", "org"),
        _f("FSALEORGID", "ref", "销售组织", "org"), _f("FRECAMOUNTFOR", "decimal", "表头-应收金额"),
        _f("FTHIRDBILLNO", label="第三方单据编号"), _f("FREMARK", label="备注"),
        _f("FDOCUMENTSTATUS", label="单据状态"), _f("FMODIFYDATE", "datetime", "修改日期"),
        _f("FCREATEDATE", "datetime", "创建日期"), CHANGE_ID_FIELD),
        entries=(Entry("FRECEIVEBILLENTRY", "FENTRYID", (
            _f("FENTRYID", "int", "分录内码"), _f("FSETTLETYPEID", "ref", "结算方式", "settletype"),
            _f("FRECAMOUNTFOR_E", "decimal", "应收金额"), _f("FCOMMENT", label="备注"))),),
        defaults={"FDOCUMENTSTATUS": "A", "FCONTACTUNITTYPE": "BD_Customer", "FPAYUNITTYPE": "BD_Customer"}),
    # The sales-contract FormId and all its keys are [unverified] (PROTOCOLS 3.6: not confirmed by any source).
    Form("CRM_Contract", "销售合同", "FID", "FBillNo", "HT", 6, (
        _f("FID", "int", "实体主键"), _f("FBillNo", label="合同编号"), _f("FContractName", label="合同名称", required=True),
        _f("FCustId", "ref", "客户", "customer", required=True), _f("FSaleOrgId", "ref", "销售组织", "org"),
        _f("FDate", "datetime", "签订日期"), _f("FBeginDate", "datetime", "生效日期"),
        _f("FEndDate", "datetime", "失效日期"), _f("FBillAllAmount", "decimal", "合同金额"),
        _f("FSettleCurrId", "ref", "结算币别", "currency"), *STATUS_FIELDS, CHANGE_ID_FIELD),
        defaults={"FDocumentStatus": "A"}),
)}

# Base-data tables referenced by number. Currency numbers PRE001.. follow the standard
# K3Cloud presets [unverified beyond PRE001 = 人民币]; country numbers are ISO codes [unverified].
LOOKUPS: dict[str, list[dict[str, Any]]] = {
    "org": [{"Id": 1, "FNumber": "100", "FName": "总公司"}, {"Id": 100329, "FNumber": "101", "FName": "华东销售公司"}],
    "currency": [{"Id": 1, "FNumber": "PRE001", "FName": "人民币"}, {"Id": 2, "FNumber": "PRE002", "FName": "香港元"},
                 {"Id": 3, "FNumber": "PRE003", "FName": "欧元"}, {"Id": 4, "FNumber": "PRE004", "FName": "日本日圆"},
                 {"Id": 6, "FNumber": "PRE006", "FName": "英镑"}, {"Id": 7, "FNumber": "PRE007", "FName": "美元"}],
    "country": [{"Id": "46a524cf-5797-4e46-bd0a-7203fc426d9c", "FNumber": "CN", "FName": "中国"},
                {"Id": "0f2a3d4e-4b1c-4e59-9d7e-1a2b3c4d5e61", "FNumber": "HK", "FName": "中国香港"},
                {"Id": "1c3d5e7f-2a4b-4c6d-8e0f-2b4c6d8e0a12", "FNumber": "SG", "FName": "新加坡"},
                {"Id": "2d4e6f80-3b5c-4d7e-9f01-3c5d7e9f1b23", "FNumber": "DE", "FName": "德国"},
                {"Id": "3e5f7091-4c6d-4e8f-a012-4d6e8fa02c34", "FNumber": "US", "FName": "美国"}],
    "province": [{"Id": i + 1, "FNumber": code, "FName": name}
                 for i, (code, name) in enumerate(cn_data.PROVINCES.items())],
    "billtype": [{"Id": "eacb50844fc84a10b03d7b841f3a6278", "FNumber": "XSDD01_SYS", "FName": "标准销售订单"},
                 {"Id": "36cf265bd8c3452194ed9c83ec5e0d2d", "FNumber": "SKDLX01_SYS", "FName": "销售收款单"}],
    "settletype": [{"Id": 1, "FNumber": "JSFS01_SYS", "FName": "现金"}, {"Id": 4, "FNumber": "JSFS04_SYS", "FName": "电汇"},
                   {"Id": 5, "FNumber": "JSFS05_SYS", "FName": "银行承兑汇票"}],
}


def generate(seed: int, records: int) -> dict[str, Any]:
    """The simulator's data set for ``seed``: customers, materials, orders, receipts, contracts."""
    rng = random.Random(seed)
    start, end = datetime(2026, 1, 1, 8, 0), datetime(2026, 10, 31, 18, 0)
    data: dict[str, Any] = {"forms": {}, "lookups": {k: list(v) for k, v in LOOKUPS.items()},
                            "next_id": {}, "next_no": {}}
    ref = {name: {row["FNumber"]: row for row in rows} for name, rows in LOOKUPS.items()}

    materials = []
    for i, (name, unit, price) in enumerate(cn_data.PRODUCTS):
        materials.append({"Id": 300001 + i, "FNumber": f"01.02.{i + 1:04d}", "FName": name, "unit": unit,
                          "price": price})
    data["lookups"]["material"] = materials

    def stamps() -> tuple[str, str]:
        created = cn_data.timestamp_between(rng, start, end)
        modified = cn_data.timestamp_between(rng, created, end)
        return kd_time(created), kd_time(modified)

    customers = []
    for i in range(records):
        co = cn_data.company(rng, i)
        created, modified = stamps()
        country = ref["country"]["CN"] if rng.random() < 0.92 else rng.choice(LOOKUPS["country"][1:])
        currency = ref["currency"]["PRE001"] if country["FNumber"] == "CN" else ref["currency"][
            rng.choice(["PRE002", "PRE007", "PRE003"])]
        customers.append({
            "FCUSTID": 100001 + i, "FNumber": f"CUST{i + 1:05d}", "FName": co.name, "FShortName": co.short_name,
            "FCreateOrgId": ref["org"]["100"], "FUseOrgId": ref["org"]["100"], "FTEL": co.phone,
            "FEMail": co.email if rng.random() < 0.8 else "", "FTAXREGISTERCODE": co.tax_id,
            "FCOUNTRY": country, "FPROVINCIAL": ref["province"][co.province_code], "FCITY": co.city.name,
            "FADDRESS": co.address, "FZIP": co.city.postal, "FTRADINGCURRID": currency,
            "FCreditAmount": float(rng.choice([0, 50000, 100000, 200000, 500000, 1000000])),
            "FForbidStatus": "B" if rng.random() < 0.05 else "A",
            "FDocumentStatus": rng.choices(["C", "A", "B"], [90, 7, 3])[0],
            "FModifyDate": modified, "FCreateDate": created})
    data["forms"]["BD_Customer"] = customers

    def cust_ref(c: dict[str, Any]) -> dict[str, Any]:
        return {"Id": c["FCUSTID"], "FNumber": c["FNumber"], "FName": c["FName"]}

    orders, entry_id = [], 200001
    for i in range(records):
        cust = rng.choice(customers)
        created, modified = stamps()
        lines, total, tax = [], 0.0, 0.0
        for seq in range(1, rng.randint(1, 4) + 1):
            mat = rng.choice(materials)
            qty = float(rng.randint(1, 50))
            amount = round(qty * mat["price"], 2)
            total += amount
            tax += amount - amount / 1.13
            lines.append({"FEntryID": entry_id, "FSeq": seq,
                          "FMaterialId": {"Id": mat["Id"], "FNumber": mat["FNumber"], "FName": mat["FName"]},
                          "FQty": qty, "FPrice": round(mat["price"] / 1.13, 6), "FTaxPrice": mat["price"],
                          "FTaxRate": 13.0, "FAllAmount": amount, "FEntryNote": ""})
            entry_id += 1
        orders.append({
            "FID": 100001 + i, "FBillNo": f"XSDD{i + 1:06d}", "FDate": created[:10] + "T00:00:00",
            "FBillTypeID": ref["billtype"]["XSDD01_SYS"], "FCustId": cust_ref(cust), "FSaleOrgId": ref["org"]["100"],
            "FSettleCurrId": cust["FTRADINGCURRID"], "FBillAllAmount": round(total, 2),
            "FBillTaxAmount": round(tax, 2), "FCloseStatus": "B" if rng.random() < 0.1 else "A",
            "FNote": "", "FDocumentStatus": rng.choices(["C", "A", "B", "Z"], [80, 10, 7, 3])[0],
            "FModifyDate": modified, "FCreateDate": created, "FSaleOrderEntry": lines})
    data["forms"]["SAL_SaleOrder"] = orders

    receipts = []
    for i in range(max(1, records // 2)):
        order = rng.choice(orders)
        created, modified = stamps()
        amount = round(order["FBillAllAmount"] * rng.choice([1.0, 1.0, 0.5, 0.3]), 2)
        receipts.append({
            "FID": 100001 + i, "FBILLNO": f"SKD{i + 1:08d}", "FDATE": created[:10] + "T00:00:00",
            "FBILLTYPEID": ref["billtype"]["SKDLX01_SYS"], "FCONTACTUNITTYPE": "BD_Customer",
            "FCONTACTUNIT": order["FCustId"], "FPAYUNITTYPE": "BD_Customer", "FPAYUNIT": order["FCustId"],
            "FCURRENCYID": order["FSettleCurrId"], "FSETTLEORGID": ref["org"]["100"], "FPAYORGID": ref["org"]["100"],
            "FSALEORGID": ref["org"]["100"], "FRECAMOUNTFOR": amount,
            "FTHIRDBILLNO": f"BK{created[:10].replace('-', '')}{rng.randint(0, 99999):05d}",
            "FREMARK": f"收到{order['FCustId']['FName'][:6]}货款（{order['FBillNo']}）",
            "FDOCUMENTSTATUS": rng.choices(["C", "A"], [85, 15])[0], "FMODIFYDATE": modified, "FCREATEDATE": created,
            "FRECEIVEBILLENTRY": [{"FENTRYID": 400001 + i, "FSETTLETYPEID": ref["settletype"][
                rng.choice(["JSFS04_SYS", "JSFS04_SYS", "JSFS01_SYS", "JSFS05_SYS"])],
                "FRECAMOUNTFOR_E": amount, "FCOMMENT": ""}]})
    data["forms"]["AR_RECEIVEBILL"] = receipts

    contracts = []
    for i in range(max(1, records // 4)):
        cust = rng.choice(customers)
        created, modified = stamps()
        year = created[:4]
        contracts.append({
            "FID": 100001 + i, "FBillNo": f"HT{i + 1:06d}", "FContractName": f"{cust['FShortName']}{year}年度供货框架合同",
            "FCustId": cust_ref(cust), "FSaleOrgId": ref["org"]["100"], "FDate": created[:10] + "T00:00:00",
            "FBeginDate": f"{year}-01-01T00:00:00", "FEndDate": f"{year}-12-31T00:00:00",
            "FBillAllAmount": float(rng.choice([100000, 300000, 500000, 1200000])),
            "FSettleCurrId": cust["FTRADINGCURRID"], "FDocumentStatus": rng.choices(["C", "B", "A"], [75, 15, 10])[0],
            "FModifyDate": modified, "FCreateDate": created})
    data["forms"]["CRM_Contract"] = contracts

    data["next_id"] = {"BD_Customer": 100001 + records, "SAL_SaleOrder": 100001 + records,
                       "AR_RECEIVEBILL": 100001 + len(receipts), "CRM_Contract": 100001 + len(contracts),
                       "entry": max(entry_id, 400001 + len(receipts)) + 1000}
    data["next_no"] = {"BD_Customer": records + 1, "SAL_SaleOrder": records + 1,
                       "AR_RECEIVEBILL": len(receipts) + 1, "CRM_Contract": len(contracts) + 1}
    return data


class KdError(Exception):
    """A business error the simulator reports in a ``ResponseStatus`` (HTTP 200)."""

    def __init__(self, msg_code: int, message: str, field_name: str | None = None) -> None:
        super().__init__(message)
        self.msg_code = msg_code
        self.message = message
        self.field_name = field_name


def form_of(form_id: Any) -> Form:
    """The form for a FormId (case-insensitive), or the real server's MsgCode 4 error."""
    form = FORMS.get(str(form_id or "").lower())
    if form is None:
        raise KdError(4, f"标识为“{form_id}”的业务对象不存在，或者被删除")
    return form
