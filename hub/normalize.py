"""Normalization of the values identity resolution compares: names, addresses, places, phones, e-mails,
tax ids and postal codes, for Chinese and international records alike.

Every function is pure and cached: the same raw value always gives the same
normalized form, so a golden record indexed last year and a source record
read today are compared on equal terms. Full-width forms, case and
punctuation never matter; legal forms (有限公司, Co., Ltd., GmbH) and branch
suffixes (北京分公司) are set aside; Chinese names also get a romanized form
(pinyin, industry words in English) so 上海星海贸易有限公司 and
"Shanghai Xinghai Trading Co., Ltd." can be compared at all.
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

from hub import matching_lexicon as lex

CACHE = 1 << 18
_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_CJK_RUN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+|[a-z0-9]+")
_NON_WORD = re.compile(r"[^\w\u3400-\u4dbf\u4e00-\u9fff]+|_")
_PARENS = re.compile(r"[(\[{【]([^)\]}】]*)[)\]}】]")
_APOSTROPHE = re.compile(r"['’`´]")
_WS = re.compile(r"\s+")
_DIGITS = re.compile(r"\d+")


def text(value: object) -> str:
    """NFKC (full-width to half-width), case-folded, whitespace collapsed."""
    if value is None:
        return ""
    return _WS.sub(" ", unicodedata.normalize("NFKC", str(value))).strip().casefold()


def has_cjk(s: str) -> bool:
    return _CJK.search(s) is not None


@lru_cache(maxsize=CACHE)
def romanize(s: str) -> str:
    """Toneless pinyin for Chinese characters, one word per character run; other text kept."""
    if not has_cjk(s):
        return s
    from pypinyin.seg.simpleseg import seg   # imported on first Chinese value only
    out = []
    for run in _CJK_RUN.findall(s):
        # pypinyin's own segmentation (phrases decide polyphones: 重庆 chongqing), each segment cached
        out.append("".join(_pinyin(w) for w in seg(run)) if has_cjk(run) else run)
    return " ".join(out)


@lru_cache(maxsize=CACHE)
def _pinyin(segment: str) -> str:
    from pypinyin import lazy_pinyin
    return "".join(lazy_pinyin(segment))


@lru_cache(maxsize=1)
def _region_romans() -> dict[str, str]:
    """Romanized region name -> the Chinese name (shanghai -> 上海)."""
    out = {}
    for r in lex.CN_REGIONS:
        out.setdefault(lex.REGION_ROMAN_OVERRIDES.get(r, romanize(r).replace(" ", "")), r)
    return out


def _region_roman(cn: str) -> str:
    return lex.REGION_ROMAN_OVERRIDES.get(cn, romanize(cn).replace(" ", ""))


_REGIONS_LONGEST = tuple(sorted(lex.CN_REGIONS, key=len, reverse=True))
_INDUSTRY_LONGEST = tuple(sorted(lex.CN_INDUSTRY, key=len, reverse=True))
_LEGAL_LONGEST = tuple(sorted(lex.CN_LEGAL_FORMS, key=len, reverse=True))


def _by_length(words: tuple[str, ...]) -> tuple[tuple[int, frozenset[str]], ...]:
    """Words grouped by length, longest first: one set lookup per length finds the longest affix."""
    return tuple((n, frozenset(w for w in words if len(w) == n)) for n in sorted({len(w) for w in words}, reverse=True))


_REGIONS_BY_LEN = _by_length(lex.CN_REGIONS)
_INDUSTRY_BY_LEN = _by_length(tuple(lex.CN_INDUSTRY))
_LEGAL_BY_LEN = _by_length(lex.CN_LEGAL_FORMS)


def _longest_suffix(s: str, by_len: tuple[tuple[int, frozenset[str]], ...]) -> str:
    """The longest of the words that ``s`` ends with (never all of ``s``), or ""."""
    for n, words in by_len:
        if len(s) > n and s[-n:] in words:
            return s[-n:]
    return ""
_LATIN_LEGAL_LONGEST = tuple(sorted(lex.LATIN_LEGAL_FORMS, key=len, reverse=True))


@dataclass(frozen=True, slots=True)
class Name:
    """A normalized company or person name.

    Attributes:
        full: the comparison form in the name's own script, without legal form, branch and punctuation.
        latin: romanized tokens (pinyin for Chinese, industry words in English).
        core: the distinctive part, romanized, without region and industry words ("xinghai").
        region: the romanized registration region ("shanghai"), or "".
        legal_form: the legal form that was set aside (有限公司, co ltd), or "".
        branch: the branch that was set aside (北京 of 北京分公司), or "".
        cjk: whether the name is written in Chinese.
        person: whether it was normalized as a person's name.
    """

    full: str
    latin: tuple[str, ...]
    core: str
    region: str = ""
    legal_form: str = ""
    branch: str = ""
    cjk: bool = False
    person: bool = False

    @property
    def compact(self) -> str:
        return self.full.replace(" ", "")


def _leading_region(s: str) -> tuple[str, str]:
    """Split a leading Chinese region (with its 省/市 suffix) off a name or address."""
    for n, regions in _REGIONS_BY_LEN:
        if len(s) > n and s[:n] in regions:
            r, rest = s[:n], s[n:]
            for suf in lex.CN_REGION_SUFFIXES:
                if rest.startswith(suf) and len(rest) > len(suf):
                    rest = rest[len(suf):]
                    break
            return r, rest
    return "", s


def _strip_suffixes(s: str, suffixes: tuple[str, ...]) -> tuple[str, str]:
    """Remove any of ``suffixes`` from the end repeatedly (never everything); returns (rest, removed)."""
    removed = ""
    changed = True
    while changed:
        changed = False
        for suf in suffixes:
            if s.endswith(suf) and len(s) > len(suf):
                s, removed, changed = s[: -len(suf)], suf + removed, True
                break
    return s, removed


def _cjk_company(s: str, paren_region: str, person: bool) -> Name:
    s = _NON_WORD.sub("", s)
    branch = ""
    for suf in lex.CN_BRANCH_SUFFIXES:
        if s.endswith(suf) and len(s) > len(suf):
            base = s[: -len(suf)]
            cut = max((base.rfind(f) + len(f) for f in _LEGAL_LONGEST if base.rfind(f) > 0), default=-1)
            if 0 < cut < len(base):
                s, branch = base[:cut], base[cut:]
            else:
                base_rest, region_tail = base, ""
                for r in _REGIONS_LONGEST:
                    if base.endswith(r) and len(base) > len(r):
                        base_rest, region_tail = base[: -len(r)], r
                        break
                s, branch = base_rest, region_tail or suf
            break
    if person:   # surname, then given name: 张晓明 -> zhang xiaoming (as it is written in Latin script)
        s, _ = _strip_suffixes(s, lex.CN_PERSON_TITLES)
        latin = tuple(t for t in (romanize(s[:1]), romanize(s[1:]).replace(" ", "")) if t)
        return Name(s, latin, "".join(sorted(latin)), cjk=True, person=True)
    legal = ""
    while suffix := _longest_suffix(s, _LEGAL_BY_LEN):
        s, legal = s[: -len(suffix)], suffix + legal
    lead = re.match(r"[a-z]+", s)
    if lead and lead.group() in _region_romans():   # SHANGHAI星海贸易: a region written in Latin letters
        s = _region_romans()[lead.group()] + s[lead.end():]
    region, rest = _leading_region(s)
    region = region or paren_region
    core, industry = rest, []
    while w := _longest_suffix(core, _INDUSTRY_BY_LEN):
        core = core[: -len(w)]
        industry.insert(0, w)
    full = region + core + "".join(industry)
    latin = ([_region_roman(region)] if region else []) + [romanize(core).replace(" ", "")]
    for w in industry:
        latin.extend(lex.CN_INDUSTRY[w].split())
    return Name(full, tuple(latin), romanize(core).replace(" ", ""), _region_roman(region) if region else "",
                legal, branch, True)


def _latin_company(s: str, paren_region: str, person: bool) -> Name:
    s = _APOSTROPHE.sub("", s.replace("&", " "))
    tokens = [t for t in _NON_WORD.sub(" ", s).split() if t]
    if person:
        tokens = [t for t in tokens if t not in lex.PERSON_TITLES] or tokens
        return Name(" ".join(tokens), tuple(tokens), "".join(sorted(tokens)), person=True)
    while tokens and tokens[0] in lex.LATIN_LEADING_FORMS and len(tokens) > 1:
        tokens = tokens[1:]
    branch = ""
    if len(tokens) > 1 and tokens[-1] in lex.LATIN_BRANCH_WORDS:
        while len(tokens) > 1 and tokens[-1] in lex.LATIN_BRANCH_WORDS:
            tokens.pop()
        for i in range(len(tokens) - 1, 0, -1):   # everything after a legal form is the branch's name
            if any(tuple(tokens[i - len(f) + 1:i + 1]) == f for f in _LATIN_LEGAL_LONGEST if i - len(f) + 1 > 0):
                branch, tokens = " ".join(tokens[i + 1:]), tokens[: i + 1]
                break
    legal: list[str] = []
    changed = True
    while changed:
        changed = False
        for form in _LATIN_LEGAL_LONGEST:
            n = len(form)
            if len(tokens) > n and tuple(tokens[-n:]) == form:
                legal[:0], tokens, changed = list(form), tokens[:-n], True
                break
    tokens = [lex.LATIN_SYNONYMS.get(t, t) for t in tokens]
    regions = _region_romans()
    region = tokens[0] if len(tokens) > 1 and tokens[0] in regions else ""
    if not region and paren_region:
        region = _region_roman(paren_region) if has_cjk(paren_region) else paren_region
    body = tokens[1:] if region and tokens and tokens[0] == region else tokens
    core_tokens = [t for t in body if t not in lex.LATIN_INDUSTRY and t not in lex.LATIN_STOPWORDS] or body
    return Name(" ".join(tokens), tuple(tokens), "".join(core_tokens), region, " ".join(legal), branch, False)


@lru_cache(maxsize=CACHE)
def name(value: str | None, kind: str | None = None) -> Name | None:
    """Normalize a company name (default) or, with ``kind="person"``, a person's name.

    Examples:
        上海星海贸易有限公司 -> full 上海星海贸易, core xinghai, region shanghai, legal_form 有限公司;
        "Shanghai Xinghai Trading Co., Ltd." -> full "shanghai xinghai trading", core xinghai.
    """
    s = text(value)
    if not s:
        return None
    paren_region = ""
    for inner in _PARENS.findall(s):   # 星海贸易(上海)有限公司: a region or a note in brackets
        inner_c = _NON_WORD.sub("", inner)
        if inner_c in lex.CN_REGIONS or inner_c.rstrip("市省") in lex.CN_REGIONS:
            paren_region = inner_c.rstrip("市省")
        elif inner_c in _region_romans():
            paren_region = inner_c
    s = _PARENS.sub(lambda m: "" if m.group(1).strip() and (paren_region or _is_legal_note(m.group(1)))
                    else " " + m.group(1) + " ", s)
    person = kind == "person"
    out = _cjk_company(s, paren_region, person) if has_cjk(s) else _latin_company(s, paren_region, person)
    return out if out.full else None


def _is_legal_note(inner: str) -> bool:
    c = _NON_WORD.sub("", inner)
    return c in lex.CN_LEGAL_FORMS or c in {"有限合伙", "普通合伙", "集团"}


@dataclass(frozen=True, slots=True)
class Address:
    full: str                   # comparison form in the address's own script
    raw: str                    # the same without abbreviations and spaces (typos that glue words)
    latin: tuple[str, ...]      # romanized tokens, address words in one (English, abbreviated) form
    street: str                 # the first street word (romanized), for blocking
    number: str                 # the first house number, for blocking
    cjk: bool = False


_CN_STREET = re.compile(r"([\u4e00-\u9fff]+?)(大道|路|街|巷|弄)(\d+)")
_CN_AREA = re.compile(r"[区县市镇省]")


@lru_cache(maxsize=CACHE)
def address(value: str | None) -> Address | None:
    """Normalize a street address: abbreviations folded (street -> st, 路 -> rd), leading region dropped."""
    s = text(value)
    if not s:
        return None
    if has_cjk(s):
        s = _NON_WORD.sub("", s)
        for _ in range(3):   # 上海市浦东新区...: drop province / city prefixes
            region, rest = _leading_region(s)
            if not region:
                break
            s = rest
        m = _CN_STREET.search(s)
        pieces = []
        for run in _CJK_RUN.findall(s):
            pieces.append(_cn_address_latin(run) if has_cjk(run) else run)
        latin = tuple(" ".join(pieces).split())
        street = romanize(_CN_AREA.split(m.group(1))[-1]).replace(" ", "") if m else (latin[0] if latin else "")
        number = m.group(3) if m else next(iter(_DIGITS.findall(s)), "")
        return Address(s, s, latin, street, number, True)
    s = _APOSTROPHE.sub("", s)
    words = _NON_WORD.sub(" ", s).split()
    tokens = [lex.ADDRESS_ABBREVIATIONS.get(t, t) for t in words]
    if not tokens:
        return None
    number = next((t for t in tokens if t.isdigit()), next(iter(_DIGITS.findall(s)), ""))
    street = next((t for t in tokens if t.isalpha() and len(t) > 2), "")
    return Address(" ".join(tokens), "".join(words), tuple(tokens), street, number, False)


def _cn_address_latin(run: str) -> str:
    out = []
    i = 0
    while i < len(run):
        for w in ("大道",) if run.startswith("大道", i) else ():
            out.append(" " + lex.CN_ADDRESS_WORDS[w] + " ")
            i += 2
            break
        else:
            ch = run[i]
            out.append(" " + lex.CN_ADDRESS_WORDS[ch] + " " if ch in lex.CN_ADDRESS_WORDS else romanize(ch))
            i += 1
    return "".join(out)


@lru_cache(maxsize=CACHE)
def place(value: str | None) -> str | None:
    """A city or province as one romanized word: 上海市, "Shanghai Shi", "SHANGHAI" -> shanghai."""
    s = text(value)
    if not s:
        return None
    if has_cjk(s):
        s = _NON_WORD.sub("", s)
        s, _ = _strip_suffixes(s, lex.CN_REGION_SUFFIXES + ("地区",))
        return lex.REGION_ROMAN_OVERRIDES.get(s) or romanize(s).replace(" ", "")
    tokens = [t for t in _NON_WORD.sub(" ", _APOSTROPHE.sub("", s)).split()]
    kept = [t for t in tokens if t not in lex.LATIN_PLACE_SUFFIXES] or tokens
    return "".join(kept) or None


@lru_cache(maxsize=CACHE)
def phone(value: str | None, region: str = "CN") -> str | None:
    """E.164 (+8613800138000) when the number parses for ``region`` (or has a +country), else its digits."""
    s = text(value)
    if not s:
        return None
    import phonenumbers
    try:
        num = phonenumbers.parse(s, (region or "CN").upper())
        if phonenumbers.is_possible_number(num):
            return phonenumbers.format_number(num, phonenumbers.PhoneNumberFormat.E164)
    except phonenumbers.NumberParseException:
        pass
    digits = "".join(_DIGITS.findall(s))
    return ("+" + digits if s.startswith("+") else digits) or None


@lru_cache(maxsize=CACHE)
def email(value: str | None) -> str | None:
    """Lower-case, half-width, ``mailto:`` and ``+tag`` removed: Li.Na+crm@Example.COM -> li.na@example.com."""
    s = text(value).replace(" ", "")
    if s.startswith("mailto:"):
        s = s[7:]
    if "@" not in s:
        return s or None
    local, _, domain = s.rpartition("@")
    local = local.split("+", 1)[0] or local
    return f"{local}@{domain.strip('.')}"


def email_domain(value: str | None) -> str:
    return value.rpartition("@")[2] if value and "@" in value else ""


_TAX_JUNK = re.compile(r"[\s\-./_:]+")


@lru_cache(maxsize=CACHE)
def tax_id(value: str | None) -> str | None:
    """A tax id in compact form: half-width, upper, no spaces or separators (USCC and VAT ids alike)."""
    s = _TAX_JUNK.sub("", unicodedata.normalize("NFKC", str(value or ""))).upper()
    return s or None


@lru_cache(maxsize=CACHE)
def tax_id_valid(value: str | None) -> bool:
    """Whether a compact tax id passes a check-digit test (Chinese USCC or an EU VAT id, python-stdnum)."""
    if not value:
        return False
    from stdnum.cn import uscc
    if len(value) == 18 and uscc.is_valid(value):
        return True
    if value[:2].isalpha():
        from stdnum.eu import vat
        return bool(vat.is_valid(value))
    return False


@lru_cache(maxsize=CACHE)
def postal_code(value: str | None) -> str | None:
    """Half-width, upper, no spaces or hyphens: "sw1a 1aa" -> SW1A1AA, "２０００００" -> 200000."""
    s = re.sub(r"[\s\-]+", "", unicodedata.normalize("NFKC", str(value or ""))).upper()
    return s or None


def exact_key(field: str, value: object) -> str | None:
    """The normalized form an exact matching key (``matching.<entity>.exact``) is compared in."""
    if value in (None, ""):
        return None
    if field == "tax_id":
        return tax_id(str(value))
    if field == "email":
        return email(str(value))
    if field == "phone":
        return phone(str(value))
    if field == "postal_code":
        return postal_code(str(value))
    return text(value).replace(" ", "") or None


_SOUNDEX = str.maketrans("bfpvcgjkqsxzdtlmnr", "111122222222334556")


def soundex(word: str) -> str:
    """American Soundex of a Latin word (typo-tolerant blocking of person names)."""
    w = "".join(c for c in word if "a" <= c <= "z")
    if not w:
        return word[:4]
    out, last = [w[0]], w[0].translate(_SOUNDEX)
    for c in w[1:]:
        code = c.translate(_SOUNDEX)
        if code.isdigit() and code != last:
            out.append(code)
        if c not in "hw":
            last = code
        if len(out) == 4:
            break
    return "".join(out).ljust(4, "0")
