"""Prediction on photos, one or a batch at a time: the network is run where its weights are."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest
import torch
from PIL import Image

from bench_scale import first_free_names
from hopose import crop, predict, viz
from hopose.cli import main
from hopose.data.grasps import generate_grasps
from hopose.data.transforms import MIRROR_CORNER_ORDER
from hopose.geometry import project_points
from hopose.models import build_model
from hopose.photo import Camera, Photo, intrinsics, photo_camera, photo_from_image
from hopose.physics import contact_points
from hopose.predict import predict_photo
from hopose.refine import refine_pose, refine_weights
from hopose.self_crop import CropViews, SelfCropping
from tiny_runs import tiny

pytestmark = pytest.mark.filterwarnings("ignore:no backbone weights file given")

META = torch.device("meta")
DEVICE = "cuda"


class _Seen(Exception):
    """Raised by :class:`_DeviceSpy` once it has seen the network's inputs."""


class _DeviceSpy(torch.nn.Module):
    """A network whose weights are on the meta device, standing in for a GPU where there is
    none: it records the devices of the inputs it is given, then stops the prediction (meta
    tensors hold no values to go on with)."""

    def __init__(self) -> None:
        super().__init__()
        self.weight = torch.nn.Parameter(torch.empty(1, device=META))
        self.devices: list[tuple[torch.device, torch.device]] = []

    def forward(self, image: torch.Tensor, K: torch.Tensor) -> dict[str, torch.Tensor]:
        self.devices.append((image.device, K.device))
        raise _Seen


def _photo() -> Photo:
    return Photo(image=Image.new("RGB", (160, 90)), size=(160, 90), exif={})


@pytest.mark.parametrize("passes", [0, 1], ids=["resize", "self_crop"])
def test_the_photo_reaches_the_network_on_its_weights_device(monkeypatch, passes):
    """Whole photo or self-cropped: the frame the views are warped from, the views and their K
    are on the device of the network's weights (they were built on the CPU whatever it was, and
    a network on a GPU failed). The warp's sampling is stubbed: it reads values (its shrink
    factor), which meta tensors lack; the views it returns are on its maps' device."""
    frames: list[torch.device] = []
    init = crop.FrameWarp.__init__

    def recording_init(self, image, image_size):
        frames.append(image.device)
        init(self, image, image_size)

    def blank(self, A):
        return torch.zeros(len(A), 3, self.image_size, self.image_size, device=A.device)

    monkeypatch.setattr(crop.FrameWarp, "__init__", recording_init)
    monkeypatch.setattr(crop.FrameWarp, "__call__", blank)
    spy, photo = _DeviceSpy(), _photo()
    with pytest.raises(_Seen):
        predict_photo(spy, 32, photo, photo_camera(photo, fov=60), cropping=SelfCropping(passes))
    assert frames == [META] and spy.devices == [(META, META)]


@pytest.mark.cuda
@pytest.mark.parametrize("cropping", [SelfCropping(0), SelfCropping(1, views=CropViews(10, 0.1))])
def test_a_network_on_a_gpu_predicts_a_photo_as_on_the_cpu(monkeypatch, cropping):
    # cuDNN's TF32 convolutions off (torch's default matmuls are float32 already): the GPU
    # then computes as the CPU does, to float32 round-off.
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)
    torch.manual_seed(0)
    model = build_model(tiny("end2end").model).eval()
    photo = Photo(
        image=Image.fromarray((torch.rand(90, 160, 3) * 255).byte().numpy()),
        size=(320, 180),
        exif={},
    )
    camera = photo_camera(photo, fov=60)
    on_cpu = predict_photo(model, 32, photo, camera, cropping=cropping)
    on_gpu = predict_photo(model.to(DEVICE), 32, photo, camera, cropping=cropping)
    assert all(value.device.type == "cpu" for value in on_gpu.values())
    for key in ("hand_2d", "obj_2d", "hand_3d", "obj_3d"):  # px of the photo, mm
        torch.testing.assert_close(on_gpu[key], on_cpu[key], atol=0.05, rtol=1e-4, msg=key)


class _ProjectingNet(torch.nn.Module):
    """A network that sees one fixed synthetic grasp (29 nodes, mm, 8 valid contacts) whatever
    the image: its 2D is that grasp projected through the K it is given. Any view's 2D mapped
    back to the photo is then the grasp projected through the photo's own camera, so a map left
    out or applied the wrong way on the way back moves the 2D off that projection."""

    def __init__(self) -> None:
        super().__init__()
        grasps = generate_grasps(0, np.arange(1))  # a power grasp, the box in the hand
        pose = torch.cat([torch.tensor(grasps.hand_3d[0]), torch.tensor(grasps.obj_3d[0])])
        # On the optical axis, so that it projects inside the photo for the cameras used here.
        self.pose = pose - torch.cat([pose[:, :2].mean(dim=0), pose.new_zeros(1)])

    def forward(self, image: torch.Tensor, K: torch.Tensor) -> dict[str, torch.Tensor]:
        kp3d = self.pose.to(K.dtype).expand(len(image), -1, -1)
        kp2d = project_points(kp3d, K)
        return {"kp2d_init": kp2d, "kp2d": kp2d, "kp3d_init": kp3d, "kp3d": kp3d}


def _halved_photo() -> Photo:
    """A 320x180 photo whose working copy is 160x90, as read_photo gives for one over MAX_SIDE:
    full-size pixel u is working-copy pixel 0.5 u - 0.25 (outer pixel edges kept)."""
    return Photo(image=Image.new("RGB", (160, 90)), size=(320, 180), exif={})


# f = (320 / 2) / tan(60° / 2) = 277.13 px, principal point ((320 - 1) / 2, (180 - 1) / 2).
_F = 160 / np.tan(np.radians(30))
_K_PHOTO = torch.tensor([[_F, 0, 159.5], [0, _F, 89.5], [0, 0, 1]], dtype=torch.float64)


