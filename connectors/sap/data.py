"""The simulator's deterministic data set: business partners (Chinese and international),
their customer, address, e-mail, phone and tax-number records, and sales orders with items.

Everything derives from ``random.Random(seed)``; values are stored in their wire
form (``/Date(ms)/``, ``PT14H30M00S``, decimals as strings) so the state file
reads like what the service returns. Some partners share one change second
(mass changes), some were never changed after creation (LastChangeDate null,
as in SAP), a few carry blocks or untidy e-mail addresses.
"""
from __future__ import annotations

import random
import uuid
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

from stdnum.cn import uscc
from stdnum.iso7064 import mod_11_10

from connectors.sap import wire

UTC = timezone.utc
SEED_USER = "MIGRATION"
FIRST_BP = 17100001
FIRST_ORDER = 10000001
FIRST_ADDRESS = 25000
END_OF_TIME = "/Date(253402300799000+0000)/"   # 9999-12-31T23:59:59Z, SAP's open validity end
CUSTOMER_ROLES = ("FLCU00", "FLCU01")          # customer in financial accounting, customer in sales

# code, description, unit, net price in USD
MATERIALS = {
    "TG11": ("Trading Good 11", "PC", Decimal("17.55")),
    "TG12": ("Trading Good 12", "PC", Decimal("42.00")),
    "FG126": ("Finished Good 126", "PC", Decimal("129.90")),
    "MZ-FG-C900": ("C900 Bike", "EA", Decimal("1250.00")),
    "MZ-TG-Y120": ("Y120 Frame", "EA", Decimal("310.00")),
    "RM12": ("Raw Material 12", "KG", Decimal("3.25")),
}
FX = {"USD": Decimal("1"), "CNY": Decimal("7.20"), "EUR": Decimal("0.92")}
VAT = {"CN": Decimal("0.13"), "DE": Decimal("0.19"), "US": Decimal("0")}

# country -> language, currency, sales organization, time zone, tax type
COUNTRY = {
    "CN": ("ZH", "CNY", "1310", "UTC+8", "CN5"),
    "DE": ("DE", "EUR", "1010", "CET", "DE0"),
    "US": ("EN", "USD", "1710", "CST", "US01"),
}
# city, region, postal code, dialling area code, district, streets
CITIES = {
    "CN": [("上海", "SH", "200120", "21", "浦东新区", ["张江路", "世纪大道", "陆家嘴环路"]),
           ("北京", "BJ", "100080", "10", "海淀区", ["中关村大街", "知春路"]),
           ("深圳", "GD", "518057", "755", "南山区", ["科技园南路", "深南大道"]),
           ("广州", "GD", "510620", "20", "天河区", ["天河路", "体育西路"]),
           ("杭州", "ZJ", "310012", "571", "西湖区", ["文三路", "古墩路"]),
           ("苏州", "JS", "215021", "512", "工业园区", ["星湖街", "现代大道"]),
           ("成都", "SC", "610041", "28", "武侯区", ["天府大道", "人民南路"])],
    "DE": [("München", "BY", "80331", "89", "", ["Leopoldstraße", "Sendlinger Straße"]),
           ("Stuttgart", "BW", "70173", "711", "", ["Königstraße", "Industriestraße"]),
           ("Hamburg", "HH", "20095", "40", "", ["Mönckebergstraße", "Hafenstraße"]),
           ("Berlin", "BE", "10115", "30", "", ["Invalidenstraße", "Hauptstraße"])],
    "US": [("Chicago", "IL", "60601", "312", "", ["Main Street", "Wacker Drive"]),
           ("Houston", "TX", "77002", "713", "", ["Market Street", "Industrial Parkway"]),
           ("San Jose", "CA", "95113", "408", "", ["Oak Avenue", "First Street"]),
           ("Seattle", "WA", "98101", "206", "", ["Pine Street", "Harbor Avenue"])],
}
CN_BRANDS = [("华东", "HUADONG"), ("星辰", "XINGCHEN"), ("宏远", "HONGYUAN"), ("鼎盛", "DINGSHENG"),
             ("瑞丰", "RUIFENG"), ("金桥", "JINQIAO"), ("天成", "TIANCHENG"), ("博润", "BORUN"),
             ("恒信", "HENGXIN"), ("中科", "ZHONGKE"), ("新锐", "XINRUI"), ("海通", "HAITONG")]
CN_TRADES = [("机电设备", "jd"), ("科技", "tech"), ("贸易", "trade"), ("精密制造", "pm"),
             ("医疗器械", "med"), ("新材料", "nm"), ("物流", "log")]
