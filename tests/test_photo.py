"""Photos read upright, at 8 bits and a bounded size, and the camera each one is given."""

from __future__ import annotations

import math
import re
import warnings

import numpy as np
import pytest
import torch
from PIL import Image

from hopose import photo as photo_module
from hopose.photo import (
    EXIF_IFD,
    FOCAL_LENGTH,
    FOCAL_LENGTH_35MM,
    FOCAL_PLANE_RESOLUTION_UNIT,
    FOCAL_PLANE_X_RESOLUTION,
    MAX_SIDE,
    MIN_SIDE,
    check_camera,
    photo_camera,
    photo_from_image,
    read_photo,
)


def _enlarged(pixels: np.ndarray) -> np.ndarray:
    """Each pixel of ``pixels`` (H, W, ...) a MIN_SIDE-wide block: a pattern of a few pixels as
    a photo large enough to read, which holds the same values."""
    return pixels.repeat(MIN_SIDE, axis=0).repeat(MIN_SIDE, axis=1)


def _save(path, pixels: np.ndarray, *, orientation: int = 1, focal: dict | None = None) -> None:
    exif = Image.Exif()
    exif[0x0112] = orientation
    exif.get_ifd(EXIF_IFD).update(focal or {})
    Image.fromarray(pixels).save(path, exif=exif, quality=95)


def test_exif_orientation_makes_the_photo_upright(tmp_path):
    stored = np.zeros((40, 60, 3), np.uint8)
    stored[:10, :10] = [255, 0, 0]  # red in the stored top-left corner
    _save(tmp_path / "p.jpg", stored, orientation=6)
    photo = read_photo(tmp_path / "p.jpg")
    # Orientation 6: the viewer turns the stored image 90° clockwise, so the upright photo is
    # 40 wide and 60 high and the stored top-left corner is now its top-right corner.
    assert photo.size == (40, 60) and photo.image.size == (40, 60)
    upright = np.asarray(photo.image)
    assert upright[3, 36, 0] > 200 and upright[3, 3, 0] < 50


def test_sixteen_bit_greyscale_png_is_scaled_not_clipped(tmp_path):
    Image.fromarray(np.full((16, 24), 30000, np.uint16)).save(tmp_path / "g.png")
    photo = read_photo(tmp_path / "g.png")
    # 30000 * 255 / 65535 = 116.7 -> 117 in every channel (a plain convert gives 255).
    assert np.asarray(photo.image).tolist() == np.full((16, 24, 3), 117).tolist()


@pytest.mark.parametrize(
    ("header", "stored", "level"),
    [
        (b"P5\n24 16\n65535\n", np.full((16, 24), 30000, ">u2").tobytes(), 117),
        # maxval 4095, which Pillow stretches to 16 bits: 2000 / 4095 * 255 = 124.5 -> 125.
        (b"P5\n24 16\n4095\n", np.full((16, 24), 2000, ">u2").tobytes(), 125),
        (b"P2\n24 16\n65535\n", b"30000 " * (16 * 24), 117),  # plain (text) PGM
    ],
    ids=["raw", "maxval-4095", "plain"],
)
def test_sixteen_bit_greyscale_pgm_read_as_mode_i_is_scaled_too(tmp_path, header, stored, level):
    """Pillow widens a 16-bit PGM to mode I: 16-bit values, scaled as the 16-bit PNG's are
    (30000 * 255 / 65535 = 116.7 -> 117), not refused as 32-bit integers, from the file, from
    the file opened, or loaded (whose tiles, which told the raw 16-bit mode, are gone). Those
    of a maxval other than 65535 and the plain ones were refused from the file too."""
    (tmp_path / "g.pgm").write_bytes(header + stored)
    expected = np.full((16, 24, 3), level).tolist()
    assert np.asarray(read_photo(tmp_path / "g.pgm").image).tolist() == expected
    with Image.open(tmp_path / "g.pgm") as opened:
        assert opened.mode == "I"
        assert np.asarray(photo_from_image(opened).image).tolist() == expected
        opened.load()
        assert np.asarray(photo_from_image(opened).image).tolist() == expected


def test_mode_i_pixels_in_memory_are_refused_naming_the_argument():
    """An image of mode I made in memory does not say whether it holds 16-bit values: refused,
    naming ``image``, where it was an AttributeError (an image in memory has no tiles)."""
    with pytest.raises(ValueError) as error:
        photo_from_image(Image.fromarray(np.full((40, 60), 100, np.int32)))
    assert str(error.value) == (
        "image: not a photo hopose reads (32-bit integer pixels (mode I) of a depth an image in "
        "memory does not tell; give its file, or convert it to mode I;16)"
    )


def test_a_premultiplied_alpha_image_reads_laid_over_black():
    """Mode La (grey premultiplied by alpha), which Pillow converts to LA alone: a pixel of
    stored grey 50 and alpha 128 is grey 50 / (128 / 255) = 99.6 at that alpha, over black
    99.6 * 128 / 255 = 50. It was Pillow's "conversion from La to L not supported"."""
    image = Image.new("La", (MIN_SIDE, MIN_SIDE), (50, 128))
    grey = np.asarray(photo_from_image(image).image).astype(int)
    assert np.abs(grey - 50).max() <= 1


