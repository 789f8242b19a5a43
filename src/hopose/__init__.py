"""hopose: joint 3D hand-object pose from one RGB image, with a physical affinity loss."""

__version__ = "0.1.0"