ORG_NAMES = {
    "DE": (["Müller", "Schneider", "Fischer", "Weber", "Becker", "Hoffmann", "Krüger"],
           ["Maschinenbau GmbH", "Antriebstechnik AG", "Logistik GmbH", "Elektronik GmbH & Co. KG"], "de"),
    "US": (["Summit", "Pioneer", "Redwood", "Lakeside", "Atlas", "Keystone", "Evergreen"],
           ["Industries Inc.", "Supply Co.", "Technologies LLC", "Manufacturing Corp."], "com"),
}
PERSONS = {
    "CN": (["伟", "芳", "娜", "敏", "静", "磊", "洋", "婷", "强", "军"], ["张", "王", "李", "刘", "陈", "杨", "赵", "黄"]),
    "DE": (["Anna", "Lukas", "Sophie", "Jonas", "Laura", "Felix"], ["Schmidt", "Wagner", "Keller", "Braun"]),
    "US": (["John", "Emily", "Michael", "Sarah", "David", "Jessica"], ["Miller", "Johnson", "Brown", "Davis"]),
}
PINYIN = {"张": "zhang", "王": "wang", "李": "li", "刘": "liu", "陈": "chen", "杨": "yang", "赵": "zhao", "黄": "huang"}


def d_date(instant: datetime) -> str:
    """Edm.DateTime with display-format Date: midnight of the day."""
    return f"/Date({wire.ms_of(instant.replace(hour=0, minute=0, second=0, microsecond=0))})/"


def d_offset(instant: datetime) -> str:
    return f"/Date({wire.ms_of(instant)}+0000)/"


def d_time(instant: datetime) -> str:
    return wire.format_time(instant.hour * 3600 + instant.minute * 60 + instant.second)


def sap_user(login: str) -> str:
    """An SAP user name (12 characters, upper case) for a login such as demo@triad.local."""
    return login.split("@")[0].upper()[:12]


def tax_number(rng: random.Random, country: str) -> str:
    if country == "CN":
        base = "9131" + "".join(rng.choice("0123456789") for _ in range(4)) + "MA" + \
               "".join(rng.choice("0123456789ABCDEFGHJKLMNPQRTUWXY") for _ in range(7))
        return base + uscc.calc_check_digit(base)
    if country == "DE":
        digits = str(rng.randint(10_000_000, 99_999_999))
        return "DE" + digits + mod_11_10.calc_check_digit(digits)
    return f"{rng.randint(10, 99)}-{rng.randint(1_000_000, 9_999_999)}"


def _phone(rng: random.Random, country: str, area: str, mobile: bool) -> tuple[str, str]:
    """(national form as users type it, E.164) for a country."""
    if country == "CN":
        if mobile:
            number = rng.choice(["138", "139", "135", "136", "150", "151", "158", "186", "187", "188"]) + \
                "".join(rng.choice("0123456789") for _ in range(8))
            return number, "+86" + number
        number = rng.choice("56") + "".join(rng.choice("0123456789") for _ in range(7))
        return f"0{area}-{number}", f"+86{area}{number}"
    if country == "DE":
        number = str(rng.randint(1_000_000, 9_999_999))
        return f"0{area} {number}", f"+49{area}{number}"
    number = f"{rng.randint(201, 989)}{rng.randint(1000, 9999)}"
    return f"{area}-{number[:3]}-{number[3:]}", f"+1{area}{number}"


