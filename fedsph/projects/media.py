"""Uploaded images: checked, turned upright, stripped of metadata and shrunk before anyone sees them.

We never keep or serve the original file: a phone photo carries EXIF with the GPS position of
someone's home, and weighs far too much for a slow connection. What we store and serve are small
re-encoded renditions (WebP, or JPEG when this Pillow cannot write WebP).
"""

from __future__ import annotations

import asyncio
import functools
import io
import os
import re
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from fedsph.config import Settings
from fedsph.core.files import private_dir
from fedsph.errors import N_, UserError
from fedsph.models import Actor, Media

if TYPE_CHECKING:
    from PIL import Image

# Rendition name -> widest it may be. Height is capped at twice that, so a very tall strip cannot
# produce a huge file (and stays under WebP's 16383 px limit).
RENDITION_WIDTHS = {"320": 320, "1280": 1280}
EXTENSION_TYPES = {"webp": "image/webp", "jpg": "image/jpeg"}
QUALITY = 80
# Formats people actually upload (phone "MPO" JPEGs come through the JPEG opener). Anything else
# is refused rather than handed to a less used (and less audited) decoder.
ACCEPTED_FORMATS = ("JPEG", "PNG", "WEBP", "GIF")

LICENSES = {
    "CC0": "https://creativecommons.org/publicdomain/zero/1.0/",
    "CC-BY-4.0": "https://creativecommons.org/licenses/by/4.0/",
    "CC-BY-SA-4.0": "https://creativecommons.org/licenses/by-sa/4.0/",
}
MAX_ALT_CHARS = 1500  # Mastodon's limit for image descriptions
MAX_AUTHOR_CHARS = 200

MEDIA_ROUTE = "/media/{file}"
# Names we write: random key, "-", width, extension. Anything else is not ours to serve.
FILE_NAME = re.compile(r"^[A-Za-z0-9_-]{16,64}-[0-9]{1,5}\.(webp|jpg)$")


class MediaError(UserError):
    """The upload cannot be used; the message is meant for the person who uploaded it."""


class Rendition(NamedTuple):
    width: int
    height: int
    data: bytes
    content_type: str


@dataclass(frozen=True)
class Processed:
    """The result of process_image; width/height are those of the largest rendition."""

    width: int
    height: int
    blurhash: str
    renditions: list[Rendition]  # smallest first, one per distinct width

    @property
    def content_type(self) -> str:
        return self.renditions[0].content_type


def _pillow():
    """Pillow's Image module, imported on first use: Pillow costs about 2 MB resident, which a
    node that receives no upload need not carry (the idle-memory target, bench/memory.py)."""
    from PIL import Image

    return Image


@functools.cache
def output_format() -> tuple[str, str]:
    """(content type, extension) of the renditions: WebP when this Pillow build writes it."""
    from PIL import features  # see _pillow

    return ("image/webp", "webp") if features.check("webp") else ("image/jpeg", "jpg")


def _megabytes(n: int) -> str:
    return f"{n / (1024 * 1024):.1f} MB"


def _open(data: bytes, max_bytes: int) -> Image.Image:
    if not data:
        raise MediaError(N_("The file is empty."))
    if len(data) > max_bytes:
        raise MediaError(N_("The image is %(size)s; the largest accepted is %(limit)s. "
                            "Please send a smaller photo."),
                         size=_megabytes(len(data)), limit=_megabytes(max_bytes))
    pil = _pillow()
    try:
        image = pil.open(io.BytesIO(data), formats=ACCEPTED_FORMATS)
    except pil.DecompressionBombError:
        raise MediaError(N_("The image has too many pixels to process.")) from None
    except (pil.UnidentifiedImageError, OSError, SyntaxError, ValueError):
        raise MediaError(N_("This file is not an image we can read (use JPEG, PNG, WebP or GIF).")) \
            from None
    width, height = image.size
    # Checked before decoding: a small file can declare billions of pixels.
    if width < 1 or height < 1 or width * height > pil.MAX_IMAGE_PIXELS:
        raise MediaError(N_("The image has too many pixels to process."))
    try:
        image.load()
    except pil.DecompressionBombError:
        raise MediaError(N_("The image has too many pixels to process.")) from None
    except (OSError, SyntaxError, ValueError, EOFError):
        raise MediaError(N_("The image file is damaged or incomplete; please send it again.")) \
            from None
    return image


def _to_srgb(image: Image.Image) -> Image.Image:
    """Convert colours to sRGB so that dropping the embedded profile does not shift them."""
    # Imported here: LittleCMS costs ~2 MB resident, needed only while an upload is processed.
    from PIL import ImageCms

    profile = image.info.get("icc_profile")
    if not profile or image.mode not in ("RGB", "RGBA"):
        return image
    try:
        source = ImageCms.ImageCmsProfile(io.BytesIO(profile))
        return ImageCms.profileToProfile(image, source, ImageCms.createProfile("sRGB"),
                                         outputMode=image.mode) or image
    except (ImageCms.PyCMSError, OSError, ValueError):
        return image  # a broken profile: keep the pixels as they are