@pytest.mark.parametrize("passes", [0, 1], ids=["resize", "self_crop"])
def test_the_2d_comes_back_to_the_full_size_photo_through_its_working_copy(passes):
    """The outputs are in the full-size photo's pixels and camera, not its working copy's: the
    network is given the working copy's K (its view of it) and its 2D is mapped back through
    the view and the working copy, so the 2D is the 3D projected through the photo's K."""
    net, photo = _ProjectingNet(), _halved_photo()
    camera = photo_camera(photo, fov=60)
    torch.testing.assert_close(camera.K, _K_PHOTO)
    result = predict_photo(net, 32, photo, camera, cropping=SelfCropping(passes))
    # 3D: the grasp itself, in mm (float32 through the self-crops).
    torch.testing.assert_close(result["hand_3d"], net.pose[:21], atol=1e-3, rtol=0)
    torch.testing.assert_close(result["obj_3d"], net.pose[21:], atol=1e-3, rtol=0)
    # 2D: its projection through the photo's K, in full-size pixels. A working-copy map left
    # out would put it at half (or twice) the distance from the photo's corner.
    expected = project_points(net.pose, _K_PHOTO)
    torch.testing.assert_close(result["hand_2d"], expected[:21], atol=1e-3, rtol=0)
    torch.testing.assert_close(result["obj_2d"], expected[21:], atol=1e-3, rtol=0)
    # The contacts of the physical loss, drawn with the same camera: 8 valid ones here.
    points, _, valid = contact_points(net.pose[None, :21], net.pose[None, 21:])
    assert len(result["contacts_3d"]) == 8
    torch.testing.assert_close(result["contacts_3d"], points[0][valid[0]], atol=1e-2, rtol=0)
    torch.testing.assert_close(
        result["contacts_2d"], project_points(result["contacts_3d"], _K_PHOTO), atol=1e-6, rtol=0
    )


def test_predict_images_writes_full_size_outputs_and_draws_on_the_working_copy(
    tmp_path, monkeypatch
):
    """The JSON is in the full-size photo's pixels (its size, K and 2D); the overlay is the
    working copy, 2D drawn where it shows there: full-size u at 0.5 u - 0.25."""
    net = _ProjectingNet()
    monkeypatch.setattr(predict, "load_model", lambda path: (net, tiny("end2end")))
    monkeypatch.setattr(predict, "read_photo", lambda path: _halved_photo())
    drawn = []

    def record(image, hand_2d, obj_2d, contacts_2d):
        drawn.append((image.size, hand_2d, obj_2d, contacts_2d))
        return image

    monkeypatch.setattr(viz, "draw_overlay", record)
    (tmp_path / "photo.jpg").touch()  # read_photo stands in for reading it
    (path,) = predict.predict_images("model.pt", [tmp_path / "photo.jpg"], tmp_path, fov=60)
    result = json.loads(path.read_text())
    assert result["size"] == [320, 180]
    np.testing.assert_allclose(result["camera"]["K"], _K_PHOTO.numpy())
    expected = project_points(net.pose, _K_PHOTO).numpy()
    np.testing.assert_allclose(result["hand_2d"], expected[:21], atol=1e-3)
    np.testing.assert_allclose(result["obj_2d"], expected[21:], atol=1e-3)
    ((size, hand, obj, contacts),) = drawn
    assert size == (160, 90)
    np.testing.assert_allclose(hand, 0.5 * expected[:21] - 0.25, atol=1e-3)
    np.testing.assert_allclose(obj, 0.5 * expected[21:] - 0.25, atol=1e-3)
    assert len(contacts) == len(result["contacts_2d"]) > 0
    np.testing.assert_allclose(contacts, 0.5 * np.array(result["contacts_2d"]) - 0.25, atol=1e-9)
    with Image.open(tmp_path / result["overlay"]) as overlay:
        assert overlay.size == (160, 90)


def test_the_refinement_reads_the_2d_with_the_full_size_photos_camera():
    """--refine fits the 3D to the 2D in the full-size photo's pixels, so with that photo's K:
    predict's refined pose is refine_pose on the network's pose, 2D and the photo's K (the
    working copy's K, half of it here, pulls the pose 59 mm off instead of 17)."""
    net, photo = _ProjectingNet(), _halved_photo()
    weights = refine_weights(from_images=True)
    result = predict_photo(net, 32, photo, photo_camera(photo, fov=60), refine=weights)
    pose = net.pose.double()
    hand, obj = refine_pose(
        pose[None, :21],
        pose[None, 21:],
        project_points(pose, _K_PHOTO)[None],
        _K_PHOTO[None],
        weights,
    )
    torch.testing.assert_close(result["hand_3d"], hand[0], atol=1e-3, rtol=0)
    torch.testing.assert_close(result["obj_3d"], obj[0], atol=1e-3, rtol=0)
    assert (result["hand_3d"] - pose[:21]).norm(dim=-1).max() > 1  # the refinement did move it


class _SpotNet(torch.nn.Module):
    """A network that reads its image: the wrist of a fixed right-hand grasp 500 mm deep on the
    ray (through the K it is given) of the centroid of the image's lit pixels, the grasp's other
    nodes where they are relative to the wrist. Unlike :class:`_ProjectingNet` its answer moves
    with the picture: a photo of a left hand not flipped, or its camera not mirrored, puts the
    hand on another ray."""

    def __init__(self) -> None:
        super().__init__()
        pose = _ProjectingNet().pose.double()
        self.pose = pose - pose[0]  # the wrist at the origin

    def forward(self, image: torch.Tensor, K: torch.Tensor) -> dict[str, torch.Tensor]:
        weight = image.double().sum(dim=1)  # (B, S, S) brightness, rows then columns
        grid = torch.arange(weight.shape[-1], dtype=torch.float64)
        total = weight.sum(dim=(1, 2))
        u = (weight.sum(dim=1) * grid).sum(dim=-1) / total  # column centroid
        v = (weight.sum(dim=2) * grid).sum(dim=-1) / total  # row centroid
        pixel = torch.stack([u, v, torch.ones_like(u)], dim=-1)  # (B, 3)
        ray = torch.linalg.solve(K.double(), pixel[..., None])[..., 0]
        wrist = 500 * ray / ray[:, 2:]
        kp3d = (self.pose + wrist[:, None]).to(K.dtype)
        kp2d = project_points(kp3d, K)
        # Heat maps whose peaks differ node by node (logit n / 10 on one cell of node n), so
        # that a reordering of the nodes shows.
        maps = torch.zeros(len(image), 29, 4, 4)
        maps[:, :, 0, 0] = torch.arange(29) / 10
        return {"kp2d_init": kp2d, "kp2d": kp2d, "kp3d_init": kp3d, "kp3d": kp3d, "heatmaps": maps}


def _spot_image(column: int) -> Image.Image:
    """A black 32x32 photo with one white pixel, at row 12 and ``column``."""
    pixels = np.zeros((32, 32, 3), dtype=np.uint8)
    pixels[12, column] = 255
    return Image.fromarray(pixels)