@pytest.mark.parametrize(
    ("pixels", "message"),
    [
        # Floats in [0, 1] became an all-black photo, 32-bit integers beyond 16 bits an
        # all-white one, and 32-bit integers of 8-bit values (200 * 255 / 65535 = 0.8) one
        # almost black.
        (np.full((16, 24), 0.5, np.float32), "32-bit float pixels"),
        (np.full((16, 24), 2**20, np.int32), "32-bit integer pixels"),
        (np.full((16, 24), 200, np.int32), "32-bit integer pixels"),
    ],
    ids=["float", "int32", "int32-of-8-bit-values"],
)
def test_pixels_of_no_fixed_white_are_refused_naming_the_file(tmp_path, pixels, message):
    Image.fromarray(pixels).save(tmp_path / "data.tif")
    assert Image.open(tmp_path / "data.tif").mode == ("F" if pixels.dtype.kind == "f" else "I")
    with pytest.raises(ValueError) as error:
        read_photo(tmp_path / "data.tif")
    assert str(error.value) == (
        f"{tmp_path / 'data.tif'}: not a photo hopose reads ({message}; save the photo with 8 "
        "or 16 bits)"
    )


def test_a_large_photo_is_decoded_small_and_keeps_its_full_size_coordinates(tmp_path):
    columns = np.linspace(0, 255, 2000).round().astype(np.uint8)  # value 255 x / 1999
    ramp = np.broadcast_to(columns[None, :, None], (1500, 2000, 3))
    Image.fromarray(np.ascontiguousarray(ramp)).save(tmp_path / "big.jpg")
    photo = read_photo(tmp_path / "big.jpg", max_side=250)
    assert photo.size == (2000, 1500) and photo.image.size == (250, 188)
    # Working column k averages photo columns 8k..8k+7, centre 8k + 3.5: at k = 125 the value
    # is 255 * 1003.5 / 1999 = 128.0.
    assert abs(int(np.asarray(photo.image)[90, 125, 0]) - 128) <= 3


def _stripes() -> np.ndarray:
    """4000 x 400 px of 1-px black and white vertical stripes, 8-bit greyscale."""
    return (np.indices((400, 4000))[1] % 2 * 255).astype(np.uint8)


@pytest.mark.parametrize("mode", ["RGB", "P", "1"])
def test_palette_and_one_bit_photos_are_shrunk_by_averaging_as_rgb_ones_are(tmp_path, mode):
    # Shrunk 4:1 to 1000 px, each working pixel averages 4 photo columns, 2 black and 2 white:
    # 127.5, rounded to 127 or 128. Pillow resizes modes P and 1 by nearest neighbour only,
    # which kept every other column: all black (or all white).
    Image.fromarray(_stripes()).convert(mode).save(tmp_path / "stripes.png")
    photo = read_photo(tmp_path / "stripes.png", max_side=1000)
    working = np.asarray(photo.image)
    assert photo.image.size == (1000, 100)
    assert working.min() >= 127 and working.max() <= 128


def test_a_palette_photo_with_a_transparent_colour_is_shrunk_as_its_rgba_version(tmp_path):
    # Opaque red columns between transparent white ones: an RGBA photo is resized weighted by
    # alpha (Pillow's premultiplied resize), so the shrunk copy is red, half covered (alpha
    # 127.5 -> 128), over black: 255 * 128 / 255 = 128. The palette's colours averaged
    # regardless of transparency are pink, and nearest neighbour kept the white ones.
    rgba = np.zeros((400, 4000, 4), np.uint8)
    rgba[:, 0::2] = [255, 255, 255, 0]
    rgba[:, 1::2] = [255, 0, 0, 255]
    Image.fromarray(rgba).save(tmp_path / "rgba.png")
    palette = Image.fromarray(rgba[..., :3]).convert("P", palette=Image.Palette.ADAPTIVE, colors=2)
    white = palette.getpixel((0, 0))  # the palette index of the white columns
    palette.save(tmp_path / "palette.png", transparency=white)
    expected = np.asarray(read_photo(tmp_path / "rgba.png", max_side=1000).image)
    got = np.asarray(read_photo(tmp_path / "palette.png", max_side=1000).image)
    assert (expected == [128, 0, 0]).all()
    np.testing.assert_array_equal(got, expected)


def test_a_file_that_is_not_an_image_is_named(tmp_path):
    (tmp_path / "notes.jpg").write_text("not an image")
    with pytest.raises(ValueError, match=r"notes\.jpg: not a readable image"):
        read_photo(tmp_path / "notes.jpg")


