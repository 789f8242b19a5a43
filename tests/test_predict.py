"""Prediction on one photo: the network is run where its weights are."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image, ImageColor

from hopose import crop, predict, viz
from hopose.data.grasps import generate_grasps
from hopose.geometry import project_points
from hopose.models import build_model
from hopose.photo import Photo, photo_camera
from hopose.physics import contact_points
from hopose.predict import draw_overlay, predict_photo
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
    torch.testing.assert_close(
        result["to_working"],
        torch.tensor([[0.5, 0, -0.25], [0, 0.5, -0.25], [0, 0, 1]], dtype=torch.float64),
    )
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

    monkeypatch.setattr(predict, "draw_overlay", record)
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


def _rgb(colour: str) -> np.ndarray:
    return np.array(ImageColor.getrgb(colour))


def test_the_overlay_draws_each_part_in_its_colour_where_its_points_are():
    """On a 2000x400 photo the lines are 2000 / 400 = 5 px wide (rows 98 to 102 about a
    horizontal bone at y = 100), the joints and corners discs of that radius, the contacts
    of twice it; x is the column, y the row; the photo itself is left as it was."""
    photo = Image.new("RGB", (2000, 400))
    # The wrist at (100, 100), every finger joint at (300, 100): the bones from the wrist to
    # each finger's base run along row 100. The box's corners all at (1000, 300), the one
    # contact at (1500, 200).
    hand = np.array([[100.0, 100.0]] + [[300.0, 100.0]] * 20)
    obj = np.full((8, 2), [1000.0, 300.0])
    contacts = np.array([[1500.0, 200.0]])
    overlay = np.asarray(draw_overlay(photo, hand, obj, contacts)).astype(int)
    assert not np.asarray(photo).any()
    blue, orange = _rgb(viz.HAND_COLOUR["pred"]), _rgb(viz.OBJECT_COLOUR["pred"])
    for row in range(98, 103):
        np.testing.assert_array_equal(overlay[row, 200], blue)
    assert not overlay[96, 200].any() and not overlay[104, 200].any()
    # 4 px below the corners: inside their discs (radius 5), beyond the lines' half width.
    np.testing.assert_array_equal(overlay[304, 1000], orange)
    np.testing.assert_array_equal(overlay[200, 1500], _rgb(viz.CONTACT_COLOUR))
    np.testing.assert_array_equal(overlay[200, 1492], _rgb(viz.CONTACT_COLOUR))  # radius 10
    assert not overlay[200, 1488].any()
    # Nothing in column 100 between rows 100 and 300, where the bones run with x and y swapped.
    assert not overlay[200, 100].any()


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
