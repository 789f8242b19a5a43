"""Tiny dataset trees in the datasets' exact on-disk formats, written into a test's tmp_path.

Each writer returns the numbers it wrote so tests can derive the expected records by hand.
Images are written only where a test decodes them; their sizes are the real ones (the loaders
check them against the annotation's camera).
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import yaml
from PIL import Image

# A box in metres: x in [-0.02, 0.03], y in [-0.01, 0.01], z in [0, 0.1].
BOX_LOW_M = np.array([-0.02, -0.01, 0.0])
BOX_HIGH_M = np.array([0.03, 0.01, 0.1])


def write_image(
    path: Path, size: tuple[int, int], dot: tuple[int, int] | None = None, radius: int = 2
) -> None:
    """A black RGB image (JPEG or PNG by suffix) of (width, height), optionally one white
    square of side 2 radius + 1 centred on ``dot`` (x, y)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.zeros((size[1], size[0], 3), dtype=np.uint8)
    if dot is not None:
        x, y = dot
        pixels[max(y - radius, 0) : y + radius + 1, max(x - radius, 0) : x + radius + 1] = 255
    Image.fromarray(pixels).save(path, quality=95)


def box_vertices(low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """(9, 3): the 8 corners of [low, high] plus an interior point (not on the hull)."""
    grid = np.array([[x, y, z] for x in (0, 1) for y in (0, 1) for z in (0, 1)], dtype=float)
    corners = low + grid * (high - low)
    return np.vstack([corners, (low + high) / 2])


def write_ply(path: Path, vertices: np.ndarray) -> None:
    """An ASCII PLY with the given vertices (a multiple of 3) as triangles 0-1-2, 3-4-5, ..."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [
        "ply",
        "format ascii 1.0",
        f"element vertex {len(vertices)}",
        "property float x",
        "property float y",
        "property float z",
        f"element face {len(vertices) // 3}",
        "property list uchar int vertex_indices",
        "end_header",
        *(f"{x:.6f} {y:.6f} {z:.6f}" for x, y, z in vertices),
        *(f"3 {i} {i + 1} {i + 2}" for i in range(0, len(vertices), 3)),
    ]
    path.write_text("\n".join(lines) + "\n")


def write_binary_ply(path: Path, vertices: np.ndarray) -> None:
    """:func:`write_ply`'s mesh as a binary little-endian PLY: float32 x y z per vertex, then per
    face a uint8 count (3) and three int32 indices."""
    path.parent.mkdir(parents=True, exist_ok=True)
    header = [
        "ply",
        "format binary_little_endian 1.0",
        f"element vertex {len(vertices)}",
        *(f"property float {axis}" for axis in "xyz"),
        f"element face {len(vertices) // 3}",
        "property list uchar int vertex_indices",
        "end_header",
    ]
    face = np.dtype([("count", "<u1"), ("index", "<i4", 3)])
    faces = np.array([(3, (i, i + 1, i + 2)) for i in range(0, len(vertices), 3)], dtype=face)
    path.write_bytes(
        ("\n".join(header) + "\n").encode()
        + np.asarray(vertices, dtype="<f4").tobytes()
        + faces.tobytes()
    )


def write_obj(path: Path, vertices: np.ndarray) -> None:
    """A Wavefront OBJ with the given vertices (a multiple of 3) as triangles 1-2-3, 4-5-6, ...
    (trimesh keeps only the vertices that faces use)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [f"v {x:.6f} {y:.6f} {z:.6f}" for x, y, z in vertices]
    lines += [f"f {i} {i + 1} {i + 2}" for i in range(1, len(vertices), 3)]
    path.write_text("\n".join(lines) + "\n")


def write_pickle(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as file:
        pickle.dump(data, file, protocol=2)


# ----------------------------------------------------------------------------------------- FPHA


def fpha_joints(frame: int) -> np.ndarray:
    """(21, 3) FPHA-order joints (mm, depth camera) of a frame: joint k = (10k, 5k + t, 400 + k)."""
    k = np.arange(21, dtype=float)
    return np.stack([10 * k, 5 * k + frame, 400 + k], axis=1)


# Object pose of every frame: a 90° turn about z, then (100, 50, 500) mm.
FPHA_POSE = np.array(
    [[0.0, -1.0, 0.0, 100.0], [1.0, 0.0, 0.0, 50.0], [0.0, 0.0, 1.0, 500.0], [0, 0, 0, 1.0]]
)


def write_fpha_sequence(root: Path, subject: str, action: str, seq: str, frames: int) -> None:
    """skeleton.txt and object_pose.txt of one sequence, in FPHA's exact line format."""
    hand = root / "Hand_pose_annotation_v1" / subject / action / seq
    obj = root / "Object_6D_pose_annotation_v1_1" / subject / action / seq
    hand.mkdir(parents=True, exist_ok=True)
    obj.mkdir(parents=True, exist_ok=True)
    skeleton = [
        f"{t:04d} " + " ".join(f"{v:.6f}" for v in fpha_joints(t).reshape(-1))
        for t in range(frames)
    ]
    # Column-major: the first four values are the first column of the matrix.
    pose = " ".join(f"{v:.6f}" for v in FPHA_POSE.T.reshape(-1))
    (hand / "skeleton.txt").write_text("\n".join(skeleton) + "\n")
    (obj / "object_pose.txt").write_text("\n".join(f"{t:04d} {pose}" for t in range(frames)) + "\n")


def write_fpha(root: Path) -> Path:
    """Subject_1/open_milk sequences 1, 2, 3 (2 frames each), Subject_2/close_milk/4 (the
    excluded one), a non-HO action, the milk model and the action split file."""
    for seq in ("1", "2", "3"):
        write_fpha_sequence(root, "Subject_1", "open_milk", seq, frames=2)
    write_fpha_sequence(root, "Subject_2", "close_milk", "4", frames=2)
    write_fpha_sequence(root, "Subject_2", "close_milk", "2", frames=2)
    write_fpha_sequence(root, "Subject_1", "charge_cell_phone", "1", frames=2)
    write_ply(
        root / "Object_models" / "milk_model" / "milk_model.ply",
        box_vertices(BOX_LOW_M, BOX_HIGH_M),
    )
    (root / "data_split_action_recognition.txt").write_text(
        "Training 3\n"
        "Subject_1/open_milk/1 5\n"
        "Subject_1/open_milk/3 5\n"
        "Subject_1/charge_cell_phone/1 0\n"
        "Test 2\n"
        "Subject_1/open_milk/2 5\n"
        "Subject_2/close_milk/4 4\n"
    )
    return root


# ---------------------------------------------------------------------------------------- ObMan

OBMAN_OBJ_PATH = (
    "/sequoia/data2/dataset/shapenet/ShapeNetCore.v2/02876657/abc123/models/model_normalized.obj"
)
# Model -> Blender camera: scale 0.5 plus a shift (metres); the camera looks down -z.
OBMAN_AFFINE = np.array(
    [[0.5, 0.0, 0.0, 0.01], [0.0, 0.5, 0.0, 0.02], [0.0, 0.0, 0.5, -0.4], [0.0, 0.0, 0.0, 1.0]]
)


def obman_joints() -> np.ndarray:
    """(21, 3) canonical joints in Blender's camera frame (metres): in front means z < 0."""
    k = np.arange(21, dtype=float)
    return np.stack([0.005 * k, -0.002 * k, -0.35 - 0.001 * k], axis=1)


def write_obman(root: Path, shapenet: Path, sides: tuple[str, ...] = ("right",)) -> None:
    """``root/train`` with one sample per side, and the ShapeNet mesh under ``shapenet``."""
    write_obj(
        shapenet / "02876657" / "abc123" / "models" / "model_normalized.obj",
        box_vertices(np.array([-0.1, -0.2, -0.05]), np.array([0.1, 0.2, 0.05])),
    )
    for index, side in enumerate(sides):
        write_pickle(
            root / "train" / "meta" / f"{index:08d}.pkl",
            {
                "coords_3d": obman_joints().astype(np.float32),
                "coords_2d": np.zeros((21, 2), dtype=np.float32),
                "affine_transform": OBMAN_AFFINE.astype(np.float32),
                "obj_path": OBMAN_OBJ_PATH,
                "side": side,
                "class_id": "02876657",
                "sample_id": "abc123",
                "obj_scale": 0.5,
            },
        )


# ---------------------------------------------------------------------------------------- HO-3D


def ho3d_mano_joints() -> np.ndarray:
    """(21, 3) MANO-order joints, OpenGL camera (metres, z < 0): joint m = (0.01m, 0.002m, -0.5)."""
    m = np.arange(21, dtype=float)
    return np.stack([0.01 * m, 0.002 * m, np.full(21, -0.5)], axis=1)


def ho3d_product_corners(low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """(8, 3) corners in HO-3D's order: index 4 bx + 2 by + bz over (low, high)."""
    bits = np.array([[i // 4, i // 2 % 2, i % 2] for i in range(8)], dtype=float)
    return low + bits * (high - low)


HO3D_CAM = np.array([[614.0, 0.0, 320.0], [0.0, 615.0, 240.0], [0.0, 0.0, 1.0]])


def write_ho3d(root: Path, *, with_rest: bool = True) -> None:
    """train/SEQ1/meta/0000.pkl (+ evaluation/SEQ2/meta/0000.pkl) and both frame lists."""
    shift = np.array([0.0, 0.0, -0.6])  # the box, 0.6 m in front of an OpenGL camera
    rest = ho3d_product_corners(np.array([-0.03, -0.05, -0.02]), np.array([0.03, 0.05, 0.02]))
    train = {
        "handJoints3D": ho3d_mano_joints(),
        "objCorners3D": rest + shift,
        "camMat": HO3D_CAM,
        "objName": "006_mustard_bottle",
        "handPose": np.zeros(48),
    }
    if with_rest:
        train["objCorners3DRest"] = rest
    write_pickle(root / "train" / "SEQ1" / "meta" / "0000.pkl", train)
    evaluation = dict(train, handJoints3D=np.array([0.01, 0.02, -0.5]))
    write_pickle(root / "evaluation" / "SEQ2" / "meta" / "0000.pkl", evaluation)
    (root / "train.txt").write_text("SEQ1/0000\n")
    (root / "evaluation.txt").write_text("SEQ2/0000\n")


# --------------------------------------------------------------------------------------- DexYCB

DEXYCB_SERIAL = "836212060125"


def write_dexycb(root: Path, *, sides: str = "right", sequences: int = 100) -> None:
    """Subject 01 with ``sequences`` sequence folders (100, as in the real dataset) holding a
    meta.yml; the first 5 (s0 val keeps the 5th) have one camera with frames 0 (a hand) and 1
    (no hand), and the pose.npz saying so. Plus the intrinsics of all 8 cameras and the
    grasped YCB model."""
    from hopose.data.dexycb import DEXYCB_SERIALS

    for serial in DEXYCB_SERIALS:
        path = root / "calibration" / "intrinsics" / f"{serial}_640x480.yml"
        path.parent.mkdir(parents=True, exist_ok=True)
        color = {"fx": 610.0, "fy": 611.0, "ppx": 321.0, "ppy": 242.0}
        path.write_text(yaml.safe_dump({"color": color, "depth": color}))
    write_obj(
        root / "models" / "006_mustard_bottle" / "textured_simple.obj",
        box_vertices(np.array([-0.04, -0.03, -0.09]), np.array([0.04, 0.03, 0.09])),
    )
    for index in range(sequences):
        folder = root / "20200709-subject-01" / f"20200709_14{index:04d}"
        folder.mkdir(parents=True)
        meta = {
            "serials": [DEXYCB_SERIAL],
            "num_frames": 2,
            "ycb_ids": [2, 5],
            "ycb_grasp_ind": 1,
            "mano_sides": [sides],
            "mano_calib": ["mano_20200709_140042_subject-01_right"],
        }
        (folder / "meta.yml").write_text(yaml.safe_dump(meta))
        if index >= 5:
            continue
        write_dexycb_pose(folder, DEXYCB_HAND_FRAMES)
        camera = folder / DEXYCB_SERIAL
        camera.mkdir()
        for t in range(2):
            joints = dexycb_joints() if t == 0 else -np.ones((1, 21, 3))
            np.savez_compressed(
                camera / f"labels_{t:06d}.npz",
                seg=np.zeros((480, 640), dtype=np.uint8),
                pose_y=DEXYCB_POSES.astype(np.float32),
                pose_m=np.zeros((1, 51), dtype=np.float32),
                joint_3d=joints.astype(np.float32),
                joint_2d=np.zeros((1, 21, 2), dtype=np.float32),
            )


def write_whole_dexycb_val(root: Path) -> None:
    """:func:`write_dexycb` plus what makes s0's val split whole on disk: subjects 01 and 02,
    their 20 val sequences (sorted index 4, 9, ..., 99) with all 8 cameras (empty: no label is
    read while indexing) and a pose.npz; each sequence 2 frames, a hand in frame 0 only,
    subject 02's hands left."""
    from hopose.data.dexycb import DEXYCB_SERIALS

    write_dexycb(root)
    meta = (root / "20200709-subject-01" / "20200709_140000" / "meta.yml").read_text()
    for subject, side in (("20200709-subject-01", "right"), ("20200813-subject-02", "left")):
        for index in range(100):
            folder = root / subject / f"{subject[:8]}_14{index:04d}"
            folder.mkdir(parents=True, exist_ok=True)
            (folder / "meta.yml").write_text(meta.replace("- right", f"- {side}"))
            if index % 5 == 4:
                write_dexycb_pose(folder, DEXYCB_HAND_FRAMES)
                for serial in DEXYCB_SERIALS:
                    (folder / serial).mkdir(exist_ok=True)


# Which of the fixture's 2 frames have a hand: frame 0 does, frame 1 not (its joint_3d is -1).
DEXYCB_HAND_FRAMES = (True, False)


def write_dexycb_pose(folder: Path, hand_frames: tuple[bool, ...], **arrays: np.ndarray) -> None:
    """A sequence's pose.npz: pose_y (frames, 2 objects, 7: quaternion x y z w, translation) and
    pose_m (frames, 1 hand, 51), all zero in the frames without a hand; ``arrays`` replace them."""
    frames = len(hand_frames)
    pose_y = np.tile([0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.5], (frames, 2, 1))
    pose_m = np.zeros((frames, 1, 51))
    pose_m[list(hand_frames), 0, 48:] = [0.01, 0.02, 0.6]  # a hand: its translation, metres
    data = {"pose_y": pose_y.astype(np.float32), "pose_m": pose_m.astype(np.float32)} | arrays
    np.savez_compressed(folder / "pose.npz", **data)


def dexycb_joints() -> np.ndarray:
    k = np.arange(21, dtype=float)
    return np.stack([0.004 * k, 0.003 * k, 0.6 + 0.001 * k], axis=1)[None]  # (1, 21, 3) metres


# pose_y of the two objects; the grasped one (index 1) is translated to (0.05, 0, 0.7) m.
DEXYCB_POSES = np.array(
    [
        [[1.0, 0, 0, 0.0], [0, 1.0, 0, 0.0], [0, 0, 1.0, 0.5]],
        [[1.0, 0, 0, 0.05], [0, 1.0, 0, 0.0], [0, 0, 1.0, 0.7]],
    ]
)
