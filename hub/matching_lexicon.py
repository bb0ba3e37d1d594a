"""Word lists for name normalization: legal forms, branch suffixes, Chinese regions, industry words.

Data only (used by :mod:`hub.normalize`). Lists are ordered longest first
where a longer form contains a shorter one (股份有限公司 before 有限公司).
"""
from __future__ import annotations

# Chinese legal forms, stripped from the end of a company name (repeatedly).
CN_LEGAL_FORMS = (
    "股份有限公司", "有限责任公司", "集团有限公司", "集团股份有限公司", "有限合伙企业", "普通合伙企业",
    "个人独资企业", "个体工商户", "合伙企业", "股份合作公司", "有限公司", "股份公司", "有限合伙", "普通合伙",
    "总公司", "公司", "有限", "企业",
)

# Branch suffixes: 上海星海贸易有限公司北京分公司 -> base 上海星海贸易有限公司, branch 北京.
CN_BRANCH_SUFFIXES = ("分公司", "子公司", "支公司", "分店", "分厂", "办事处", "营业部", "分行", "支行",
                      "分部", "分中心", "经营部", "门市部", "代表处")

# Latin legal forms as token sequences (after punctuation is removed), stripped from the end.
LATIN_LEGAL_FORMS = tuple(tuple(s.split()) for s in (
    "company limited", "co limited", "co ltd", "corp ltd", "pty ltd", "pte ltd", "pvt ltd", "private limited",
    "proprietary limited", "sdn bhd", "gmbh co kg", "gmbh co kgaa", "gmbh co ohg", "ag co kg", "sp z o o",
    "sa de cv", "s de rl", "s a", "s r l", "s p a", "b v", "n v", "a s", "l l c", "l t d", "k k",
    "kabushiki kaisha", "limited", "ltd", "llc", "inc", "incorporated", "corp", "corporation", "company", "co",
    "gmbh", "mbh", "ag", "kg", "kgaa", "ohg", "ug", "se", "sa", "sas", "sarl", "srl", "spa", "bv", "nv", "pty",
    "pte", "pvt", "plc", "llp", "lp", "oy", "oyj", "ab", "as", "aps", "asa", "kk", "bhd", "jsc", "ooo", "zao",
    "kft", "ltda", "cv", "sl", "sro", "doo", "ltee",
))
LATIN_LEADING_FORMS = frozenset({"pt", "cv", "the"})
LATIN_BRANCH_WORDS = frozenset({"branch", "branches", "office", "representative", "rep", "subsidiary"})

# Provinces, autonomous regions and larger cities; a leading one is the registration region of a name.
CN_REGIONS = (
    "北京", "天津", "上海", "重庆", "河北", "山西", "辽宁", "吉林", "黑龙江", "江苏", "浙江", "安徽", "福建",
    "江西", "山东", "河南", "湖北", "湖南", "广东", "海南", "四川", "贵州", "云南", "陕西", "甘肃", "青海",
    "台湾", "内蒙古", "广西", "西藏", "宁夏", "新疆", "香港", "澳门",
    "广州", "深圳", "杭州", "南京", "苏州", "武汉", "成都", "西安", "郑州", "长沙", "沈阳", "大连", "青岛",
    "济南", "厦门", "福州", "宁波", "无锡", "合肥", "昆明", "哈尔滨", "长春", "石家庄", "太原", "南昌", "南宁",
    "贵阳", "兰州", "海口", "三亚", "呼和浩特", "乌鲁木齐", "银川", "西宁", "拉萨", "东莞", "佛山", "珠海",
    "温州", "常州", "南通", "徐州", "烟台", "潍坊", "绍兴", "嘉兴", "金华", "台州", "泉州", "中山", "惠州",
    "江门", "汕头", "扬州", "镇江", "盐城", "芜湖", "洛阳", "唐山", "保定", "廊坊", "昆山", "义乌", "威海",
    "淄博", "临沂", "济宁", "湖州", "漳州", "莆田", "绵阳", "宜昌", "襄阳", "株洲", "柳州", "桂林", "包头",
    "鄂尔多斯", "大庆", "吉林市", "秦皇岛", "邯郸", "沧州", "泰州", "连云港", "淮安", "宿迁", "丽水", "舟山",
)
# Administrative suffixes after a region name (上海市, 广东省, 广西壮族自治区 ...).
CN_REGION_SUFFIXES = ("壮族自治区", "回族自治区", "维吾尔自治区", "特别行政区", "自治区", "省", "市", "区", "县")
# Official romanizations that differ from plain toneless pinyin.
REGION_ROMAN_OVERRIDES = {"陕西": "shaanxi", "香港": "hongkong", "澳门": "macau", "内蒙古": "innermongolia"}
LATIN_PLACE_SUFFIXES = frozenset({"city", "province", "shi", "sheng", "municipality", "district", "qu", "xian",
                                  "county", "prefecture", "sar", "autonomous", "region"})

