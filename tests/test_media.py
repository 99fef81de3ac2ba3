"""Image uploads: metadata stripped, upright, small renditions, blurhash, and safe serving."""

from __future__ import annotations

import dataclasses
import io
import struct
import zlib

import aiohttp
import pytest
from PIL import Image

from fedsph.errors import UserError
from fedsph.models import Actor
from fedsph.projects.media import (
    MediaError,
    attachment_document,
    process_image,
    save_upload,
    srcset,
)
from fedsph.projects.outbox import publish_post
from tests.support.images import GPS_IFD, exif_jpeg

MiB = 1024 * 1024


def open_bytes(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


async def upload(node, data: bytes, **fields):
    settings = fields.pop("settings", node.settings)
    actor = await node.create_actor(fields.pop("slug", "coop"))
    values = {"alt": "Builders on the roof", "license": "CC-BY-4.0", "author": "Ana"} | fields
    async with node.writers() as db, db.begin():
        return await save_upload(db, settings, actor, data, **values)


async def fetch(url: str) -> tuple[int, dict, bytes]:
    async with aiohttp.ClientSession() as http, http.get(url) as response:
        return response.status, dict(response.headers), await response.read()


def test_our_jpeg_really_carries_gps():
    # Guard against a test that passes because the input never had GPS to begin with.
    exif = Image.open(io.BytesIO(exif_jpeg(400, 300, gps=True))).getexif()
    assert exif.get_ifd(GPS_IFD)[1] == "S"


async def test_served_rendition_has_no_exif_and_no_gps(node):
    media = await upload(node, exif_jpeg(1600, 1200, gps=True))
    assert set(media.renditions) == {"320", "1280"}
    for info in media.renditions.values():
        status, headers, body = await fetch(f"{node.base}/media/{info['file']}")
        assert status == 200
        assert headers["Content-Type"] == media.content_type
        assert "immutable" in headers["Cache-Control"]
        served = open_bytes(body)
        assert served.size == (info["width"], info["height"])
        assert len(served.getexif()) == 0
        assert not served.getexif().get_ifd(GPS_IFD)
        assert "exif" not in served.info and "xmp" not in served.info
        assert b"TestCam" not in body and b"Exif" not in body and b"EXIF" not in body
    assert [media.renditions[k]["width"] for k in ("320", "1280")] == [320, 1280]
    assert (media.width, media.height) == (1280, 960)


async def test_no_upscaling_for_a_small_image(node):
    media = await upload(node, exif_jpeg(200, 150))
    files = {info["file"] for info in media.renditions.values()}
    assert len(files) == 1  # one rendition, shared by both size labels
    assert (media.width, media.height) == (200, 150)
    assert srcset(media, node.urls) == f"{node.base}/media/{files.pop()} 200w"


def test_rendition_sizes_and_srcset_order():
    processed = process_image(exif_jpeg(3000, 2000), 10 * MiB)
    assert [(r.width, r.height) for r in processed.renditions] == [(320, 213), (1280, 853)]
    assert (processed.width, processed.height) == (1280, 853)
    for rendition in processed.renditions:
        assert open_bytes(rendition.data).size == (rendition.width, rendition.height)


def test_exif_orientation_is_honoured():
    # Orientation 6: the stored pixels must be turned 90° clockwise to be upright, so the
    # stored left (red) half ends up on top.
    processed = process_image(exif_jpeg(400, 200, orientation=6), 10 * MiB)
    assert (processed.width, processed.height) == (200, 400)
    image = open_bytes(processed.renditions[-1].data).convert("RGB")
    top, bottom = image.getpixel((100, 20)), image.getpixel((100, 380))
    assert top[0] > 200 and top[2] < 60
    assert bottom[2] > 200 and bottom[0] < 60
    assert len(image.getexif()) == 0


async def test_blurhash_and_attachment_document(node):
    media = await upload(node, exif_jpeg(800, 600))
    assert media.blurhash and len(media.blurhash) >= 6
    document = attachment_document(media, node.urls)
    assert document["type"] == "Image"
    assert document["mediaType"] == media.content_type
    assert document["url"] == f"{node.base}/media/{media.renditions['1280']['file']}"
    assert document["name"] == "Builders on the roof"
    assert (document["width"], document["height"]) == (800, 600)
    assert document["blurhash"] == media.blurhash
    assert document["license"] == "https://creativecommons.org/licenses/by/4.0/"
    assert document["author"] == "Ana"


async def test_oversize_original_refused_with_message(node):
    small_limit = dataclasses.replace(node.settings, max_upload_bytes=1000)
    with pytest.raises(MediaError, match="largest accepted"):
        await upload(node, exif_jpeg(400, 300), settings=small_limit)
    with pytest.raises(MediaError, match=r"0\.5 MB"):
        process_image(b"\xff" * (MiB // 2 + 1), MiB // 2)


@pytest.mark.parametrize("data", [b"", b"hello, not an image", b"<svg xmlns='x'></svg>"])
def test_non_image_refused(data):
    with pytest.raises(MediaError):
        process_image(data, MiB)


def test_truncated_image_refused():
    data = exif_jpeg(800, 600)
    with pytest.raises(MediaError, match="damaged or incomplete"):
        process_image(data[: len(data) // 2], MiB)


def _png_claiming(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims a huge size (a decompression bomb)."""
    out = io.BytesIO()
    Image.new("L", (1, 1)).save(out, "PNG")
    data = bytearray(out.getvalue())
    ihdr = 8  # after the signature: length(4) type(4) data(13) crc(4)
    body = b"IHDR" + struct.pack(">II", width, height) + bytes(data[ihdr + 16:ihdr + 21])
    data[ihdr + 4:ihdr + 21] = body
    data[ihdr + 21:ihdr + 25] = struct.pack(">I", zlib.crc32(body))
    return bytes(data)


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
@pytest.mark.parametrize("side", [12_000, 40_000])  # above the limit, and above twice the limit
def test_decompression_bomb_refused(side):
    with pytest.raises(MediaError, match="too many pixels"):
        process_image(_png_claiming(side, side), MiB)


async def test_alt_text_and_licence_required(node):
    with pytest.raises(MediaError, match="alt text"):
        await upload(node, exif_jpeg(400, 300), alt="   ")
    with pytest.raises(MediaError, match="licence"):
        await upload(node, exif_jpeg(400, 300), slug="coop2", license="All rights reserved")


async def test_alt_text_may_come_later_but_is_needed_to_publish(node):
    # From apps (alt_later): stored undescribed, but no Note can carry it until described.
    media = await upload(node, exif_jpeg(400, 300), slug="coop3", alt="  ", alt_later=True)
    assert media.alt is None
    with pytest.raises(MediaError, match=rf"alt text.*image {media.id}"):
        attachment_document(media, node.urls)
    async with node.writers() as db, db.begin():
        own = await db.get(type(media), media.id)
        with pytest.raises(UserError, match="alt text"):
            await publish_post(db, node.urls, await db.get(Actor, own.owner_id),
                                 contents={"": "hola"}, media=[own])
    media.alt = "A ladder"
    assert attachment_document(media, node.urls)["name"] == "A ladder"


async def test_png_with_alpha(node):
    image = Image.new("RGBA", (500, 400), (0, 128, 0, 0))
    image.paste((0, 128, 0, 255), (100, 100, 400, 300))
    out = io.BytesIO()
    image.save(out, "PNG")
    media = await upload(node, out.getvalue(), license="cc0", author="")
    assert media.license == "CC0" and media.author == "Coop"  # default author: the project
    status, _, body = await fetch(f"{node.base}/media/{media.renditions['1280']['file']}")
    assert status == 200
    served = open_bytes(body)
    assert served.size == (500, 400)
    if media.content_type == "image/webp":
        assert served.mode == "RGBA" and served.getpixel((10, 10))[3] == 0


def test_jpeg_fallback_flattens_alpha(monkeypatch):
    # Pillow builds without WebP write JPEG; transparency is laid on white, metadata still gone.
    monkeypatch.setattr("fedsph.projects.media.output_format", lambda: ("image/jpeg", "jpg"))
    image = Image.new("RGBA", (400, 300), (0, 0, 0, 0))
    out = io.BytesIO()
    image.save(out, "PNG")
    processed = process_image(out.getvalue(), MiB)
    assert processed.content_type == "image/jpeg"
    served = open_bytes(processed.renditions[-1].data)
    assert served.format == "JPEG" and served.getpixel((5, 5)) == (255, 255, 255)
    assert len(served.getexif()) == 0


@pytest.mark.parametrize("path", [
    "/media/..%2F..%2Ffedsph.sqlite3",
    "/media/%2E%2E%2Ffedsph.sqlite3",
    "/media/../fedsph.sqlite3",
    "/media/fedsph.sqlite3",
    "/media/AAAAAAAAAAAAAAAAAAAAAA-320.webp",
    "/media/.AAAAAAAAAAAAAAAAAAAAAA-320.webp.1234.tmp",
])
async def test_bad_names_are_404(node, path):
    async with aiohttp.ClientSession() as http, http.get(node.base + path) as response:
        assert response.status == 404
        assert b"SQLite" not in await response.read()
