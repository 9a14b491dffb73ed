"""Named styles: where they live, how names and aliases resolve, and how new ones get in (a training run via
`cycletrans.export`, a reference `.pth` via `import_pth`, a published one via `pull`).

A style is a folder `<store>/<name>/` with `card.json` and `forward.onnx` (+ `reverse.onnx`, + `.fp16.onnx`
variants), see ARCHITECTURE.md. Stores, searched in order: the user's (`$CYCLETRANS_HOME`, default
`$XDG_DATA_HOME/cycletrans/models`), then the `models/` folder shipped beside the package. No torch at import time:
only importing a `.pth` needs it.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import re
import shutil
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import cycletrans
from cycletrans.errors import CycletransError, InputError, ModelError
from cycletrans.fsutil import PARTIAL_MARK, atomic_path, atomic_write_text

CARD = "card.json"
DEFAULT_STYLE = "default"
DEFAULT_MODEL_URL = "http://efrosgans.eecs.berkeley.edu/cyclegan/pretrained_models"
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")

# The authors' published pretrained generators (reference repo, scripts/download_cyclegan_model.sh): each file is
# one generator (resnet9, ngf 64, trained on 256×256 crops), translating source → target.
PUBLISHED: dict[str, tuple[str, str]] = {
    "apple2orange": ("apple", "orange"),
    "orange2apple": ("orange", "apple"),
    "summer2winter_yosemite": ("summer", "winter"),
    "winter2summer_yosemite": ("winter", "summer"),
    "horse2zebra": ("horse", "zebra"),
    "zebra2horse": ("zebra", "horse"),
    "monet2photo": ("monet", "photo"),
    "style_monet": ("photo", "monet"),
    "style_cezanne": ("photo", "cezanne"),
    "style_ukiyoe": ("photo", "ukiyoe"),
    "style_vangogh": ("photo", "vangogh"),
    "sat2map": ("satellite", "map"),
    "map2sat": ("map", "satellite"),
    "cityscapes_photo2label": ("photo", "label"),
    "cityscapes_label2photo": ("label", "photo"),
    "facades_photo2label": ("photo", "label"),
    "facades_label2photo": ("label", "photo"),
    "iphone2dslr_flower": ("iphone", "dslr"),
}
PUBLISHED_TRAIN_SIZE = 256

# Short names for the published styles; each names the look you get (the target domain).
ALIASES: dict[str, str] = {
    "winter": "summer2winter_yosemite",
    "summer": "winter2summer_yosemite",
    "zebra": "horse2zebra",
    "horse": "zebra2horse",
    "orange": "apple2orange",
    "apple": "orange2apple",
    "monet": "style_monet",
    "cezanne": "style_cezanne",
    "ukiyoe": "style_ukiyoe",
    "ukiyo-e": "style_ukiyoe",
    "vangogh": "style_vangogh",
    "van-gogh": "style_vangogh",
    "photo": "monet2photo",
    "map": "sat2map",
    "satellite": "map2sat",
    "sat": "map2sat",
    "street-labels": "cityscapes_photo2label",
    "street": "cityscapes_label2photo",
    "facade-labels": "facades_photo2label",
    "facade": "facades_label2photo",
    "dslr": "iphone2dslr_flower",
    "bokeh": "iphone2dslr_flower",
}


def user_store() -> Path:
    """Where exported, imported and pulled styles go: $CYCLETRANS_HOME, else $XDG_DATA_HOME/cycletrans/models."""
    home = os.environ.get("CYCLETRANS_HOME")
    if home:
        return Path(home).expanduser()
    data = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(data).expanduser() / "cycletrans" / "models"


def shipped_store() -> Path:
    """Styles that come with the repository (read-only to cycletrans)."""
    return Path(cycletrans.__file__).resolve().parent.parent / "models"


def stores() -> list[tuple[str, Path]]:
    return [("user", user_store()), ("shipped", shipped_store())]


@dataclass(frozen=True)
class Style:
    """A resolved style: its folder and card, or a bare `.onnx` file given with --model."""

    name: str
    origin: str  # "user", "shipped" or "file"
    folder: Path | None = None
    file: Path | None = None  # a bare .onnx given with --model
    card: dict[str, Any] = field(default_factory=dict)

    def model_path(self, reverse: bool = False, fp16: bool = False) -> Path:
        """The ONNX file for one direction; the fp16 variant when asked for and present, else the fp32 one."""
        if self.file is not None:
            if reverse:
                raise ModelError(f"{self.file}: a single .onnx file has one direction only; --reverse needs a style "
                                 "folder with reverse.onnx")
            return self.file
        direction = "reverse" if reverse else "forward"
        fp32 = self.folder / f"{direction}.onnx"
        if fp16 and (self.folder / f"{direction}.fp16.onnx").is_file():
            return self.folder / f"{direction}.fp16.onnx"
        if not fp32.is_file():
            raise ModelError(f"style {self.name!r} has no {direction} model ({fp32} missing)")
        return fp32

    @property
    def directions(self) -> list[str]:
        if self.file is not None:
            return ["forward"]
        return [d for d in ("forward", "reverse") if (self.folder / f"{d}.onnx").is_file()]

    @property
    def domains(self) -> dict[str, str]:
        return self.card.get("domains", {})


def read_card(folder: Path) -> dict[str, Any]:
    try:
        card = json.loads((folder / CARD).read_text("utf-8"))
    except FileNotFoundError:
        return {"name": folder.name}
    except (OSError, ValueError) as err:
        raise ModelError(f"{folder / CARD}: unreadable style card ({err})") from None
    return card if isinstance(card, dict) else {"name": folder.name}


def _is_style_folder(folder: Path) -> bool:
    return folder.is_dir() and (folder / "forward.onnx").is_file()


def _style_from_folder(folder: Path, origin: str) -> Style:
    card = read_card(folder)
    return Style(name=card.get("name", folder.name), origin=origin, folder=folder, card=card)


def installed_styles() -> list[Style]:
    """Every style in the stores; a name in the user's store hides the same name shipped."""
    seen: dict[str, Style] = {}
    for origin, store in stores():
        if not store.is_dir():
            continue
        for folder in sorted(store.iterdir()):
            if folder.name.startswith(".") or folder.name in seen or not _is_style_folder(folder):
                continue
            seen[folder.name] = Style(name=folder.name, origin=origin, folder=folder, card=read_card(folder))
    return list(seen.values())