def _spot_photo(column: int) -> Photo:
    # 32x32 read at its size onto the 32-px network input: the working copy and the resize are
    # identity maps, so the network's view is the photo itself.
    return Photo(image=_spot_image(column), size=(32, 32), exif={})


# A right hand's photo, lit at column 5, and its mirror image, lit at column 31 - 5 = 26, with
# the mirrored camera: cx 10 -> 31 - 10 = 21 (mirror_frame's W - 1 - cx).
_RIGHT_K = intrinsics(20.0, 20.0, 10.0, 14.0)
_LEFT_K = intrinsics(20.0, 20.0, 21.0, 14.0)
_FLIP_X = torch.tensor([-1.0, 1.0, 1.0], dtype=torch.float64)


def _mirror_2d(points: torch.Tensor) -> torch.Tensor:
    """2D of the 32-px photo in its mirror image: u -> 31 - u."""
    return torch.stack([31 - points[:, 0], points[:, 1]], dim=-1)


def test_a_left_hands_wrist_is_where_its_photo_shows_it():
    """The left hand's photo is lit at (26, 12): with --left its wrist comes back on that
    pixel's ray in the photo's own camera, 500 mm deep: x = 500 (26 - 21) / 20 = 125 mm,
    y = 500 (12 - 14) / 20 = -50 mm, drawn at (26, 12). Predicted unmirrored, the right-hand
    model sees the same pixel and puts the wrist there too (the model ignores handedness here):
    what --left changes is how the grasp around it is laid out."""
    net = _SpotNet()
    photo = _spot_photo(26)
    result = predict_photo(net, 32, photo, Camera(_LEFT_K, "--K"), left=True)
    wrist_3d = torch.tensor([125.0, -50.0, 500.0], dtype=torch.float64)
    torch.testing.assert_close(result["hand_3d"][0], wrist_3d, atol=1e-6, rtol=0)
    torch.testing.assert_close(
        result["hand_2d"][0], torch.tensor([26.0, 12.0], dtype=torch.float64), atol=1e-6, rtol=0
    )
    # The grasp around the wrist is the right hand's mirrored: x offsets from the wrist negated
    # (to the float32 round-off of the network's output, 3e-5 mm at 500 mm).
    torch.testing.assert_close(
        result["hand_3d"] - result["hand_3d"][0], net.pose[:21] * _FLIP_X, atol=1e-3, rtol=0
    )
    plain = predict_photo(net, 32, photo, Camera(_LEFT_K, "--K"))
    torch.testing.assert_close(plain["hand_3d"][0], wrist_3d, atol=1e-6, rtol=0)
    assert (plain["hand_3d"] - result["hand_3d"]).abs().max() > 10  # a mirror apart


@pytest.mark.parametrize(
    ("passes", "refined"),
    [(0, False), (1, False), (0, True)],
    ids=["resize", "self_crop", "refined"],
)
def test_a_left_hand_is_predicted_as_the_mirror_of_its_mirror_image(passes, refined):
    """--left on a photo is the right-hand prediction of its mirror image, mirrored back: 2D
    u -> 31 - u, 3D x -> -x, the box corners reordered by MIRROR_CORNER_ORDER (so that they stay
    in docs/conventions.md §1 order), the contacts with them; refinement and contacts computed
    on the right hand the model knows. Exact whatever the cropping: --left flips the left
    photo back into the right one pixel for pixel, and its camera into the right one's."""
    net, cropping = _SpotNet(), SelfCropping(passes)
    weights = refine_weights(from_images=True) if refined else None
    right = predict_photo(
        net, 32, _spot_photo(5), Camera(_RIGHT_K, "--K"), cropping=cropping, refine=weights
    )
    left = predict_photo(
        net, 32, _spot_photo(26), Camera(_LEFT_K, "--K"), cropping=cropping, refine=weights,
        left=True,
    )  # fmt: skip
    order = list(MIRROR_CORNER_ORDER)
    expected = {
        "hand_2d": _mirror_2d(right["hand_2d"]),
        "obj_2d": _mirror_2d(right["obj_2d"])[order],
        "hand_3d": right["hand_3d"] * _FLIP_X,
        "obj_3d": (right["obj_3d"] * _FLIP_X)[order],
        "contacts_3d": right["contacts_3d"] * _FLIP_X,
        "contacts_2d": _mirror_2d(right["contacts_2d"]),
        "hand_peak": right["hand_peak"],
        "obj_peak": right["obj_peak"][order],
    }
    assert set(left) == set(expected)
    assert len(set(right["obj_peak"].tolist())) == 8  # distinct: a reordering would show
    assert len(left["contacts_3d"]) > 0
    for key, value in expected.items():
        torch.testing.assert_close(left[key], value, atol=1e-9, rtol=0, msg=key)
    if not refined:  # the network's 2D is its 3D projected: the left photo's camera's still
        # (to the float32 round-off of the self-crops' outputs)
        torch.testing.assert_close(
            left["hand_2d"], project_points(left["hand_3d"], _LEFT_K), atol=1e-4, rtol=0
        )


def test_predict_left_writes_the_mirror_of_the_right_hands_json_and_draws_on_its_own_photo(
    tmp_path, monkeypatch
):
    """``hopose predict --left`` of the mirror image of a photo writes the mirror of that
    photo's JSON (``side`` "left"), with the camera it was given, and draws on the photo it
    read, unmirrored (lit at column 26), where its JSON's 2D is."""
    net = _SpotNet()
    monkeypatch.setattr(predict, "load_model", lambda path: (net, tiny("end2end")))
    drawn = []

    def record(image, hand_2d, obj_2d, contacts_2d):
        drawn.append((np.array(image), hand_2d, obj_2d, contacts_2d))
        return image

    monkeypatch.setattr(viz, "draw_overlay", record)
    _spot_image(5).save(tmp_path / "right.png")
    _spot_image(26).save(tmp_path / "left.png")
    out = tmp_path / "out"
    assert main(["predict", "m.pt", str(tmp_path / "right.png"), "--K", "20,20,10,14",
                 "--out", str(out)]) == 0  # fmt: skip
    assert main(["predict", "m.pt", str(tmp_path / "left.png"), "--K", "20,20,21,14", "--left",
                 "--out", str(out)]) == 0  # fmt: skip
    right = json.loads((out / "right.json").read_text())
    left = json.loads((out / "left.json").read_text())
    assert (right["side"], left["side"]) == ("right", "left")
    np.testing.assert_array_equal(left["camera"]["K"], _LEFT_K.numpy())
    order = list(MIRROR_CORNER_ORDER)
    flip_2d = np.array([-1.0, 1.0])
    np.testing.assert_allclose(left["hand_2d"], np.array(right["hand_2d"]) * flip_2d + [31, 0])
    np.testing.assert_allclose(
        left["obj_2d"], (np.array(right["obj_2d"]) * flip_2d + [31, 0])[order]
    )
    np.testing.assert_allclose(left["hand_3d"], np.array(right["hand_3d"]) * _FLIP_X.numpy())
    np.testing.assert_allclose(left["obj_3d"], (np.array(right["obj_3d"]) * _FLIP_X.numpy())[order])
    assert len(drawn) == 2
    image, hand, obj, contacts = drawn[1]
    np.testing.assert_array_equal(image, np.array(_spot_image(26)))
    # The working copy is the photo itself (32 px): drawn where the JSON says.
    np.testing.assert_allclose(hand, left["hand_2d"], atol=1e-9)
    np.testing.assert_allclose(obj, left["obj_2d"], atol=1e-9)
    np.testing.assert_allclose(contacts, np.reshape(left["contacts_2d"], (-1, 2)), atol=1e-9)


