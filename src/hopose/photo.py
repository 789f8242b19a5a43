"""Photos as ``hopose predict`` reads them: upright, 8-bit RGB, at a bounded size, with a camera.

Reading (:func:`read_photo`):

- The EXIF orientation is applied, so the photo is upright as a viewer shows it; every pixel
  coordinate hopose returns refers to that upright image at its full size.
- 16-bit greyscale images (Pillow's modes ``I;16*``, and mode ``I`` where the file's pixels
  are 16-bit, as a PGM's) are scaled by 255/65535 to 8 bits; a plain conversion clips
  every value above 255 and turns the photo almost white. They are resized as 32-bit floats,
  to the size an 8-bit photo is. (16-bit RGB PNGs are already reduced to their high byte by
  Pillow.) 32-bit float pixels (TIFF mode ``F``) and 32-bit integers (mode ``I`` of 32-bit
  pixels, and any mode ``I`` image in memory, which does not tell its depth) are refused,
  naming the file: they have no fixed white, and a conversion would make them black or white,
  or, scaled as 16-bit, almost black.
- The network reads a working copy whose longest side is at most ``max_side``. A JPEG is
  decoded directly at 1/2, 1/4 or 1/8 scale (libjpeg's DCT scaling, Pillow's ``draft``; at
  most about twice ``max_side`` before the final resampling), so a 48-megapixel JPEG costs
  tens of megabytes, not gigabytes. Other formats have no reduced decoding: a PNG or TIFF is
  decoded at full size (a 48-megapixel PNG about 260 MB) and then shrunk by an integer box
  reduction before the final resampling; a palette or 1-bit image is first converted to RGB
  or greyscale, which Pillow resamples: it resizes those modes by nearest neighbour only, so
  that fine patterns would alias instead of averaging.
- Transparency (an alpha channel, RGBA or LA, or a transparent colour, a palette's or a PNG's
  ``tRNS`` key) is kept as alpha through the resize (Pillow's is alpha-weighted), then the
  photo is laid over :data:`BACKGROUND`, black: the network only knows black where its views
  hold no photo, as ``hopose predict`` pads a view reaching past the photo's edge
  (:func:`hopose.crop.warp_image`) and the synthetic renders are black beyond the camera's frame
  (docs/from_pixels.md, "Renders that look like photos"). Without it a transparent pixel
  showed whatever colour it hid (often white, or the remains of a cut-out background).
  16-bit greyscale keeps no transparency (a ``tRNS`` grey level is ignored).
- Photos up to :data:`MAX_PIXELS` (1 gigapixel) are opened: Pillow refuses about 179
  megapixels and warns from 89 (its ``MAX_IMAGE_PIXELS``, a guard against decompression bombs),
  which a 200-megapixel phone photo exceeds. Its limit is raised and its warning silenced while
  the photo is open (some decoders check again as they load it); Pillow's own limit is left as
  it was for any other code.
- Photos whose working copy would be below :data:`MIN_SIDE` (16 px) on its shorter side are
  refused, naming the file, from its header before its pixels are decoded: photos below it
  themselves, and those longer than ``max_side`` / :data:`MIN_SIDE` times their shorter side
  (120:1 at 1920), which shrink below it.
- An image of several frames (an animated GIF, a multi-page TIFF) is read from its first, with
  a warning naming it (not a camera's MPO, whose first image is the photo).

Pixels already in memory (:func:`photo_from_image`: a PIL image, or a (H, W, 3) RGB or (H, W)
greyscale uint8 array) go through the same working copy, taken as they are: there is no file,
so no EXIF orientation is applied (for a PIL image opened from a file,
``PIL.ImageOps.exif_transpose`` turns it upright first) and no EXIF focal length is known.

Camera (:func:`photo_camera`), in pixels of the upright full-size photo, first found of:

1. ``K = (fx, fy, cx, cy)`` given by the user (``--K``): fx, fy > 0, and giving the photo a
   field of view of at least :data:`MIN_FOV_DEG` across (fx ≤ (W / 2) / tan(0.005°), about
   5730 W) and down (fy ≤ 5730 H); a principal point (cx, cy) outside the photo is used with a
   warning (a crop's may lie there);
2. a horizontal field of view in degrees (``--fov``), from :data:`MIN_FOV_DEG` to below 180:
   fx = fy = (W / 2) / tan(fov / 2);
3. the EXIF ``FocalLengthIn35mmFilm`` (the focal length a 36×24 mm frame with the same
   diagonal field of view would have): f = f35 · diag(W, H) / diag(36, 24);
4. the EXIF ``FocalLength`` (mm) with ``FocalPlaneXResolution`` and its unit (the sensor's
   pixels per inch or cm): f = FocalLength · FocalPlaneXResolution / (mm per unit), which holds
   for a photo at the sensor's own resolution. A photo resized or cropped by a tool that keeps
   the EXIF gets a wrong f here; ``PixelXDimension`` could tell a resize but not a crop, so it
   is not used: give ``--fov`` or ``--K`` for such photos;

   an EXIF focal length (3 or 4) whose 35 mm equivalent passes :data:`MAX_EXIF_FOCAL_35MM`
   (a placeholder such as 65535, a broken writer) is ignored with a warning naming the tag, and
   the next source is used;
5. the default, :data:`DEFAULT_FOCAL_35MM` = 26 mm equivalent, the wide camera of most phones
   (a horizontal field of view of about 69° on a 3:2 frame, close to FPHA's 69.0°).

In 2-5 pixels are square and the principal point is the photo's centre ((W - 1) / 2,
(H - 1) / 2): with pixel centres at integers (docs/conventions.md §1) the photo spans
-0.5 ... W - 0.5, and this is the point every edge-aligned resize (Pillow's, the working copy's
:meth:`Photo.working_affine`) keeps at the copy's centre. Until 2026-12-04 it was (W / 2, H / 2),
half a pixel right of and below it (rays tilted by 0.5 / f rad, 0.0095° for the default lens on a
4032 × 3024 photo).
"""

