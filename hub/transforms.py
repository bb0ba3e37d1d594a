"""Named, pure value transforms used by mapping files (SPEC section 4).

A transform takes the source value as a string and returns the normalized
string, or None for "no value". Invalid input raises
:class:`hub.errors.MappingError`; the mapping engine adds the field name.
Some transforms take one argument, written after a colon in the mapping
(``phone_e164:US``); it is checked when the mapping is loaded.
"""
from __future__ import annotations

import inspect
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Callable

from hub.errors import MappingError

TransformFunc = Callable[[str], "str | None"]


@dataclass(frozen=True)
class TransformDef:
    """One registered transform: the function, and whether/how it takes an argument."""

    name: str
    func: Callable[..., "str | None"]
    takes_arg: bool
    check_arg: Callable[[str], None] | None = None


# Filled at import time by the decorators below and never changed afterwards.
_REGISTRY: dict[str, TransformDef] = {}


def transform(name: str, *, check_arg: Callable[[str], None] | None = None) -> Callable:
    """Register a function under ``name``.

    The function takes the value (str) and, optionally, one argument string
    as a second parameter with a default.

    Args:
        name: the name mapping files use.
        check_arg: raises ValueError for an argument that cannot work (called at load time).

    Raises:
        ValueError: the name is already registered.
    """
    def register(func: Callable[..., "str | None"]) -> Callable[..., "str | None"]:
        if name in _REGISTRY:
            raise ValueError(f"transform '{name}' is registered twice "
                             f"({_REGISTRY[name].func.__module__}.{_REGISTRY[name].func.__qualname__} "
                             f"and {func.__module__}.{func.__qualname__})")
        takes_arg = len(inspect.signature(func).parameters) > 1
        _REGISTRY[name] = TransformDef(name, func, takes_arg, check_arg)
        return func
    return register


def known_transforms() -> list[str]:
    """The registered transform names, sorted."""
    return sorted(_REGISTRY)


def get_transform(spec: str) -> TransformFunc:
    """Resolve ``name`` or ``name:arg`` to a one-argument function.

    Raises:
        ValueError: unknown name, or an argument the transform does not take or accept.
    """
    name, sep, arg = spec.partition(":")
    name = name.strip()
    tdef = _REGISTRY.get(name)
    if tdef is None:
        raise ValueError(f"unknown transform '{name}'; known: {', '.join(known_transforms())}")
    if not sep:
        return tdef.func
    arg = arg.strip()
    if not tdef.takes_arg:
        raise ValueError(f"transform '{name}' takes no argument (got '{arg}')")
    if tdef.check_arg is not None:
        tdef.check_arg(arg)
    func = tdef.func

    def bound(value: str) -> str | None:
        return func(value, arg)
    bound.__name__ = f"{name}:{arg}"
    return bound


# ---- text ---------------------------------------------------------------------------------------

_FULLWIDTH = {cp: cp - 0xFEE0 for cp in range(0xFF01, 0xFF5F)}
_FULLWIDTH[0x3000] = 0x20          # ideographic space
_WS = re.compile(r"\s+")


@transform("strip")
def strip(value: str) -> str | None:
    """Remove leading and trailing whitespace (including the ideographic space)."""
    return value.strip()


@transform("upper")
def upper(value: str) -> str | None:
    """Upper-case."""
    return value.upper()


@transform("lower")
def lower(value: str) -> str | None:
    """Lower-case."""
    return value.lower()


@transform("collapse_spaces")
def collapse_spaces(value: str) -> str | None:
    """Collapse every whitespace run to one space and strip the ends."""
    return _WS.sub(" ", value).strip()


@transform("fullwidth_to_halfwidth")
def fullwidth_to_halfwidth(value: str) -> str | None:
    """Turn full-width ASCII forms (Ａ１＠，) and the ideographic space into their ASCII forms.

    Chinese input methods produce these in codes, phones and e-mail addresses.
    """
    return value.translate(_FULLWIDTH)


