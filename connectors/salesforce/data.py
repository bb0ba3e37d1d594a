"""Deterministic seed data for the simulated org, and the rules for derived fields.

Chinese and international companies with valid tax ids (USCC check digits,
German and British VAT numbers, US EINs), E.164-parsable phones, addresses,
contacts, opportunities, contracts, orders with lines, and payments that point
at their orders. Change stamps are spread over the two weeks before
:data:`BASE_TIME`, so writes made "now" always sort after the seed data.
"""
from __future__ import annotations

import random
from datetime import date, datetime, timedelta, timezone

from connectors.salesforce.schema import CONTRACT_STATUS_CODES, OBJECTS, STAGES, make_id

BASE_TIME = datetime(2026, 11, 1, tzinfo=timezone.utc)
USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
_ORG_WEIGHTS = (3, 7, 9, 10, 5, 8, 4, 2)

# city, city (en), state, state (en), USCC region code, postal code, area code, district, streets
_CN_CITIES = [
    ("上海", "Shanghai", "上海市", "Shanghai", "310115", "200120", "21", "浦东新区",
     [("世纪大道", "Century Avenue"), ("张江路", "Zhangjiang Road"), ("陆家嘴环路", "Lujiazui Ring Road")]),
    ("北京", "Beijing", "北京市", "Beijing", "110108", "100080", "10", "海淀区",
     [("中关村大街", "Zhongguancun Street"), ("学院路", "Xueyuan Road")]),
    ("深圳", "Shenzhen", "广东省", "Guangdong", "440305", "518057", "755", "南山区",
     [("科技园南路", "Keji South Road"), ("深南大道", "Shennan Avenue")]),
    ("广州", "Guangzhou", "广东省", "Guangdong", "440106", "510620", "20", "天河区",
     [("天河路", "Tianhe Road"), ("珠江东路", "Zhujiang East Road")]),
    ("杭州", "Hangzhou", "浙江省", "Zhejiang", "330106", "310012", "571", "西湖区",
     [("文三路", "Wensan Road"), ("天目山路", "Tianmushan Road")]),
    ("苏州", "Suzhou", "江苏省", "Jiangsu", "320505", "215011", "512", "虎丘区",
     [("狮山路", "Shishan Road"), ("长江路", "Changjiang Road")]),
    ("成都", "Chengdu", "四川省", "Sichuan", "510107", "610041", "28", "武侯区",
     [("天府大道", "Tianfu Avenue"), ("人民南路", "Renmin South Road")]),
    ("武汉", "Wuhan", "湖北省", "Hubei", "420111", "430070", "27", "洪山区",
     [("珞喻路", "Luoyu Road"), ("光谷大道", "Guanggu Avenue")]),
    ("南京", "Nanjing", "江苏省", "Jiangsu", "320106", "210008", "25", "鼓楼区",
     [("中山北路", "Zhongshan North Road")]),
    ("天津", "Tianjin", "天津市", "Tianjin", "120116", "300450", "22", "滨海新区",
     [("第三大街", "Third Avenue"), ("黄海路", "Huanghai Road")]),
]
_CN_BRANDS = [("星海", "Xinghai"), ("华信", "Huaxin"), ("云图", "Yuntu"), ("恒润", "Hengrun"), ("金桥", "Jinqiao"),
              ("东方", "Dongfang"), ("天成", "Tiancheng"), ("瑞丰", "Ruifeng"), ("宏达", "Hongda"),
              ("鼎盛", "Dingsheng"), ("博远", "Boyuan"), ("锦程", "Jincheng"), ("汇通", "Huitong"),
              ("新锐", "Xinrui"), ("嘉禾", "Jiahe"), ("永泰", "Yongtai"), ("明阳", "Mingyang"), ("润和", "Runhe"),
              ("中科", "Zhongke"), ("海川", "Haichuan"), ("万象", "Wanxiang"), ("长风", "Changfeng"),
              ("凯达", "Kaida"), ("银河", "Yinhe"), ("远航", "Yuanhang"), ("立信", "Lixin"), ("同德", "Tongde")]