from __future__ import annotations

import contextlib
import math
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import ExifTags, Image, UnidentifiedImageError

from hopose.crop import edge_aligned_scale
from hopose.files import led_by, require_file

MAX_SIDE = 1920
"""Longest side (px) of the working copy a photo is decoded to."""
MIN_SIDE = 16
"""Shortest side (px) of a photo's working copy: below it a hand and its box would span a few
pixels each, nothing to place 29 keypoints by, yet the photo, stretched to the network's input,
still gave keypoints that look plausible (a 1x1 photo, a 160x2 strip, a 5000x16 one read at
1920x6)."""
MAX_PIXELS = 1_000_000_000
"""Largest photo (width × height at full size) :func:`read_photo` opens: 1 gigapixel, five
times a 200-megapixel phone photo. A JPEG is decoded at down to 1/8 scale (tens of megabytes);
a PNG or TIFF at full size, 3 GB for an RGB one of a gigapixel."""
BACKGROUND = (0, 0, 0)
"""RGB a transparent photo is laid over (module docstring: black, as beyond a view's photo)."""
DEFAULT_FOCAL_35MM = 26.0
"""35 mm-equivalent focal length (mm) assumed when neither the user nor the EXIF gives one."""
MIN_FOV_DEG = 0.01
"""Narrowest field of view (degrees) a camera given by the user (``K``, ``fov``) may give a
photo, across and down: a hand 100 mm across fills 0.01° from 573 m, no photo of a hand. Far
narrower ones made NaN of the prediction's 3D, without a word: the float32 inverse of a view's
camera overflows once fx · fy passes float32's 3.4e38 (from fx = fy = 1e18 px on a 160x120
photo, its views' focal lengths up to 20 times that)."""
FILM_DIAGONAL_MM = math.hypot(36.0, 24.0)
MAX_EXIF_FOCAL_35MM = 5000.0
"""Longest 35 mm-equivalent focal length (mm) an EXIF tag is believed for: the longest camera
zooms reach about 3000 mm (Nikon's Coolpix P1000), and a larger value is a placeholder (65535,
the tag's largest) or a broken writer, which would put every ray through the photo's centre."""
SIXTEEN_BIT_MODES = ("I;16", "I;16B", "I;16L", "I;16N")
# Modes Pillow resizes by nearest neighbour whatever filter is asked (a 1-px pattern aliases
# instead of averaging), and the modes of the same pixels it filters.
NEAREST_ONLY_MODES = {"1": "L", "P": "RGB"}
# Modes with alpha that Pillow resizes, each with its premultiplied mode (colours times alpha),
# where the working copy is resized; any other transparency is made RGBA.
PREMULTIPLIED = {"RGBA": "RGBa", "LA": "La"}
# A premultiplied-alpha mode Pillow converts to its straight-alpha mode alone (not to RGBA).
STRAIGHT_ALPHA = {"La": "LA"}
# EXIF tags (EXIF 2.32): Orientation in IFD0; the rest in the Exif sub-IFD.
EXIF_IFD = 0x8769
FOCAL_LENGTH = 0x920A
FOCAL_LENGTH_35MM = 0xA405
FOCAL_PLANE_X_RESOLUTION = 0xA20E
FOCAL_PLANE_RESOLUTION_UNIT = 0xA210
RESOLUTION_UNIT_MM = {2: 25.4, 3: 10.0, 4: 1.0}  # inch, centimetre, millimetre
# EXIF orientation -> the transpose that makes the photo upright (EXIF 2.32, tag 0x0112).
UPRIGHT: dict[int, Image.Transpose] = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
SWAPPING_ORIENTATIONS = (5, 6, 7, 8)  # those that exchange width and height


