"""The transform registry and every shipped transform, with Chinese and international values."""
from __future__ import annotations

import pytest

from hub import transforms
from hub.errors import MappingError
from hub.transforms import get_transform, known_transforms, transform

REQUIRED = {"strip", "upper", "lower", "collapse_spaces", "email", "phone_e164", "tax_id_cn", "vat",
            "country_iso2", "currency", "fullwidth_to_halfwidth", "postal_code"}


def run(spec: str, value: str) -> str | None:
    return get_transform(spec)(value)


def test_known_transforms_sorted_and_complete() -> None:
    names = known_transforms()
    assert names == sorted(names)
    assert REQUIRED <= set(names)


def test_registering_a_name_twice_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(transforms, "_REGISTRY", dict(transforms._REGISTRY))

    @transform("reverse_for_test")
    def reverse(value: str) -> str:
        return value[::-1]

    assert run("reverse_for_test", "abc") == "cba"
    with pytest.raises(ValueError, match="reverse_for_test.*registered twice"):
        transform("reverse_for_test")(lambda value: value)
    with pytest.raises(ValueError, match="registered twice"):
        transform("strip")(lambda value: value)


def test_unknown_transform_lists_known_names() -> None:
    with pytest.raises(ValueError, match=r"unknown transform 'phone164'; known: collapse_spaces, .*strip"):
        get_transform("phone164")


def test_arguments_are_checked() -> None:
    with pytest.raises(ValueError, match="takes no argument"):
        get_transform("strip:x")
    with pytest.raises(ValueError, match="unknown phone region 'XX'"):
        get_transform("phone_e164:XX")
    with pytest.raises(ValueError, match="no postal code rule for 'ZZ'"):
        get_transform("postal_code:ZZ")


@pytest.mark.parametrize("spec,value,expected", [
    ("strip", "  ACME 有限公司\u3000", "ACME 有限公司"),
    ("upper", "91110000600037341l", "91110000600037341L"),
    ("upper", "straße", "STRASSE"),
    ("lower", "Zhang.SAN@Example.CN", "zhang.san@example.cn"),
    ("collapse_spaces", "  上海市\u3000 浦东新区   世纪大道 100号 ", "上海市 浦东新区 世纪大道 100号"),
    ("collapse_spaces", "Unter   den\tLinden  77", "Unter den Linden 77"),
    ("fullwidth_to_halfwidth", "ＡＢＣ－１２３\u3000（北京）", "ABC-123 (北京)"),
    ("fullwidth_to_halfwidth", "plain ascii", "plain ascii"),
])
def test_text_transforms(spec: str, value: str, expected: str) -> None:
    assert run(spec, value) == expected


@pytest.mark.parametrize("value,expected", [
    ("  Zhang.San@Example.CN ", "zhang.san@example.cn"),
    ("ｌｉ.ｌｅｉ＠ｅｘａｍｐｌｅ．ｃｏｍ", "li.lei@example.com"),   # full-width input method
    ("张三@例子.中国", "张三@例子.中国"),
    ("Anna.Schmidt+crm@Beispiel.DE", "anna.schmidt+crm@beispiel.de"),
])
def test_email_valid(value: str, expected: str) -> None:
    assert run("email", value) == expected


@pytest.mark.parametrize("value", ["zhangsan.example.com", "a@b", "a b@example.com", "x@@example.com",
                                   "王五@公司"])
def test_email_invalid(value: str) -> None:
    with pytest.raises(MappingError, match="invalid e-mail"):
        run("email", value)


@pytest.mark.parametrize("spec,value,expected", [
    ("phone_e164", "021-5555 0101", "+862155550101"),
    ("phone_e164", "+86 138 0013 8000", "+8613800138000"),
    ("phone_e164", "１３８ ００１３ ８０００", "+8613800138000"),
    ("phone_e164", "0755-8888 6666", "+8675588886666"),
    ("phone_e164:CN", "13800138000", "+8613800138000"),
    ("phone_e164:US", "(415) 555-2671", "+14155552671"),
    ("phone_e164", "+1 415 555 2671", "+14155552671"),       # an explicit country code wins
    ("phone_e164:DE", "030 901820", "+4930901820"),
    ("phone_e164:JP", "03-1234-5678", "+81312345678"),
    ("phone_e164", "+44 20 7946 0958", "+442079460958"),
])
def test_phone_e164_valid(spec: str, value: str, expected: str) -> None:
    assert run(spec, value) == expected


@pytest.mark.parametrize("spec,value", [
    ("phone_e164", "12345"), ("phone_e164", "abc"), ("phone_e164", "138 0013"),
    ("phone_e164:US", "(415) 555-26"), ("phone_e164", "+1 000 555 2671"),
])
def test_phone_e164_invalid(spec: str, value: str) -> None:
    with pytest.raises(MappingError, match="invalid phone number"):
        run(spec, value)


@pytest.mark.parametrize("value", ["91110000600037341L", "91110000600037341l", "9111 0000 6000 3734 1L",
                                   "９１１１００００６０００３７３４１Ｌ"])
def test_tax_id_cn_valid(value: str) -> None:
    assert run("tax_id_cn", value) == "91110000600037341L"


@pytest.mark.parametrize("value", ["91110000600037341A", "9111000060003734", "DE136695976", "9111000060003734IL"])
def test_tax_id_cn_invalid(value: str) -> None:
    with pytest.raises(MappingError, match="invalid unified social credit code"):
        run("tax_id_cn", value)


