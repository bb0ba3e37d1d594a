"""The K3Cloud forms the connector knows: key, business number, modify date, default
FieldKeys, entries, references, create defaults and sub-heads of each (PROTOCOLS 3.6).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from connectors.kingdee.writing import ci_key
from hub.connector import StreamSpec
from hub.errors import ConfigError

MAX_LIMIT = 2000            # rows per ExecuteBillQuery page, the most K3Cloud returns


@dataclass(frozen=True)
class FormInfo:
    """What the connector knows about a form: data, not code (STYLE.md 1)."""

    key: str
    number: str
    updated: str
    fields: tuple[str, ...]                                  # default header FieldKeys
    entries: dict[str, tuple[str, ...]] = field(default_factory=dict)   # entry -> fields, entry id first
    refs: dict[str, str] = field(default_factory=dict)       # reference field -> referenced FormId
    defaults: dict[str, Any] = field(default_factory=dict)   # what a create needs ("{org}" = org_number)
    subheads: dict[str, tuple[str, ...]] = field(default_factory=dict)  # sub-head -> the fields Save nests in it
    created: str = "FCreateDate"


FORMS: dict[str, FormInfo] = {
    "BD_Customer": FormInfo(
        "FCUSTID", "FNumber", "FModifyDate",
        ("FCUSTID", "FNumber", "FName", "FShortName", "FTEL", "FEMail", "FTAXREGISTERCODE", "FCOUNTRY.FNumber",
         "FPROVINCIAL.FNumber", "FCITY", "FADDRESS", "FZIP", "FTRADINGCURRID.FNumber", "FCreditAmount",
         "FDocumentStatus", "FForbidStatus", "FModifyDate", "FCreateDate"),
        defaults={"FCreateOrgId": {"FNumber": "{org}"}, "FUseOrgId": {"FNumber": "{org}"}}),
    "SAL_SaleOrder": FormInfo(
        "FID", "FBillNo", "FModifyDate",
        ("FID", "FBillNo", "FDate", "FCustId", "FSaleOrgId.FNumber", "FSettleCurrId.FNumber", "FBillAllAmount",
         "FBillTaxAmount", "FDocumentStatus", "FCloseStatus", "FNote", "FModifyDate"),
        entries={"FSaleOrderEntry": ("FEntryID", "FSeq", "FMaterialId.FNumber", "FQty", "FPrice", "FTaxPrice",
                                     "FAllAmount", "FEntryNote")},
        refs={"FCustId": "BD_Customer"},
        defaults={"FBillTypeID": {"FNUMBER": "XSDD01_SYS"}, "FSaleOrgId": {"FNumber": "{org}"}},
        subheads={"FSaleOrderFinance": ("FSettleCurrId", "FRecConditionId")}),      # PROTOCOLS 3.6
    "AR_RECEIVEBILL": FormInfo(
        "FID", "FBILLNO", "FMODIFYDATE",
        ("FID", "FBILLNO", "FDATE", "FCONTACTUNIT", "FCURRENCYID.FNumber", "FRECAMOUNTFOR", "FTHIRDBILLNO",
         "FREMARK", "FDOCUMENTSTATUS", "FMODIFYDATE"),
        entries={"FRECEIVEBILLENTRY": ("FENTRYID", "FSETTLETYPEID.FNumber", "FRECAMOUNTFOR_E")},
        refs={"FCONTACTUNIT": "BD_Customer", "FPAYUNIT": "BD_Customer"},
        defaults={"FBILLTYPEID": {"FNUMBER": "SKDLX01_SYS"}, "FCONTACTUNITTYPE": "BD_Customer",
                  "FPAYUNITTYPE": "BD_Customer", "FSETTLEORGID": {"FNumber": "{org}"},
                  "FPAYORGID": {"FNumber": "{org}"}, "FSALEORGID": {"FNumber": "{org}"}}),
    # CRM_Contract and its keys are [unverified] (PROTOCOLS 3.6).
    "CRM_Contract": FormInfo(
        "FID", "FBillNo", "FModifyDate",
        ("FID", "FBillNo", "FContractName", "FCustId", "FDate", "FBeginDate", "FEndDate", "FBillAllAmount",
         "FSettleCurrId.FNumber", "FDocumentStatus", "FModifyDate"),
        refs={"FCustId": "BD_Customer"}, defaults={"FSaleOrgId": {"FNumber": "{org}"}}),
}
ENTITY_FORMS = {"customer": "BD_Customer", "order": "SAL_SaleOrder", "payment": "AR_RECEIVEBILL",
                "contract": "CRM_Contract"}


def form_of(stream: StreamSpec, connector: str) -> tuple[str, FormInfo]:
    """(FormId, what is known of it) for a stream; an unknown form is described by the stream itself."""
    form_id = stream.source or ENTITY_FORMS.get(stream.entity, "")
    if not form_id:
        raise ConfigError(f"kingdee: no FormId for entity '{stream.entity}'", connector=connector)
    known = ci_key(FORMS, form_id)
    info = FORMS[known] if known else FormInfo(stream.key, stream.options.get("number_field", "FNumber"),
                                               stream.updated_at or "FModifyDate", tuple(stream.fields))
    return form_id, info
