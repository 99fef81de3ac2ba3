"""JPEG uploads made on the fly."""

from __future__ import annotations

import io

from PIL import Image


def jpeg(size=(640, 480), noise: bool = False) -> bytes:
    """A photo as a member uploads it: flat colour, or noise that does not compress."""
    image = Image.effect_noise(size, 64).convert("RGB") if noise else Image.new(
        "RGB", size, (200, 120, 40))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=95)
    return out.getvalue()


GPS_IFD = 0x8825
ORIENTATION = 0x0112
MAKE = 0x010F


def exif_jpeg(width: int, height: int, *, gps: bool = False,
              orientation: int | None = None) -> bytes:
    """A JPEG whose left half is red and right half blue, with the EXIF we ask for."""
    image = Image.new("RGB", (width, height), (255, 0, 0))
    image.paste((0, 0, 255), (width // 2, 0, width, height))
    exif = Image.Exif()
    exif[MAKE] = "TestCam"
    if orientation:
        exif[ORIENTATION] = orientation
    if gps:
        exif[GPS_IFD] = {1: "S", 2: (34.0, 54.0, 3.5), 3: "W", 4: (56.0, 11.0, 9.1)}
    out = io.BytesIO()
    image.save(out, "JPEG", exif=exif, quality=90)
    return out.getvalue()