@pytest.mark.parametrize(
    ("focal", "options", "source", "f"),
    [
        # 360x240 is 3:2 like the 36x24 film: f = 26 mm * 360 / 36 = 260 px.
        ({FOCAL_LENGTH_35MM: 26}, {}, "exif FocalLengthIn35mmFilm", 260.0),
        # 4 mm lens, 1000 sensor pixels per cm (unit 3): 4 * 1000 / 10 = 400 px.
        (
            {FOCAL_LENGTH: 4.0, FOCAL_PLANE_X_RESOLUTION: 1000.0, FOCAL_PLANE_RESOLUTION_UNIT: 3},
            {},
            "exif FocalLength",
            400.0,
        ),
        ({}, {}, "default", 260.0),  # 26 mm equivalent, as above
        # 90° horizontal: f = (360 / 2) / tan(45°) = 180 px, whatever the EXIF says.
        ({FOCAL_LENGTH_35MM: 26}, {"fov": 90.0}, "--fov", 180.0),
    ],
)
def test_camera_from_options_exif_or_default(tmp_path, focal, options, source, f):
    _save(tmp_path / "p.jpg", np.zeros((240, 360, 3), np.uint8), focal=focal)
    camera = photo_camera(read_photo(tmp_path / "p.jpg"), **options)
    # Principal point at the centre of a 360 x 240 photo whose pixel centres are the integers
    # 0 ... 359 and 0 ... 239: ((360 - 1) / 2, (240 - 1) / 2) = (179.5, 119.5).
    expected = torch.tensor([[f, 0, 179.5], [0, f, 119.5], [0, 0, 1]], dtype=torch.float64)
    assert camera.source == source
    torch.testing.assert_close(camera.K, expected)


def test_given_K_is_used_as_is_and_bad_cameras_are_named(tmp_path):
    """The Python API names its parameters, K and fov (the command's options are named by
    hopose predict itself: tests/test_cli.py)."""
    _save(tmp_path / "p.jpg", np.zeros((24, 36, 3), np.uint8))
    photo = read_photo(tmp_path / "p.jpg")
    camera = photo_camera(photo, K=(500.0, 510.0, 20.0, 11.0))
    assert camera.source == "--K" and camera.K[:2].tolist() == [[500, 0, 20], [0, 510, 11]]
    with pytest.raises(ValueError, match=r"^K: expected fx,fy,cx,cy"):
        photo_camera(photo, K=(500.0, -1.0, 20.0, 11.0))
    # The 36x24 photo spans -0.5 ... 35.5 and -0.5 ... 23.5 (pixel centres at integers): its
    # edges pass quietly; a centre beyond them (a K for a 1920x1080 frame, or a crop's) is used
    # as given, with a warning.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert photo_camera(photo, K=(500.0, 500.0, -0.5, 23.5)).source == "--K"
    for centre in ((960.0, 540.0), (35.6, 11.0), (20.0, -0.6)):
        with pytest.warns(
            UserWarning, match=r"principal point .* of the K given lies outside the 36x24 photo"
        ):
            camera = photo_camera(photo, K=(500.0, 500.0, *centre))
        assert camera.K[:2, 2].tolist() == list(centre)
    with pytest.raises(ValueError, match=r"^fov: expected"):
        photo_camera(photo, fov=180.0)
    with pytest.raises(ValueError, match=r"^K and fov: give one camera, not both$"):
        photo_camera(photo, K=(1.0, 1.0, 0.0, 0.0), fov=60.0)
    assert math.isclose(photo_camera(photo, fov=60.0).K[0, 0], 18 / math.tan(math.pi / 6))


def test_a_jpeg_decoded_at_draft_scale_keeps_the_photo_s_geometry(tmp_path):
    # 2001 px is not a multiple of the 1/8 draft scale: libjpeg decodes ceil(2001 / 8) = 251
    # columns, the last one 7/8 padding. The working copy must show the photo as a direct
    # resize of its full decode does, not the padded draft squeezed into 250 columns.
    stored = np.zeros((1201, 2001, 3), np.uint8)
    stored[:, 1880:1896] = 255  # a bright band near the right edge
    Image.fromarray(stored).save(tmp_path / "odd.jpg", quality=98)
    photo = read_photo(tmp_path / "odd.jpg", max_side=250)
    assert photo.size == (2001, 1201) and photo.image.size == (250, 150)
    with Image.open(tmp_path / "odd.jpg") as image:
        direct = image.convert("RGB").resize(photo.image.size, Image.BILINEAR)

    def band_centre(image: Image.Image) -> float:
        row = np.asarray(image)[75, :, 0].astype(np.float64)
        return float((row * np.arange(row.size)).sum() / row.sum())

    # Without the draft's box the band lands 0.8 working px (6.6 photo px) to the left.
    assert abs(band_centre(photo.image) - band_centre(direct)) < 0.1


def test_the_working_affine_puts_a_point_where_the_working_copy_shows_it(tmp_path):
    # A 2400x1200 PNG read at max_side 300 (s = 1/8): a Gaussian blob at full-size (1234.3,
    # 567.8) shows in the copy at s u + (s - 1) / 2 = (153.85, 70.54), not at s u (154.29,
    # 70.98): Pillow's resize maps outer pixel edges onto each other.
    u, v = 1234.3, 567.8
    ys, xs = np.mgrid[0:1200, 0:2400]
    blob = 255 * np.exp(-((xs - u) ** 2 + (ys - v) ** 2) / (2 * 24.0**2))
    path = tmp_path / "blob.png"
    Image.fromarray(np.repeat(blob[..., None], 3, axis=2).round().astype(np.uint8)).save(path)
    photo = read_photo(path, max_side=300)
    weight = np.asarray(photo.image, dtype=float)[..., 0]
    wy, wx = np.mgrid[0 : weight.shape[0], 0 : weight.shape[1]]
    shown = np.array([(weight * wx).sum(), (weight * wy).sum()]) / weight.sum()
    expected = photo.working_affine() @ torch.tensor([u, v, 1.0], dtype=torch.float64)
    np.testing.assert_allclose(shown, expected[:2].numpy(), atol=0.05)


