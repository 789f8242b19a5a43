"""Prediction on one photo: the network is run where its weights are."""

from __future__ import annotations

import pytest
import torch
from PIL import Image

from hopose import crop
from hopose.crop import CropViews, SelfCropping
from hopose.models import build_model
from hopose.photo import Photo, photo_camera
from hopose.predict import predict_photo
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