@dataclass(frozen=True)
class Photo:
    """A photo read for prediction."""

    image: Image.Image
    """Upright 8-bit RGB working copy, longest side at most ``max_side``."""
    size: tuple[int, int]
    """(width, height) of the upright photo at full size: the pixels of every output."""
    exif: dict[int, float]
    """The camera's focal-length tags that were present (tag -> value)."""

    def working_affine(self) -> torch.Tensor:
        """(3, 3) float64 map of full-size pixels to working-copy pixels.

        Pillow's whole-image resizes map the photo's outer pixel edges onto the copy's, so with
        pixel centres at integers (docs/conventions.md §1) a point at u lands at
        ``s u + (s - 1) / 2``, s = copy size / full size per axis: half a copy pixel from
        :func:`hopose.geometry.scale_intrinsics`'s ``s u``.
        """
        scale = [new / old for new, old in zip(self.image.size, self.size, strict=True)]
        return edge_aligned_scale(torch.tensor(scale, dtype=torch.float64))


class UnsupportedPixels(ValueError):
    """Pixels whose brightness scale is not a photo's (32-bit float or integer data)."""


def _sixteen_bit(image: Image.Image) -> bool:
    """Whether ``image`` (a file as opened, or an image in memory) holds 16-bit greyscale: a
    mode of :data:`SIXTEEN_BIT_MODES`, or mode ``I`` of a file of 16-bit pixels, which Pillow
    widens to 32 bits: a PGM's (its mode ``I`` holds at most 16 bits, maxval < 65536, loaded or
    not), or one whose tiles' raw mode is ``I;16*`` (they are gone once it is loaded).

    Raises:
        UnsupportedPixels: 32-bit float pixels (mode ``F``), or mode ``I`` not known to be
            16-bit: their range has no fixed white, and Pillow's conversion would turn them
            silently black or white (scaled as 16-bit, a 32-bit image of 8-bit values would
            read almost black).
    """
    if image.mode == "F":
        raise UnsupportedPixels("32-bit float pixels; save the photo with 8 or 16 bits")
    if image.mode != "I":
        return image.mode in SIXTEEN_BIT_MODES
    if image.format == "PPM":
        return True
    tiles = getattr(image, "tile", [])  # none in memory, nor in a file once loaded
    if not tiles:
        raise UnsupportedPixels(
            "32-bit integer pixels (mode I) of a depth an image in memory does not tell; give "
            "its file, or convert it to mode I;16"
        )
    # A tile's args: its raw mode, or a tuple that starts with it (Pillow's raw decoder).
    raw = [tile.args if isinstance(tile.args, str) else (tile.args or ("",))[0] for tile in tiles]
    if not all(str(mode).startswith("I;16") for mode in raw):
        raise UnsupportedPixels("32-bit integer pixels; save the photo with 8 or 16 bits")
    return True