# Upright (width, height) and the corners where the stored top-left (red) and top-right (green)
# blocks show, per EXIF orientation (EXIF 2.32: e.g. 5 = row 0 is the visual left side and
# column 0 the visual top, a transpose; 8 = row 0 on the left, column 0 at the bottom).
UPRIGHT_CORNERS = {
    1: ((60, 40), "top-left", "top-right"),
    2: ((60, 40), "top-right", "top-left"),
    3: ((60, 40), "bottom-right", "bottom-left"),
    4: ((60, 40), "bottom-left", "bottom-right"),
    5: ((40, 60), "top-left", "bottom-left"),
    6: ((40, 60), "top-right", "bottom-right"),
    7: ((40, 60), "bottom-right", "top-right"),
    8: ((40, 60), "bottom-left", "top-left"),
}


@pytest.mark.parametrize("suffix", ["jpg", "png", "tif", "webp"])
@pytest.mark.parametrize("orientation", sorted(UPRIGHT_CORNERS))
def test_each_exif_orientation_puts_the_stored_corners_where_a_viewer_shows_them(
    tmp_path, orientation, suffix
):
    """All eight orientations, each told apart from the others by two coloured corners (one
    corner alone leaves a flip and a turn that agree on it), in each format that carries the
    tag. Recent Pillow turns a TIFF upright itself as it loads it: it was turned twice."""
    stored = np.zeros((40, 60, 3), np.uint8)
    stored[:10, :10] = [255, 0, 0]
    stored[:10, -10:] = [0, 255, 0]
    _save(tmp_path / f"p.{suffix}", stored, orientation=orientation)
    photo = read_photo(tmp_path / f"p.{suffix}")
    size, red, green = UPRIGHT_CORNERS[orientation]
    assert photo.size == size and photo.image.size == size
    upright = np.asarray(photo.image).astype(int)
    w, h = size
    inset = {  # a pixel 4 px inside each corner, well within its 10 x 10 block
        "top-left": (4, 4),
        "top-right": (4, w - 5),
        "bottom-left": (h - 5, 4),
        "bottom-right": (h - 5, w - 5),
    }
    shown = {}
    for corner, (row, col) in inset.items():
        r, g, _ = upright[row, col]
        shown[corner] = "red" if r > 200 and g < 50 else "green" if g > 200 and r < 50 else "dark"
    assert shown[red] == "red" and shown[green] == "green"
    assert list(shown.values()).count("dark") == 2


@pytest.mark.parametrize(
    ("focal", "source", "f"),
    [
        # 400x300 (4:3) has the diagonal 500 px; the 36x24 film hypot(36, 24) = 43.27 mm: f =
        # 26 * 500 / 43.27 = 300.46 px (26 * 400 / 36 = 288.9 would be matching widths instead).
        ({FOCAL_LENGTH_35MM: 26}, "exif FocalLengthIn35mmFilm", 26 * 500 / math.hypot(36, 24)),
        # No resolution unit: EXIF's default is the inch, 6350 px / 25.4 mm: 4 * 6350 / 25.4 = 1000.
        ({FOCAL_LENGTH: 4.0, FOCAL_PLANE_X_RESOLUTION: 6350.0}, "exif FocalLength", 1000.0),
        # Unit 4, millimetres: 4 mm * 250 px/mm = 1000 px.
        (
            {FOCAL_LENGTH: 4.0, FOCAL_PLANE_X_RESOLUTION: 250.0, FOCAL_PLANE_RESOLUTION_UNIT: 4},
            "exif FocalLength",
            1000.0,
        ),
        # Unit 1 ("no absolute unit") cannot give a focal length: the 26 mm default, as above.
        (
            {FOCAL_LENGTH: 4.0, FOCAL_PLANE_X_RESOLUTION: 250.0, FOCAL_PLANE_RESOLUTION_UNIT: 1},
            "default",
            26 * 500 / math.hypot(36, 24),
        ),
        # Cameras write FocalLengthIn35mmFilm 0 for "unknown": not a focal length of 0 px.
        ({FOCAL_LENGTH_35MM: 0}, "default", 26 * 500 / math.hypot(36, 24)),
    ],
    ids=["35mm-equivalent-4:3", "inch-default-unit", "mm-unit", "no-unit", "35mm-unknown"],
)
def test_exif_camera_of_a_four_by_three_photo(tmp_path, focal, source, f):
    """The EXIF focal lengths in pixels of a 4:3 photo (unlike the 3:2 ones above, where
    matching the film's diagonal and matching its width agree), each resolution unit, and the
    tag values that mean "unknown"."""
    _save(tmp_path / "p.jpg", np.zeros((300, 400, 3), np.uint8), focal=focal)
    camera = photo_camera(read_photo(tmp_path / "p.jpg"))
    expected = torch.tensor([[f, 0, 199.5], [0, f, 149.5], [0, 0, 1]], dtype=torch.float64)
    assert camera.source == source
    torch.testing.assert_close(camera.K, expected)


