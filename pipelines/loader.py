# TEMPORARY SHIM (removed at merge with the pipelines/ reorganisation)
import torch

from pipelines.augment import Augment, AugmentConfig, Augmented, resize_bilinear  # noqa: F401
from pipelines.batch import Batch, Sample  # noqa: F401
from pipelines.dataset import StoreDataset, make_loader  # noqa: F401


def resolve_device(name):
    if name is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as e:
        raise ValueError(f"unknown device {name!r}") from e
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} requested but CUDA is not available")
    return device