@pytest.mark.parametrize(
    ("device", "gpu", "placed"),
    [(None, True, "cuda"), (None, False, "cpu"), ("cpu", True, "cpu")],
    ids=["default_gpu", "default_no_gpu", "cpu_on_gpu_machine"],
)
def test_predict_images_puts_the_network_on_the_device_asked_a_gpu_by_default(
    tmp_path, monkeypatch, device, gpu, placed
):
    """Unasked, the device is "auto", as training's: the GPU when the machine has one, else the
    CPU (the network stayed on the CPU whatever the machine); "cpu" keeps it there on a GPU
    machine. A stand-in network records where it is sent and stays on the CPU."""
    places: list[str] = []

    class Placed(_SpotNet):
        def to(self, *args, **kwargs):
            places.append(str(args[0]))
            return self

    monkeypatch.setattr(torch.cuda, "is_available", lambda: gpu)
    monkeypatch.setattr(predict, "load_model", lambda path: (Placed(), tiny("end2end")))
    _spot_image(5).save(tmp_path / "photo.png")
    chosen = {} if device is None else {"device": device}
    predict.predict_images("m.pt", [tmp_path / "photo.png"], tmp_path, K=(20, 20, 10, 14), **chosen)
    assert places == [placed]


@pytest.mark.cuda
def test_predict_on_the_gpu_runs_the_network_there_and_writes_what_the_cpu_does(
    tmp_path, monkeypatch
):
    # cuDNN's TF32 convolutions off: the GPU then computes as the CPU does, to float32 round-off.
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)
    torch.manual_seed(0)
    cfg = tiny("end2end")
    model = build_model(cfg.model)
    seen: list[str] = []
    model.register_forward_pre_hook(lambda module, inputs: seen.append(inputs[0].device.type))
    monkeypatch.setattr(predict, "load_model", lambda path: (model, cfg))
    pixels = (torch.rand(90, 160, 3) * 255).byte().numpy()
    Image.fromarray(pixels).save(tmp_path / "photo.png")
    written = {}
    for device in (DEVICE, "cpu"):
        seen.clear()
        (path,) = predict.predict_images(
            "m.pt", [tmp_path / "photo.png"], tmp_path / device, fov=60, device=device
        )
        assert seen and set(seen) == {device}
        written[device] = json.loads(path.read_text())
    for key in ("hand_2d", "obj_2d", "hand_3d", "obj_3d"):  # px of the photo, mm
        np.testing.assert_allclose(
            written[DEVICE][key], written["cpu"][key], atol=0.05, rtol=1e-4, err_msg=key
        )


def _random_pixels(height: int = 45, width: int = 80, seed: int = 0) -> np.ndarray:
    """(H, W, 3) uint8 noise: a photo every network reads differently from another."""
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def _tiny_network(monkeypatch, *overrides: str) -> tuple[torch.nn.Module, object]:
    """A tiny end-to-end network as build_model leaves it, in training mode (batch norm on
    each image's own statistics, dropout on), given to every load_model of predict: the demo's
    self-cropping one, or as ``overrides`` of its config make it."""
    torch.manual_seed(0)
    cfg = tiny("end2end", *overrides)
    model = build_model(cfg.model)
    assert model.training
    monkeypatch.setattr(predict, "load_model", lambda path: (model, cfg))
    return model, cfg


@pytest.mark.parametrize("left", [False, True], ids=["right", "left"])
def test_a_predictor_on_an_array_gives_the_json_predict_images_writes_for_its_png(
    tmp_path, monkeypatch, left
):
    """Round trip: the Python API on pixels in memory and hopose predict on the same pixels
    saved as a PNG give the same keypoints, camera, size and side (to 1e-6: the same float64
    arithmetic on the same working copy)."""
    _tiny_network(monkeypatch)
    pixels = _random_pixels()
    Image.fromarray(pixels).save(tmp_path / "photo.png")
    (path,) = predict.predict_images(
        "m.pt", [tmp_path / "photo.png"], tmp_path / "out", fov=60, left=left, device="cpu"
    )
    written = json.loads(path.read_text())
    result = predict.Predictor("m.pt", device="cpu")(pixels, fov=60, left=left)
    for key in predict.KEYPOINTS:
        value = getattr(result, key)
        assert value.dtype == np.float64
        # (M, 2) or (M, 3): the JSON's [] of no contacts has no second axis to read.
        expected = np.reshape(written[key], (-1, value.shape[-1]))
        np.testing.assert_allclose(value, expected, atol=1e-6, err_msg=key)
    for key in predict.PEAKS:  # the heat-map head's, in (1 / cells, 1]
        np.testing.assert_allclose(getattr(result, key), written[key], atol=1e-6, err_msg=key)
        assert ((getattr(result, key) > 0) & (getattr(result, key) <= 1)).all()
    np.testing.assert_allclose(result.K, written["camera"]["K"], atol=1e-9)
    assert (result.camera_source, written["camera"]["source"]) == ("--fov", "--fov")
    assert list(result.size) == written["size"] == [80, 45]
    assert result.side == written["side"] == ("left" if left else "right")