def _normalised(image: Image.Image) -> Image.Image:
    """Upright (EXIF orientation applied), in RGB or RGBA, sRGB, with no metadata left."""
    from PIL import ImageOps  # see _to_srgb

    try:
        image = ImageOps.exif_transpose(image)
    except (OSError, ValueError, SyntaxError):
        pass  # unreadable EXIF: show the pixels as stored
    has_alpha = image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info
    image = image.convert("RGBA" if has_alpha else "RGB")
    image = _to_srgb(image)
    if has_alpha and image.getchannel("A").getextrema() == (255, 255):
        image = image.convert("RGB")  # fully opaque after all: smaller files
    image.info = {}  # EXIF, XMP, ICC, comments: none of it goes further
    return image


def _fit(width: int, height: int, max_width: int) -> tuple[int, int]:
    scale = min(1.0, max_width / width, 2 * max_width / height)  # never upscale
    return max(1, round(width * scale)), max(1, round(height * scale))


def _encode(image: Image.Image) -> bytes:
    out = io.BytesIO()
    if output_format()[1] == "webp":
        image.save(out, "WEBP", quality=QUALITY, method=4)
    else:
        if image.mode == "RGBA":  # JPEG has no alpha: lay it on white
            flat = _pillow().new("RGB", image.size, (255, 255, 255))
            flat.paste(image, mask=image.getchannel("A"))
            image = flat
        image.save(out, "JPEG", quality=QUALITY, optimize=True, progressive=True)
    return out.getvalue()


def _blurhash(image: Image.Image) -> str:
    # The blurhash package is pure Python: work on a tiny copy. Imported here, as Pillow is.
    import blurhash

    small = image.copy()
    small.thumbnail((32, 32))
    if small.mode == "RGBA":
        flat = _pillow().new("RGB", small.size, (255, 255, 255))
        flat.paste(small, mask=small.getchannel("A"))
        small = flat
    width, height = small.size
    flattened = getattr(small, "get_flattened_data", None) or small.getdata  # Pillow 12 renamed it
    pixels = list(flattened())
    rows = [pixels[y * width:(y + 1) * width] for y in range(height)]
    x_components, y_components = (4, 3) if width >= height else (3, 4)
    return blurhash.encode(rows, components_x=x_components, components_y=y_components)


def process_image(data: bytes, max_bytes: int) -> Processed:
    """Check and shrink one uploaded image. Pure CPU work, no I/O; raises MediaError."""
    image = _normalised(_open(data, max_bytes))
    renditions: list[Rendition] = []
    seen: set[tuple[int, int]] = set()
    for max_width in sorted(RENDITION_WIDTHS.values()):
        size = _fit(*image.size, max_width)
        if size in seen:
            continue  # a small original yields one rendition, not two copies
        seen.add(size)
        resized = image if size == image.size else image.resize(size,
                                                                _pillow().Resampling.LANCZOS)
        resized.info = {}
        renditions.append(Rendition(size[0], size[1], _encode(resized), output_format()[0]))
    largest = renditions[-1]
    return Processed(largest.width, largest.height, _blurhash(image), renditions)


def clean_license(raw: str | None) -> str:
    """Return the canonical licence id (CC0, CC-BY-4.0, CC-BY-SA-4.0) or raise MediaError."""
    wanted = (raw or "").strip().upper()
    for license_id in LICENSES:
        if wanted in (license_id.upper(), license_id.upper() + "-1.0"):  # CC0-1.0 is SPDX's name
            return license_id
    raise MediaError(N_("Choose a licence for the image: %(choices)s."), choices=", ".join(LICENSES))


def has_alt(media: Media) -> bool:
    """Whether the image is described; an undescribed image is never published."""
    return bool((media.alt or "").strip())


def clean_alt(raw: str | None) -> str:
    alt = " ".join((raw or "").split())
    if not alt:
        raise MediaError(N_("Describe the image in a few words (alt text) for people who cannot "
                            "see it."))
    if len(alt) > MAX_ALT_CHARS:
        raise MediaError(N_("The image description is too long (at most %(limit)s characters)."),
                         limit=MAX_ALT_CHARS)
    return alt


def clean_author(raw: str | None, owner: Actor) -> str:
    author = " ".join((raw or "").split()) or owner.name or owner.username
    if len(author) > MAX_AUTHOR_CHARS:
        raise MediaError(N_("The author name is too long (at most %(limit)s characters)."),
                         limit=MAX_AUTHOR_CHARS)
    return author


def media_dir(settings: Settings) -> Path:
    return settings.data_dir / "media"