_CN_TRADES = [("贸易", "Trading", "Retail"), ("科技", "Technology", "Technology"),
              ("电子", "Electronics", "Electronics"), ("机电", "Mechanical & Electrical", "Manufacturing"),
              ("物流", "Logistics", "Transportation"), ("医药", "Pharmaceutical", "Healthcare"),
              ("新材料", "New Materials", "Chemicals"), ("软件", "Software", "Technology"),
              ("食品", "Foods", "Food & Beverage"), ("精密机械", "Precision Machinery", "Manufacturing"),
              ("能源", "Energy", "Energy")]
_DE_CITIES = [("München", "Bayern", "80331", "89", "Leopoldstraße"), ("Stuttgart", "Baden-Württemberg", "70173",
              "711", "Königstraße"), ("Hamburg", "Hamburg", "20095", "40", "Mönckebergstraße"),
              ("Berlin", "Berlin", "10115", "30", "Invalidenstraße"), ("Frankfurt am Main", "Hessen", "60311",
              "69", "Zeil"), ("Düsseldorf", "Nordrhein-Westfalen", "40213", "211", "Königsallee")]
_DE_NAMES = ["Müller", "Schneider", "Fischer", "Weber", "Wagner", "Becker", "Hoffmann", "Schäfer", "Koch",
             "Richter", "Klein", "Wolf", "Neumann", "Braun"]
_DE_TRADES = [("Maschinenbau", "Manufacturing"), ("Logistik", "Transportation"), ("Elektrotechnik", "Electronics"),
              ("Automation", "Technology"), ("Präzisionstechnik", "Manufacturing"), ("Kunststofftechnik", "Chemicals")]
_US_CITIES = [("San Francisco", "CA", "94105", "415", "Market Street"), ("Chicago", "IL", "60601", "312",
              "Wacker Drive"), ("Austin", "TX", "78701", "512", "Congress Avenue"), ("Seattle", "WA", "98101",
              "206", "Pine Street"), ("Boston", "MA", "02110", "617", "State Street")]
_US_WORDS = ["Acme", "Pacific", "Summit", "Redwood", "Liberty", "Granite", "Evergreen", "Horizon", "Keystone"]
_US_TRADES = [("Industrial", "Manufacturing"), ("Components", "Electronics"), ("Logistics", "Transportation"),
              ("Technologies", "Technology"), ("Supply", "Retail"), ("Robotics", "Technology"), ("Foods", "Food & Beverage")]
_GB_CITIES = [("London", "England", "EC2A 4NE", "20 7946 0"), ("Manchester", "England", "M1 1AE", "161 496 0"),
              ("Birmingham", "England", "B2 4QA", "121 496 0")]
_GB_WORDS = ["Thames", "Albion", "Kensington", "Oxford", "Britannia", "Pennine", "Severn"]
_GB_TRADES = [("Trading", "Retail"), ("Engineering", "Manufacturing"), ("Systems", "Technology"),
              ("Logistics", "Transportation")]