def test_a_predictor_runs_the_network_in_eval_mode(monkeypatch):
    """The network is loaded in training mode here: the predictor predicts as the network in
    eval mode does (batch-norm running statistics, no dropout), and the same twice. In training
    mode each photo was normalised by its own statistics and part of the graph dropped."""
    model, cfg = _tiny_network(monkeypatch)
    reference = copy.deepcopy(model).eval()
    predictor = predict.Predictor("m.pt", device="cpu")
    pixels = _random_pixels(seed=1)
    first, second = predictor(pixels, fov=60), predictor(pixels, fov=60)
    photo = photo_from_image(pixels)
    expected = predict_photo(
        reference, 32, photo, photo_camera(photo, fov=60), cropping=SelfCropping.of(cfg.data)
    )
    for key in predict.KEYPOINTS:
        np.testing.assert_allclose(getattr(first, key), expected[key].numpy(), atol=1e-9)
        np.testing.assert_array_equal(getattr(second, key), getattr(first, key))


def test_a_predictor_names_an_array_of_another_dtype_or_shape(monkeypatch):
    monkeypatch.setattr(predict, "load_model", lambda path: (_SpotNet(), tiny("end2end")))
    predictor = predict.Predictor("m.pt", device="cpu")
    with pytest.raises(ValueError) as error:
        predictor(np.zeros((32, 32, 3), np.float32))
    assert str(error.value) == (
        "image: expected an (H, W, 3) RGB or (H, W) greyscale array of uint8, got float32 of "
        "shape (32, 32, 3)"
    )
    # A PIL image and a file of the same pixels predict alike.
    image = _spot_image(5)
    assert np.array_equal(predictor(image, K=(20, 20, 10, 14)).hand_2d,
                          predictor(np.asarray(image), K=(20, 20, 10, 14)).hand_2d)  # fmt: skip


def _spot_folder(folder, names) -> None:
    folder.mkdir()
    for k, name in enumerate(names):
        _spot_image(3 + k).save(folder / name, format="PNG")


def test_a_folder_is_read_for_its_image_files_by_name(tmp_path, monkeypatch):
    """Image suffixes in any case, sorted by name; other files, hidden ones (macOS's ._ files)
    and subfolders left out; a folder and a file given together; names kept unique."""
    monkeypatch.setattr(predict, "load_model", lambda path: (_SpotNet(), tiny("end2end")))
    _spot_folder(tmp_path / "photos", ["b.png", "a.JPG", "c.Tiff", "._a.jpg"])
    (tmp_path / "photos" / "notes.txt").write_text("not read")
    _spot_folder(tmp_path / "photos" / "sub", ["d.png"])
    _spot_folder(tmp_path / "more", ["b.webp"])
    printed = []
    written = predict.predict_images(
        "m.pt", [tmp_path / "photos", tmp_path / "more" / "b.webp"], tmp_path / "out",
        K=(20, 20, 10, 14), on_written=printed.append,
    )  # fmt: skip
    assert [path.name for path in written] == ["a.json", "b.json", "c.json", "b-2.json"]
    assert printed == written
    images = [json.loads(path.read_text())["image"] for path in written]
    folder = tmp_path / "photos"
    assert images == [str(folder / "a.JPG"), str(folder / "b.png"), str(folder / "c.Tiff"),
                      str(tmp_path / "more" / "b.webp")]  # fmt: skip


def test_names_differing_only_by_case_get_distinct_outputs():
    """a/IMG.jpg and b/img.png wrote IMG.json and img.json, one file on the case-insensitive
    disks of macOS and Windows: the second overwrote the first."""
    names = predict.output_names(["a/IMG.jpg", "b/img.png", "c/Img-2.tif", "d/photo.jpg"])
    assert names == ["IMG", "img-2", "Img-2-2", "photo"]


def test_output_names_of_many_folders_alike_are_the_first_free_suffix_of_each():
    """Thousands of folders of frames named alike (FPHA's, DexYCB's) took quadratic time, each
    file trying every suffix again; each file's name is still the first free one, as a plain
    search from the start for each file gives (a naive reference, bench_scale's baseline),
    stems that look like suffixed ones included."""
    stems = ["0000", "0001", "0000-2", "IMG", "img", "0000-3", "Img-2", "0001-2"]
    paths = [f"f{i}/{stems[(i * 5) % len(stems)]}.png" for i in range(300)]
    names = predict.output_names(paths)
    assert names == first_free_names(paths)
    assert len({name.casefold() for name in names}) == 300


def test_an_image_of_several_frames_is_predicted_from_its_first_named_or_in_a_folder(
    tmp_path, monkeypatch
):
    """An animated GIF given by name was predicted from its first frame without a word, and
    skipped without a word in a folder (.gif was no image suffix); now alike, with a warning
    naming it and its frames."""
    monkeypatch.setattr(predict, "load_model", lambda path: (_SpotNet(), tiny("end2end")))
    folder = tmp_path / "photos"
    _spot_folder(folder, ["a.png"])
    frames = [_spot_image(3), _spot_image(5)]
    frames[0].save(folder / "anim.gif", save_all=True, append_images=frames[1:])
    warning = f"{folder / 'anim.gif'}: an image of 2 frames; read from its first"
    for given, out in (([folder], "in_folder"), ([folder / "anim.gif"], "by_name")):
        with pytest.warns(UserWarning) as warned:
            written = predict.predict_images(
                "m.pt", given, tmp_path / out, K=(20, 20, 10, 14), overlay=False
            )
        assert [str(w.message) for w in warned] == [warning]
        (path,) = [path for path in written if path.name == "anim.json"]
        # The wrist on the first frame's spot, (3, 12), not the second's, (5, 12) (_SpotNet;
        # the GIF's palette leaves its black not quite 0, which moves it by 0.003 px).
        wrist = json.loads(path.read_text())["hand_2d"][0]
        np.testing.assert_allclose(wrist, [3.0, 12.0], atol=0.01)
    assert [path.name for path in sorted((tmp_path / "in_folder").iterdir())] == [
        "a.json", "anim.json"
    ]  # fmt: skip


def test_an_output_folder_that_is_a_folder_of_photos_is_refused_before_the_checkpoint(
    tmp_path, monkeypatch
):
    """`predict CK DIR --out DIR` wrote a_overlay.jpg beside a.png, which the next run over DIR
    read as a photo (a_overlay.json): refused, however the folder is spelled, naming it, before
    the checkpoint is read. A folder inside it is taken: a folder's subfolders are not read."""
    loaded = []

    def load_model(path):
        loaded.append(path)
        return _SpotNet(), tiny("end2end")

    monkeypatch.setattr(predict, "load_model", load_model)
    photos = tmp_path / "photos"
    _spot_folder(photos, ["a.png"])
    for out in (photos, tmp_path / "other" / ".." / "photos"):
        with pytest.raises(ValueError) as error:
            predict.predict_images("m.pt", [photos], out, K=(20, 20, 10, 14))
        assert str(error.value) == (
            f"{out}: the output folder is the folder of photos {photos}, where the next run "
            "over it would read this one's overlays as photos; choose another --out"
        )
    assert loaded == [] and [path.name for path in photos.iterdir()] == ["a.png"]
    for _ in range(2):
        written = predict.predict_images("m.pt", [photos], photos / "out", K=(20, 20, 10, 14))
        assert [path.name for path in written] == ["a.json"]