# Industry words of Chinese company names and their English renderings; trailing ones are cut from the
# distinctive core (星海贸易 -> core 星海 + trading) and translated for cross-script comparison.
CN_INDUSTRY = {
    "国际贸易": "international trading", "进出口": "import export", "电子商务": "ecommerce",
    "企业管理": "management", "人力资源": "human resources", "供应链": "supply chain", "新材料": "materials",
    "新能源": "energy", "房地产": "real estate", "自动化": "automation", "半导体": "semiconductor",
    "贸易": "trading", "商贸": "trading", "工贸": "trading", "经贸": "trading", "外贸": "trading",
    "科技": "technology", "技术": "technology", "信息": "information", "网络": "network", "软件": "software",
    "电子": "electronics", "电气": "electric", "电器": "electric", "机械": "machinery", "机电": "machinery",
    "设备": "equipment", "化工": "chemical", "化学": "chemical", "材料": "materials", "能源": "energy",
    "环保": "environmental", "环境": "environmental", "物流": "logistics", "运输": "transport",
    "实业": "industrial", "工业": "industrial", "发展": "development", "投资": "investment", "控股": "holding",
    "集团": "group", "国际": "international", "咨询": "consulting", "管理": "management", "服务": "services",
    "文化": "culture", "传媒": "media", "广告": "advertising", "教育": "education", "医药": "pharmaceutical",
    "生物": "biotech", "医疗": "medical", "器械": "instruments", "食品": "food", "餐饮": "catering",
    "农业": "agriculture", "建设": "construction", "建筑": "construction", "工程": "engineering",
    "装饰": "decoration", "置业": "property", "地产": "real estate", "开发": "development",
    "汽车": "automotive", "汽配": "auto parts", "纺织": "textile", "服装": "garment", "服饰": "apparel",
    "家具": "furniture", "印刷": "printing", "包装": "packaging", "塑料": "plastics", "金属": "metal",
    "钢铁": "steel", "五金": "hardware", "光电": "optoelectronics", "通信": "communication",
    "通讯": "communication", "数据": "data", "智能": "intelligent", "仪器": "instruments",
    "精密": "precision", "制造": "manufacturing", "制品": "products", "产品": "products", "商务": "business",
    "金融": "finance", "保险": "insurance", "证券": "securities", "酒店": "hotel", "旅游": "travel",
    "安全": "safety", "检测": "testing", "贸易商行": "trading", "商行": "trading",
}
# English industry words (and synonyms folded onto one form) that carry no identity of their own.
LATIN_SYNONYMS = {
    "tech": "technology", "technologies": "technology", "technological": "technology", "intl": "international",
    "int": "international", "holdings": "holding", "trade": "trading", "traders": "trading",
    "mfg": "manufacturing", "manufacture": "manufacturing", "svc": "services", "svcs": "services",
    "service": "services", "chemicals": "chemical", "electrics": "electric", "electrical": "electric",
    "industries": "industrial", "industry": "industrial", "ind": "industrial", "logistic": "logistics",
    "products": "products", "product": "products", "eng": "engineering", "mgmt": "management",
    "imp": "import", "exp": "export", "grp": "group", "pharma": "pharmaceutical",
    "pharmaceuticals": "pharmaceutical", "devt": "development", "dev": "development", "invest": "investment",
    "investments": "investment", "materials": "materials", "material": "materials",
}
LATIN_INDUSTRY = frozenset(w for v in CN_INDUSTRY.values() for w in v.split()) | frozenset(LATIN_SYNONYMS.values())
LATIN_STOPWORDS = frozenset({"and", "of", "the", "de", "und", "et", "y", "for"})

# Person titles and honorifics dropped from person names.
PERSON_TITLES = frozenset({"mr", "mrs", "ms", "miss", "dr", "prof", "sir", "madam", "mme", "herr", "frau",
                           "jr", "sr", "ii", "iii"})
CN_PERSON_TITLES = ("先生", "女士", "小姐", "老师", "经理", "总经理", "董事长", "总")

# Address words folded onto one form; Chinese address words translated for cross-script comparison.
ADDRESS_ABBREVIATIONS = {
    "street": "st", "str": "st", "strasse": "st", "straße": "st", "road": "rd", "avenue": "ave", "av": "ave",
    "boulevard": "blvd", "drive": "dr", "lane": "ln", "place": "pl", "court": "ct", "crescent": "cres",
    "highway": "hwy", "terrace": "tce", "parade": "pde", "circuit": "cct", "close": "cl", "square": "sq",
    "building": "bldg", "floor": "fl", "room": "rm", "suite": "ste", "unit": "unit", "apartment": "apt",
    "number": "no", "district": "dist", "north": "n", "south": "s", "east": "e", "west": "w",
    "mount": "mt", "saint": "st", "flat": "flat", "level": "lvl",
}
CN_ADDRESS_WORDS = {"大道": "ave", "路": "rd", "街": "st", "道": "rd", "巷": "ln", "弄": "ln", "号": "no",
                    "楼": "fl", "层": "fl", "室": "rm", "栋": "bldg", "座": "bldg", "幢": "bldg", "区": "dist",
                    "市": "", "省": "", "县": "county", "镇": "town", "村": "village"}

# Free mail domains: a shared domain there says nothing about the company.
FREE_MAIL = frozenset({"gmail.com", "googlemail.com", "outlook.com", "hotmail.com", "live.com", "yahoo.com",
                       "yahoo.com.cn", "icloud.com", "aol.com", "qq.com", "foxmail.com", "163.com", "126.com",
                       "yeah.net", "sina.com", "sina.cn", "sohu.com", "139.com", "aliyun.com", "gmx.de",
                       "web.de", "mail.ru", "yandex.ru", "proton.me", "protonmail.com"})