_CN_SURNAMES = "王李张刘陈杨黄赵周吴徐孙马朱胡郭"
_CN_GIVEN = ["伟", "芳", "娜", "敏", "静", "丽", "强", "磊", "洋", "艳", "勇", "军", "杰", "娟", "涛", "晨曦", "子涵"]
_WEST_FIRST = ["Anna", "Lukas", "Sophie", "Jonas", "Emily", "James", "Olivia", "Michael", "Sarah", "David"]
_WEST_LAST = ["Schmidt", "Meyer", "Carter", "Smith", "Johnson", "Brown", "Taylor", "Walker", "Hughes"]
_USERS = ["王伟", "李娜", "张敏", "陈静", "Anna Schmidt", "John Carter", "刘洋", "Emily Taylor"]
_PRODUCTS = [("SKU-1001", "工业传感器 A1", "Sensors", 380), ("SKU-1002", "Industrial Sensor Pro", "Sensors", 1250),
             ("SKU-2001", "伺服电机 750W", "Motion", 2100), ("SKU-2002", "Servo Drive 1.5kW", "Motion", 4600),
             ("SKU-3001", "PLC 控制器 S7", "Control", 8800), ("SKU-3002", "HMI Touch Panel 10\"", "Control", 5200),
             ("SKU-4001", "工业交换机 8口", "Network", 1600), ("SKU-4002", "5G Industrial Router", "Network", 3900),
             ("SKU-5001", "不锈钢阀门 DN50", "Valves", 760), ("SKU-5002", "Pneumatic Cylinder 32mm", "Valves", 420),
             ("SKU-6001", "安装调试服务 (人天)", "Services", 2500), ("SKU-6002", "Annual Maintenance Plan", "Services", 18000)]
_RATES = {"CNY": 1.0, "USD": 1 / 7.2, "EUR": 1 / 7.8, "GBP": 1 / 9.1}
_TAX = {"CN": 0.13, "DE": 0.19, "US": 0.08, "GB": 0.20}
_METHODS = {"CN": ["Bank Transfer", "Alipay", "WeChat Pay"], "DE": ["SEPA", "Bank Transfer"],
            "US": ["Credit Card", "Check", "Bank Transfer"], "GB": ["Bank Transfer", "Credit Card"]}


def sf_datetime(dt: datetime) -> str:
    """Salesforce's JSON datetime form: ``2026-10-05T12:34:56.000+0000`` (UTC, milliseconds)."""
    dt = dt.astimezone(timezone.utc)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}+0000"


def uscc_check_digit(first17: str) -> str:
    """The 18th character of a 统一社会信用代码 (GB 32100-2015)."""
    total = sum(USCC_ALPHABET.index(c) * w for c, w in zip(first17, _USCC_WEIGHTS))
    return USCC_ALPHABET[(31 - total % 31) % 31]


def org_code_check_digit(first8: str) -> str:
    """The 9th character of an organization code (GB 11714)."""
    total = sum(int(c, 36) * w for c, w in zip(first8, _ORG_WEIGHTS))
    c = 11 - total % 11
    return "X" if c == 10 else "0" if c == 11 else str(c)


def make_uscc(region: str, rng: random.Random) -> str:
    body = "".join(rng.choice("0123456789") for _ in range(8))
    head = "91" + region + body + org_code_check_digit(body)
    return head + uscc_check_digit(head)


def make_de_vat(rng: random.Random) -> str:
    digits = str(rng.randint(1, 9)) + "".join(rng.choice("0123456789") for _ in range(7))
    p = 10
    for d in digits:  # ISO 7064 MOD 11,10
        s = (int(d) + p) % 10 or 10
        p = (2 * s) % 11
    return f"DE{digits}{(11 - p) % 10}"


def make_gb_vat(rng: random.Random) -> str:
    digits = str(rng.randint(1, 9)) + "".join(rng.choice("0123456789") for _ in range(6))
    total = sum(w * int(d) for w, d in zip((8, 7, 6, 5, 4, 3, 2), digits))
    return f"GB{digits}{(-total) % 97:02d}"


def recalc(obj: str, rec: dict, children: list[dict] | None = None) -> None:
    """Recompute an object's derived (formula / roll-up) fields in place."""
    if obj == "Contact":
        rec["Name"] = " ".join(p for p in (rec.get("FirstName"), rec.get("LastName")) if p) or None
    elif obj == "Opportunity":
        stage = rec.get("StageName") or ""
        rec["IsClosed"] = stage.startswith("Closed")
        rec["IsWon"] = stage == "Closed Won"
    elif obj == "Contract":
        rec["StatusCode"] = CONTRACT_STATUS_CODES.get(rec.get("Status") or "", "Draft")
        start, term = rec.get("StartDate"), rec.get("ContractTerm")
        rec["EndDate"] = _add_months(start, int(term)) if start and term else None
    elif obj == "OrderItem":
        q, p = rec.get("Quantity"), rec.get("UnitPrice")
        rec["TotalPrice"] = round(q * p, 2) if q is not None and p is not None else None
    elif obj == "Order" and children is not None:
        rec["TotalAmount"] = round(sum(c.get("TotalPrice") or 0 for c in children), 2)