def test_a_folder_without_image_files_is_named_before_anything_is_written(tmp_path, monkeypatch):
    monkeypatch.setattr(predict, "load_model", lambda path: (_SpotNet(), tiny("end2end")))
    _spot_folder(tmp_path / "photos", ["a.png"])
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("not an image")
    with pytest.raises(FileNotFoundError) as error:
        predict.predict_images("m.pt", [tmp_path / "photos", tmp_path / "empty"], tmp_path / "o")
    assert str(error.value) == (
        f"{tmp_path / 'empty'}: no image files (.jpg, .jpeg, .png, .bmp, .webp, .tif, .tiff, .gif)"
    )
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("batch_size", [1, 2, 8])
def test_an_unreadable_image_among_several_is_skipped_and_counted(
    tmp_path, monkeypatch, batch_size
):
    """It is named in a warning and the others are predicted, those of its batch too; the run
    then ends with an error counting it. Given alone, it is the error itself."""
    monkeypatch.setattr(predict, "load_model", lambda path: (_SpotNet(), tiny("end2end")))
    _spot_folder(tmp_path / "photos", ["a.png", "c.png"])
    bad = tmp_path / "photos" / "b.jpg"
    bad.write_text("not an image")
    printed = []
    with pytest.warns(UserWarning) as warned, pytest.raises(ValueError) as error:
        predict.predict_images(
            "m.pt", [tmp_path / "photos"], tmp_path / "out", K=(20, 20, 10, 14),
            on_written=printed.append, batch_size=batch_size,
        )  # fmt: skip
    assert [str(w.message) for w in warned] == [
        f"{bad}: not a readable image (cannot identify image file '{bad}'); skipped"
    ]
    assert str(error.value) == (
        f"1 of 3 images not readable (named above); the other 2 predicted into {tmp_path / 'out'}"
    )
    assert [path.name for path in printed] == ["a.json", "c.json"]
    assert sorted(path.name for path in (tmp_path / "out").iterdir()) == [
        "a.json", "a_overlay.jpg", "c.json", "c_overlay.jpg"
    ]  # fmt: skip
    with pytest.raises(ValueError, match=r"b\.jpg: not a readable image"):
        predict.predict_images("m.pt", [bad], tmp_path / "alone")
    assert not (tmp_path / "alone").exists()


def test_no_overlay_writes_the_json_alone_its_overlay_null(tmp_path, monkeypatch):
    monkeypatch.setattr(predict, "load_model", lambda path: (_SpotNet(), tiny("end2end")))
    _spot_image(5).save(tmp_path / "photo.png")
    drawn = []
    monkeypatch.setattr(viz, "draw_overlay", lambda *args: drawn.append(args))
    args = ("m.pt", [tmp_path / "photo.png"], tmp_path / "out")
    (path,) = predict.predict_images(*args, K=(20, 20, 10, 14), overlay=False)
    assert json.loads(path.read_text())["overlay"] is None
    assert list((tmp_path / "out").iterdir()) == [path] and drawn == []


def test_a_run_into_a_used_folder_replaces_its_names_files_and_each_json_names_its_checkpoint(
    tmp_path, monkeypatch
):
    """Model A predicts a.png and b.png with overlays; model B then a.png alone, without one,
    into the same folder. a_overlay.jpg was model A's drawing left beside B's JSON, which says
    there is none: it is removed. b's files, a photo added before, are kept. Each JSON names
    the checkpoint it came from, resolved (the relative a.pt as tmp_path/a.pt), so that a
    folder two models wrote into says which wrote what."""
    monkeypatch.setattr(predict, "load_model", lambda path: (_SpotNet(), tiny("end2end")))
    monkeypatch.chdir(tmp_path)
    _spot_folder(tmp_path / "photos", ["a.png", "b.png"])
    out = tmp_path / "out"
    predict.predict_images("a.pt", [tmp_path / "photos"], out, K=(20, 20, 10, 14))
    b_before = (out / "b.json").read_text()
    predict.predict_images(
        "models/b.pt", [tmp_path / "photos" / "a.png"], out, K=(20, 20, 10, 14), overlay=False
    )
    assert sorted(path.name for path in out.iterdir()) == ["a.json", "b.json", "b_overlay.jpg"]
    a_after = json.loads((out / "a.json").read_text())
    assert a_after["overlay"] is None
    assert a_after["checkpoint"] == str(tmp_path.resolve() / "models" / "b.pt")
    assert (out / "b.json").read_text() == b_before
    assert json.loads(b_before)["checkpoint"] == str(tmp_path.resolve() / "a.pt")


# The photos of a batch: sizes (height, width) that a 32-px network reads at different shrinks
# (the 120-px side by 3, the 80-px one by 2, the 50-px one not at all), a left hand among right
# ones, and a camera each: a field of view, a K, the default lens.
_BATCH = [
    {"size": (45, 80), "fov": 60.0, "K": None, "left": False},
    {"size": (50, 36), "fov": None, "K": (40.0, 42.0, 17.0, 26.0), "left": True},
    {"size": (33, 120), "fov": None, "K": None, "left": False},
]


