"""From exiftool's tags to AEM's namespaced metadata properties.

XMP groups keep their namespace prefix (``XMP-dc:Title`` -> ``dc:title``); EXIF IFD0
becomes ``tiff:``, the Exif IFD ``exif:``, GPS ``exif:GPS*``; IPTC IIM tags map to their
XMP equivalents (IPTC Core / Photoshop), and where both exist XMP wins, as the Metadata
Working Group's guidance says. Dates become ISO 8601.
"""

from __future__ import annotations

import re
from typing import Any

# Namespaces whose XMP property names start lower-case, unlike exiftool's tag names.
_LOWER_FIRST = {"dc", "xmpRights"}
_LIST_PROPERTIES = {"dc:subject", "dc:creator", "dc:contributor", "dc:publisher", "dc:type"}
_SKIP_XMP = {"x", "xmpMM", "crs", "xmpNote"}  # toolkit names, edit history, raw settings

_TIFF_RENAMES = {"ImageHeight": "ImageLength"}

# IPTC IIM tag -> XMP property (IPTC Photo Metadata Standard mapping).
_IPTC = {
    "ObjectName": "dc:title",
    "Caption-Abstract": "dc:description",
    "Keywords": "dc:subject",
    "By-line": "dc:creator",
    "CopyrightNotice": "dc:rights",
    "Headline": "photoshop:Headline",
    "Credit": "photoshop:Credit",
    "Source": "photoshop:Source",
    "City": "photoshop:City",
    "Province-State": "photoshop:State",
    "Country-PrimaryLocationName": "photoshop:Country",
    "SpecialInstructions": "photoshop:Instructions",
    "Writer-Editor": "photoshop:CaptionWriter",
    "By-lineTitle": "photoshop:AuthorsPosition",
    "OriginalTransmissionReference": "photoshop:TransmissionReference",
    "Urgency": "photoshop:Urgency",
    "Category": "photoshop:Category",
    "SupplementalCategories": "photoshop:SupplementalCategories",
    "DateCreated": "photoshop:DateCreated",
    "Sub-location": "Iptc4xmpCore:Location",
    "Country-PrimaryLocationCode": "Iptc4xmpCore:CountryCode",
}

# Document info of PDFs, named as AEM shows them.
_PDF = {
    "Title": "dc:title",
    "Author": "dc:creator",
    "Subject": "dc:description",
    "Keywords": "pdf:Keywords",
    "Producer": "pdf:Producer",
    "Creator": "xmp:CreatorTool",
    "PageCount": "xmpTPg:NPages",
    "PDFVersion": "pdf:PDFVersion",
    "CreateDate": "xmp:CreateDate",
    "ModifyDate": "xmp:ModifyDate",
}

_EXIF_DATE = re.compile(r"^(\d{4}):(\d{2}):(\d{2})(?:[ T](\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?))?(.*)$")


def iso_date(value: Any) -> Any:
    """``2024:01:02 03:04:05+01:00`` -> ``2024-01-02T03:04:05+01:00``; other values as-is."""
    if not isinstance(value, str):
        return value
    m = _EXIF_DATE.match(value.strip())
    if not m:
        return value
    year, month, day, time, zone = m.groups()
    if year == "0000":
        return value
    out = f"{year}-{month}-{day}"
    if time:
        out += "T" + time + (zone.strip() if zone else "")
    return out


def _property(group: str, tag: str) -> str | None:
    if group.startswith("XMP-"):
        ns = group[4:]
        if ns in _SKIP_XMP:
            return None
        name = tag[0].lower() + tag[1:] if ns in _LOWER_FIRST else tag
        if ns == "tiff":
            name = _TIFF_RENAMES.get(name, name)
        return f"{ns}:{name}"
    if group == "IFD0":
        return "tiff:" + _TIFF_RENAMES.get(tag, tag)
    if group == "ExifIFD":
        return "exif:" + tag
    if group == "GPS":
        return "exif:" + (tag if tag.startswith("GPS") else "GPS" + tag)
    if group == "PDF":
        return _PDF.get(tag, "pdf:" + tag)
    return None


def _clean(value: Any) -> Any:
    if isinstance(value, str):
        if value.startswith("(Binary data") or "use -b option" in value:
            return None
        return iso_date(value)
    if isinstance(value, list):
        items = [_clean(v) for v in value]
        return [v for v in items if v is not None]
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items() if _clean(v) is not None}
    return value


def from_exiftool(tags: dict[str, Any]) -> dict[str, Any]:
    """Namespaced properties for ``assetMetadata``."""
    xmp: dict[str, Any] = {}
    other: dict[str, Any] = {}
    iptc: dict[str, Any] = {}
    for key, raw in tags.items():
        group, sep, tag = key.partition(":")
        if not sep or not tag:
            continue
        value = _clean(raw)
        if value is None or value == "" or value == []:
            continue
        if group == "IPTC":
            prop = _IPTC.get(tag)
            if prop:
                iptc[prop] = value
            continue
        prop = _property(group, tag)
        if prop is None:
            continue
        (xmp if group.startswith("XMP-") else other)[prop] = value
    # Precedence: XMP, then EXIF/PDF, then IPTC IIM.
    merged = {**iptc, **other, **xmp}
    for prop in _LIST_PROPERTIES & merged.keys():
        if not isinstance(merged[prop], list):
            merged[prop] = [merged[prop]]
    return merged