def test_sixteen_bit_values_round_to_the_nearest_eight_bit_level(tmp_path):
    """v * 255 / 65535 is v / 257 exactly; values just either side of a half level pin the
    divisor and the rounding: 128 / 257 = 0.498 -> 0, 129 / 257 = 0.502 -> 1, 65407 / 257 =
    254.502 -> 255 (scaled by 255 / 65536 it would be 254.498 -> 254), 65535 -> 255."""
    values = np.array([[0, 128, 129, 65407, 65535]], np.uint16)
    Image.fromarray(_enlarged(values)).save(tmp_path / "g.png")
    photo = read_photo(tmp_path / "g.png")
    levels = np.array([[0, 0, 1, 255, 255]])
    np.testing.assert_array_equal(np.asarray(photo.image)[..., 0], _enlarged(levels))


def test_a_large_sixteen_bit_photo_is_scaled_then_shrunk_to_the_size_bound(tmp_path):
    """16-bit photos are converted at full size (no reduced decoding) and still end within
    max_side, keeping their full-size coordinates."""
    Image.fromarray(np.full((100, 400), 30000, np.uint16)).save(tmp_path / "g.png")
    photo = read_photo(tmp_path / "g.png", max_side=100)
    assert photo.size == (400, 100) and photo.image.size == (100, 25)
    assert (np.asarray(photo.image) == 117).all()  # 30000 / 257 = 116.7, as in the small one


def test_a_zero_focal_length_or_field_of_view_is_refused(tmp_path):
    """fx, fy > 0 and 0 < fov: a camera of focal length 0 (or a field of view of 0, whose
    focal length is infinite) projects nothing."""
    _save(tmp_path / "p.jpg", np.zeros((24, 36, 3), np.uint8))
    photo = read_photo(tmp_path / "p.jpg")
    with pytest.raises(ValueError, match=r"^K: expected fx,fy,cx,cy with fx, fy > 0"):
        photo_camera(photo, K=(0.0, 500.0, 17.5, 11.5))
    with pytest.raises(ValueError, match=r"^fov: expected a horizontal field of view"):
        photo_camera(photo, fov=0.0)
    # Named as the caller says: hopose predict checks its options so.
    with pytest.raises(ValueError, match=r"^--fov: expected a horizontal field of view"):
        check_camera(None, 0.0, ("--K", "--fov"))
    with pytest.raises(ValueError, match=r"^--K: expected fx,fy,cx,cy with fx, fy > 0"):
        check_camera((500.0, math.nan, 17.5, 11.5), None, ("--K", "--fov"))


def _with_hidden_white(mode: str) -> Image.Image:
    """A 2x1 image of ``mode``: a fully transparent white pixel, then an opaque (10, 200, 30)
    one (its grey in LA); the transparency as alpha (RGBA, LA), a palette's transparent
    index (P) or an RGB colour key (PNG's tRNS). :func:`_enlarged` as a photo."""
    rgba = np.array([[[255, 255, 255, 0], [10, 200, 30, 255]]], np.uint8)
    if mode in ("RGBA", "LA"):
        return Image.fromarray(rgba).convert(mode)
    if mode == "P":
        image = Image.new("P", (2, 1))
        image.putpalette([255, 255, 255, 10, 200, 30])
        image.putdata([0, 1])
        image.info["transparency"] = 0
        return image
    image = Image.fromarray(np.ascontiguousarray(rgba[..., :3]))
    image.info["transparency"] = (255, 255, 255)
    return image


@pytest.mark.parametrize("mode", ["RGBA", "LA", "P", "RGB-key"])
def test_a_transparent_pixel_reads_as_the_black_background_not_its_hidden_colour(tmp_path, mode):
    """From a PNG file and from memory alike the transparent pixel is black, as the network's
    views are beyond a photo (hopose.photo.BACKGROUND); it read as the white it hid. The opaque
    pixel keeps its colour."""
    pattern = _with_hidden_white(mode.removesuffix("-key"))
    # Each pixel a block, by nearest neighbour: the palette and the colour key are kept.
    image = pattern.resize((2 * MIN_SIDE, MIN_SIDE), Image.NEAREST)
    image.save(tmp_path / "cut-out.png")  # its transparency saved with it (alpha, tRNS)
    opaque = pattern.convert("RGB").getpixel((1, 0))
    expected = _enlarged(np.array([[[0, 0, 0], opaque]], np.uint8))
    for photo in (read_photo(tmp_path / "cut-out.png"), photo_from_image(image)):
        np.testing.assert_array_equal(np.asarray(photo.image), expected)


def test_a_half_transparent_pixel_is_its_colour_laid_over_black(tmp_path):
    # Alpha 128 of 255 over black: (200, 100, 50) * 128 / 255 = (100.4, 50.2, 25.1) -> (100,
    # 50, 25); kept as (200, 100, 50) when the alpha was dropped.
    Image.fromarray(np.full((MIN_SIDE, MIN_SIDE, 4), [200, 100, 50, 128], np.uint8)).save(
        tmp_path / "half.png"
    )
    assert (np.asarray(read_photo(tmp_path / "half.png").image) == [100, 50, 25]).all()