def _to_rgb8(image: Image.Image, sixteen_bit: bool) -> Image.Image:
    """8-bit RGB of an image :func:`_resizable` made: 16-bit greyscale (``sixteen_bit``, as
    floats) scaled by 255 / 65535 instead of clipped; a transparent image laid over
    :data:`BACKGROUND`."""
    if sixteen_bit:
        grey = np.asarray(image, dtype=np.float32) * (255.0 / 65535.0)
        return Image.fromarray(np.rint(grey).clip(0, 255).astype(np.uint8)).convert("RGB")
    if image.has_transparency_data:
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (*BACKGROUND, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")


def _focal_tags(image: Image.Image) -> dict[int, float]:
    exif = image.getexif().get_ifd(EXIF_IFD)
    tags = (FOCAL_LENGTH, FOCAL_LENGTH_35MM, FOCAL_PLANE_X_RESOLUTION, FOCAL_PLANE_RESOLUTION_UNIT)
    found = {}
    for tag in tags:
        try:
            value = float(exif[tag])
        except (KeyError, TypeError, ValueError, ZeroDivisionError):
            continue
        if math.isfinite(value) and value > 0:
            found[tag] = value
    return found


def _working_size(size: tuple[int, int], max_side: int) -> tuple[int, int]:
    """(width, height) of the working copy of a photo of ``size``: its longest side brought to
    ``max_side`` where it is longer, each side rounded, at least 1 px; else ``size``."""
    scale = max_side / max(size)
    if scale >= 1:
        return tuple(size)
    return max(1, round(size[0] * scale)), max(1, round(size[1] * scale))


def _require_side(size: tuple[int, int], max_side: int, name: str) -> None:
    """Refuse a photo of ``size`` (width, height) whose working copy (at ``max_side``) is below
    :data:`MIN_SIDE` on its shorter side, naming ``name``."""
    working = _working_size(size, max_side)
    if min(working) >= MIN_SIDE:
        return
    photo = f"{name}: a {size[0]}x{size[1]} photo"
    least = f"hopose reads photos of at least {MIN_SIDE} px on their shorter side"
    if working == tuple(size):
        raise ValueError(f"{photo}; {least}")
    raise ValueError(
        f"{photo}, {working[0]}x{working[1]} once its longest side is brought to {max_side}; "
        f"{least} there (an aspect ratio of at most {max_side / MIN_SIDE:g}:1)"
    )


def _resizable(image: Image.Image, sixteen_bit: bool) -> Image.Image:
    """``image`` in a mode Pillow resizes by filtering and :func:`_to_rgb8` converts: 16-bit
    greyscale (``sixteen_bit``, :func:`_sixteen_bit` of the image as opened) as 32-bit floats,
    which hold its values exactly (Pillow reduces no 16-bit mode, and converts none but
    ``I;16`` to floats); premultiplied alpha un-premultiplied (Pillow converts ``La`` to no
    other mode); any transparency as alpha, which its resize weighs the colours by, so a
    transparent pixel's hidden colour does not bleed.

    Raises:
        UnsupportedPixels: 16-bit pixels beyond [0, 65535] (a mode ``I`` file's).
    """
    if sixteen_bit:
        values = np.asarray(image, dtype=np.float32)
        if values.size and (values.min() < 0 or values.max() > 65535):
            raise UnsupportedPixels(
                f"integer pixels from {values.min():g} to {values.max():g}, beyond 16 bits; "
                "save the photo with 8 or 16 bits"
            )
        return Image.fromarray(values)
    if image.mode in STRAIGHT_ALPHA:
        image = image.convert(STRAIGHT_ALPHA[image.mode])
    if image.has_transparency_data and image.mode not in PREMULTIPLIED:
        return image.convert("RGBA")
    if image.mode in NEAREST_ONLY_MODES:
        return image.convert(NEAREST_ONLY_MODES[image.mode])
    return image


def _working_copy(
    image: Image.Image, max_side: int, *, sixteen_bit: bool, draft: bool
) -> Image.Image:
    """The 8-bit RGB working copy of ``image`` (module docstring), of :func:`_working_size`,
    not turned upright.

    ``sixteen_bit``: :func:`_sixteen_bit` of the image as opened. ``draft``: ``image`` is a file
    not yet decoded, which a JPEG may be at a reduced scale (Pillow's ``draft`` changes the image
    in place, so not for a caller's image).

    Raises:
        UnsupportedPixels: see :func:`_resizable`.
    """
    target = _working_size(image.size, max_side)
    # JPEG: decode at the smallest DCT scale still >= the target (draft); other formats:
    # integer box reduction first (reducing_gap), then resampling. A 1/s draft is ceil(W / s)
    # wide, its last column padding beyond the photo: only the box draft returns,
    # (0, 0, W / s, H / s), is the photo (as in thumbnail).
    shrunk = target != image.size  # before draft, which changes image.size
    reduced = image.draft("RGB", target) if draft and shrunk else None
    box = reduced[1] if reduced is not None else None
    image = _resizable(image, sixteen_bit)
    if shrunk:
        # In premultiplied alpha a transparent pixel's hidden colour weighs nothing, and every
        # Pillow box-reduces it: before Pillow 13, RGBA and LA were resized without the
        # reduction, which aliased fine patterns.
        mode = image.mode
        if mode in PREMULTIPLIED:
            image = image.convert(PREMULTIPLIED[mode])
        image = image.resize(target, Image.BILINEAR, box=box, reducing_gap=2.0)
        if mode in PREMULTIPLIED:
            image = image.convert(mode)
    return _to_rgb8(image, sixteen_bit)


@contextlib.contextmanager
def _open_large(path: Path) -> Iterator[Image.Image]:
    """``Image.open(path)`` accepting up to :data:`MAX_PIXELS`: Pillow refuses an image above
    twice its ``MAX_IMAGE_PIXELS`` and warns above it, when the file is opened and again when
    some decoders load its pixels (a compressed TIFF's), so the limit is set to half of ours
    and its warning silenced while the image is open, then restored (Pillow's limit is a module
    global: another thread opening an image meanwhile gets ours too).

    Raises:
        PIL.Image.DecompressionBombError: a photo above :data:`MAX_PIXELS`.
    """
    saved = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = MAX_PIXELS // 2
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                yield image
    finally:
        Image.MAX_IMAGE_PIXELS = saved


def read_photo(path: str | Path, max_side: int = MAX_SIDE) -> Photo:
    """Open a JPEG/PNG/... upright, as 8-bit RGB, decoding at most ~``max_side`` pixels wide.

    An image of several frames (an animated GIF, PNG or WebP, a multi-page TIFF) is read from
    its first, with a warning naming the file and its frames. An MPO (a JPEG with a
    multi-picture index, as many cameras write) is not warned of: by its standard (CIPA
    DC-007) the first image is the photo, the others previews or views of the same scene.

    Raises:
        FileNotFoundError: when ``path`` does not exist (IsADirectoryError: is a directory).
        ValueError: naming the file when it is not a readable image, above
            :data:`MAX_PIXELS`, or its working copy below :data:`MIN_SIDE` on its shorter side.
    """
    path = require_file(path, "image")
    try:
        with _open_large(path) as image:
            # First: the tiles name the raw mode until the pixels load (getexif loads a PNG's).
            sixteen_bit = _sixteen_bit(image)
            # From the header, before the pixels are decoded (getexif decodes a PNG's): the
            # stored size, whose shorter side is the upright photo's.
            _require_side(image.size, max_side, str(path))
            orientation = image.getexif().get(ExifTags.Base.Orientation, 1)
            width, height = image.size
            exif = _focal_tags(image)
            working = _working_copy(image, max_side, sixteen_bit=sixteen_bit, draft=True)
            if image.getexif().get(ExifTags.Base.Orientation, 1) != orientation:
                # Pillow turned it upright as it loaded the pixels and dropped the tag (a TIFF,
                # in recent Pillow): turned again, it was read sideways. Such a file is not a
                # JPEG, so no draft changed its size: the loaded size is the upright photo's,
                # which Pillow gives at open too, except where it turns the pixels twice and
                # scrambles them (Pillow 13: uncompressed L, P, RGBA, CMYK and 16-bit TIFFs
                # with an orientation of 5 to 8).
                if image.size != (width, height):
                    raise UnsupportedPixels(
                        f"Pillow misreads its EXIF orientation {orientation} ({image.mode} "
                        "pixels); save it upright"
                    )
                orientation = 1
                width, height = image.size
            elif orientation in SWAPPING_ORIENTATIONS:
                width, height = height, width
            if orientation in UPRIGHT:
                working = working.transpose(UPRIGHT[orientation])
            frames = 1 if image.format == "MPO" else getattr(image, "n_frames", 1)
    except Image.DecompressionBombError as error:
        # Pillow's message gives the photo's pixels and the limit, MAX_PIXELS.
        raise ValueError(f"{path}: too large to read ({error})") from None
    except (OSError, UnidentifiedImageError, SyntaxError) as error:
        raise ValueError(f"{path}: not a readable image ({error})") from None
    except UnsupportedPixels as error:
        raise ValueError(f"{path}: not a photo hopose reads ({error})") from None
    if frames > 1:
        warnings.warn(f"{path}: an image of {frames} frames; read from its first", stacklevel=2)
    return Photo(image=working, size=(width, height), exif=exif)


def _array_image(array: np.ndarray) -> Image.Image:
    """A PIL image of an (H, W, 3) RGB or (H, W) greyscale uint8 array; ValueError naming the
    argument ``image`` otherwise."""
    shaped = array.ndim == 2 or array.shape[2:] == (3,)
    if array.dtype != np.uint8 or not shaped or 0 in array.shape:
        raise ValueError(
            "image: expected an (H, W, 3) RGB or (H, W) greyscale array of uint8, got "
            f"{array.dtype} of shape {array.shape}"
        )
    return Image.fromarray(np.ascontiguousarray(array))


def photo_from_image(image: Image.Image | np.ndarray, max_side: int = MAX_SIDE) -> Photo:
    """A photo from pixels in memory: a PIL image (any mode :func:`read_photo` reads) or an
    (H, W, 3) RGB or (H, W) greyscale uint8 array, at a working copy as :func:`read_photo`'s.

    Taken as it is: no EXIF orientation is applied and no EXIF focal length read (module
    docstring), so its camera is a given K or field of view, else the default lens.

    Raises:
        ValueError: naming the argument ``image``: not a PIL image or an array of that dtype
            and shape, or pixels or a size :func:`read_photo` refuses.
    """
    if isinstance(image, np.ndarray):
        image = _array_image(image)
    elif not isinstance(image, Image.Image):
        raise ValueError(
            f"image: expected a file, a PIL image or a uint8 array, got {type(image).__name__}"
        )
    _require_side(image.size, max_side, "image")
    try:
        working = _working_copy(image, max_side, sixteen_bit=_sixteen_bit(image), draft=False)
    except OSError as error:  # a lazily opened image whose file does not decode
        raise ValueError(f"image: not a readable image ({error})") from None
    except UnsupportedPixels as error:
        raise ValueError(f"image: not a photo hopose reads ({error})") from None
    return Photo(image=working, size=image.size, exif={})


@dataclass(frozen=True)
class Camera:
    """The pinhole camera of a photo (see the module docstring for how it is chosen)."""

    K: torch.Tensor
    """(3, 3) float64 intrinsics in pixels of the upright full-size photo."""
    source: str
    """Where it came from: "--K", "--fov", "exif FocalLengthIn35mmFilm", "exif FocalLength"
    or "default"."""


def focal_length(side: float, fov: float) -> float:
    """The focal length (px) that gives ``side`` px a field of view of ``fov`` degrees."""
    return (side / 2) / math.tan(math.radians(fov) / 2)


def intrinsics(fx: float, fy: float, cx: float, cy: float) -> torch.Tensor:
    """(3, 3) float64 K of a pinhole camera without skew."""
    return torch.tensor([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]], dtype=torch.float64)