# ---- contact ------------------------------------------------------------------------------------

_EMAIL = re.compile(r"^[^@\s]+@[^@\s.]+(\.[^@\s.]+)+$")


@transform("email")
def email(value: str) -> str | None:
    """Lower-case an e-mail address and check its shape (local@domain.tld)."""
    text = value.translate(_FULLWIDTH).strip().lower()
    if not text:
        return None
    if _EMAIL.match(text) is None:
        raise MappingError(f"invalid e-mail address '{value}'")
    return text


def _check_region(arg: str) -> None:
    import phonenumbers
    if arg.upper() not in phonenumbers.SUPPORTED_REGIONS:
        raise ValueError(f"unknown phone region '{arg}' (use an ISO 3166 alpha-2 code such as CN, US)")


@transform("phone_e164", check_arg=_check_region)
def phone_e164(value: str, region: str = "CN") -> str | None:
    """Format a phone number as E.164 (+8613800138000); ``region`` is for numbers without +country."""
    import phonenumbers
    text = value.translate(_FULLWIDTH).strip()
    if not text:
        return None
    try:
        number = phonenumbers.parse(text, region.upper())
    except phonenumbers.NumberParseException as exc:
        raise MappingError(f"invalid phone number '{value}': {exc}") from None
    if not phonenumbers.is_valid_number(number):
        raise MappingError(f"invalid phone number '{value}' (region {region.upper()})")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


# ---- tax ids ------------------------------------------------------------------------------------

@transform("tax_id_cn")
def tax_id_cn(value: str) -> str | None:
    """Validate a Chinese unified social credit code (统一社会信用代码, 18 characters), upper, no spaces."""
    from stdnum.cn import uscc
    from stdnum.exceptions import ValidationError
    text = value.translate(_FULLWIDTH).strip()
    if not text:
        return None
    try:
        return uscc.validate(text).upper()
    except ValidationError as exc:
        raise MappingError(f"invalid unified social credit code '{value}': {exc}") from None


@transform("vat")
def vat(value: str) -> str | None:
    """Validate an EU VAT id (DE136695976) and return its compact form."""
    from stdnum.eu import vat as eu_vat
    from stdnum.exceptions import ValidationError
    text = value.translate(_FULLWIDTH).strip()
    if not text:
        return None
    try:
        return eu_vat.validate(text)
    except ValidationError as exc:
        raise MappingError(f"invalid EU VAT id '{value}': {exc}") from None


# ---- codes --------------------------------------------------------------------------------------

def _norm_name(text: str) -> str:
    return _WS.sub(" ", text.translate(_FULLWIDTH)).strip().casefold()


_COUNTRY_ALIASES = {
    "中华人民共和国": "CN", "中國": "CN", "中国大陆": "CN", "大陆": "CN", "PRC": "CN",
    "P.R.C.": "CN", "P.R. China": "CN", "Mainland China": "CN",
    "香港": "HK", "中国香港": "HK", "中國香港": "HK", "Hong Kong SAR": "HK",
    "澳门": "MO", "中国澳门": "MO", "澳門": "MO", "Macao": "MO", "Macau": "MO",
    "台湾": "TW", "中国台湾": "TW", "臺灣": "TW", "台灣": "TW", "Taiwan": "TW",
    "USA": "US", "U.S.": "US", "U.S.A.": "US", "America": "US", "美國": "US",
    "UK": "GB", "U.K.": "GB", "Great Britain": "GB", "Britain": "GB", "England": "GB", "英國": "GB",
    "South Korea": "KR", "Korea": "KR", "韩国": "KR", "韓國": "KR", "North Korea": "KP", "朝鲜": "KP",
    "Russia": "RU", "俄罗斯": "RU", "Vietnam": "VN", "越南": "VN", "Iran": "IR", "Syria": "SY",
    "Laos": "LA", "Bolivia": "BO", "Venezuela": "VE", "Tanzania": "TZ", "Moldova": "MD",
    "Czech Republic": "CZ", "Holland": "NL", "德國": "DE", "日本国": "JP",
}
# Languages whose country names are recognised (pycountry's gettext catalogues).
_COUNTRY_LANGS = ("zh_CN", "zh_TW", "zh_HK", "ja", "ko", "de", "fr", "es", "it", "pt", "nl", "ru")