def test_a_photo_above_pillows_decompression_bomb_limit_is_read_leaving_the_limit(
    tmp_path, monkeypatch
):
    """Pillow refuses an image of more than twice Image.MAX_IMAGE_PIXELS and warns above it (a
    200-megapixel phone photo was refused): with the limit patched to 1,000 pixels, a 60x40
    photo (2,400 pixels) is read without a warning, and a 40x30 one (1,200) too, as PNGs and as
    LZW-compressed TIFFs; the limit is as it was afterwards."""
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    # A compressed TIFF's decoder checks the limit again when its pixels load.
    for name, options in (("large.png", {}), ("large.tif", {"compression": "tiff_lzw"})):
        for width, height in ((60, 40), (40, 30)):
            Image.new("RGB", (width, height), "red").save(tmp_path / name, **options)
            with warnings.catch_warnings():
                warnings.simplefilter("error")  # a DecompressionBombWarning fails the test
                photo = read_photo(tmp_path / name)
            assert photo.size == (width, height)
            assert (np.asarray(photo.image) == [255, 0, 0]).all()
    assert Image.MAX_IMAGE_PIXELS == 1000


def test_a_photo_above_max_pixels_is_refused_naming_the_file_and_one_below_read_quietly(
    tmp_path, monkeypatch
):
    """With MAX_PIXELS at 2,000 a 60x40 photo (2,400 pixels) is refused naming the file, and a
    40x30 one (1,200) is read without Pillow's warning, which it gives from half the limit it
    refuses at (1,000 here)."""
    monkeypatch.setattr(photo_module, "MAX_PIXELS", 2000)
    Image.new("RGB", (60, 40)).save(tmp_path / "huge.png")
    with pytest.raises(ValueError, match=r"huge\.png: too large to read \(Image size \(2400 "):
        read_photo(tmp_path / "huge.png")
    Image.new("RGB", (40, 30)).save(tmp_path / "large.png")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a DecompressionBombWarning fails the test
        assert read_photo(tmp_path / "large.png").size == (40, 30)


@pytest.mark.parametrize("shape", [(32, 60, 3), (32, 60)], ids=["rgb", "grey"])
def test_an_array_reads_as_the_same_pixels_saved_as_a_png_do(tmp_path, shape):
    """Round trip: an array and the PNG of it give the same working copy (shrunk to 30x16
    here, through the same resize), full size and no EXIF."""
    pixels = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
    Image.fromarray(pixels).save(tmp_path / "p.png")
    for max_side in (64, 30):
        from_file = read_photo(tmp_path / "p.png", max_side=max_side)
        in_memory = photo_from_image(pixels, max_side=max_side)
        assert in_memory.size == from_file.size == (60, 32) and in_memory.exif == {}
        np.testing.assert_array_equal(np.asarray(in_memory.image), np.asarray(from_file.image))
    # Under max_side, the pixels themselves (grey in each of R, G and B).
    rgb = np.broadcast_to(pixels.reshape(32, 60, -1), (32, 60, 3))
    np.testing.assert_array_equal(np.asarray(photo_from_image(pixels).image), rgb)


@pytest.mark.parametrize(
    ("image", "got"),
    [
        (np.zeros((4, 6, 3), np.float32), "float32 of shape (4, 6, 3)"),
        (np.zeros((4, 6, 4), np.uint8), "uint8 of shape (4, 6, 4)"),
        (np.zeros((4, 6, 3, 1), np.uint8), "uint8 of shape (4, 6, 3, 1)"),
        (np.zeros((0, 6, 3), np.uint8), "uint8 of shape (0, 6, 3)"),
    ],
    ids=["float", "four-channels", "four-axes", "empty"],
)
def test_an_array_of_another_dtype_or_shape_is_refused_naming_the_argument(image, got):
    with pytest.raises(ValueError) as error:
        photo_from_image(image)
    assert str(error.value) == (
        f"image: expected an (H, W, 3) RGB or (H, W) greyscale array of uint8, got {got}"
    )
    with pytest.raises(ValueError, match="image: expected a file, a PIL image or a uint8 array"):
        photo_from_image([[0, 0, 0]])


@pytest.mark.parametrize("size", [(1, 1), (160, 2), (MIN_SIDE - 1, 90)], ids=str)
def test_a_photo_below_the_least_side_is_refused_naming_it_and_its_size(tmp_path, size):
    """A 1x1 or a 160x2 photo, stretched to the network's input, gave keypoints that looked
    plausible; from a file and from memory alike it is refused. A photo of exactly the least
    side on its shorter side is read."""
    width, height = size
    pixels = np.zeros((height, width, 3), np.uint8)
    Image.fromarray(pixels).save(tmp_path / "tiny.png")
    least = f"a {width}x{height} photo; hopose reads photos of at least {MIN_SIDE} px on their"
    with pytest.raises(ValueError) as error:
        read_photo(tmp_path / "tiny.png")
    assert str(error.value) == f"{tmp_path / 'tiny.png'}: {least} shorter side"
    for image in (pixels, Image.fromarray(pixels)):
        with pytest.raises(ValueError) as error:
            photo_from_image(image)
        assert str(error.value) == f"image: {least} shorter side"
    side = np.zeros((MIN_SIDE, max(width, MIN_SIDE), 3), np.uint8)
    Image.fromarray(side).save(tmp_path / "least.png")
    assert read_photo(tmp_path / "least.png").size == photo_from_image(side).size