def find_installed(name: str) -> Style | None:
    for origin, store in stores():
        folder = store / name
        if _is_style_folder(folder):
            return Style(name=name, origin=origin, folder=folder, card=read_card(folder))
    return None


def canonical_name(name: str) -> str:
    """A published style's full name for an alias (case-insensitive); other names unchanged."""
    return ALIASES.get(name.lower(), name)


def resolve_style(style: str | None, model: str | os.PathLike | None) -> Style:
    """What `--style NAME` / `--model PATH` mean: the explicit path first, then the name in the user's store,
    the shipped store, then as an alias of a published style. ModelError, naming what exists or the command that
    fetches it, when nothing matches; nothing is ever downloaded here."""
    if model is not None:
        path = Path(model).expanduser()
        if path.is_file() and path.suffix.lower() == ".onnx":
            return Style(name=path.stem, origin="file", file=path)
        if _is_style_folder(path):
            return _style_from_folder(path, "file")
        if not path.exists():
            raise ModelError(f"{path}: no such model file or style folder")
        if path.suffix.lower() in (".pth", ".pt"):
            raise ModelError(f"{path}: a PyTorch file; convert it first with: cycletrans models import {path} --name NAME")
        raise ModelError(f"{path}: not an .onnx file or a style folder (with forward.onnx)")

    name = style or DEFAULT_STYLE
    found = find_installed(name)
    if found is None and canonical_name(name) != name:
        found = find_installed(canonical_name(name))
    if found is not None:
        return found

    full = canonical_name(name)
    if full in PUBLISHED:
        alias = f" ({full})" if full != name else ""
        raise ModelError(f"style {name!r}{alias} is not installed; fetch it with: cycletrans models pull {full}")
    installed = ", ".join(s.name for s in installed_styles()) or "none"
    if style is None:
        raise ModelError(f"no style given and no {DEFAULT_STYLE!r} style installed; use --style NAME or --model PATH "
                         f"(installed: {installed})")
    raise ModelError(f"unknown style {name!r}; installed: {installed}; downloadable: "
                     f"{', '.join(sorted(ALIASES))} (see `cycletrans models list --all`)")