def _partner(rng: random.Random, i: int, when: dict[str, datetime]) -> dict[str, list[dict[str, Any]]]:
    """One business partner with its child records, all in wire form."""
    bp = str(FIRST_BP + i)
    country = rng.choices(["CN", "DE", "US"], weights=[55, 25, 20])[0]
    language, currency, sales_org, tz_code, tax_type = COUNTRY[country]
    city, region, postal, area, district, streets = rng.choice(CITIES[country])
    person = rng.random() < 0.2
    first = last = org1 = ""
    if person:
        first, last = rng.choice(PERSONS[country][0]), rng.choice(PERSONS[country][1])
        full = last + first if country == "CN" else f"{first} {last}"
        search = (PINYIN.get(last, last)).upper()
        mail_local = (PINYIN.get(last, last) + "." + str(rng.randint(1, 99))) if country == "CN" \
            else f"{first}.{last}".lower()
        domain = {"CN": "qq.com", "DE": "web.de", "US": "gmail.com"}[country]
    elif country == "CN":
        brand, pinyin = rng.choice(CN_BRANDS)
        trade, slug = rng.choice(CN_TRADES)
        full = org1 = f"{city}{brand}{trade}有限公司"
        search, mail_local, domain = pinyin, "sales", f"{pinyin.lower()}-{slug}.com.cn"
    else:
        names, kinds, tld = ORG_NAMES[country]
        brand = rng.choice(names)
        full = org1 = f"{brand} {rng.choice(kinds)}"
        search = brand.upper().replace("Ü", "UE")
        mail_local, domain = "info", f"{search.lower()}.{tld}"
    created, changed = when["created"], when.get("changed")
    stamp = changed or created
    record = {
        "BusinessPartner": bp, "Customer": bp, "Supplier": "", "AcademicTitle": "", "AuthorizationGroup": "",
        "BusinessPartnerCategory": "1" if person else "2", "BusinessPartnerFullName": full,
        "BusinessPartnerGrouping": "BP01", "BusinessPartnerName": full,
        "BusinessPartnerUUID": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        "CorrespondenceLanguage": language, "CreatedByUser": SEED_USER,
        "CreationDate": d_date(created), "CreationTime": d_time(created),
        "FirstName": first, "FormOfAddress": rng.choice(["0001", "0002"]) if person else "0003",
        "Industry": "", "IsNaturalPerson": "X" if person else "", "Language": language,
        "LastChangeDate": d_date(changed) if changed else None,
        "LastChangeTime": d_time(changed) if changed else "PT00H00M00S",
        "LastChangedByUser": SEED_USER if changed else "", "LastName": last, "LegalForm": "",
        "OrganizationBPName1": org1, "OrganizationBPName2": "", "OrganizationBPName3": "",
        "OrganizationBPName4": "", "OrganizationFoundationDate": None,
        "SearchTerm1": search[:20], "SearchTerm2": city.upper()[:20] if country != "CN" else "",
        "BusinessPartnerIsBlocked": rng.random() < 0.03, "BusinessPartnerType": "",
        "ETag": stamp.strftime("%Y%m%d%H%M%S") + ".0000000 ", "NameCountry": "",
        "IsMarkedForArchiving": False, "BusinessPartnerIDByExtSystem": "", "TradingPartner": "",
    }
    address_id = str(FIRST_ADDRESS + i)
    address = {
        "BusinessPartner": bp, "AddressID": address_id, "ValidityStartDate": d_offset(created),
        "ValidityEndDate": END_OF_TIME, "AddressUUID": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        "AddressTimeZone": tz_code, "CareOfName": "", "CityName": city, "Country": country,
        "District": district, "FullName": full,
        "HouseNumber": str(rng.randint(1, 999)) + ("号" if country == "CN" else ""), "Language": language,
        "POBox": "", "PostalCode": postal, "Region": region, "StreetName": rng.choice(streets),
        "StreetPrefixName": "", "TaxJurisdiction": "",
    }
    # every partner here is a customer: the roles for financial accounting and sales (no draw from rng,
    # so the rest of the data set stays as it was)
    roles = [{"BusinessPartner": bp, "BusinessPartnerRole": role, "ValidFrom": d_offset(created),
              "ValidTo": END_OF_TIME, "AuthorizationGroup": ""} for role in CUSTOMER_ROLES]
    out: dict[str, list[dict[str, Any]]] = {"A_BusinessPartner": [record], "A_BusinessPartnerAddress": [address],
                                            "A_BusinessPartnerRole": roles,
                                            "A_AddressEmailAddress": [], "A_AddressPhoneNumber": [],
                                            "A_BusinessPartnerTaxNumber": []}
    if rng.random() > 0.1:
        email = f"{mail_local}@{domain}"
        if rng.random() < 0.05:       # typed in by hand: capitals and a trailing blank
            email = email.capitalize() + " "
        out["A_AddressEmailAddress"].append({
            "AddressID": address_id, "Person": "", "OrdinalNumber": "1", "IsDefaultEmailAddress": True,
            "EmailAddress": email, "SearchEmailAddress": email.strip().upper()[:20],
            "AddressCommunicationRemarkText": ""})
    national, e164 = _phone(rng, country, area, person)
    out["A_AddressPhoneNumber"].append({
        "AddressID": address_id, "Person": "", "OrdinalNumber": "1", "DestinationLocationCountry": country,
        "IsDefaultPhoneNumber": True, "PhoneNumber": national, "PhoneNumberExtension": "",
        "InternationalPhoneNumber": e164, "PhoneNumberType": "3" if person else "1",
        "AddressCommunicationRemarkText": ""})
    tax = tax_number(rng, country) if not person and rng.random() > 0.1 else ""
    if tax:
        out["A_BusinessPartnerTaxNumber"].append({
            "BusinessPartner": bp, "BPTaxType": tax_type, "BPTaxNumber": tax if len(tax) <= 20 else "",
            "BPTaxLongNumber": tax if len(tax) > 20 else "", "AuthorizationGroup": ""})
    blocked = "01" if rng.random() < 0.04 else ""
    out["A_Customer"] = [{
        "Customer": bp, "AuthorizationGroup": "", "BillingIsBlockedForCustomer": "", "CreatedByUser": SEED_USER,
        "CreationDate": d_date(created), "CustomerAccountGroup": "CUST",
        "CustomerClassification": rng.choice(["A", "B", "B", "C", ""]), "CustomerFullName": full,
        "CustomerName": full[:80], "DeliveryIsBlocked": "", "NFPartnerIsNaturalPerson": "X" if person else "",
        "OrderIsBlockedForCustomer": blocked, "PostingIsBlocked": False, "Supplier": "",
        "CustomerCorporateGroup": "", "FiscalAddress": "", "Industry": "", "IndustryCode1": "",
        "InternationalLocationNumber1": "0", "NielsenRegion": "", "ResponsibleType": "", "TaxNumber1": "",
        "TaxNumber2": "", "TaxNumberType": "", "VATRegistration": tax if country == "DE" else "",
        "DeletionIndicator": False}]
    out["A_CustomerSalesArea"] = [{
        "Customer": bp, "SalesOrganization": sales_org, "DistributionChannel": "10", "Division": "00",
        "AccountByCustomer": "", "BillingIsBlockedForCustomer": "", "CompleteDeliveryIsDefined": False,
        "Currency": currency, "CustomerABCClassification": "", "CustomerGroup": "01",
        "CustomerPaymentTerms": rng.choice(["0001", "0002", "0004", "NT30"]), "CustomerPriceGroup": "",
        "DeliveryPriority": "02", "IncotermsClassification": rng.choice(["EXW", "FOB", "CIF", "DAP"]),
        "IncotermsLocation1": city, "SalesGroup": "", "SalesOffice": "", "ShippingCondition": "01",
        "OrderIsBlockedForCustomer": blocked, "DeletionIndicator": False}]
    return out