@pytest.mark.parametrize("refine", [False, True], ids=["plain", "refined"])
@pytest.mark.parametrize("crop", ["square", "resize"], ids=["self_crop", "whole_frame"])
def test_a_batch_of_photos_is_predicted_as_each_photo_alone(monkeypatch, crop, refine):
    """predict_batch reads every pass's views of all photos in one forward (each warped from
    its own pixels) and refines them as one batch: with the network in eval mode (batch norm
    frozen) each photo's prediction is the one it gets alone, to float round-off (the photos
    differ in size, camera and hand)."""
    model, _ = _tiny_network(
        monkeypatch, f"data.crop={crop}", f"data.options.jitter={crop == 'square'}"
    )
    forwards: list[int] = []
    model.register_forward_pre_hook(lambda module, inputs: forwards.append(len(inputs[0])))
    predictor = predict.Predictor("m.pt", refine=refine, device="cpu")
    photos = [_random_pixels(*case["size"], seed=k) for k, case in enumerate(_BATCH)]
    options = {key: [case[key] for case in _BATCH] for key in ("K", "fov", "left")}
    batch = predictor.predict_batch(photos, **options)
    passes = forwards.copy()
    alone = [
        predictor(photo, K=case["K"], fov=case["fov"], left=case["left"])
        for photo, case in zip(photos, _BATCH, strict=True)
    ]
    # One forward a pass for the three photos: the whole photo, then (self-cropping) the first
    # crop and the last crop's 7 views of each.
    assert passes == ([3, 3, 21] if crop == "square" else [3])
    assert [result.side for result in batch] == ["right", "left", "right"]
    assert [result.camera_source for result in batch] == ["--fov", "--K", "default"]
    # To the float32 network's round-off: a batch's convolutions sum in another order, and at
    # 400 mm deep a float32 step is 3e-5 mm (differences up to 9e-5 seen without refinement;
    # the refinement's gradient steps carry them further, up to 1.2e-3 seen under other random
    # weights, though refine_pose itself gives a batch what each frame gets alone, to the bit).
    # A photo given another's size, camera or side would be pixels and millimetres off.
    tolerance = 1e-2 if refine else 1e-3
    for k, (together, single) in enumerate(zip(batch, alone, strict=True)):
        assert together.size == single.size == _BATCH[k]["size"][::-1]
        np.testing.assert_array_equal(together.K, single.K)
        for key in (*predict.KEYPOINTS, *predict.PEAKS):
            expected = getattr(single, key)
            np.testing.assert_allclose(
                getattr(together, key), expected, atol=tolerance, rtol=0, err_msg=f"{k} {key}"
            )
    # Not all alike: a photo given another's prediction would show.
    assert np.abs(batch[0].hand_2d - batch[2].hand_2d).max() > 1


def test_predict_batch_takes_one_value_for_all_photos_or_one_a_photo(monkeypatch):
    """K, fov and left: one value shared, or a sequence of one a photo; a sequence of another
    length, or one photo given where photos are expected, is named; an image of several that is
    not a photo is named by its index."""
    monkeypatch.setattr(predict, "load_model", lambda path: (_SpotNet(), tiny("end2end")))
    predictor = predict.Predictor("m.pt", device="cpu")
    images = [_spot_image(5), _spot_image(9)]
    shared = predictor.predict_batch(images, K=(20, 20, 10, 14), left=True)
    options = {"K": [(20, 20, 10, 14)] * 2, "left": [True, True]}
    each = predictor.predict_batch(images, **options)
    for one, other in zip(shared, each, strict=True):
        np.testing.assert_array_equal(one.hand_3d, other.hand_3d)
        assert one.side == other.side == "left"
    # A (B, H, W, 3) array is B photos.
    stacked = predictor.predict_batch(np.stack([np.asarray(image) for image in images]), **options)
    for one, other in zip(stacked, each, strict=True):
        np.testing.assert_array_equal(one.hand_3d, other.hand_3d)
    mixed = predictor.predict_batch(images, K=[(20, 20, 10, 14), None], fov=[None, 60.0])
    assert [result.camera_source for result in mixed] == ["--K", "--fov"]
    with pytest.raises(ValueError, match=r"^K: 3 values for 2 photos; give one for all"):
        predictor.predict_batch(images, K=[(20, 20, 10, 14)] * 3)
    with pytest.raises(ValueError, match=r"^left: 1 values for 2 photos"):
        predictor.predict_batch(images, left=[True])
    with pytest.raises(ValueError, match=r"^images: expected a sequence of photos"):
        predictor.predict_batch(images[0])
    with pytest.raises(ValueError, match=r"^images\[1\]: image: expected an \(H, W, 3\) RGB"):
        predictor.predict_batch([images[0], np.zeros((32, 32, 3), np.float32)])
    assert predictor.predict_batch([]) == []
    # One photo takes its K as any four numbers (a tensor, an array) and any truthy left, as
    # before batches: its values are that photo's, never read as one value a photo.
    alone = predictor(images[0], K=(20, 20, 10, 14), left=True)
    for K in (torch.tensor([20.0, 20, 10, 14]), np.array([20.0, 20, 10, 14])):
        np.testing.assert_array_equal(predictor(images[0], K=K, left=1).hand_3d, alone.hand_3d)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"K": [(20, 20, 10, 14), (0, 20, 10, 14)]},
         "K[1]: expected fx,fy,cx,cy with fx, fy > 0, got (0, 20, 10, 14)"),
        ({"fov": [60.0, 200.0]},
         "fov[1]: expected a horizontal field of view in (0, 180) deg, got 200.0"),
        ({"K": [None, (20, 20, 10, 14)], "fov": [None, 60.0]},
         "K[1] and fov[1]: give one camera, not both"),
        ({"K": (20, 20, 10, 14), "fov": [None, 60.0]}, "K and fov[1]: give one camera, not both"),
        ({"K": (0, 20, 10, 14)}, "K: expected fx,fy,cx,cy with fx, fy > 0, got (0, 20, 10, 14)"),
    ],
    ids=["photos_K", "photos_fov", "photos_K_and_fov", "shared_K_and_photos_fov", "shared_K"],
)  # fmt: skip
def test_predict_batch_names_a_photos_bad_camera_as_its_value(monkeypatch, options, message):
    """Among several photos, a bad camera value of one photo is named as that photo's value
    (K[1], fov[1]); one shared by all photos as the parameter."""
    monkeypatch.setattr(predict, "load_model", lambda path: (_SpotNet(), tiny("end2end")))
    predictor = predict.Predictor("m.pt", device="cpu")
    with pytest.raises(ValueError) as error:
        predictor.predict_batch([_spot_image(5), _spot_image(9)], **options)
    assert str(error.value) == message


def test_predict_batch_names_a_missing_file_by_its_index_and_path(tmp_path, monkeypatch):
    """Among several photos a file missing, or a folder, is named as images[1] and by its path;
    predictor(image) names the path alone, as before."""
    monkeypatch.setattr(predict, "load_model", lambda path: (_SpotNet(), tiny("end2end")))
    predictor = predict.Predictor("m.pt", device="cpu")
    missing = tmp_path / "missing.png"
    with pytest.raises(FileNotFoundError) as error:
        predictor.predict_batch([_spot_image(5), missing])
    assert str(error.value) == f"images[1]: image not found: {missing}"
    with pytest.raises(IsADirectoryError) as error:
        predictor.predict_batch([_spot_image(5), tmp_path])
    assert str(error.value) == f"images[1]: {tmp_path}: a directory; give the image file"
    with pytest.raises(FileNotFoundError) as error:
        predictor(missing)
    assert str(error.value) == f"image not found: {missing}"


