"""Named styles: where they live, how names and aliases resolve, and how new ones get in (a training run via
`cycletrans.export`, a reference `.pth` via `import_pth`, a published one via `pull`).

A style is a folder `<store>/<name>/` with `card.json` and `forward.onnx` (+ `reverse.onnx`, + `.fp16.onnx`
variants), see ARCHITECTURE.md. Stores, searched in order: the user's (`$CYCLETRANS_HOME`, default
`$XDG_DATA_HOME/cycletrans/models`), then the `models/` folder shipped beside the package. No torch at import time:
only importing a `.pth` needs it.
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import http.client
import json
import os
import re
import shutil
import tempfile
import urllib.error
import urllib.request
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import cycletrans
from cycletrans.errors import InputError, ModelError
from cycletrans.fsutil import PARTIAL_MARK, atomic_write_text

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
    """The style's card; a missing or damaged one reads as just the name (the models themselves still work, and
    their metadata says the rest)."""
    try:
        card = json.loads((folder / CARD).read_text("utf-8"))
    except (OSError, ValueError):
        return {"name": folder.name}
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
    if not _NAME_RE.match(name):  # never a path: "../x" must not reach outside the stores
        return None
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


# ---------------------------------------------------------------------------------------------------------------
# Making styles: folders appear whole or not at all.

def check_name(name: str) -> str:
    if not _NAME_RE.match(name or ""):
        raise InputError(f"{name!r} is not a usable style name (letters, digits, '_', '-', '.'; at most 64)")
    return name


def make_card(name: str, *, domains: tuple[str, str], directions: list[str], provenance: dict,
              train_size: int | None, metrics: dict | None = None, **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "domains": {"source": domains[0], "target": domains[1]},
        "directions": directions,
        "provenance": provenance,
        "metrics": metrics or {},
        "train_size": train_size,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "cycletrans_version": cycletrans.__version__,
        **extra,
    }


def write_card(folder: Path, card: dict[str, Any]) -> Path:
    atomic_write_text(folder / CARD, json.dumps(card, indent=2, ensure_ascii=False) + "\n")
    return folder / CARD


@contextlib.contextmanager
def new_style_folder(name: str, *, overwrite: bool = False, out: str | os.PathLike | None = None) -> Iterator[Path]:
    """A staging folder beside the target (`<user store>/<name>`, or `out`) that becomes the style folder only when
    the block completes; on failure it is removed and any existing style is untouched. InputError up front when the
    target exists and `overwrite` is false, so no work is wasted."""
    target = Path(out) if out is not None else user_store() / check_name(name)
    if target.exists() and not overwrite:
        raise InputError(f"{target} already exists; pick another --name or pass --force to replace it")
    if target.exists() and not (_is_style_folder(target) or (target.is_dir() and not any(target.iterdir()))):
        # --force replaces a style, never anything else (`export RUN -o RUN --force` would delete the run)
        raise InputError(f"{target} exists and is not a style folder; cycletrans will not replace it, even with --force")
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}{PARTIAL_MARK}", dir=target.parent))
    try:
        yield staging
        _umask_permissions(staging)
        if target.exists():  # overwrite: the old folder is set aside, and deleted once the new one is in place
            old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
            os.replace(target, old / "style")
            try:
                os.replace(staging, target)
            except BaseException:
                os.replace(old / "style", target)
                raise
            finally:
                shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _umask_permissions(folder: Path) -> None:
    """mkdtemp makes the staging folder private (0700); the finished style gets an ordinary folder's mode."""
    umask = os.umask(0o022)
    os.umask(umask)
    folder.chmod(0o777 & ~umask)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _guess_domains(name: str) -> tuple[str, str]:
    """Published names know their domains; 'a2b' names say them; anything else is plain source → target."""
    if name in PUBLISHED:
        return PUBLISHED[name]
    match = re.match(r"^([A-Za-z]+)2([A-Za-z]+)", name)
    return (match.group(1), match.group(2)) if match else ("source", "target")


def load_torch_file(path: Path) -> Any:
    """`torch.load` with weights_only=True: tensors and plain containers only, never arbitrary objects (a .pth
    from the internet is a pickle and could otherwise run code)."""
    import pickle

    import torch

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # old-format files warn about their pickle protocol
            return torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise InputError(f"{path}: is a folder, not a .pth file") from None
    except pickle.UnpicklingError as err:
        if "global" in str(err).lower():  # weights_only refused to import a function or class
            raise ModelError(f"{path}: refused: the file holds Python objects other than tensors, "
                             "which could run code when loaded (only plain weights are accepted)") from None
        raise ModelError(f"{path}: not a readable PyTorch weights file") from None
    except Exception as err:  # truncated archive, ...
        raise ModelError(f"{path}: not a readable PyTorch weights file ({type(err).__name__})") from None


def import_pth(path: str | os.PathLike, name: str | None = None, *, source_domain: str | None = None,
               target_domain: str | None = None, fp16: bool = True, overwrite: bool = False,
               provenance: dict | None = None, log: Callable[[str], None] | None = None):
    """Register a `.pth` as a style: a cycletrans training checkpoint (both generators) or a reference
    implementation generator file (`latest_net_G.pth`: a bare state_dict, one direction). Returns the
    `cycletrans.export.ExportResult`."""
    from cycletrans import export
    from cycletrans.nets import generator_from_state_dict
    from cycletrans.train.checkpoint import FORMAT

    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    name = check_name(name or path.stem)
    target = user_store() / name
    if target.exists() and not overwrite:  # before the (slow) export
        raise InputError(f"{target} already exists; pick another --name or pass --force to replace it")
    info = {"source": str(path.resolve()), "sha256": _sha256(path), **(provenance or {})}
    state = load_torch_file(path)
    if isinstance(state, dict) and state.get("format") == FORMAT:
        return export.export_run(path, name, fp16=fp16, overwrite=overwrite, provenance=info, log=log)

    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not state:
        raise ModelError(f"{path}: neither a cycletrans checkpoint nor a generator state_dict")
    try:
        net = generator_from_state_dict(state).eval()
    except ValueError as err:
        raise ModelError(f"{path}: {err}") from None
    guessed = _guess_domains(name if name in PUBLISHED else path.stem)
    domains = (source_domain or guessed[0], target_domain or guessed[1])
    train_size = PUBLISHED_TRAIN_SIZE if name in PUBLISHED else None
    return export.export_style({"forward": net}, name, domains=domains, train_size=train_size,
                               provenance={"kind": "reference-generator", **info}, fp16=fp16,
                               overwrite=overwrite, log=log)