def _add_months(start: str, months: int) -> str:
    d = date.fromisoformat(start)
    y, m = divmod(d.month - 1 + months, 12)
    first = date(d.year + y, m + 1, 1)
    return (first.replace(day=min(d.day, 28)) - timedelta(days=1)).isoformat()


class _Gen:
    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.data: dict[str, dict[str, dict]] = {name: {} for name in OBJECTS}
        self.serials = {name: self.rng.randrange(10_000_000, 400_000_000) for name in OBJECTS}
        self.autonumbers = {"Contract": 100, "Order": 100, "OrderItem": 1, "Payment__c": 1}
        self.names: set[str] = set()

    def new(self, obj: str, values: dict, created: datetime, modified: datetime) -> dict:
        self.serials[obj] += 1
        rec = {f: None for f in OBJECTS[obj].fields}
        rec.update(values)
        user = self.data["User"] and self.rng.choice(list(self.data["User"]))
        rec.update(Id=make_id(OBJECTS[obj].key_prefix, self.serials[obj]), IsDeleted=False,
                   CreatedDate=sf_datetime(created), LastModifiedDate=sf_datetime(modified),
                   SystemModstamp=sf_datetime(modified), CreatedById=user or None, LastModifiedById=user or None)
        if "OwnerId" in rec and not rec["OwnerId"]:
            rec["OwnerId"] = user or None
        self.data[obj][rec["Id"]] = rec
        return rec

    def stamps(self) -> tuple[datetime, datetime]:
        created = BASE_TIME - timedelta(days=self.rng.uniform(30, 720))
        modified = BASE_TIME - timedelta(seconds=self.rng.randrange(60, 14 * 86400), milliseconds=self.rng.randrange(1000))
        return created, modified

    def autonumber(self, obj: str, width: int, prefix: str = "") -> str:
        self.autonumbers[obj] += 1
        return f"{prefix}{self.autonumbers[obj] - 1:0{width}d}"

    def company(self, i: int) -> tuple[str, dict]:
        """A unique company: (country code, Account values)."""
        r = self.rng
        for attempt in range(20):
            country = "CN" if i == 0 else r.choices(["CN", "DE", "US", "GB"], [62, 12, 14, 12])[0]
            values = getattr(self, f"_{country.lower()}")(i, attempt)
            if values["Name"] not in self.names:
                break
        else:
            values["Name"] += f" ({i})"
        self.names.add(values["Name"])
        return country, values

    def _cn(self, i: int, attempt: int) -> dict:
        r = self.rng
        city = _CN_CITIES[0] if i == 0 and attempt == 0 else r.choice(_CN_CITIES)
        brand = _CN_BRANDS[0] if i == 0 and attempt == 0 else r.choice(_CN_BRANDS)
        trade = _CN_TRADES[0] if i == 0 and attempt == 0 else r.choice(_CN_TRADES)
        street = r.choice(city[8])
        number = r.randint(1, 1999)
        slug = brand[1].lower() + "-" + trade[1].split()[0].lower()
        if r.random() < 0.8 or i == 0:
            name = f"{city[0]}{brand[0]}{trade[0]}{r.choice(['有限公司', '有限公司', '股份有限公司'])}"
            address = (f"{city[7]}{street[0]}{number}号", city[0], city[2])
        else:
            name = f"{city[1]} {brand[1]} {trade[1]} Co., Ltd."
            address = (f"No. {number} {street[1]}", city[1], city[3])
        area = city[6]
        local = f"{r.choice('5678')}{r.randrange(100, 999)} {r.randrange(1000, 9999)}"
        phone = (f"+86 {area} {local}" if r.random() < 0.75
                 else f"+86 {r.choice(['138', '139', '186', '135', '150'])} {r.randrange(1000, 9999)} {r.randrange(1000, 9999)}")
        return {"Name": name, "Industry": trade[2], "Phone": phone, "Website": f"www.{slug}.com.cn",
                "Email__c": f"sales@{slug}.com.cn", "BillingStreet": address[0], "BillingCity": address[1],
                "BillingState": address[2], "BillingPostalCode": city[5],
                "BillingCountry": "中国" if r.random() < 0.1 else "China",
                "TaxId__c": make_uscc(city[4], r), "CurrencyIsoCode": "CNY"}

    def _de(self, i: int, attempt: int) -> dict:
        r = self.rng
        city, trade, family = r.choice(_DE_CITIES), r.choice(_DE_TRADES), r.choice(_DE_NAMES)
        form = r.choice(["GmbH", "GmbH", "AG", "GmbH & Co. KG"])
        slug = family.lower().replace("ü", "ue").replace("ä", "ae").replace("ö", "oe") + "-" + trade[0].lower()[:8]
        return {"Name": f"{family} {trade[0]} {form}", "Industry": trade[1],
                "Phone": f"+49 {city[3]} {r.randrange(2000, 9999)} {r.randrange(1000, 9999)}",
                "Website": f"www.{slug}.de", "Email__c": f"vertrieb@{slug}.de",
                "BillingStreet": f"{city[4]} {r.randint(1, 180)}", "BillingCity": city[0], "BillingState": city[1],
                "BillingPostalCode": city[2], "BillingCountry": "Germany", "TaxId__c": make_de_vat(r),
                "CurrencyIsoCode": "EUR"}

    def _us(self, i: int, attempt: int) -> dict:
        r = self.rng
        city, trade, word = r.choice(_US_CITIES), r.choice(_US_TRADES), r.choice(_US_WORDS)
        slug = f"{word}{trade[0]}".lower()
        return {"Name": f"{word} {trade[0]} Inc.", "Industry": trade[1],
                "Phone": f"+1 {city[3]} {r.randrange(200, 999)} {r.randrange(1000, 9999)}".replace(" 555 ", " 556 "),
                "Website": f"www.{slug}.com", "Email__c": f"orders@{slug}.com",
                "BillingStreet": f"{r.randint(1, 2500)} {city[4]}", "BillingCity": city[0], "BillingState": city[1],
                "BillingPostalCode": city[2], "BillingCountry": "United States",
                "TaxId__c": f"{r.choice(['13', '20', '27', '46', '94', '95'])}-{r.randrange(1000000, 9999999)}",
                "CurrencyIsoCode": "USD"}

    def _gb(self, i: int, attempt: int) -> dict:
        r = self.rng
        city, trade, word = r.choice(_GB_CITIES), r.choice(_GB_TRADES), r.choice(_GB_WORDS)
        slug = f"{word}{trade[0]}".lower()
        return {"Name": f"{word} {trade[0]} Ltd", "Industry": trade[1],
                "Phone": f"+44 {city[3]}{r.randrange(100, 999)}", "Website": f"www.{slug}.co.uk",
                "Email__c": f"accounts@{slug}.co.uk", "BillingStreet": f"{r.randint(1, 200)} {word} Street",
                "BillingCity": city[0], "BillingState": city[1], "BillingPostalCode": city[2],
                "BillingCountry": "United Kingdom", "TaxId__c": make_gb_vat(r), "CurrencyIsoCode": "GBP"}