def _write_atomically(directory: Path, name: str, data: bytes) -> None:
    private_dir(directory)  # photos of unpublished drafts are nobody else's business
    # The dot prefix keeps a half-written file out of FILE_NAME, so it is never served.
    temp = directory / f".{name}.{secrets.token_hex(4)}.tmp"
    try:
        with open(temp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, directory / name)
    finally:
        temp.unlink(missing_ok=True)


def _process_and_write(settings: Settings, data: bytes, key: str) -> tuple[Processed, dict]:
    processed = process_image(data, settings.max_upload_bytes)
    directory = media_dir(settings)
    renditions = {}
    for label, max_width in RENDITION_WIDTHS.items():
        # Every label is present; for a small original several labels share one file.
        chosen = _best_for(processed.renditions, max_width)
        extension = next(e for e, t in EXTENSION_TYPES.items() if t == chosen.content_type)
        name = f"{key}-{chosen.width}.{extension}"
        if not (directory / name).exists():
            _write_atomically(directory, name, chosen.data)
        renditions[label] = {"file": name, "width": chosen.width, "height": chosen.height,
                             "bytes": len(chosen.data)}
    return processed, renditions


def _best_for(renditions: list[Rendition], max_width: int) -> Rendition:
    """The biggest rendition that still fits the width budget (renditions are smallest first)."""
    fitting = [r for r in renditions if _fit(r.width, r.height, max_width) == (r.width, r.height)]
    return fitting[-1] if fitting else renditions[0]


async def save_upload(db, settings: Settings, owner: Actor, data: bytes, alt: str | None,
                      license: str | None, author: str | None, position: int = 0, *,
                      alt_later: bool = False) -> Media:
    """Validate, process and store one image for `owner`; adds the Media row and flushes.

    The caller owns the transaction. Decoding and resizing run in a thread so the event loop
    keeps serving other requests meanwhile. `alt_later` lets the description be given after the
    upload (Mastodon apps do that); such an image must get one before it is published.
    """
    alt = None if alt_later and not (alt or "").strip() else clean_alt(alt)
    license_id = clean_license(license)
    author = clean_author(author, owner)
    key = secrets.token_urlsafe(16)
    processed, renditions = await asyncio.to_thread(_process_and_write, settings, data, key)
    media = Media(key=key, owner_id=owner.id, content_type=processed.content_type,
                  width=processed.width, height=processed.height, blurhash=processed.blurhash,
                  renditions=renditions, alt=alt, license=license_id, author=author,
                  position=position)
    db.add(media)
    await db.flush()
    return media


def delete_files(settings: Settings, media: Media) -> None:
    """Remove a media item's files (for when its row is deleted)."""
    for info in (media.renditions or {}).values():
        name = info.get("file", "")
        if FILE_NAME.match(name):
            (media_dir(settings) / name).unlink(missing_ok=True)


async def read_limited(part, max_bytes: int) -> bytes:
    """Read an aiohttp multipart part, refusing it once it passes max_bytes (no huge buffers)."""
    chunks, total = [], 0
    while chunk := await part.read_chunk(64 * 1024):
        total += len(chunk)
        if total > max_bytes:
            raise MediaError(N_("The image is larger than %(limit)s, the largest accepted. "
                                "Please send a smaller photo."), limit=_megabytes(max_bytes))
        chunks.append(chunk)
    return b"".join(chunks)


# --- URLs and documents --------------------------------------------------------------------------

def file_url(urls, name: str) -> str:
    return f"{urls.base}{MEDIA_ROUTE.format(file=name)}"


def _by_width(media: Media) -> list[dict]:
    unique = {info["file"]: info for info in (media.renditions or {}).values()}
    return sorted(unique.values(), key=lambda info: info["width"])


def src(media: Media, urls) -> str:
    """URL for <img src>: the small rendition (browsers with srcset pick better ones)."""
    return file_url(urls, _by_width(media)[0]["file"])


def largest_url(media: Media, urls) -> str:
    return file_url(urls, _by_width(media)[-1]["file"])


def srcset(media: Media, urls) -> str:
    """Value for <img srcset>: "URL 320w, URL 1280w" (only the widths that exist)."""
    return ", ".join(f"{file_url(urls, info['file'])} {info['width']}w"
                     for info in _by_width(media))


def attachment_document(media: Media, urls) -> dict:
    """The AS2 Image we put in a Note's `attachment`. `license` is the licence URL.

    Raises MediaError for an undescribed image (uploaded from an app, described later): this is
    the one door every published image goes through, so none goes out without alt text.
    """
    if not has_alt(media):
        raise MediaError(N_("every image needs a description (alt text) for people who cannot "
                            "see it; image %(id)s has none"), id=media.id)
    document = {
        "type": "Image",
        "mediaType": media.content_type,
        "url": largest_url(media, urls),
        "name": media.alt,
        "width": media.width,
        "height": media.height,
    }
    if media.blurhash:
        document["blurhash"] = media.blurhash
    if media.license in LICENSES:
        document["license"] = LICENSES[media.license]
    if media.author:
        document["author"] = media.author
    return document