# ---------------------------------------------------------------------------------------------------------------
# Published models: explicit, resumable downloads.

def model_url(name: str) -> str:
    base = os.environ.get("CYCLETRANS_MODEL_URL") or DEFAULT_MODEL_URL
    return f"{base.rstrip('/')}/{name}.pth"


def download(url: str, target: Path, progress: Callable[[int, int | None], None] | None = None,
             timeout: float = 60.0) -> Path:
    """Fetch `url` into `target` via `<target>.part`, continuing a previous partial download with an HTTP Range
    request (a server that ignores Range just sends the whole file again). The `.part` is kept on failure so the
    next attempt resumes; `target` appears only complete."""
    part = target.with_name(target.name + ".part")
    target.parent.mkdir(parents=True, exist_ok=True)
    have = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"User-Agent": f"cycletrans/{cycletrans.__version__}"})
    if have:
        request.add_header("Range", f"bytes={have}-")
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as err:
        if err.code == 416 and have:  # nothing left to send: the partial file is already whole
            os.replace(part, target)
            return target
        raise ModelError(f"could not download {url}: HTTP {err.code} {err.reason}") from None
    except (urllib.error.URLError, OSError) as err:
        raise ModelError(f"could not download {url}: {getattr(err, 'reason', err)}") from None
    with response:
        resumed = have and response.status == 206
        if not resumed:
            have = 0
        length = response.headers.get("Content-Length")
        total = have + int(length) if length is not None else None
        done = have
        if progress:
            progress(done, total)
        try:
            with open(part, "ab" if resumed else "wb") as f:
                while chunk := response.read(1 << 16):
                    f.write(chunk)
                    done += len(chunk)
                    if progress:
                        progress(done, total)
                f.flush()
                os.fsync(f.fileno())
        except (OSError, http.client.HTTPException) as err:
            raise ModelError(f"download of {url} interrupted ({err}); run the same command again to resume") from None
    if total is not None and done != total:
        raise ModelError(f"download of {url} incomplete ({done} of {total} bytes); run the same command again to resume")
    os.replace(part, target)
    return target


def pull(name: str, *, overwrite: bool = False, fp16: bool = True,
         progress: Callable[[int, int | None], None] | None = None, log: Callable[[str], None] | None = None):
    """Download one of the authors' published generators (an alias works too), import it as a style of its full
    name, and delete the download. Returns the ExportResult."""
    full = canonical_name(name)
    if full not in PUBLISHED:
        raise InputError(f"{name!r} is not a published model; choose one of: {', '.join(PUBLISHED)}")
    target = user_store() / full
    if target.exists() and not overwrite:
        raise InputError(f"style {full!r} is already installed at {target} (pass --force to fetch it again)")
    url = model_url(full)
    if log:
        log(f"downloading {url}")
    file = download(url, user_store() / ".downloads" / f"{full}.pth", progress=progress)
    try:
        return import_pth(file, full, fp16=fp16, overwrite=overwrite, provenance={"url": url}, log=log)
    finally:
        file.unlink(missing_ok=True)  # imported, or unusable: either way the next pull starts afresh


# ---------------------------------------------------------------------------------------------------------------
# Listing and removing.

def catalogue(include_published: bool = False) -> list[dict[str, Any]]:
    """One row per installed style (and, with `include_published`, per published one not yet pulled)."""
    rows = []
    for style in installed_styles():
        rows.append({
            "name": style.name, "installed": True, "origin": style.origin, "path": str(style.folder),
            "source": style.domains.get("source"), "target": style.domains.get("target"),
            "directions": style.directions,
            "fp16": [d for d in style.directions if (style.folder / f"{d}.fp16.onnx").is_file()],
            "aliases": sorted(a for a, full in ALIASES.items() if full == style.name),
        })
    if include_published:
        have = {row["name"] for row in rows}
        for full, (source, target) in PUBLISHED.items():
            if full not in have:
                rows.append({"name": full, "installed": False, "origin": "published", "path": None,
                             "source": source, "target": target, "directions": ["forward"], "fp16": [],
                             "aliases": sorted(a for a, f in ALIASES.items() if f == full)})
    return rows


def remove(name: str) -> Path:
    """Delete a style from the user's store (aliases work); shipped styles are never deleted."""
    if not _NAME_RE.match(name):
        raise InputError(f"no style {name!r} in {user_store()}")
    for candidate in dict.fromkeys((name, canonical_name(name))):
        folder = user_store() / candidate
        if _is_style_folder(folder):
            trash = Path(tempfile.mkdtemp(prefix=f".{candidate}.removed-", dir=folder.parent))
            os.replace(folder, trash / "style")  # one rename: the style is gone at once, never half-deleted
            shutil.rmtree(trash, ignore_errors=True)
            return folder
    if _is_style_folder(shipped_store() / canonical_name(name)):
        raise InputError(f"style {name!r} is shipped with cycletrans and cannot be removed")
    raise InputError(f"no style {name!r} in {user_store()}")