def check_camera(
    K: tuple[float, ...] | None, fov: float | None, names: tuple[str, str] = ("K", "fov")
) -> None:
    """Refuse a ``K`` (fx, fy, cx, cy) or ``fov`` (horizontal degrees) that is not a camera, and
    both given, naming them as ``names`` says: the Python API's parameters by default,
    ``hopose predict``'s options (``--K``, ``--fov``) from the command line.

    ``K``'s bound by the photo's size, :data:`MIN_FOV_DEG` across and down, is checked when the
    photo is read (:func:`photo_camera`).

    Raises:
        ValueError: both given; ``K`` not four finite numbers, or fx or fy not positive;
            ``fov`` not in [:data:`MIN_FOV_DEG`, 180).
    """
    if K is not None and fov is not None:
        raise ValueError(f"{names[0]} and {names[1]}: give one camera, not both")
    if K is not None and (len(K) != 4 or not all(math.isfinite(v) for v in K) or min(K[:2]) <= 0):
        raise ValueError(f"{names[0]}: expected fx,fy,cx,cy with fx, fy > 0, got {K}")
    if fov is not None and not 0 < fov < 180:
        raise ValueError(
            f"{names[1]}: expected a horizontal field of view in (0, 180) deg, got {fov}"
        )
    if fov is not None and fov < MIN_FOV_DEG:
        raise ValueError(
            f"{names[1]}: expected a horizontal field of view of at least {MIN_FOV_DEG:g} deg, "
            f"got {fov}"
        )


