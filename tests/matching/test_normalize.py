"""Normalization tables: the forms identity resolution compares, Chinese and international."""
from __future__ import annotations

import pytest

from hub import normalize as n


@pytest.mark.parametrize("raw, full, core, legal, branch", [
    ("上海星海贸易有限公司", "上海星海贸易", "xinghai", "有限公司", ""),
    ("上海星海贸易", "上海星海贸易", "xinghai", "", ""),
    ("上海市星海贸易有限公司", "上海星海贸易", "xinghai", "有限公司", ""),
    ("星海贸易（上海）有限公司", "上海星海贸易", "xinghai", "有限公司", ""),
    ("上海星海贸易股份有限公司", "上海星海贸易", "xinghai", "股份有限公司", ""),
    ("上海星海贸易有限责任公司", "上海星海贸易", "xinghai", "有限责任公司", ""),
    ("上海星海贸易有限公司北京分公司", "上海星海贸易", "xinghai", "有限公司", "北京"),
    ("浙江吉利控股集团有限公司", "浙江吉利控股", "jili", "集团有限公司", ""),
    ("Shanghai Xinghai Trading Co., Ltd.", "shanghai xinghai trading", "xinghai", "co ltd", ""),
    ("ＳＨＡＮＧＨＡＩ　ＸＩＮＧＨＡＩ　ＴＲＡＤＩＮＧ　ＣＯ．，ＬＴＤ．", "shanghai xinghai trading", "xinghai", "co ltd", ""),
    ("Siemens AG", "siemens", "siemens", "ag", ""),
    ("Müller GmbH & Co. KG", "müller", "müller", "gmbh co kg", ""),
    ("BHP Billiton Pty Ltd", "bhp billiton", "bhpbilliton", "pty ltd", ""),
    ("Acme Inc.", "acme", "acme", "inc", ""),
    ("ACME Corporation, Beijing Branch", "acme", "acme", "corporation", "beijing"),
    ("The Coca-Cola Company", "coca cola", "cocacola", "company", ""),
])
def test_company_names(raw: str, full: str, core: str, legal: str, branch: str) -> None:
    got = n.name(raw)
    assert (got.full, got.core, got.legal_form, got.branch) == (full, core, legal, branch)


def test_chinese_and_english_names_meet_in_latin_form() -> None:
    assert n.name("上海星海贸易有限公司").latin == n.name("Shanghai Xinghai Trading Co., Ltd.").latin


@pytest.mark.parametrize("raw, latin", [
    ("张晓明", ("zhang", "xiaoming")),
    ("Zhang Xiaoming", ("zhang", "xiaoming")),
    ("Mr. John  Smith", ("john", "smith")),
    ("SMITH, John", ("smith", "john")),
])
def test_person_names(raw: str, latin: tuple[str, ...]) -> None:
    assert n.name(raw, "person").latin == latin


def test_person_name_order_does_not_change_core() -> None:
    assert n.name("John Smith", "person").core == n.name("Smith, John", "person").core
    assert n.name("张晓明", "person").core == n.name("Xiaoming Zhang", "person").core


@pytest.mark.parametrize("raw, full, street, number", [
    ("上海市浦东新区张江路123号", "浦东新区张江路123号", "zhangjiang", "123"),
    ("北京市朝阳区建国路88号", "朝阳区建国路88号", "jianguo", "88"),
    ("123 Main Street, Apt 4", "123 main st apt 4", "main", "123"),
    ("１２３ Main St.", "123 main st", "main", "123"),
])
def test_addresses(raw: str, full: str, street: str, number: str) -> None:
    a = n.address(raw)
    assert (a.full, a.street, a.number) == (full, street, number)


@pytest.mark.parametrize("raw, want", [
    ("上海市", "shanghai"), ("Shanghai", "shanghai"), ("SHANGHAI SHI", "shanghai"), ("广东省", "guangdong"),
    ("Guangdong Province", "guangdong"), ("西安", "xian"), ("Xi'an", "xian"), ("陕西省", "shaanxi"),
])
def test_places(raw: str, want: str) -> None:
    assert n.place(raw) == want


@pytest.mark.parametrize("raw, want", [
    ("13800138000", "+8613800138000"), ("+86 138 0013 8000", "+8613800138000"), ("１３８００１３８０００", "+8613800138000"),
    ("021-5555 1234", "+862155551234"), ("(021)55551234", "+862155551234"), ("+1 (415) 555-2671", "+14155552671"),
    ("+49 30 901820", "+4930901820"),
])
def test_phones(raw: str, want: str) -> None:
    assert n.phone(raw) == want


def test_phone_region_comes_from_the_record() -> None:
    assert n.phone("(415) 555-2671", "US") == "+14155552671"


@pytest.mark.parametrize("raw, want", [
    ("Li.Na+crm@Example.COM", "li.na@example.com"), ("mailto:SALES@xinghai.cn", "sales@xinghai.cn"),
    ("ｓａｌｅｓ＠ｘｉｎｇｈａｉ．ｃｎ", "sales@xinghai.cn"),
])
def test_emails(raw: str, want: str) -> None:
    assert n.email(raw) == want


@pytest.mark.parametrize("raw, want, valid", [
    ("91310000MA1FL1234X", "91310000MA1FL1234X", None),
    (" 9131 0000-ma1f l123 4x", "91310000MA1FL1234X", None),
    ("９１３１００００ＭＡ１ＦＬ１２３４Ｘ", "91310000MA1FL1234X", None),
    ("91110108551385082Q", "91110108551385082Q", True),     # a well-formed USCC (check character right)
    ("91110108551385082A", "91110108551385082A", False),    # the same with a wrong check character
    ("DE 136 695 976", "DE136695976", True),
    ("de136695976", "DE136695976", True),
    ("FR 61 954 506 077", "FR61954506077", True),
])
def test_tax_ids(raw: str, want: str, valid: bool | None) -> None:
    assert n.tax_id(raw) == want
    if valid is not None:
        assert n.tax_id_valid(want) is valid


@pytest.mark.parametrize("raw, want", [("２０００００", "200000"), ("sw1a 1aa", "SW1A1AA"), ("10115-", "10115"),
                                       ("94105-1234", "941051234")])
def test_postal_codes(raw: str, want: str) -> None:
    assert n.postal_code(raw) == want


@pytest.mark.parametrize("field, a, b", [
    ("tax_id", "91310000MA1FL1234X", "9131 0000 ma1f l123 4x"),
    ("email", "Sales@XingHai.cn", "sales@xinghai.cn"),
    ("phone", "+8613800138000", "138-0013-8000"),
    ("code", "C-001 ", "c-001"),
])
def test_exact_keys_ignore_spelling(field: str, a: str, b: str) -> None:
    assert n.exact_key(field, a) == n.exact_key(field, b) is not None


def test_soundex() -> None:
    assert n.soundex("robert") == n.soundex("rupert") == "r163"
    assert n.soundex("tymczak") == "t522"