def _outside(width: int, height: int) -> str:
    """photo_camera's warning for K = (20, 20, 40, 14) on a photo of ``width`` x ``height``."""
    return (
        f"the principal point (40, 14) of the K given lies outside the {width}x{height} photo: "
        "right for a crop of a larger photo, wrong for a K of another resolution or of the "
        "unrotated sensor"
    )


def test_a_principal_point_outside_one_photo_of_several_is_said_of_that_photo(monkeypatch):
    """K's cx = 40 lies beyond the 32-px wide photo (-0.5 ... 31.5), inside the 64-px one: the
    warning names the first photo; predictor(image) warns as photo_camera does."""
    monkeypatch.setattr(predict, "load_model", lambda path: (_SpotNet(), tiny("end2end")))
    predictor = predict.Predictor("m.pt", device="cpu")
    images = [_spot_image(5), _random_pixels(32, 64)]
    with pytest.warns(UserWarning) as warned:
        predictions = predictor.predict_batch(images, K=(20, 20, 40, 14))
    assert [str(w.message) for w in warned] == [f"images[0]: {_outside(32, 32)}"]
    assert [prediction.camera_source for prediction in predictions] == ["--K", "--K"]
    with pytest.warns(UserWarning) as warned:
        predictor(images[0], K=(20, 20, 40, 14))
    assert [str(w.message) for w in warned] == [_outside(32, 32)]


@pytest.mark.parametrize("batch_size", [1, 2])
def test_predict_images_names_the_file_its_principal_point_lies_outside(
    tmp_path, monkeypatch, batch_size
):
    """The files' own paths, not their places in a batch; a K that is no camera is named as
    the parameter before the checkpoint is read (here missing)."""
    monkeypatch.setattr(predict, "load_model", lambda path: (_SpotNet(), tiny("end2end")))
    _spot_folder(tmp_path / "photos", ["a.png", "b.png"])
    with pytest.warns(UserWarning) as warned:
        predict.predict_images(
            "m.pt", [tmp_path / "photos"], tmp_path / "out", K=(20, 20, 40, 14),
            batch_size=batch_size,
        )  # fmt: skip
    assert [str(w.message) for w in warned] == [
        f"{tmp_path / 'photos' / name}: {_outside(32, 32)}" for name in ("a.png", "b.png")
    ]
    monkeypatch.undo()
    with pytest.raises(ValueError) as error:
        predict.predict_images(
            tmp_path / "missing.pt", [tmp_path / "photos"], tmp_path / "o", K=(0, 20, 10, 14)
        )
    assert str(error.value) == "K: expected fx,fy,cx,cy with fx, fy > 0, got (0, 20, 10, 14)"


def test_the_python_api_names_its_parameters_not_the_commands_options(monkeypatch):
    """A bad device or camera given to Predictor is named as its parameter (hopose predict
    names its options: tests/test_cli.py)."""
    monkeypatch.setattr(predict, "load_model", lambda path: (_SpotNet(), tiny("end2end")))
    with pytest.raises(ValueError, match=r"^device must be one of \('auto', 'cpu'"):
        predict.Predictor("m.pt", device="gpu")
    predictor = predict.Predictor("m.pt", device="cpu")
    with pytest.raises(ValueError, match=r"^K: expected fx,fy,cx,cy with fx, fy > 0"):
        predictor(_spot_image(5), K=(0, 20, 10, 14))
    with pytest.raises(ValueError, match=r"^fov: expected a horizontal field of view"):
        predictor(_spot_image(5), fov=180)


@pytest.mark.parametrize("batch_size", [1, 2, 8])
def test_predict_images_writes_each_batch_before_reading_the_next(
    tmp_path, monkeypatch, batch_size
):
    """Five photos in batches of ``batch_size``: each batch's photos are read, predicted in one
    forward (a whole-frame network: one call a batch), and written, each JSON passed on as it
    is, before the next batch is read; the JSONs are those of one photo at a time."""
    net = _SpotNet()
    calls: list[int] = []
    net.register_forward_pre_hook(lambda module, inputs: calls.append(len(inputs[0])))
    monkeypatch.setattr(
        predict,
        "load_model",
        lambda path: (net, tiny("end2end", "data.crop=resize", "data.options.jitter=false")),
    )
    events: list[str] = []
    read = predict.read_photo

    def reading(path):
        events.append(f"read {path.stem}")
        return read(path)

    monkeypatch.setattr(predict, "read_photo", reading)
    names = ["a.png", "b.png", "c.png", "d.png", "e.png"]
    _spot_folder(tmp_path / "photos", names)
    kwargs = {"K": (20, 20, 10, 14), "on_written": lambda path: events.append(f"wrote {path.stem}")}
    written = predict.predict_images(
        "m.pt", [tmp_path / "photos"], tmp_path / "out", batch_size=batch_size, **kwargs
    )
    batches = [names[i : i + batch_size] for i in range(0, len(names), batch_size)]
    assert calls == [len(batch) for batch in batches]
    expected = []
    for batch in batches:
        expected += [f"read {name[0]}" for name in batch] + [f"wrote {name[0]}" for name in batch]
    assert events == expected
    alone = predict.predict_images(
        "m.pt", [tmp_path / "photos"], tmp_path / "alone", batch_size=1, K=(20, 20, 10, 14)
    )
    for path, single in zip(written, alone, strict=True):
        record, reference = json.loads(path.read_text()), json.loads(single.read_text())
        for key in predict.KEYPOINTS:
            np.testing.assert_allclose(record[key], reference[key], atol=1e-9, err_msg=key)


@pytest.mark.parametrize("batch_size", [0, -1, 2.0, True])
def test_predict_images_refuses_a_batch_size_below_one_before_reading_anything(
    tmp_path, batch_size
):
    with pytest.raises(ValueError) as error:
        predict.predict_images(
            tmp_path / "missing.pt", [tmp_path / "photo.jpg"], tmp_path / "out",
            batch_size=batch_size,
        )  # fmt: skip
    assert str(error.value) == f"batch_size: expected an integer >= 1, got {batch_size!r}"