def generate(seed: int, records: int) -> dict:
    """The org's data set for ``seed``: ``records`` accounts, contacts, opportunities,
    orders and payments each, half as many contracts, and their users and products.

    Returns the JSON-able state: ``{"version", "objects": {obj: {id: record}}, "serials", "autonumbers"}``.
    """
    g = _Gen(seed)
    r = g.rng
    n = max(1, records)
    for name in _USERS:
        login = "".join(c for c in name.lower() if c.isascii() and c.isalnum()) or f"user{len(g.data['User'])}"
        g.new("User", {"Name": name, "Username": f"{login}{len(g.data['User'])}@triad-demo.example",
                       "Email": f"{login}{len(g.data['User'])}@triad-demo.example", "IsActive": True},
              BASE_TIME - timedelta(days=900), BASE_TIME - timedelta(days=60))
    products = []
    for code, pname, family, price in _PRODUCTS:
        products.append((g.new("Product2", {"Name": pname, "ProductCode": code, "Family": family, "IsActive": True},
                               BASE_TIME - timedelta(days=800), BASE_TIME - timedelta(days=90)), price))
    accounts: list[tuple[dict, str]] = []
    for i in range(n):
        country, values = g.company(i)
        values.update(AccountNumber=f"CUST-{10000 + i}",
                      Type=r.choice(["Customer - Direct", "Customer - Direct", "Customer - Channel", "Partner"]),
                      CreditLimit__c=float(r.choice([50000, 100000, 200000, 500000, 1000000, 2000000])),
                      PaymentTerms__c=r.choice(["Net 30", "Net 30", "Net 45", "Net 60", "Prepaid"]),
                      IsPersonAccount=False, Active__c=r.random() < 0.9, Tier__c=r.choice(["Platinum", "Gold", "Silver", "Silver", "Bronze"]))
        accounts.append((g.new("Account", values, *g.stamps()), country))
    for acc, country in accounts:
        cn = country == "CN"
        first = r.choice(_CN_GIVEN) if cn else r.choice(_WEST_FIRST)
        last = r.choice(_CN_SURNAMES) if cn else r.choice(_WEST_LAST)
        domain = acc["Email__c"].split("@")[1]
        con = g.new("Contact", {"FirstName": first, "LastName": last, "AccountId": acc["Id"],
                                "Title": r.choice(["采购经理", "财务总监", "总经理"] if cn else
                                                  ["Purchasing Manager", "CFO", "Managing Director"]),
                                "Email": f"contact{len(g.data['Contact']) + 1}@{domain}", "Phone": acc["Phone"],
                                "MailingCity": acc["BillingCity"], "MailingCountry": acc["BillingCountry"],
                                "OwnerId": acc["OwnerId"]}, *g.stamps())
        recalc("Contact", con)
        stage = r.choice(list(STAGES))
        opp = g.new("Opportunity", {
            "Name": f"{acc['Name']} - {r.choice(['Automation Upgrade', 'Annual Supply', 'Pilot Line'])} 2026",
            "AccountId": acc["Id"], "StageName": stage, "Probability": float(STAGES[stage]),
            "Amount": float(r.randrange(20, 900) * 1000), "CloseDate": (BASE_TIME.date() + timedelta(days=r.randint(-60, 120))).isoformat(),
            "Type": r.choice(["New Customer", "Existing Customer - Upgrade"]), "LeadSource": r.choice(["Web", "Partner", "Trade Show"]),
            "CurrencyIsoCode": acc["CurrencyIsoCode"], "OwnerId": acc["OwnerId"]}, *g.stamps())
        recalc("Opportunity", opp)
    contracts: dict[str, dict] = {}
    for _ in range(max(1, n // 2)):
        acc, country = r.choice(accounts)
        start = BASE_TIME.date() - timedelta(days=r.randint(0, 400))
        status = r.choice(["Activated", "Activated", "Draft", "In Approval Process", "Expired"])
        con = g.new("Contract", {
            "ContractNumber": g.autonumber("Contract", 8), "AccountId": acc["Id"],
            "Name": "2026年度供货框架合同" if country == "CN" else "Master Supply Agreement 2026",
            "StartDate": start.isoformat(), "ContractTerm": r.choice([12, 24, 36]), "Status": status,
            "CompanySignedDate": start.isoformat() if status != "Draft" else None,
            "CustomerSignedDate": (start - timedelta(days=2)).isoformat() if status != "Draft" else None,
            "CurrencyIsoCode": acc["CurrencyIsoCode"],
            "ContractValue__c": float(round(r.randrange(100, 5000) * 1000 * _RATES[acc["CurrencyIsoCode"]], -2)),
            "OwnerId": acc["OwnerId"]}, *g.stamps())
        recalc("Contract", con)
        contracts.setdefault(acc["Id"], con)
    orders = []
    for _ in range(n):
        acc, country = r.choice(accounts)
        cur = acc["CurrencyIsoCode"]
        shipping = r.choice(["Not Shipped", "Shipped", "Delivered"])
        tracking = None
        if shipping != "Not Shipped":
            tracking = {"CN": f"SF{r.randrange(10**11, 10**12)}", "US": f"1Z{r.randrange(10**15, 10**16)}"}.get(
                country, f"JD{r.randrange(10**17, 10**18)}")
        contract = contracts.get(acc["Id"]) if r.random() < 0.6 else None
        order = g.new("Order", {
            "OrderNumber": g.autonumber("Order", 8), "AccountId": acc["Id"],
            "ContractId": contract["Id"] if contract else None,
            "EffectiveDate": (BASE_TIME.date() - timedelta(days=r.randint(0, 60))).isoformat(),
            "Status": r.choice(["Draft", "Activated", "Activated"]), "PoNumber": f"PO-2026-{r.randrange(1000, 9999)}",
            "CurrencyIsoCode": cur, "ShippingStatus__c": shipping, "TrackingNumber__c": tracking,
            "OwnerId": acc["OwnerId"]}, *g.stamps())
        lines = []
        for prod, price in r.sample(products, r.randint(1, 4)):
            item = g.new("OrderItem", {
                "OrderId": order["Id"], "OrderItemNumber": g.autonumber("OrderItem", 10), "Product2Id": prod["Id"],
                "Description": prod["Name"], "Quantity": float(r.choice([1, 2, 5, 10, 20, 50])),
                "UnitPrice": round(price * _RATES[cur], 2), "ServiceDate": order["EffectiveDate"]},
                BASE_TIME - timedelta(days=61), BASE_TIME - timedelta(days=61))
            item["SystemModstamp"] = item["LastModifiedDate"] = item["CreatedDate"] = order["CreatedDate"]
            recalc("OrderItem", item)
            lines.append(item)
        recalc("Order", order, lines)
        order["TaxAmount__c"] = round(order["TotalAmount"] * _TAX[country], 2)
        orders.append((order, acc, country))
    for _ in range(n):
        order, acc, country = r.choice(orders)
        paid = BASE_TIME - timedelta(days=r.uniform(0, 30))
        status = r.choice(["Received", "Received", "Reconciled", "Pending", "Refunded"])
        g.new("Payment__c", {
            "Name": g.autonumber("Payment__c", 6, "PAY-"), "Account__c": acc["Id"], "Order__c": order["Id"],
            "Contract__c": order["ContractId"],
            "Amount__c": round(order["TotalAmount"] + order["TaxAmount__c"], 2) if r.random() < 0.7
            else round((order["TotalAmount"] or 0) * 0.3, 2),
            "CurrencyIsoCode": order["CurrencyIsoCode"],
            "Paid_At__c": sf_datetime(paid) if status != "Pending" else None,
            "Method__c": r.choice(_METHODS[country]), "Status__c": status,
            "Reference__c": f"TRX{paid:%Y%m%d}{r.randrange(100000, 999999)}", "OwnerId": acc["OwnerId"]},
            *g.stamps())
    return {"version": 1, "objects": g.data, "serials": g.serials, "autonumbers": g.autonumbers}