@pytest.mark.parametrize(
    ("size", "working"), [((5000, 16), (1920, 6)), ((3841, 31), (1920, 15))], ids=str
)
def test_a_photo_whose_working_copy_is_below_the_least_side_is_refused(tmp_path, size, working):
    """A 5000x16 strip is read at 1920x6, a few pixels across as the photos MIN_SIDE refuses;
    it was predicted without a word. Refused from the header, before its pixels are decoded:
    the file here ends after its header. At an aspect ratio of MAX_SIDE / MIN_SIDE = 120:1 the
    working copy is MIN_SIDE on its shorter side, and read."""
    width, height = size
    path = tmp_path / "strip.png"
    Image.new("RGB", size).save(path)
    path.write_bytes(path.read_bytes()[:100])  # the IHDR chunk, then cut short
    least = (
        f"a {width}x{height} photo, {working[0]}x{working[1]} once its longest side is brought "
        f"to {MAX_SIDE}; hopose reads photos of at least {MIN_SIDE} px on their shorter side "
        "there (an aspect ratio of at most 120:1)"
    )
    with pytest.raises(ValueError) as error:
        read_photo(path)
    assert str(error.value) == f"{path}: {least}"
    with pytest.raises(ValueError) as error:
        photo_from_image(np.zeros((height, width, 3), np.uint8))
    assert str(error.value) == f"image: {least}"
    for wide in ((1920, 16), (3840, 32)):
        Image.new("RGB", wide).save(tmp_path / "wide.png")
        assert read_photo(tmp_path / "wide.png").image.size == (1920, 16)


def test_a_sixteen_bit_photo_is_shrunk_as_the_eight_bit_one_of_its_values(tmp_path):
    """One resize rule: a 16-bit PNG of the values 257 v reads as the 8-bit PNG of v, shrunk
    to the same size (102x26 to 100x25: Pillow's thumbnail, which 16-bit photos went through,
    made it 100x26) and the same pixels, to the 8-bit resize's rounding."""
    values = np.random.default_rng(0).integers(0, 256, (26, 102), dtype=np.uint16)
    Image.fromarray(values.astype(np.uint8)).save(tmp_path / "g8.png")
    Image.fromarray(values * 257).save(tmp_path / "g16.png")
    eight = np.asarray(read_photo(tmp_path / "g8.png", max_side=100).image).astype(int)
    sixteen = np.asarray(read_photo(tmp_path / "g16.png", max_side=100).image).astype(int)
    assert eight.shape == sixteen.shape == (25, 100, 3)
    assert np.abs(eight - sixteen).max() <= 1


def test_an_image_of_several_frames_is_read_from_its_first_with_a_warning(tmp_path):
    """An animated GIF (or a multi-page TIFF) was read from its first frame without a word;
    a GIF of one frame and an MPO (a camera's JPEG with a preview) are read quietly."""
    frames = [Image.new("RGB", (MIN_SIDE, MIN_SIDE), colour) for colour in ("red", "blue")]
    for path, extra in ((tmp_path / "anim.gif", frames[1:]), (tmp_path / "pages.tif", frames)):
        frames[0].save(path, save_all=True, append_images=extra)
        count = 1 + len(extra)
        with pytest.warns(UserWarning) as caught:
            photo = read_photo(path)
        assert [str(w.message) for w in caught] == [
            f"{path}: an image of {count} frames; read from its first"
        ]
        assert (np.asarray(photo.image) == [255, 0, 0]).all()
    frames[0].save(tmp_path / "one.gif")
    frames[0].save(tmp_path / "camera.mpo", save_all=True, append_images=frames[1:])
    assert Image.open(tmp_path / "camera.mpo").n_frames == 2
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        read_photo(tmp_path / "one.gif")
        read_photo(tmp_path / "camera.mpo")


def test_a_directory_given_as_a_photo_is_named_as_one(tmp_path):
    """It was "image not found", which it is not."""
    folder = tmp_path / "photo.png"
    folder.mkdir()
    with pytest.raises(IsADirectoryError) as error:
        read_photo(folder)
    assert str(error.value) == f"{folder}: a directory; give the image file"


def test_a_field_of_view_below_a_hundredth_of_a_degree_is_refused(tmp_path):
    """A camera narrower than MIN_FOV_DEG (0.01°) made NaN of the float32 3D without a word
    (hopose predict --fov 1e-300; --K 1e30,1e30,80,60 on a 160x120 photo). On the 36x24 photo
    the widest focal lengths are fx = 18 / tan(0.005°) = 206264.8 px and fy = 12 / tan(0.005°)
    = 137509.9 px (tan(0.005°) = 8.72665e-5): at them the camera is taken as given, beyond
    either it is refused naming K and the bounds."""
    _save(tmp_path / "p.jpg", np.zeros((24, 36, 3), np.uint8))
    photo = read_photo(tmp_path / "p.jpg")
    fx, fy = 18 / math.tan(math.radians(0.005)), 12 / math.tan(math.radians(0.005))
    assert (round(fx, 1), round(fy, 1)) == (206264.8, 137509.9)
    camera = photo_camera(photo, K=(fx, fy, 17.5, 11.5))
    assert camera.K[0, 0] == fx and camera.K[1, 1] == fy
    for K in ((1e30, 1e30, 17.5, 11.5), (fx * 1.001, 500.0, 17.5, 11.5), (500.0, fy * 1.001, 0, 0)):
        message = (
            f"p.jpg: K: fx {K[0]:g}, fy {K[1]:g} narrow the 36x24 photo's field of view below "
            "0.01 deg across or down; expected fx <= 206265, fy <= 137510"
        )
        with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
            photo_camera(photo, K=K, name="p.jpg")
    # --fov 0.01 is fx = fy = 206264.8 on it; below, refused before any photo is read.
    assert math.isclose(photo_camera(photo, fov=0.01).K[0, 0], fx)
    for fov in (0.0099, 1e-300):
        message = f"--fov: expected a horizontal field of view of at least 0.01 deg, got {fov}"
        with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
            check_camera(None, fov, ("--K", "--fov"))


