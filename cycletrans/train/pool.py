"""The image pool (paper 4, after Shrivastava et al.): discriminators are updated with a history of generated
images rather than only the latest ones, which reduces model oscillation."""

from __future__ import annotations

import random
from typing import Any

import torch


class ImagePool:
    """Holds up to `size` generated images. Until full, every new image is stored and returned; once full, each
    new image is, with probability 1/2, swapped with a random stored one (the stored one is returned), else
    returned as is. size 0 disables the pool."""

    def __init__(self, size: int = 50, seed: int | None = None):
        self.size = size
        self.images: list[torch.Tensor] = []
        self.rng = random.Random(seed)

    def query(self, images: torch.Tensor) -> torch.Tensor:
        if self.size == 0:
            return images
        out = []
        for image in images.detach():
            image = image.unsqueeze(0)
            if len(self.images) < self.size:
                self.images.append(image.clone())
                out.append(image)
            elif self.rng.random() > 0.5:
                index = self.rng.randrange(self.size)
                out.append(self.images[index].clone())
                self.images[index] = image.clone()
            else:
                out.append(image)
        return torch.cat(out, 0)

    def state_dict(self) -> dict[str, Any]:
        stored = torch.cat(self.images).cpu() if self.images else torch.empty(0)
        return {"size": self.size, "images": stored, "rng": self.rng.getstate()}

    def load_state_dict(self, state: dict[str, Any], device: torch.device | str = "cpu") -> None:
        self.size = state["size"]
        self.images = [img.unsqueeze(0).to(device) for img in state["images"]] if state["images"].numel() else []
        rng_state = state["rng"]
        self.rng.setstate((rng_state[0], tuple(rng_state[1]), rng_state[2]))
