"""An organization's name over A_BusinessPartner's four 40-character name fields, and back.

SAP holds an organization's name in OrganizationBPName1..4 (40 characters each);
BusinessPartnerFullName is only Name1 and Name2 joined, so a longer name is read
from the four fields. The split is made so that :func:`join_org_name` gives the
name back unchanged (a read of the hub's own write must not look like an edit):

* parts are joined with a space, except where either side of the boundary is a
  character of a script written without spaces (Chinese, Japanese), or the part
  before it is full (40 characters: a word cut where it did not fit);
* so a name is cut at a space (dropped) before a part gets full, between two
  such characters, or, failing both, at 40 characters.
"""
from __future__ import annotations

import re
from typing import Any

PART = 40
NAME_FIELDS = ("OrganizationBPName1", "OrganizationBPName2", "OrganizationBPName3", "OrganizationBPName4")
MAX_NAME = PART * len(NAME_FIELDS)
FIELDS_TEXT = "OrganizationBPName1..4"
ORGANIZATION = "2"     # BusinessPartnerCategory of an organization (1 person, 3 group)
# CJK punctuation, kana, ideographs, compatibility ideographs, full-width forms
_TIGHT = re.compile(r"[\u3000-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff00-\uffef]")


class NameTooLong(ValueError):
    """The name does not fit in OrganizationBPName1..4."""


def _tight(before: str, after: str) -> bool:
    return bool(_TIGHT.match(before) or _TIGHT.match(after))


def join_org_name(parts: list[Any]) -> str:
    """The name held in OrganizationBPName1..4 (in that order)."""
    out, last = "", ""
    for part in parts:
        text = str(part or "").strip()
        if not text:
            continue
        if out:
            out += "" if len(last) >= PART or _tight(out[-1], text[0]) else " "
        out += text
        last = text
    return out


def _natural_cut(rest: str) -> tuple[str, str] | None:
    """(part, rest) of the latest cut of ``rest`` (longer than a part) at a space or between tight characters."""
    for i in range(PART, 0, -1):
        if rest[i] == " " and i < PART and not _tight(rest[i - 1], rest[i + 1]):
            return rest[:i], rest[i + 1:]
        if rest[i] != " " and rest[i - 1] != " " and _tight(rest[i - 1], rest[i]):
            return rest[:i], rest[i:]
    return None


def _full_cut(rest: str) -> tuple[str, str] | None:
    """(part, rest) of a cut of ``rest`` at 40 characters, inside a word."""
    if rest[PART] != " " and rest[PART - 1] != " ":
        return rest[:PART], rest[PART:]
    return None


def _parts(name: str, natural: bool) -> list[str] | None:
    """The parts of ``name``: cut at word boundaries where possible (``natural``), else as full as possible."""
    parts, rest = [], name
    while len(rest) > PART and len(parts) < len(NAME_FIELDS):
        cut = (_natural_cut(rest) or _full_cut(rest)) if natural else (_full_cut(rest) or _natural_cut(rest))
        if cut is None:
            return None
        parts.append(cut[0])
        rest = cut[1]
    parts.append(rest)
    if len(parts) > len(NAME_FIELDS) or join_org_name(parts) != name:
        return None
    return parts


def split_org_name(name: str) -> dict[str, str]:
    """OrganizationBPName1..4 for ``name`` (spaces collapsed); the unused ones empty, so a shorter name
    replaces every part of a longer one.

    Raises:
        NameTooLong: more than 160 characters, or no cut into four parts reads back as ``name``.
    """
    name = " ".join(str(name or "").split())
    if len(name) > MAX_NAME:
        raise NameTooLong(f"name: {len(name)} characters do not fit in {FIELDS_TEXT}, which hold at most "
                          f"{MAX_NAME} ({len(NAME_FIELDS)} x {PART})")
    parts = _parts(name, natural=True) or _parts(name, natural=False)
    if parts is None:
        raise NameTooLong(f"name: {len(name)} characters cannot be cut into {FIELDS_TEXT} ({PART} characters "
                          "each) at places that read back unchanged")
    return dict(zip(NAME_FIELDS, parts + [""] * (len(NAME_FIELDS) - len(parts))))


def org_name(record: dict[str, Any]) -> str | None:
    """A partner's name: an organization's OrganizationBPName1..4 joined, else BusinessPartnerFullName."""
    if str(record.get("BusinessPartnerCategory")) == ORGANIZATION:
        joined = join_org_name([record.get(f) for f in NAME_FIELDS])
        if joined:
            return joined
    return record.get("BusinessPartnerFullName")