@pytest.mark.parametrize(
    ("focal", "ignored", "source", "f"),
    [
        # 360x240 is 3:2 like the 36x24 film: f = f35 * 360 / 36 = 10 f35 px. 3000 mm (the
        # longest camera zooms) is used: 30000 px; 65535 (the tag's largest value, a
        # placeholder) is ignored, and the 26 mm default used: 260 px.
        ({FOCAL_LENGTH_35MM: 3000}, None, "exif FocalLengthIn35mmFilm", 30000.0),
        ({FOCAL_LENGTH_35MM: 65535}, ("FocalLengthIn35mmFilm", "65535"), "default", 260.0),
        # The 35 mm equivalent ignored, the next tag read: 4 mm at 1000 px/cm = 400 px.
        (
            {
                FOCAL_LENGTH_35MM: 65535,
                FOCAL_LENGTH: 4.0,
                FOCAL_PLANE_X_RESOLUTION: 1000.0,
                FOCAL_PLANE_RESOLUTION_UNIT: 3,
            },
            ("FocalLengthIn35mmFilm", "65535"),
            "exif FocalLength",
            400.0,
        ),
        # FocalLength 600 mm at 1000 px/cm: 60000 px, a 6000 mm equivalent: ignored.
        (
            {FOCAL_LENGTH: 600.0, FOCAL_PLANE_X_RESOLUTION: 1000.0, FOCAL_PLANE_RESOLUTION_UNIT: 3},
            ("FocalLength", "6000"),
            "default",
            260.0,
        ),
    ],
)
def test_an_exif_focal_length_no_camera_has_is_ignored_with_a_warning(
    tmp_path, focal, ignored, source, f
):
    """An EXIF focal length whose 35 mm equivalent passes MAX_EXIF_FOCAL_35MM (5000 mm) put
    every ray through the photo's centre (65535 mm: a 0.03 deg field of view); it is ignored,
    named in a warning, and the next source of the camera is used."""
    _save(tmp_path / "p.jpg", np.zeros((240, 360, 3), np.uint8), focal=focal)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        camera = photo_camera(read_photo(tmp_path / "p.jpg"), name="p.jpg")
    messages = [str(w.message) for w in caught]
    if ignored is None:
        assert messages == []
    else:
        tag, mm = ignored
        assert messages == [
            f"p.jpg: {tag} gives a 35 mm-equivalent focal length of {mm} mm, beyond any "
            "camera's (5000 mm): ignored (give --fov or --K)"
        ]
    assert camera.source == source
    assert camera.K[0, 0].item() == pytest.approx(f) and camera.K[1, 1].item() == pytest.approx(f)


@pytest.mark.parametrize("mode", ["I;16", "L"])
def test_a_tiff_pillow_turns_wrong_is_refused_naming_it(tmp_path, mode):
    """Pillow 13 turns an uncompressed TIFF of L, P, RGBA, CMYK or 16-bit pixels with an EXIF
    orientation of 5 to 8 in two places as it loads it: 90 x 60 stored, it reports 60 x 90
    upright at open and loads 90 x 60 pixels, scrambled. hopose returned that sideways; it is
    refused naming the file (upright, it reads)."""
    dtype, bright = (np.uint16, 65535) if mode == "I;16" else (np.uint8, 255)
    pixels = np.zeros((60, 90), dtype)
    pixels[:10, :20] = bright
    exif = Image.Exif()
    exif[0x0112] = 6
    tiff = Image.frombytes(mode, (90, 60), pixels.tobytes())
    tiff.save(tmp_path / "turned.tif", exif=exif)
    tiff.save(tmp_path / "upright.tif")
    assert read_photo(tmp_path / "upright.tif").size == (90, 60)
    with Image.open(tmp_path / "turned.tif") as opened:
        stored_size = opened.size
    if stored_size == (90, 60):  # a Pillow that leaves the turn to hopose: read right
        assert read_photo(tmp_path / "turned.tif").size == (60, 90)
        return
    with pytest.raises(ValueError) as error:
        read_photo(tmp_path / "turned.tif")
    assert str(error.value) == (
        f"{tmp_path / 'turned.tif'}: not a photo hopose reads (Pillow misreads its EXIF "
        f"orientation 6 ({mode} pixels); save it upright)"
    )