@lru_cache(maxsize=1)
def _country_table() -> dict[str, str]:
    """Casefolded name/code -> alpha-2; built once, on first use."""
    import gettext

    import pycountry
    table: dict[str, str] = {}

    def add(name: str | None, code: str) -> None:
        if name:
            table.setdefault(_norm_name(name), code)   # earlier (more authoritative) sources win

    countries = list(pycountry.countries)
    for c in countries:
        add(c.alpha_2, c.alpha_2)
    for c in countries:
        add(c.alpha_3, c.alpha_2)
    for name, code in _COUNTRY_ALIASES.items():
        add(name, code)
    for c in countries:
        for attr in ("name", "common_name", "official_name"):
            add(getattr(c, attr, None), c.alpha_2)
    for lang in _COUNTRY_LANGS:
        try:
            catalogue = gettext.translation("iso3166-1", pycountry.LOCALES_DIR, languages=[lang])
        except OSError:
            continue
        for c in countries:
            for attr in ("name", "common_name", "official_name"):
                name = getattr(c, attr, None)
                if name:
                    add(catalogue.gettext(name), c.alpha_2)
    return table


@transform("country_iso2")
def country_iso2(value: str) -> str | None:
    """A country name (English, Chinese and others), alpha-3 or alpha-2 code -> ISO 3166-1 alpha-2."""
    key = _norm_name(value)
    if not key:
        return None
    code = _country_table().get(key)
    if code is None:
        raise MappingError(f"unknown country '{value}'")
    return code


# ---- Chinese provinces ----------------------------------------------------------------------------

# what pycountry's Chinese catalogue lacks, and English names its subdivision names do not hold
_PROVINCE_FIXES = {"CN-NX": "宁夏回族自治区"}
_PROVINCE_ALIASES = {"innermongolia": "CN-NM", "tibet": "CN-XZ", "macau": "CN-MO", "澳門": "CN-MO",
                     "臺灣": "CN-TW", "台灣": "CN-TW"}
# a kind of division written after the name ("Guangdong Province", "上海市"), in normalized form
_DIVISION_WORD = re.compile(r"(province|sheng|municipality|city|shi|autonomousregion|zizhiqu|"
                            r"specialadministrativeregion|sar|省|市|自治区|特别行政区)$")
_PINYIN_KIND = {"sheng", "shi", "zizhiqu", "sar", "zhuangzu", "huizu", "uygur"}


def _place_key(text: str) -> str:
    return re.sub(r"[\s\-_'’.·]", "", text.translate(_FULLWIDTH)).casefold()


@lru_cache(maxsize=1)
def _province_table() -> dict[str, str]:
    """Normalized spelling -> the official Chinese name (GB/T 2260) of each province-level division:
    ISO 3166-2 code (CN-GD), Chinese full and short name (广东省, 广东), pinyin (Guangdong Sheng, Guangdong)."""
    import gettext

    import pycountry
    try:
        chinese = gettext.translation("iso3166-2", pycountry.LOCALES_DIR, languages=["zh_CN"]).gettext
    except OSError:
        chinese = str
    by_code: dict[str, str] = {}
    table: dict[str, str] = {}
    for sub in pycountry.subdivisions.get(country_code="CN") or ():
        full = _PROVINCE_FIXES.get(sub.code) or chinese(sub.name)
        by_code[sub.code] = full
        short = re.sub(r"(壮族|回族|维吾尔)$", "", _DIVISION_WORD.sub("", full))
        pinyin = " ".join(w for w in sub.name.split() if w.casefold() not in _PINYIN_KIND)
        named = " ".join(w for w in sub.name.split() if w.casefold() not in ("sheng", "shi", "zizhiqu", "sar"))
        for spelling in (sub.code, full, short, sub.name, pinyin, named):
            table.setdefault(_place_key(spelling), full)
    for alias, code in _PROVINCE_ALIASES.items():
        if code in by_code:
            table.setdefault(_place_key(alias), by_code[code])
    return table


