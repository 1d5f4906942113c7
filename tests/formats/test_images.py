"""digits.formats.images: opening, converting, resizing and encoding images the way DIGITS did."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from digits.formats import images
from digits.formats.images import ImageError

RED, GREEN, BLUE = (255, 0, 0), (0, 255, 0), (0, 0, 255)


def bands(width: int, height: int, colors, vertical: bool = True) -> np.ndarray:
    """An RGB HxWx3 image split into equal bands, left to right (vertical) or top to bottom."""
    arr = np.zeros((height, width, 3), np.uint8)
    n = len(colors)
    for i, color in enumerate(colors):
        if vertical:
            step = width // n
            arr[:, i * step : (i + 1) * step] = color
        else:
            step = height // n
            arr[i * step : (i + 1) * step, :] = color
    return arr


def pil_resize(arr: np.ndarray, height: int, width: int) -> np.ndarray:
    """The reference: a direct Pillow BILINEAR resize."""
    img = Image.fromarray(arr[:, :, 0] if arr.shape[2] == 1 else arr)
    out = np.asarray(img.resize((width, height), Image.Resampling.BILINEAR))
    return out[:, :, None] if out.ndim == 2 else out


def random_image(height: int, width: int, channels: int, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, channels), dtype=np.uint8)


# --------------------------------------------------------------------------------------------- resize_image


def test_resize_modes_are_the_digits_four():
    assert set(images.RESIZE_MODES) == {"squash", "crop", "fill", "half_crop"}


@pytest.mark.parametrize("mode", ["squash", "crop", "fill", "half_crop"])
@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize(
    "src_hw,dst_hw",
    [
        ((20, 60), (24, 32)),  # wide source
        ((60, 20), (24, 32)),  # tall source
        ((30, 40), (24, 32)),  # same aspect, downscale
        ((6, 8), (24, 32)),  # same aspect, upscale
        ((17, 23), (31, 13)),  # odd sizes, tall target
        ((5, 50), (40, 40)),  # extreme wide, upscale height
        ((50, 5), (40, 40)),  # extreme tall
        ((1, 1), (7, 9)),  # single pixel
    ],
)
def test_resize_shape_and_dtype(mode, channels, src_hw, dst_hw):
    arr = random_image(*src_hw, channels)
    out = images.resize_image(arr, dst_hw[0], dst_hw[1], mode)
    assert out.shape == (dst_hw[0], dst_hw[1], channels)
    assert out.dtype == np.uint8


@pytest.mark.parametrize("mode", ["squash", "crop", "fill", "half_crop"])
def test_resize_accepts_2d_gray(mode):
    arr = random_image(20, 40, 1)[:, :, 0]
    out = images.resize_image(arr, 10, 10, mode)
    assert out.shape == (10, 10, 1)
    assert out.dtype == np.uint8


def test_resize_unknown_mode():
    with pytest.raises(ValueError, match="unknown resize mode 'stretch'"):
        images.resize_image(random_image(4, 4, 3), 2, 2, "stretch")


@pytest.mark.parametrize("mode", ["squash", "crop", "fill", "half_crop"])
@pytest.mark.parametrize("channels", [1, 3])
def test_resize_same_size_is_identity(mode, channels):
    arr = random_image(21, 34, channels)
    out = images.resize_image(arr, 21, 34, mode, seed=5)
    np.testing.assert_array_equal(out, arr)


@pytest.mark.parametrize("mode", ["squash", "crop", "fill", "half_crop"])
@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("src_hw,dst_hw", [((20, 40), (10, 20)), ((45, 60), (30, 40)), ((21, 30), (7, 10))])
def test_resize_same_aspect_has_no_noise(mode, channels, src_hw, dst_hw):
    arr = random_image(*src_hw, channels)
    expected = pil_resize(arr, *dst_hw)
    a = images.resize_image(arr, dst_hw[0], dst_hw[1], mode, seed=0)
    b = images.resize_image(arr, dst_hw[0], dst_hw[1], mode, seed=99)
    np.testing.assert_array_equal(a, expected)
    np.testing.assert_array_equal(b, expected)


def test_squash_two_colors_keeps_sides():
    arr = bands(40, 20, [RED, BLUE])
    out = images.resize_image(arr, 10, 10, "squash").astype(int)
    assert out.shape == (10, 10, 3)
    # Columns well inside each half are pure; the two at the seam blend but keep their side's color dominant.
    assert (out[:, :4] == RED).all()
    assert (out[:, 6:] == BLUE).all()
    assert (out[:, 4, 0] > out[:, 4, 2]).all()
    assert (out[:, 5, 2] > out[:, 5, 0]).all()
    assert (out[:, :, 1] == 0).all()


def test_squash_ignores_aspect():
    arr = bands(60, 20, [RED, GREEN, BLUE])
    out = images.resize_image(arr, 30, 30, "squash")
    np.testing.assert_array_equal(out, pil_resize(arr, 30, 30))
    # All three bands survive, stretched over the full height
    assert (np.abs(out[:, 2].astype(int) - RED).max()) <= 2
    assert (np.abs(out[:, 15].astype(int) - GREEN).max()) <= 2
    assert (np.abs(out[:, 27].astype(int) - BLUE).max()) <= 2


def test_crop_wide_keeps_center_band():
    arr = bands(60, 20, [RED, GREEN, BLUE])
    out = images.resize_image(arr, 20, 20, "crop").astype(int)
    assert out.shape == (20, 20, 3)
    assert np.abs(out[:, 1:-1] - GREEN).max() <= 3  # interior pure green
    assert np.abs(out - GREEN).mean() < 5  # borders at most slightly blended


def test_crop_tall_keeps_center_band():
    arr = bands(20, 60, [RED, GREEN, BLUE], vertical=False)
    out = images.resize_image(arr, 20, 20, "crop").astype(int)
    assert np.abs(out[1:-1, :] - GREEN).max() <= 3
    assert np.abs(out - GREEN).mean() < 5


def test_crop_wide_downscale_matches_reference():
    # 120x40 -> 20x20: scale the height to 20 (width becomes 60), then keep the middle 20 columns.
    arr = bands(120, 40, [RED, GREEN, BLUE])
    out = images.resize_image(arr, 20, 20, "crop")
    np.testing.assert_array_equal(out, pil_resize(arr, 20, 60)[:, 20:40])
    assert np.abs(out[:, 2:-2].astype(int) - GREEN).max() <= 3


def test_crop_tall_downscale_matches_reference():
    arr = random_image(80, 30, 3)
    # width ratio 30/15 = 2 < height ratio 80/20 = 4: fit the width (height becomes 40), keep rows 10..29
    out = images.resize_image(arr, 20, 15, "crop")
    np.testing.assert_array_equal(out, pil_resize(arr, 40, 15)[10:30])


def test_fill_wide_geometry():
    arr = bands(60, 20, [RED, GREEN, BLUE])
    out = images.resize_image(arr, 30, 30, "fill", seed=3)
    assert out.shape == (30, 30, 3)
    # Fitting 60x20 inside 30x30 gives 30x10, centered: rows 10..19
    np.testing.assert_array_equal(out[10:20], pil_resize(arr, 10, 30))
    # The rest is noise: many distinct values, not the image's colors
    noise = np.concatenate([out[:10], out[20:]])
    assert len(np.unique(noise)) > 200
    assert noise.std() > 50


def test_fill_tall_geometry():
    arr = bands(20, 60, [RED, GREEN, BLUE], vertical=False)
    out = images.resize_image(arr, 30, 30, "fill", seed=3)
    np.testing.assert_array_equal(out[:, 10:20], pil_resize(arr, 30, 10))
    noise = np.concatenate([out[:, :10], out[:, 20:]], axis=1)
    assert len(np.unique(noise)) > 200


@pytest.mark.parametrize("channels", [1, 3])
def test_fill_noise_is_seeded(channels):
    arr = random_image(20, 60, channels)
    a = images.resize_image(arr, 30, 30, "fill", seed=7)
    b = images.resize_image(arr, 30, 30, "fill", seed=7)
    c = images.resize_image(arr, 30, 30, "fill", seed=8)
    np.testing.assert_array_equal(a, b)
    # Same picture in the middle, different noise around it
    np.testing.assert_array_equal(a[10:20], c[10:20])
    assert (a[:10] != c[:10]).mean() > 0.9
    assert (a[20:] != c[20:]).mean() > 0.9


def test_half_crop_wide_geometry():
    arr = bands(60, 20, [RED, GREEN, BLUE])
    out = images.resize_image(arr, 30, 30, "half_crop", seed=3)
    assert out.shape == (30, 30, 3)
    # ratio = (60/30 + 20/30) / 2 = 4/3: resized to 45x15, center 30 columns (start round(7.5) = 8),
    # padded with noise to 30 rows: image at rows (30 - 15) // 2 = 7 .. 21
    resized = pil_resize(arr, 15, 45)
    np.testing.assert_array_equal(out[7:22], resized[:, 8:38])
    noise = np.concatenate([out[:7], out[22:]])
    assert len(np.unique(noise)) > 200
    # Both outer bands are cut but still partly visible (half of fill, half of crop)
    assert (out[7:22, 0] == RED).all()
    assert (out[7:22, 29] == BLUE).all()
    assert (out[7:22, 15] == GREEN).all()


def test_half_crop_tall_geometry():
    arr = random_image(60, 20, 3)
    out = images.resize_image(arr, 30, 30, "half_crop", seed=3)
    resized = pil_resize(arr, 45, 15)
    np.testing.assert_array_equal(out[:, 7:22], resized[8:38, :])


def test_half_crop_noise_is_seeded():
    arr = random_image(20, 60, 3)
    a = images.resize_image(arr, 30, 30, "half_crop", seed=1)
    b = images.resize_image(arr, 30, 30, "half_crop", seed=1)
    c = images.resize_image(arr, 30, 30, "half_crop", seed=2)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a[7:22], c[7:22])
    assert (a[:7] != c[:7]).mean() > 0.9


def test_crop_and_squash_do_not_use_noise():
    arr = random_image(20, 60, 3)
    for mode in ("squash", "crop"):
        np.testing.assert_array_equal(
            images.resize_image(arr, 30, 30, mode, seed=1), images.resize_image(arr, 30, 30, mode, seed=2)
        )


def test_resize_does_not_modify_input():
    arr = random_image(20, 60, 3)
    before = arr.copy()
    for mode in images.RESIZE_MODES:
        images.resize_image(arr, 30, 30, mode)
    np.testing.assert_array_equal(arr, before)


# -------------------------------------------------------------------------------------------- convert_image


def _p_image(transparent_index: int | None) -> Image.Image:
    img = Image.new("P", (3, 1))
    img.putpalette([10, 20, 30, 200, 100, 50, 0, 0, 0] + [0, 0, 0] * 253)
    img.putdata([0, 1, 2])
    if transparent_index is not None:
        img.info["transparency"] = transparent_index
    return img


def _mode_samples() -> dict[str, Image.Image]:
    return {
        "1": Image.fromarray(np.array([[True, False, True]])),
        "L": Image.fromarray(np.array([[0, 128, 255]], np.uint8)),
        "LA": Image.fromarray(np.array([[[0, 255], [128, 255], [0, 0]]], np.uint8), "LA"),
        "P+t": _p_image(2),
        "P": _p_image(None),
        "RGB": Image.fromarray(np.array([[RED, GREEN, BLUE]], np.uint8)),
        "RGBA": Image.fromarray(np.array([[[255, 0, 0, 255], [0, 255, 0, 255], [0, 0, 0, 0]]], np.uint8)),
        "CMYK": Image.new("CMYK", (3, 1), (0, 0, 0, 0)),
        "I;16": Image.fromarray(np.array([[0, 32896, 65535]], np.uint16)),
        "I": Image.fromarray(np.array([[0, 100, 255]], np.int32)),
        "F": Image.fromarray(np.array([[0.0, 0.5, 1.0]], np.float32)),
    }


@pytest.mark.parametrize("name", list(_mode_samples()))
@pytest.mark.parametrize("channels,want", [(1, "L"), (3, "RGB")])
def test_convert_every_mode(name, channels, want):
    img = _mode_samples()[name]
    assert img.mode == name.split("+")[0]
    out = images.convert_image(img, channels)
    assert out.mode == want
    assert out.size == img.size
    arr = np.asarray(out)
    assert arr.dtype == np.uint8
    assert arr.shape == ((1, 3) if channels == 1 else (1, 3, 3))


def test_convert_rejects_other_channel_counts():
    with pytest.raises(ValueError, match="channels must be 1 or 3"):
        images.convert_image(Image.new("RGB", (2, 2)), 4)


def test_convert_rgb_and_l_values():
    samples = _mode_samples()
    rgb = np.asarray(images.convert_image(samples["RGB"], 3))
    np.testing.assert_array_equal(rgb, [[RED, GREEN, BLUE]])
    gray = np.asarray(images.convert_image(samples["L"], 3))
    np.testing.assert_array_equal(gray, [[[0] * 3, [128] * 3, [255] * 3]])
    np.testing.assert_array_equal(np.asarray(images.convert_image(samples["L"], 1)), [[0, 128, 255]])
    np.testing.assert_array_equal(np.asarray(images.convert_image(samples["1"], 1)), [[255, 0, 255]])


def test_convert_rgba_transparent_is_white():
    out = np.asarray(images.convert_image(_mode_samples()["RGBA"], 3))
    np.testing.assert_array_equal(out, [[RED, GREEN, (255, 255, 255)]])
    gray = np.asarray(images.convert_image(_mode_samples()["RGBA"], 1))
    assert gray[0, 2] == 255


def test_convert_rgba_half_transparent_blends_with_white():
    img = Image.fromarray(np.array([[[0, 0, 0, 128]]], np.uint8), "RGBA")
    out = np.asarray(images.convert_image(img, 3))
    assert np.abs(out.astype(int) - 127).max() <= 1


def test_convert_la_transparent_is_white():
    out = np.asarray(images.convert_image(_mode_samples()["LA"], 1))
    np.testing.assert_array_equal(out, [[0, 128, 255]])


def test_convert_palette_with_transparency():
    out = np.asarray(images.convert_image(_mode_samples()["P+t"], 3))
    np.testing.assert_array_equal(out, [[(10, 20, 30), (200, 100, 50), (255, 255, 255)]])


def test_convert_palette_without_transparency():
    out = np.asarray(images.convert_image(_mode_samples()["P"], 3))
    np.testing.assert_array_equal(out, [[(10, 20, 30), (200, 100, 50), (0, 0, 0)]])


def test_convert_i16_scales_to_8bit():
    out = np.asarray(images.convert_image(_mode_samples()["I;16"], 1))
    np.testing.assert_array_equal(out, [[0, 128, 255]])
    rgb = np.asarray(images.convert_image(_mode_samples()["I;16"], 3))
    np.testing.assert_array_equal(rgb[0, :, 0], [0, 128, 255])
    np.testing.assert_array_equal(rgb[..., 0], rgb[..., 2])


def test_convert_i16_divides_by_257():
    # 257 * k is exactly k on 8 bits; 65278 / 256 would round to 255 instead of 254
    values = np.array([[257, 257 * 100, 257 * 254, 65278 + 128]], np.uint16)
    out = np.asarray(images.convert_image(Image.fromarray(values), 1))
    np.testing.assert_array_equal(out, [[1, 100, 254, 254]])


def test_convert_int32_keeps_8bit_range_and_scales_16bit():
    small = np.asarray(images.convert_image(_mode_samples()["I"], 1))
    np.testing.assert_array_equal(small, [[0, 100, 255]])
    big = Image.fromarray(np.array([[0, 32896, 65535]], np.int32))
    assert big.mode == "I"
    np.testing.assert_array_equal(np.asarray(images.convert_image(big, 1)), [[0, 128, 255]])


def test_convert_float_unit_range_scales_to_255():
    out = np.asarray(images.convert_image(_mode_samples()["F"], 1))
    np.testing.assert_array_equal(out, [[0, 128, 255]])
    img = Image.fromarray(np.array([[0.25, 0.75]], np.float32))
    np.testing.assert_array_equal(np.asarray(images.convert_image(img, 1)), [[64, 191]])


def test_convert_float_above_one_is_clipped_not_scaled():
    img = Image.fromarray(np.array([[0.0, 100.0, 300.0, -5.0]], np.float32))
    np.testing.assert_array_equal(np.asarray(images.convert_image(img, 1)), [[0, 100, 255, 0]])


def test_convert_cmyk_zero_is_white():
    out = np.asarray(images.convert_image(_mode_samples()["CMYK"], 3))
    assert (out == 255).all()
    assert (np.asarray(images.convert_image(_mode_samples()["CMYK"], 1)) == 255).all()


# ---------------------------------------------------------------------------------------------- open_image


def _save(tmp_path, arr: np.ndarray, name: str, **kw) -> str:
    path = str(tmp_path / name)
    Image.fromarray(arr).save(path, **kw)
    return path


def _jpeg_bytes(height: int = 64, width: int = 64) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(random_image(height, width, 3)).save(buf, "JPEG", quality=95)
    return buf.getvalue()


def test_open_png_path_and_bytes(tmp_path):
    arr = random_image(12, 17, 3)
    path = _save(tmp_path, arr, "a.png")
    for source in (path, Path(path).read_bytes()):
        img = images.open_image(source)
        assert img.size == (17, 12)
        np.testing.assert_array_equal(np.asarray(img.convert("RGB")), arr)


def test_open_bytearray(tmp_path):
    arr = random_image(5, 6, 3)
    data = bytearray(Path(_save(tmp_path, arr, "a.png")).read_bytes())
    np.testing.assert_array_equal(np.asarray(images.open_image(data)), arr)


def test_open_applies_exif_orientation(tmp_path):
    arr = np.zeros((30, 60, 3), np.uint8)
    arr[:, :30] = RED  # left half red: after rotating 90 degrees clockwise it is the top half
    im = Image.fromarray(arr)
    exif = im.getexif()
    exif[0x0112] = 6
    path = str(tmp_path / "rot.jpg")
    im.save(path, exif=exif.tobytes(), quality=95)
    with Image.open(path) as stored:
        assert stored.size == (60, 30)
    img = images.open_image(path)
    assert img.size == (30, 60)
    out = np.asarray(img.convert("RGB")).astype(int)
    assert np.abs(out[5:25] - RED).max() < 30  # top: red
    assert out[35:55].max() < 30  # bottom: black
    assert images.open_image(Path(path).read_bytes()).size == (30, 60)


def test_open_empty_file(tmp_path):
    path = tmp_path / "empty.png"
    path.write_bytes(b"")
    with pytest.raises(ImageError, match="empty file"):
        images.open_image(str(path))
    with pytest.raises(ImageError, match="empty file"):
        images.open_image(b"")


def test_open_random_bytes(tmp_path):
    junk = np.random.default_rng(0).integers(0, 256, 2000, dtype=np.uint8).tobytes()
    path = tmp_path / "junk.jpg"
    path.write_bytes(junk)
    with pytest.raises(ImageError, match="not an image"):
        images.open_image(str(path))
    with pytest.raises(ImageError, match="not an image"):
        images.open_image(junk)


def test_open_truncated_jpeg(tmp_path):
    data = _jpeg_bytes()
    cut = data[: len(data) // 3]
    path = tmp_path / "cut.jpg"
    path.write_bytes(cut)
    with pytest.raises(ImageError, match="truncated or corrupt"):
        images.open_image(str(path))
    with pytest.raises(ImageError, match="truncated or corrupt"):
        images.open_image(cut)


def test_open_missing_file(tmp_path):
    with pytest.raises(ImageError, match="file not found"):
        images.open_image(str(tmp_path / "nope.png"))


def test_open_folder(tmp_path):
    with pytest.raises(ImageError, match="folder"):
        images.open_image(str(tmp_path))


def test_open_too_large(tmp_path):
    path = _save(tmp_path, random_image(20, 20, 3), "big.png")
    with pytest.raises(ImageError, match="too large"):
        images.open_image(path, max_pixels=100)
    with pytest.raises(ImageError, match="too large"):
        images.open_image(Path(path).read_bytes(), max_pixels=100)
    assert images.open_image(path, max_pixels=400).size == (20, 20)  # at the limit is allowed


def test_open_honors_max_pixels_above_pillow_default():
    # 9500 x 9500 = 90,250,000 pixels: under the limit given, so it must open; Pillow's own global limit
    # (Image.MAX_IMAGE_PIXELS, 89,478,485) must not override the max_pixels the caller gave.
    side = 9500
    assert 89_478_485 < side * side < 100_000_000
    buf = io.BytesIO()
    Image.new("1", (side, side)).save(buf, "PNG")  # ~11 KB file
    assert images.open_image(buf.getvalue(), max_pixels=100_000_000).size == (side, side)
    with pytest.raises(ImageError, match=f"9500x9500 pixels .*limit is {images.DEFAULT_MAX_PIXELS:,}"):
        images.open_image(buf.getvalue())  # the default limit: refused from the header, nothing decoded


def test_the_process_limit_applies_when_the_caller_names_none():
    buf = io.BytesIO()
    Image.new("L", (30, 20)).save(buf, "PNG")
    try:
        images.set_max_pixels(500)
        with pytest.raises(ImageError, match="30x20 pixels"):
            images.load_for_network(buf.getvalue(), 1, 8, 8)
        assert images.open_image(buf.getvalue(), max_pixels=600).size == (30, 20)
    finally:
        images.set_max_pixels(None)
    assert images.load_for_network(buf.getvalue(), 1, 8, 8)[1] == (30, 20)


def test_image_error_is_value_error():
    assert issubclass(ImageError, ValueError)


# ----------------------------------------------------------------------------------------- load_for_network


@pytest.mark.parametrize("mode", ["squash", "crop", "fill", "half_crop"])
def test_load_for_network(tmp_path, mode):
    arr = random_image(20, 40, 3)
    path = _save(tmp_path, arr, "x.png")
    out, size = images.load_for_network(path, 3, 16, 16, mode, seed=4)
    assert size == (40, 20)
    assert out.shape == (16, 16, 3) and out.dtype == np.uint8
    np.testing.assert_array_equal(out, images.resize_image(arr, 16, 16, mode, seed=4))


def test_load_for_network_gray_from_rgba_bytes(tmp_path):
    rgba = np.zeros((10, 30, 4), np.uint8)  # fully transparent: white after conversion
    path = _save(tmp_path, rgba, "t.png")
    out, size = images.load_for_network(Path(path).read_bytes(), 1, 5, 15)
    assert size == (30, 10)
    assert out.shape == (5, 15, 1)
    assert (out == 255).all()


def test_load_for_network_reports_upright_size(tmp_path):
    im = Image.fromarray(random_image(30, 60, 3))
    exif = im.getexif()
    exif[0x0112] = 6
    path = str(tmp_path / "rot.jpg")
    im.save(path, exif=exif.tobytes())
    out, size = images.load_for_network(path, 1, 8, 8)
    assert size == (30, 60)
    assert out.shape == (8, 8, 1)


def test_load_for_network_propagates_image_error(tmp_path):
    with pytest.raises(ImageError, match="file not found"):
        images.load_for_network(str(tmp_path / "missing.png"), 3, 8, 8)


# --------------------------------------------------------------------------------------------- encode_image


@pytest.mark.parametrize("channels", [1, 3])
def test_encode_png_round_trips(channels):
    arr = random_image(9, 13, channels)
    data = images.encode_image(arr, "png")
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    with Image.open(io.BytesIO(data)) as im:
        assert im.mode == ("L" if channels == 1 else "RGB")
        back = np.asarray(im)
    np.testing.assert_array_equal(back.reshape(arr.shape), arr)


@pytest.mark.parametrize("channels", [1, 3])
def test_encode_jpg_is_close(channels):
    # A smooth gradient compresses well; noise would not be "close" under any JPEG quality.
    y, x = np.mgrid[0:32, 0:48]
    base = ((x * 4 + y * 2) % 256).astype(np.uint8)
    arr = np.stack([base, 255 - base, base // 2], axis=2)[:, :, :channels]
    data = images.encode_image(np.ascontiguousarray(arr), "jpg")
    assert data.startswith(b"\xff\xd8")
    with Image.open(io.BytesIO(data)) as im:
        assert im.format == "JPEG"
        back = np.asarray(im).reshape(arr.shape).astype(int)
    assert np.abs(back - arr).mean() < 4


def test_encode_none_and_unknown():
    arr = random_image(4, 4, 3)
    assert images.encode_image(arr, "none") is None
    with pytest.raises(ValueError, match="unknown encoding 'bmp'"):
        images.encode_image(arr, "bmp")