def price_of(material: str, currency: str, given: Decimal | None = None) -> Decimal:
    """Net price per unit: the catalogue price in the document currency, else the given one, else 0."""
    if material in MATERIALS:
        return (MATERIALS[material][2] * FX.get(currency, Decimal(1))).quantize(Decimal("0.01"))
    return given if given is not None else Decimal("0")


def item_amounts(quantity: Decimal, price: Decimal, country: str) -> tuple[str, str]:
    net = (quantity * price).quantize(Decimal("0.01"))
    return wire.format_decimal(net), wire.format_decimal((net * VAT.get(country, Decimal(0))).quantize(Decimal("0.01")))


def _order(rng: random.Random, i: int, bp: dict, area: dict, country: str,
           created: datetime, changed: datetime) -> tuple[dict, list[dict]]:
    so = str(FIRST_ORDER + i)
    currency = area["Currency"]
    state = rng.choices(["open", "processing", "done", "rejected"], weights=[35, 25, 34, 6])[0]
    process, delivery, rejection = {"open": ("A", "A", "A"), "processing": ("B", "B", "A"),
                                    "done": ("C", "C", "A"), "rejected": ("C", "", "C")}[state]
    po = f"PO-{created:%y%m}-{rng.randint(100, 999)}"
    items, total = [], Decimal(0)
    for n in range(rng.randint(1, 4)):
        material = rng.choice(list(MATERIALS))
        text, unit, _ = MATERIALS[material]
        quantity = Decimal(rng.randint(1, 50))
        price = price_of(material, currency)
        net, tax = item_amounts(quantity, price, country)
        total += Decimal(net)
        items.append({
            "SalesOrder": so, "SalesOrderItem": str((n + 1) * 10), "HigherLevelItem": "000000",
            "SalesOrderItemCategory": "TAN", "SalesOrderItemText": text, "PurchaseOrderByCustomer": po,
            "Material": material, "MaterialByCustomer": "", "PricingDate": d_date(created),
            "RequestedQuantity": wire.format_decimal(quantity), "RequestedQuantityUnit": unit,
            "TransactionCurrency": currency, "NetAmount": net, "NetPriceAmount": wire.format_decimal(price),
            "NetPriceQuantity": "1", "NetPriceQuantityUnit": unit, "TaxAmount": tax, "MaterialGroup": "",
            "ProductionPlant": area["SalesOrganization"], "StorageLocation": "",
            "ShippingPoint": area["SalesOrganization"], "DeliveryPriority": "02", "SDProcessStatus": process,
            "DeliveryStatus": delivery, "OrderRelatedBillingStatus": "A" if process != "C" else "C",
            "SalesDocumentRjcnReason": "02" if state == "rejected" else ""})
    header = {
        "SalesOrder": so, "SalesOrderType": "OR", "SalesOrganization": area["SalesOrganization"],
        "DistributionChannel": "10", "OrganizationDivision": "00", "SalesGroup": "", "SalesOffice": "",
        "SalesDistrict": "", "SoldToParty": bp["BusinessPartner"], "CreationDate": d_date(created),
        "CreatedByUser": SEED_USER, "LastChangeDate": d_date(changed), "SenderBusinessSystemName": "",
        "ExternalDocumentID": "", "LastChangeDateTime": d_offset(changed), "ExternalDocLastChangeDateTime": None,
        "PurchaseOrderByCustomer": po, "CustomerPurchaseOrderType": "", "CustomerPurchaseOrderDate": d_date(created),
        "SalesOrderDate": d_date(created), "TotalNetAmount": wire.format_decimal(total),
        "OverallDeliveryStatus": delivery, "TotalBlockStatus": "", "OverallOrdReltdBillgStatus": "",
        "YY1_TrackingNumber_SDH": "",
        "OverallSDDocReferenceStatus": "", "TransactionCurrency": currency, "SDDocumentReason": "",
        "PricingDate": d_date(created), "RequestedDeliveryDate": d_date(created + timedelta(days=rng.randint(7, 30))),
        "ShippingCondition": "01", "CompleteDeliveryIsDefined": False, "ShippingType": "",
        "HeaderBillingBlockReason": "", "DeliveryBlockReason": "",
        "IncotermsClassification": area["IncotermsClassification"], "IncotermsLocation1": area["IncotermsLocation1"],
        "CustomerPaymentTerms": area["CustomerPaymentTerms"], "PaymentMethod": "", "AssignmentReference": "",
        "CustomerGroup": "01", "SalesDocApprovalStatus": "", "OverallSDProcessStatus": process,
        "TotalCreditCheckStatus": "", "OverallTotalDeliveryStatus": delivery,
        "OverallSDDocumentRejectionSts": rejection}
    return header, items