def photo_camera(
    photo: Photo,
    *,
    K: tuple[float, ...] | None = None,
    fov: float | None = None,
    name: str | None = None,
) -> Camera:
    """The camera of ``photo``: ``K`` (fx, fy, cx, cy), else ``fov`` (horizontal degrees),
    else its EXIF focal length, else :data:`DEFAULT_FOCAL_35MM`.

    A principal point outside the photo gets a warning, which starts with ``name`` where one is
    given (the photo's file, or ``images[2]``: which photo of several).

    Raises:
        ValueError: naming ``K`` or ``fov`` when the value is not a camera, or both are given
            (:func:`check_camera`); naming ``K`` (after ``name``) when its fx or fy gives the
            photo a field of view below :data:`MIN_FOV_DEG`.
    """
    check_camera(K, fov)
    if K is not None:
        width, height = photo.size
        widest = focal_length(width, MIN_FOV_DEG), focal_length(height, MIN_FOV_DEG)
        if K[0] > widest[0] or K[1] > widest[1]:
            raise ValueError(
                led_by(
                    name,
                    f"K: fx {K[0]:g}, fy {K[1]:g} narrow the {width}x{height} photo's field of "
                    f"view below {MIN_FOV_DEG:g} deg across or down; expected fx <= "
                    f"{widest[0]:.6g}, fy <= {widest[1]:.6g}",
                )
            )
        # The photo spans -0.5 ... W - 0.5 (pixel centres at integers). A principal point beyond
        # it is most often a K calibrated at another resolution or for the unrotated sensor,
        # but a crop of a larger photo has one too, so it is said, not refused.
        if not (-0.5 <= K[2] <= width - 0.5 and -0.5 <= K[3] <= height - 0.5):
            warnings.warn(
                led_by(
                    name,
                    f"the principal point ({K[2]:g}, {K[3]:g}) of the K given lies outside the "
                    f"{width}x{height} photo: right for a crop of a larger photo, wrong for a K "
                    "of another resolution or of the unrotated sensor",
                ),
                stacklevel=2,
            )
        return Camera(intrinsics(*K), "--K")
    width, height = photo.size
    cx, cy = (width - 1) / 2, (height - 1) / 2  # the centre, pixel centres at integers
    if fov is not None:
        focal = focal_length(width, fov)
        return Camera(intrinsics(focal, focal, cx, cy), "--fov")
    diagonal = math.hypot(width, height)
    exif = photo.exif
    exif_focals = []
    if FOCAL_LENGTH_35MM in exif:
        focal = exif[FOCAL_LENGTH_35MM] * diagonal / FILM_DIAGONAL_MM
        exif_focals.append((focal, "exif FocalLengthIn35mmFilm"))
    unit_mm = RESOLUTION_UNIT_MM.get(int(exif.get(FOCAL_PLANE_RESOLUTION_UNIT, 2)))
    if FOCAL_LENGTH in exif and FOCAL_PLANE_X_RESOLUTION in exif and unit_mm is not None:
        focal = exif[FOCAL_LENGTH] * exif[FOCAL_PLANE_X_RESOLUTION] / unit_mm
        exif_focals.append((focal, "exif FocalLength"))
    for focal, source in exif_focals:
        equivalent = focal * FILM_DIAGONAL_MM / diagonal  # mm on a 36x24 frame
        if equivalent <= MAX_EXIF_FOCAL_35MM:
            return Camera(intrinsics(focal, focal, cx, cy), source)
        # No camera's lens: the next source is a camera.
        warnings.warn(
            led_by(
                name,
                f"{source.removeprefix('exif ')} gives a 35 mm-equivalent focal length of "
                f"{equivalent:.6g} mm, beyond any camera's ({MAX_EXIF_FOCAL_35MM:g} mm): "
                "ignored (give --fov or --K)",
            ),
            stacklevel=2,
        )
    focal = DEFAULT_FOCAL_35MM * diagonal / FILM_DIAGONAL_MM
    return Camera(intrinsics(focal, focal, cx, cy), "default")
