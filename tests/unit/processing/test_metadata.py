from __future__ import annotations

from assetvault.processing.metadata import from_exiftool, iso_date


def test_namespaces_precedence_lists_and_dates() -> None:
    tags = {
        "SourceFile": "/x.jpg",
        "System:FileName": "x.jpg",
        "File:ImageWidth": 600,
        "IFD0:Make": "Canon",
        "IFD0:Orientation": 6,
        "ExifIFD:ExifImageHeight": 400,
        "ExifIFD:DateTimeOriginal": "2024:05:06 07:08:09",
        "ExifIFD:ExposureTime": 0.004,
        "GPS:GPSLatitude": 43.3,
        "IPTC:ObjectName": "IPTC title",
        "IPTC:Keywords": "single",
        "IPTC:City": "Marseille",
        "XMP-dc:Title": "XMP title",
        "XMP-dc:Creator": "Jane",
        "XMP-xmp:Rating": 4,
        "XMP-xmp:CreateDate": "2024:05:06 07:08:09+02:00",
        "XMP-photoshop:Headline": "Head",
        "XMP-tiff:ImageHeight": 400,
        "XMP-x:XMPToolkit": "Image::ExifTool",
        "Composite:ImageSize": "600 400",
        "ExifIFD:MakerNoteUnknown": "(Binary data 12 bytes, use -b option to extract)",
    }
    assert from_exiftool(tags) == {
        "tiff:Make": "Canon",
        "tiff:Orientation": 6,
        "exif:ExifImageHeight": 400,
        "exif:DateTimeOriginal": "2024-05-06T07:08:09",
        "exif:ExposureTime": 0.004,
        "exif:GPSLatitude": 43.3,
        "dc:title": "XMP title",  # XMP wins over IPTC
        "dc:subject": ["single"],  # always a list
        "dc:creator": ["Jane"],
        "photoshop:City": "Marseille",
        "xmp:Rating": 4,
        "xmp:CreateDate": "2024-05-06T07:08:09+02:00",
        "photoshop:Headline": "Head",
        "tiff:ImageLength": 400,
    }


def test_iso_date() -> None:
    assert iso_date("2024:01:02") == "2024-01-02"
    assert iso_date("2024:01:02 03:04") == "2024-01-02T03:04"
    assert iso_date("2024:01:02 03:04:05.25Z") == "2024-01-02T03:04:05.25Z"
    assert iso_date("0000:00:00 00:00:00") == "0000:00:00 00:00:00"
    assert iso_date("not a date") == "not a date"
    assert iso_date(5) == 5