def generate(seed: int, records: int) -> dict[str, Any]:
    """The initial state: ``records`` business partners and as many sales orders.

    Returns:
        ``{"version": 1, "sets": {entity set: [records]}, "counters": {...}}``.
    """
    rng = random.Random(seed)
    sets: dict[str, list[dict]] = {name: [] for name in (
        "A_BusinessPartner", "A_BusinessPartnerAddress", "A_BusinessPartnerRole", "A_AddressEmailAddress",
        "A_AddressPhoneNumber", "A_BusinessPartnerTaxNumber", "A_Customer", "A_CustomerSalesArea", "A_SalesOrder",
        "A_SalesOrderItem")}
    start = datetime(2023, 1, 2, tzinfo=UTC)
    previous: datetime | None = None
    for i in range(records):
        created = start + timedelta(seconds=rng.randint(0, 700 * 86400))
        changed: datetime | None = None
        if rng.random() < 0.8:
            if previous is not None and previous > created and rng.random() < 0.2:
                changed = previous          # a mass change: several partners in the same second
            else:
                changed = created + timedelta(seconds=rng.randint(60, 300 * 86400))
            previous = changed
        for name, rows in _partner(rng, i, {"created": created, "changed": changed}).items():
            sets[name].extend(rows)
    partners = [bp for bp in sets["A_BusinessPartner"] if not bp["BusinessPartnerIsBlocked"]]
    areas = {a["Customer"]: a for a in sets["A_CustomerSalesArea"]}
    countries = {a["BusinessPartner"]: a["Country"] for a in sets["A_BusinessPartnerAddress"]}
    previous = None
    for i in range(records if partners else 0):
        bp = rng.choice(partners)
        created = datetime(2024, 6, 3, tzinfo=UTC) + timedelta(milliseconds=rng.randint(0, 540 * 86400 * 1000))
        if previous is not None and previous > created and rng.random() < 0.1:
            changed = previous
        else:
            changed = created + timedelta(milliseconds=rng.randint(1000, 40 * 86400 * 1000))
        previous = changed
        header, items = _order(rng, i, bp, areas[bp["BusinessPartner"]], countries[bp["BusinessPartner"]],
                               created, changed)
        sets["A_SalesOrder"].append(header)
        sets["A_SalesOrderItem"].extend(items)
    return {"version": 1, "sets": sets,
            "counters": {"A_BusinessPartner": FIRST_BP + records, "A_SalesOrder": FIRST_ORDER + records,
                         "address": FIRST_ADDRESS + records}}
