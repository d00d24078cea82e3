"""Brand uploads are checked before they are stored; renditions have Apple's
exact sizes and never distort the picture."""

from __future__ import annotations

import io
import struct
import zlib

import pytest
from PIL import Image

from wallet import artwork
from wallet.apple.images import Design, render_artwork, rendition_name, rendition_size
from wallet.artwork import ImageRejected, validate_and_normalize_image


def _png(size: tuple[int, int], color: tuple[int, ...] = (200, 30, 30, 255), mode: str = "RGBA") -> bytes:
    out = io.BytesIO()
    Image.new(mode, size, color).save(out, format="PNG")
    return out.getvalue()


def _jpeg(size: tuple[int, int]) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (10, 120, 200)).save(out, format="JPEG", quality=90)
    return out.getvalue()


def _bomb_png(width: int, height: int) -> bytes:
    """A tiny file that claims a huge picture: header, one small IDAT of zeros."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)  # 1-bit greyscale
    row = b"\x00" + b"\x00" * ((width + 7) // 8)
    data = zlib.compress(row * 64, 9)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", data) + chunk(b"IEND", b"")


def _bbox_of_color(image: Image.Image, rgb: tuple[int, int, int]) -> tuple[int, int, int, int]:
    mask = Image.new("L", image.size, 0)
    pixels, out = image.convert("RGBA").load(), mask.load()
    for x in range(image.width):
        for y in range(image.height):
            r, g, b, a = pixels[x, y]
            if a > 200 and abs(r - rgb[0]) < 40 and abs(g - rgb[1]) < 40 and abs(b - rgb[2]) < 40:
                out[x, y] = 255
    box = mask.getbbox()
    assert box is not None
    return box


# -- uploads -----------------------------------------------------------------


def test_png_upload_is_normalized_to_png() -> None:
    result = validate_and_normalize_image(_png((300, 100), mode="RGB", color=(1, 2, 3)))
    with Image.open(io.BytesIO(result)) as image:
        assert image.format == "PNG"
        assert image.mode == "RGBA"
        assert image.size == (300, 100)


def test_jpeg_upload_is_accepted() -> None:
    result = validate_and_normalize_image(_jpeg((640, 480)))
    with Image.open(io.BytesIO(result)) as image:
        assert (image.format, image.size) == ("PNG", (640, 480))


def test_large_upload_is_reduced_keeping_proportions() -> None:
    result = validate_and_normalize_image(_jpeg((4000, 1000)))
    with Image.open(io.BytesIO(result)) as image:
        assert image.size == (artwork.STORED_MAX_SIDE, round(artwork.STORED_MAX_SIDE / 4))


def test_photo_upload_fits_the_stored_byte_limit() -> None:
    noisy = io.BytesIO()
    Image.effect_noise((2400, 1600), 100).convert("RGB").save(noisy, format="JPEG", quality=80)
    result = validate_and_normalize_image(noisy.getvalue())
    assert len(result) <= artwork.STORED_MAX_BYTES
    with Image.open(io.BytesIO(result)) as image:
        assert abs(image.width / image.height - 1.5) < 0.01


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty"),
        (b"GIF89a this is not really an image at all", "broken|not a PNG"),
        (b"%PDF-1.4 definitely not an image", "not a PNG or JPEG"),
        (b"<svg xmlns='http://www.w3.org/2000/svg'/>", "not a PNG or JPEG"),
    ],
    ids=["empty", "fake-gif", "pdf", "svg"],
)
def test_non_images_are_refused(data: bytes, message: str) -> None:
    with pytest.raises(ImageRejected, match=message):
        validate_and_normalize_image(data)


def test_truncated_png_is_refused() -> None:
    whole = _png((400, 400), color=(5, 6, 7, 255))
    noisy = io.BytesIO()
    Image.effect_noise((400, 400), 80).convert("RGB").save(noisy, format="PNG")
    for data in (whole[: len(whole) // 2], noisy.getvalue()[: len(noisy.getvalue()) * 2 // 3]):
        with pytest.raises(ImageRejected, match="broken or truncated"):
            validate_and_normalize_image(data)


def test_truncated_jpeg_is_refused() -> None:
    noisy = io.BytesIO()
    Image.effect_noise((400, 400), 80).convert("RGB").save(noisy, format="JPEG")
    data = noisy.getvalue()
    with pytest.raises(ImageRejected, match="broken or truncated"):
        validate_and_normalize_image(data[: len(data) // 2])


def test_corrupted_png_checksum_is_refused() -> None:
    data = bytearray(_png((64, 64)))
    data[40] ^= 0xFF  # inside the IDAT chunk: its CRC no longer matches
    with pytest.raises(ImageRejected):
        validate_and_normalize_image(bytes(data))


@pytest.mark.parametrize("side", [10_000, 60_000], ids=["over-our-limit", "over-pillows-limit"])
def test_decompression_bomb_is_refused_before_decoding(side: int) -> None:
    bomb = _bomb_png(side, side)
    assert len(bomb) < 20_000
    with pytest.raises(ImageRejected, match="at most|too large"):
        validate_and_normalize_image(bomb)


def test_pillow_bomb_warning_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    # Below our own limits but above Pillow's: its warning must refuse the file.
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100 * 100)
    with pytest.raises(ImageRejected, match="too large to decode safely"):
        validate_and_normalize_image(_png((150, 150)))


def test_oversized_file_is_refused_by_byte_count() -> None:
    with pytest.raises(ImageRejected, match="MiB"):
        validate_and_normalize_image(b"\x89PNG" + b"\x00" * (artwork.MAX_UPLOAD_BYTES + 1))


def test_too_small_and_too_long_images_are_refused() -> None:
    with pytest.raises(ImageRejected, match="at least"):
        validate_and_normalize_image(_png((8, 8)))
    with pytest.raises(ImageRejected, match="at most"):
        validate_and_normalize_image(_png((artwork.MAX_SIDE + 1, 20)))


def test_other_formats_are_refused_with_a_hint() -> None:
    out = io.BytesIO()
    Image.new("RGB", (64, 64)).save(out, format="BMP")
    with pytest.raises(ImageRejected, match="upload a PNG or JPEG"):
        validate_and_normalize_image(out.getvalue())


# -- renditions --------------------------------------------------------------


EXPECTED_SIZES = {
    "icon.png": (29, 29), "icon@2x.png": (58, 58), "icon@3x.png": (87, 87),
    "logo.png": (160, 50), "logo@2x.png": (320, 100), "logo@3x.png": (480, 150),
    "strip.png": (375, 123), "strip@2x.png": (750, 246), "strip@3x.png": (1125, 369),
}


def test_default_artwork_renditions_have_apples_sizes() -> None:
    files = render_artwork(Design(background_color="#1F2937"))
    assert {name: artwork.image_size(data) for name, data in files.items()} == EXPECTED_SIZES


def test_uploads_of_any_shape_get_exact_sizes() -> None:
    design = Design(
        background_color="#123456",
        logo=_png((1000, 1000)),
        strip=_png((300, 900)),
        icon=_png((512, 256)),
    )
    files = render_artwork(design)
    assert {name: artwork.image_size(data) for name, data in files.items()} == EXPECTED_SIZES
    for kind in ("icon", "logo", "strip"):
        for scale in (1, 2, 3):
            assert rendition_size(kind, scale) == EXPECTED_SIZES[rendition_name(kind, scale)]


def test_wide_logo_is_scaled_not_stretched() -> None:
    red = (220, 20, 20)
    logo = _png((800, 100), color=red + (255,))  # 8:1, wider than the 16:5 slot
    files = render_artwork(Design(background_color="#000000", logo=logo))
    with Image.open(io.BytesIO(files["logo@2x.png"])) as image:
        left, top, right, bottom = _bbox_of_color(image, red)
        assert (left, right) == (0, 320)
        assert bottom - top == 40  # 320 / 8: proportions kept, padded above and below
        assert image.getpixel((5, 2))[3] == 0  # padding is transparent


def test_tall_strip_is_padded_with_the_club_colour() -> None:
    green = (20, 200, 20)
    strip = _png((100, 400), color=green + (255,))
    files = render_artwork(Design(background_color="#0000FF", strip=strip))
    with Image.open(io.BytesIO(files["strip.png"])) as image:
        left, top, right, bottom = _bbox_of_color(image, green)
        assert (top, bottom) == (0, 123)
        assert abs((right - left) - round(123 / 4)) <= 1
        assert image.convert("RGB").getpixel((2, 60)) == (0, 0, 255)


def test_unreadable_stored_image_falls_back_to_default() -> None:
    broken = Design(background_color="#1F2937", logo=b"\x89PNG\r\n\x1a\nbroken")
    assert render_artwork(broken)["logo.png"] == render_artwork(Design(background_color="#1F2937"))["logo.png"]


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "GIF", "WEBP"])
def test_damaged_files_are_refused_or_accepted_never_crash(fmt: str) -> None:
    import random

    rng = random.Random(fmt)
    source = io.BytesIO()
    Image.effect_noise((64, 64), 50).convert("RGB").save(source, format=fmt)
    original = source.getvalue()
    outcomes = set()
    for _ in range(150):
        data = bytearray(original)
        for _ in range(rng.randint(1, 8)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        if rng.random() < 0.3:
            data = data[: rng.randrange(len(data))]
        try:
            result = validate_and_normalize_image(bytes(data))
        except ImageRejected:
            outcomes.add("refused")
        else:
            assert Image.open(io.BytesIO(result)).format == "PNG"
            outcomes.add("accepted")
    assert "refused" in outcomes
