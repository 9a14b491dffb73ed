"""Unpaired training data: two folders of images, sampled independently (paper 3: no pairing is assumed).

Augmentation follows the reference implementation: resize to load_size², random crop crop_size², random
horizontal flip, scale to [-1, 1]. Each item's randomness comes from (seed, epoch, index), so a run is
reproducible and a resumed run sees exactly the batches it would have seen, whatever the number of workers.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from PIL import Image

from cycletrans.errors import InputError
from cycletrans.media.images import list_images, read_rgb


@dataclass
class Domains:
    """The two image folders of a run, with their readable images."""

    folder_a: Path
    folder_b: Path
    images_a: list[Path]
    images_b: list[Path]
    skipped: list[Path]  # files that look like images by name but cannot be opened

    @property
    def name_a(self) -> str:
        return _domain_name(self.folder_a)

    @property
    def name_b(self) -> str:
        return _domain_name(self.folder_b)


def _domain_name(folder: Path) -> str:
    # datasets/horse2zebra/trainA -> "horse2zebra/A"; photos/ -> "photos"
    if folder.name in ("trainA", "trainB"):
        return f"{folder.parent.name}/{folder.name[-1]}"
    return folder.name


def resolve_folders(data_a: str | os.PathLike, data_b: str | os.PathLike | None) -> tuple[Path, Path]:
    """Two folders, or one dataset folder holding trainA/ and trainB/ (the public CycleGAN datasets' layout)."""
    a = Path(data_a)
    if data_b is None:
        if not a.is_dir():
            raise InputError(f"{a}: {'not a folder' if a.exists() else 'no such folder'}")
        if (a / "trainA").is_dir() and (a / "trainB").is_dir():
            return a / "trainA", a / "trainB"
        raise InputError(f"{a}: give two image folders, or one folder that holds trainA/ and trainB/")
    return a, Path(data_b)


def _openable(path: Path) -> bool:
    """Cheap check (header only): is this a file PIL can identify as an image?"""
    try:
        with Image.open(path) as image:
            image.size  # noqa: B018 - reading the header is the check
        return True
    except Exception:
        return False


def scan_domain(folder: Path) -> tuple[list[Path], list[Path]]:
    """(readable images, skipped files) under `folder`; InputError when there is nothing to train on."""
    if not folder.exists():
        raise InputError(f"{folder}: no such folder")
    if not folder.is_dir():
        raise InputError(f"{folder}: not a folder")
    candidates = list_images(folder)
    if not candidates:
        raise InputError(f"{folder}: no images found (looked for .png, .jpg, .jpeg, .webp, .bmp, .tif ...)")
    good = [p for p in candidates if _openable(p)]
    if not good:
        raise InputError(f"{folder}: none of its {len(candidates)} image files could be read")
    readable = set(good)
    return good, [p for p in candidates if p not in readable]


def load_domains(data_a, data_b=None) -> Domains:
    folder_a, folder_b = resolve_folders(data_a, data_b)
    images_a, skipped_a = scan_domain(folder_a)
    images_b, skipped_b = scan_domain(folder_b)
    return Domains(folder_a, folder_b, images_a, images_b, skipped_a + skipped_b)


def to_tensor(image: np.ndarray) -> torch.Tensor:
    """uint8 H×W×3 → float32 3×H×W in [-1, 1]."""
    return torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1))).float().div_(127.5).sub_(1.0)


def to_uint8(tensor: torch.Tensor) -> np.ndarray:
    """float 3×H×W in [-1, 1] → uint8 H×W×3."""
    array = tensor.detach().float().cpu().clamp(-1, 1).add(1).mul(127.5).round().byte().numpy()
    return array.transpose(1, 2, 0)


def augment(image: np.ndarray, load_size: int, crop_size: int, flip: bool, rng: np.random.Generator) -> np.ndarray:
    """Reference-implementation preprocessing 'resize_and_crop': resize to load_size² (which also upscales images
    smaller than the crop), random crop_size² crop, random horizontal flip."""
    image = cv2.resize(image, (load_size, load_size), interpolation=cv2.INTER_CUBIC)
    top, left = rng.integers(0, load_size - crop_size + 1, size=2)
    image = image[top:top + crop_size, left:left + crop_size]
    if flip and rng.random() < 0.5:
        image = image[:, ::-1]
    return image


def center_view(image: np.ndarray, size: int) -> np.ndarray:
    """Deterministic view for sample grids and quality checks: resize to size²."""
    return cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA)


class UnpairedDataset(torch.utils.data.Dataset):
    """Item i is (A[order[i]], B[random]) for the epoch set with `set_epoch`; B is drawn at random (paper 3:
    unpaired). An unreadable image found at load time is replaced by another one, and counted."""

    def __init__(self, domains: Domains, load_size: int, crop_size: int, flip: bool, seed: int):
        self.a, self.b = domains.images_a, domains.images_b
        self.load_size, self.crop_size, self.flip, self.seed = load_size, crop_size, flip, seed
        self.epoch = 0

    def __len__(self) -> int:
        return max(len(self.a), len(self.b))  # reference implementation: an epoch covers the larger domain

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _load(self, paths: list[Path], index: int, rng: np.random.Generator) -> torch.Tensor:
        for attempt in range(len(paths)):
            path = paths[(index + attempt) % len(paths)]
            try:
                image = read_rgb(path)
            except InputError:
                continue
            return to_tensor(augment(image, self.load_size, self.crop_size, self.flip, rng))
        raise InputError("no image of the domain could be read")

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        rng = np.random.default_rng([self.seed, self.epoch, index])
        real_a = self._load(self.a, index % len(self.a), rng)
        real_b = self._load(self.b, int(rng.integers(len(self.b))), rng)
        return {"A": real_a, "B": real_b}


class EpochSampler(torch.utils.data.Sampler):
    """A fresh permutation each epoch, from (seed, epoch); `skip` drops the first items (a resumed epoch), and
    rank/world_size take a disjoint shard (distributed training)."""

    def __init__(self, length: int, seed: int, rank: int = 0, world_size: int = 1):
        self.length, self.seed, self.rank, self.world_size = length, seed, rank, world_size
        self.epoch, self.skip = 0, 0

    def set_epoch(self, epoch: int, skip: int = 0) -> None:
        self.epoch, self.skip = epoch, skip

    def _indices(self) -> list[int]:
        order = np.random.default_rng([self.seed, self.epoch, 7]).permutation(self.length)
        return order[self.rank::self.world_size].tolist()

    def __len__(self) -> int:
        return max(0, len(self._indices()) - self.skip)

    def __iter__(self):
        return iter(self._indices()[self.skip:])