@transform("province_cn")
def province_cn(value: str) -> str | None:
    """A Chinese province, municipality or region however written (上海, Shanghai, Guangdong Province,
    CN-GD) -> its official Chinese name (上海市, 广东省). Anything else (Bayern, California) is kept as it
    is: a province field holds other countries' regions too."""
    text = _WS.sub(" ", value.translate(_FULLWIDTH)).strip()
    if not text:
        return None
    key = _place_key(text)
    table = _province_table()
    found = table.get(key) or table.get(_DIVISION_WORD.sub("", key))
    return found or text


_CURRENCY_ALIASES = {
    "RMB": "CNY", "人民币": "CNY", "人民幣": "CNY", "元": "CNY", "CNH": "CNY",
    "美元": "USD", "US$": "USD", "欧元": "EUR", "€": "EUR", "日元": "JPY", "港币": "HKD",
    "港元": "HKD", "港幣": "HKD", "英镑": "GBP", "£": "GBP",
}


@lru_cache(maxsize=1)
def _currency_codes() -> frozenset[str]:
    import pycountry
    return frozenset(c.alpha_3 for c in pycountry.currencies)


@transform("currency")
def currency(value: str) -> str | None:
    """An ISO 4217 code (any case) or a common alias (RMB, 人民币) -> the upper-case ISO code."""
    text = value.translate(_FULLWIDTH).strip()
    if not text:
        return None
    code = _CURRENCY_ALIASES.get(text.upper(), _CURRENCY_ALIASES.get(text, text.upper()))
    if code not in _currency_codes():
        raise MappingError(f"unknown currency '{value}' (expected an ISO 4217 code such as CNY, USD)")
    return code


_POSTAL_SHAPES = {
    "CN": re.compile(r"^\d{6}$"),
    "US": re.compile(r"^\d{5}(-\d{4})?$"),
    "DE": re.compile(r"^\d{5}$"),
    "FR": re.compile(r"^\d{5}$"),
    "JP": re.compile(r"^\d{3}-\d{4}$"),
    "GB": re.compile(r"^[A-Z]{1,2}\d[A-Z\d]? \d[A-Z]{2}$"),
}
_POSTAL_ANY = re.compile(r"^[A-Z0-9][A-Z0-9 -]{1,9}$")


def _check_postal_country(arg: str) -> None:
    if arg.upper() not in _POSTAL_SHAPES:
        raise ValueError(f"no postal code rule for '{arg}'; known: {', '.join(sorted(_POSTAL_SHAPES))}")


@transform("postal_code", check_arg=_check_postal_country)
def postal_code(value: str, country: str = "") -> str | None:
    """Normalize a postal code (half-width, upper, single spaces) and check its shape.

    Without an argument any 2-10 character code of letters, digits, spaces and
    hyphens passes; ``postal_code:CN`` (or US, DE, FR, JP, GB) checks the country's format.
    """
    text = _WS.sub(" ", value.translate(_FULLWIDTH)).strip().upper()
    if not text:
        return None
    country = country.upper()
    if country == "JP" and len(text) == 7 and text.isdigit():
        text = f"{text[:3]}-{text[3:]}"
    elif country == "GB" and " " not in text and len(text) > 4:
        text = f"{text[:-3]} {text[-3:]}"
    shape = _POSTAL_SHAPES.get(country, _POSTAL_ANY)
    if shape.match(text) is None:
        where = f" for {country}" if country else ""
        raise MappingError(f"invalid postal code '{value}'{where}")
    return text