@pytest.mark.parametrize("value,expected", [
    ("DE 136 695 976", "DE136695976"), ("FR 61 954 506 077", "FR61954506077"),
    ("NL004495445B01", "NL004495445B01"), ("de136695976", "DE136695976"),
])
def test_vat_valid(value: str, expected: str) -> None:
    assert run("vat", value) == expected


@pytest.mark.parametrize("value", ["DE136695978", "CN123", "91110000600037341L", "XX123456789"])
def test_vat_invalid(value: str) -> None:
    with pytest.raises(MappingError, match="invalid EU VAT id"):
        run("vat", value)


@pytest.mark.parametrize("value,expected", [
    ("中国", "CN"), ("中華人民共和國", "CN"), ("美国", "US"), ("德国", "DE"), ("日本", "JP"), ("英国", "GB"),
    ("香港", "HK"), ("中国香港", "HK"), ("台湾", "TW"), ("韩国", "KR"), ("新加坡", "SG"),
    ("China", "CN"), ("Germany", "DE"), ("Deutschland", "DE"), ("Allemagne", "DE"),
    ("United States of America", "US"), ("usa", "US"), ("UK", "GB"), ("United Kingdom", "GB"),
    ("DEU", "DE"), ("chn", "CN"), ("cn", "CN"), ("US", "US"), ("  viet nam ", "VN"),
])
def test_country_iso2_valid(value: str, expected: str) -> None:
    assert run("country_iso2", value) == expected


@pytest.mark.parametrize("value", ["Atlantis", "火星", "XX", "Middle Earth"])
def test_country_iso2_invalid(value: str) -> None:
    with pytest.raises(MappingError, match="unknown country"):
        run("country_iso2", value)


@pytest.mark.parametrize("value,expected", [
    ("CNY", "CNY"), ("cny", "CNY"), ("RMB", "CNY"), ("rmb", "CNY"), ("人民币", "CNY"), (" usd ", "USD"),
    ("EUR", "EUR"), ("jpy", "JPY"), ("港币", "HKD"), ("ＵＳＤ", "USD"),
])
def test_currency_valid(value: str, expected: str) -> None:
    assert run("currency", value) == expected


@pytest.mark.parametrize("value", ["ABC", "dollar", "元宝", "US"])
def test_currency_invalid(value: str) -> None:
    with pytest.raises(MappingError, match="unknown currency"):
        run("currency", value)


@pytest.mark.parametrize("spec,value,expected", [
    ("postal_code", "200000", "200000"), ("postal_code", "２０００００", "200000"),
    ("postal_code:CN", " 100101 ", "100101"), ("postal_code:US", "94105-1234", "94105-1234"),
    ("postal_code:GB", "sw1a1aa", "SW1A 1AA"), ("postal_code:GB", "SW1A  1AA", "SW1A 1AA"),
    ("postal_code:JP", "1000001", "100-0001"), ("postal_code:DE", "10117", "10117"),
    ("postal_code", "ec1a 1bb", "EC1A 1BB"),
])
def test_postal_code_valid(spec: str, value: str, expected: str) -> None:
    assert run(spec, value) == expected


@pytest.mark.parametrize("spec,value", [
    ("postal_code:CN", "20000"), ("postal_code:CN", "2000001"), ("postal_code:US", "9410"),
    ("postal_code", "12#45"), ("postal_code", "上海市"), ("postal_code:DE", "1011A"),
])
def test_postal_code_invalid(spec: str, value: str) -> None:
    with pytest.raises(MappingError, match="invalid postal code"):
        run(spec, value)


@pytest.mark.parametrize("name", sorted(REQUIRED))
def test_transforms_are_idempotent_on_their_output(name: str) -> None:
    """Outbound writes canonical values; reading them back through the same transform must not change them."""
    samples = {
        "email": "Zhang.San@Example.CN", "phone_e164": "021-5555 0101", "tax_id_cn": "9111 0000 6000 3734 1l",
        "vat": "DE 136 695 976", "country_iso2": "中国", "currency": "rmb", "postal_code": "sw1a 1aa",
    }
    once = run(name, samples.get(name, "  Ａ  b\u3000C "))
    assert once is not None
    assert run(name, once) == once


@pytest.mark.parametrize("value, expected", [
    ("上海", "上海市"), ("上海市", "上海市"), ("Shanghai", "上海市"), ("shanghai shi", "上海市"), ("Beijing City", "北京市"),
    ("Guangdong Province", "广东省"), ("广东", "广东省"), ("CN-GD", "广东省"), ("  四川 ", "四川省"),
    ("Shaanxi", "陕西省"), ("Shanxi", "山西省"), ("Inner Mongolia", "内蒙古自治区"), ("宁夏", "宁夏回族自治区"),
    ("Xinjiang Uygur", "新疆维吾尔自治区"), ("Tibet", "西藏自治区"), ("Hong Kong", "香港特别行政区"),
    ("Macau", "澳门特别行政区"), ("广西", "广西壮族自治区"),
    # other countries' regions, and two-letter codes that are also US states (SC: Sichuan, South Carolina)
    ("Bayern", "Bayern"), ("California", "California"), ("SC", "SC"), ("", None),
])
def test_province_cn_gives_one_spelling_of_a_chinese_province(value: str, expected: str | None) -> None:
    assert get_transform("province_cn")(value) == expected
