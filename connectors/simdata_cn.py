"""Deterministic, realistic Chinese master data for the simulators (Kingdee and Yonyou).

Company names, USCC tax ids with valid check digits (GB 32100-2015; the
organisation-code part follows GB 11714), +86 phones, provinces with their
GB/T 2260 codes, cities, street addresses and postal codes. Everything comes
from the ``random.Random`` passed in, so a seed gives the same data set.
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta

USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
_ORG_WEIGHTS = (3, 7, 9, 10, 5, 8, 4, 2)

# Province-level divisions, GB/T 2260 codes (also used as the province FNumber in the Kingdee simulator).
PROVINCES: dict[str, str] = {
    "110000": "北京市", "120000": "天津市", "130000": "河北省", "140000": "山西省", "150000": "内蒙古自治区",
    "210000": "辽宁省", "220000": "吉林省", "230000": "黑龙江省", "310000": "上海市", "320000": "江苏省",
    "330000": "浙江省", "340000": "安徽省", "350000": "福建省", "360000": "江西省", "370000": "山东省",
    "410000": "河南省", "420000": "湖北省", "430000": "湖南省", "440000": "广东省", "450000": "广西壮族自治区",
    "460000": "海南省", "500000": "重庆市", "510000": "四川省", "520000": "贵州省", "530000": "云南省",
    "540000": "西藏自治区", "610000": "陕西省", "620000": "甘肃省", "630000": "青海省", "640000": "宁夏回族自治区",
    "650000": "新疆维吾尔自治区", "710000": "台湾省", "810000": "香港特别行政区", "820000": "澳门特别行政区",
}


@dataclass(frozen=True)
class City:
    """A city with the codes the generated records need."""

    province_code: str
    name: str
    division: str      # district-level GB/T 2260 code used in the USCC
    postal: str
    area_code: str     # telephone area code without the leading 0
    districts: tuple[str, ...]
    roads: tuple[str, ...]


CITIES: tuple[City, ...] = (
    City("310000", "上海市", "310115", "200120", "21", ("浦东新区", "徐汇区", "闵行区"), ("张江路", "世纪大道", "漕溪北路", "虹梅路")),
    City("110000", "北京市", "110108", "100080", "10", ("海淀区", "朝阳区", "东城区"), ("中关村大街", "建国路", "知春路", "学院路")),
    City("440000", "深圳市", "440305", "518057", "755", ("南山区", "福田区", "宝安区"), ("科技园路", "深南大道", "福华路")),
    City("440000", "广州市", "440106", "510630", "20", ("天河区", "番禺区", "黄埔区"), ("天河路", "中山大道", "科学大道")),
    City("330000", "杭州市", "330106", "310012", "571", ("西湖区", "滨江区", "余杭区"), ("文三路", "江南大道", "文一西路")),
    City("320000", "苏州市", "320505", "215011", "512", ("虎丘区", "工业园区", "吴中区"), ("长江路", "星湖街", "金鸡湖大道")),
    City("320000", "南京市", "320106", "210008", "25", ("鼓楼区", "江宁区", "建邺区"), ("中山北路", "江东中路", "双龙大道")),
    City("510000", "成都市", "510107", "610041", "28", ("武侯区", "高新区", "锦江区"), ("天府大道", "人民南路", "科华北路")),
    City("420000", "武汉市", "420111", "430074", "27", ("洪山区", "江汉区", "东湖高新区"), ("珞喻路", "解放大道", "光谷大道")),
    City("370000", "青岛市", "370212", "266071", "532", ("崂山区", "市南区", "黄岛区"), ("香港中路", "海尔路", "长江中路")),
    City("120000", "天津市", "120116", "300457", "22", ("滨海新区", "南开区", "河西区"), ("第三大街", "卫津路", "友谊路")),
    City("350000", "厦门市", "350203", "361001", "592", ("思明区", "湖里区", "集美区"), ("鹭江道", "湖滨南路", "嘉禾路")),
)

# 字号 (trade names) with the pinyin used for e-mail domains.
TRADE_NAMES: tuple[tuple[str, str], ...] = (
    ("华信", "huaxin"), ("德力", "deli"), ("恒通", "hengtong"), ("瑞丰", "ruifeng"), ("金桥", "jinqiao"),
    ("博远", "boyuan"), ("东方", "dongfang"), ("鼎盛", "dingsheng"), ("海润", "hairun"), ("天诚", "tiancheng"),
    ("长虹", "changhong"), ("联创", "lianchuang"), ("新锐", "xinrui"), ("宏达", "hongda"), ("星河", "xinghe"),
    ("中科", "zhongke"), ("安捷", "anjie"), ("永盛", "yongsheng"), ("汇通", "huitong"), ("明德", "mingde"),
    ("嘉禾", "jiahe"), ("泰和", "taihe"), ("凯旋", "kaixuan"), ("万达", "wanda"), ("北辰", "beichen"),
)

INDUSTRIES: tuple[tuple[str, str], ...] = (
    ("电子科技", "tech"), ("贸易", "trade"), ("实业", "group"), ("机械制造", "machinery"), ("医药", "pharma"),
    ("食品", "food"), ("物流", "logistics"), ("建材", "building"), ("化工", "chem"), ("信息技术", "it"),
    ("新能源", "energy"), ("纺织", "textile"),
)

MOBILE_PREFIXES = ("135", "136", "138", "139", "150", "158", "186", "188", "177", "199")

PRODUCTS: tuple[tuple[str, str, float], ...] = (
    ("工业控制器 KZ-200", "台", 3280.0), ("伺服电机 SM-750W", "台", 1450.0), ("不锈钢法兰 DN50", "件", 86.5),
    ("PLC 扩展模块 EM231", "个", 920.0), ("光电传感器 PS-18", "个", 135.0), ("变频器 VF-5.5kW", "台", 2680.0),
    ("铜芯电缆 YJV-3x16", "米", 42.8), ("液压油缸 HC-63", "件", 1180.0), ("触摸屏 HMI-10", "台", 2150.0),
    ("轴承 6205-2RS", "个", 18.6), ("减速机 RV-50", "台", 860.0), ("气动阀 SV-220", "个", 268.0),
)


def org_code_check(body: str) -> str:
    """GB 11714 check character for an 8-character organisation code body."""
    total = sum(int(c, 36) * w for c, w in zip(body, _ORG_WEIGHTS))  # A=10 ... Z=35
    check = 11 - total % 11
    return "X" if check == 10 else "0" if check == 11 else str(check)


def uscc_check(first17: str) -> str:
    """GB 32100-2015 check character of a USCC (the 18th character)."""
    total = sum(USCC_ALPHABET.index(c) * w for c, w in zip(first17, _USCC_WEIGHTS))
    return USCC_ALPHABET[(31 - total % 31) % 31]


def make_uscc(rng: random.Random, division: str) -> str:
    """A USCC for a company registered by SAIC (9) as an enterprise (1) in ``division``."""
    body = "".join(rng.choice("0123456789ABCDEFGHJKLMNPQRTUWXY") for _ in range(8))
    first17 = "91" + division + body + org_code_check(body)
    return first17 + uscc_check(first17)


def mobile(rng: random.Random) -> str:
    """A mainland mobile number, +86 and 11 digits."""
    return f"+86 {rng.choice(MOBILE_PREFIXES)}{rng.randint(0, 99999999):08d}"


def landline(rng: random.Random, city: City) -> str:
    """A fixed-line number of ``city``: +86, area code, local number."""
    digits = 7 if city.area_code == "592" else 8    # 厦门 keeps 7-digit local numbers
    first = str(rng.randint(2, 8))
    rest = "".join(str(rng.randint(0, 9)) for _ in range(digits - 1))
    return f"+86 {city.area_code} {first}{rest}"


@dataclass(frozen=True)
class Company:
    """One generated company: the customer master data both simulators serve."""

    name: str
    short_name: str
    tax_id: str
    phone: str
    email: str
    city: City
    address: str

    @property
    def province_code(self) -> str:
        return self.city.province_code

    @property
    def province(self) -> str:
        return PROVINCES[self.city.province_code]


def company(rng: random.Random, index: int) -> Company:
    """The ``index``-th company of a data set; names stay unique by suffixing a branch when needed."""
    city = rng.choice(CITIES)
    trade, pinyin = TRADE_NAMES[index % len(TRADE_NAMES)]
    industry, ind_en = INDUSTRIES[(index // len(TRADE_NAMES) + rng.randint(0, len(INDUSTRIES) - 1)) % len(INDUSTRIES)]
    city_short = city.name.rstrip("市")
    round_no = index // (len(TRADE_NAMES) * len(INDUSTRIES))
    suffix = "股份有限公司" if rng.random() < 0.25 else "有限公司"
    name = f"{city_short}{trade}{industry}{suffix}"
    if round_no:
        name = f"{city_short}{trade}{industry}{suffix}第{round_no + 1}分公司"
    district = rng.choice(city.districts)
    address = f"{district}{rng.choice(city.roads)}{rng.randint(1, 999)}号"
    if rng.random() < 0.4:
        address += f"{rng.randint(1, 30)}楼"
    phone = mobile(rng) if rng.random() < 0.45 else landline(rng, city)
    return Company(
        name=name, short_name=f"{trade}{industry[:2]}", tax_id=make_uscc(rng, city.division), phone=phone,
        email=f"{rng.choice(('sales', 'info', 'finance', 'service'))}@{pinyin}-{ind_en}{index}.com.cn",
        city=city, address=address)


def timestamp_between(rng: random.Random, start: datetime, end: datetime) -> datetime:
    """A local timestamp with millisecond precision between ``start`` and ``end``."""
    span_ms = int((end - start).total_seconds() * 1000)
    return start + timedelta(milliseconds=rng.randint(0, span_ms))
