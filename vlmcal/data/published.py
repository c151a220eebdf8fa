"""The papers' data sets, read in the layouts their code bases keep them in; vlmcal never downloads them.

Specs for :func:`vlmcal.data.datasets.load_dataset` (layouts as trees in the book's "Re-running a page"): ``imagenet:/root``,
``imagenet-v2:/root`` (folders ``0`` … ``999``, read as numbers), ``imagenet-sketch:/root``, ``imagenet-a:/root``,
``imagenet-r:/root`` (200 classes, mapped to ImageNet's by WordNet id), ``imagenet-c:<corruption>:<severity>:/root``,
``domainnet:<domain>:/root`` (with its list files) and ``coop:<name>:/root`` (CoOp's 11, through its split files and
class names). ImageNet's class order and the A/R subsets are timm's (``ImageNetInfo``, ``imagenet_{a,r}_indices.txt``);
the class names open_clip's (``IMAGENET_CLASSNAMES``). A wrong layout is an error naming the spec, the folder, what was
expected and what was found.
"""

from __future__ import annotations

import functools
import json
import pkgutil
from pathlib import Path
from typing import Any, Callable

from PIL import Image

import torch

from vlmcal.data.base import LabelledDataset
from vlmcal.data.templates import open_clip_metadata

__all__ = [
    "ImageFileDataset", "PUBLISHED_SPECS", "COOP_DATASETS", "DOMAINNET_DOMAINS", "imagenet_wnids",
    "imagenet_classnames", "imagenet_subset", "dataset_template", "load_published", "shift_specs",
]

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp"}
DOMAINNET_DOMAINS = ("clipart", "infograph", "painting", "quickdraw", "real", "sketch")
# CoOp's data sets: spec name -> (folder under the root, image folder, split file, CoOp's prompt template).
# Folders and files as in CoOp's datasets/*.py; templates are CUSTOM_TEMPLATES of its trainers/zsclip.py.
COOP_DATASETS: dict[str, tuple[str, str, str, str]] = {
    "imagenet": ("imagenet", "images", "classnames.txt", "a photo of a {}."),
    "caltech101": ("caltech-101", "101_ObjectCategories", "split_zhou_Caltech101.json", "a photo of a {}."),
    "oxford_pets": ("oxford_pets", "images", "split_zhou_OxfordPets.json", "a photo of a {}, a type of pet."),
    "stanford_cars": ("stanford_cars", "", "split_zhou_StanfordCars.json", "a photo of a {}."),
    "oxford_flowers": ("oxford_flowers", "jpg", "split_zhou_OxfordFlowers.json", "a photo of a {}, a type of flower."),
    "food101": ("food-101", "images", "split_zhou_Food101.json", "a photo of {}, a type of food."),
    "fgvc_aircraft": ("fgvc_aircraft", "images", "images_variant_{split}.txt", "a photo of a {}, a type of aircraft."),
    "sun397": ("sun397", "SUN397", "split_zhou_SUN397.json", "a photo of a {}."),
    "dtd": ("dtd", "images", "split_zhou_DescribableTextures.json", "{} texture."),
    "eurosat": ("eurosat", "2750", "split_zhou_EuroSAT.json", "a centered satellite photo of {}."),
    "ucf101": ("ucf101", "UCF-101-midframes", "split_zhou_UCF101.json", "a photo of a person doing {}."),
}
PUBLISHED_SPECS = ("imagenet", "imagenet-v2", "imagenet-sketch", "imagenet-a", "imagenet-r", "imagenet-c", "domainnet", "coop")


class ImageFileDataset(LabelledDataset):
    """N images read from their files on demand, labelled in ``[0, len(class_names))``; ``transform`` maps each RGB
    PIL image (default: ``to_tensor``); ``imagenet_classes``: for a subset of ImageNet, each class's ImageNet index."""

    def __init__(self, files: list[Path], labels: list[int], class_names: list[str], identity: dict[str, Any],
                 transform: Callable | None = None, imagenet_classes: list[int] | None = None):
        from torchvision.transforms.functional import to_tensor

        self.files, self.class_names, self.identity = list(files), list(class_names), dict(identity)
        self.labels = torch.as_tensor(labels, dtype=torch.long)
        self.transform = transform or to_tensor
        self.imagenet_classes = imagenet_classes

    def __getitem__(self, i: int):
        with Image.open(self.files[i]) as image:
            return self.transform(image.convert("RGB")), int(self.labels[i])


@functools.cache
def imagenet_wnids() -> tuple[str, ...]:
    """ImageNet-1k's 1000 WordNet ids in class-index order (timm's ``ImageNetInfo``)."""
    from timm.data import ImageNetInfo

    return tuple(ImageNetInfo().label_names())


@functools.cache
def imagenet_classnames() -> tuple[str, ...]:
    """ImageNet's 1000 prompt-ready class names in index order (open_clip's ``IMAGENET_CLASSNAMES``)."""
    return tuple(open_clip_metadata().IMAGENET_CLASSNAMES)


@functools.cache
def imagenet_subset(name: str) -> tuple[int, ...]:
    """ImageNet's indices of the 200 classes of ``"imagenet-a"`` or ``"imagenet-r"`` (timm's index files)."""
    data = pkgutil.get_data("timm.data", f"_info/{name.replace('-', '_')}_indices.txt")
    return tuple(int(line) for line in data.decode().split())


def dataset_template(spec: str) -> str:
    """The one prompt template that TPT and CoOp use for a spec's data set (``"a photo of a {}."`` by default)."""
    kind, name = spec.split(":")[:2] if spec.count(":") >= 2 else (spec, "")
    return COOP_DATASETS[name][3] if kind == "coop" and name in COOP_DATASETS else "a photo of a {}."


def _images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith("."))


def _folders(root: Path) -> list[str]:
    return sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))


def _found(names: list[str]) -> str:
    shown = ", ".join(names[:5]) + (", …" if len(names) > 5 else "")
    return f"found {len(names)} folder{'s' * (len(names) != 1)}" + (f" named {shown}" if names else "")


def _folder_dataset(spec: str, root: Path, expected: list[str], what: str, class_names: list[str], identity: dict,
                    transform, imagenet_classes=None) -> ImageFileDataset:
    """The images of the class folders ``root/<name>``, labelled by the order of ``expected``; any other layout is an error."""
    found = _folders(root)
    if sorted(found) != sorted(expected):
        extra = sorted(set(found) - set(expected))
        detail = f"; not expected: {', '.join(extra[:5])}" if extra and len(found) == len(expected) else ""
        raise FileNotFoundError(f"{spec}: expected {len(expected)} {what} folders under {root}, {_found(found)}{detail}")
    per_class = [_images(root / name) for name in expected]
    files, labels = [f for images in per_class for f in images], [k for k, images in enumerate(per_class) for _ in images]
    if not files:
        raise FileNotFoundError(f"{spec}: found the class folders under {root} but no image in them "
                                f"(expected files such as {root / expected[0]}/0001.JPEG)")
    return ImageFileDataset(files, labels, class_names, {**identity, "n": len(files)}, transform, imagenet_classes)


def _test_only(spec: str, split: str) -> None:
    if split != "test":
        raise ValueError(f"{spec}: this data set has only a test split, but split={split!r} was asked for")


def _imagenet_family(kind: str, spec: str, root: Path, split: str, transform) -> ImageFileDataset:
    wnids, names = list(imagenet_wnids()), list(imagenet_classnames())
    identity = {"dataset": kind, "root": str(root.resolve()), "split": split}
    if kind == "imagenet":
        folder = root / ("val" if split == "test" else "train")
        if split == "train" and not folder.is_dir():
            raise FileNotFoundError(f"{spec}: expected the training set in {folder}/<wnid>/, found no such folder")
        folder = folder if folder.is_dir() else root
        return _folder_dataset(spec, folder, wnids, "WordNet-id", names, identity, transform)
    _test_only(spec, split)
    if kind == "imagenet-v2":  # folder "10" is class 10: the folders are ordered as numbers, not as strings
        return _folder_dataset(spec, root, [str(k) for k in range(1000)], "class-index (0 … 999)", names, identity, transform)
    if kind == "imagenet-sketch":
        return _folder_dataset(spec, root, wnids, "WordNet-id", names, identity, transform)
    subset = list(imagenet_subset(kind))
    what = f"{kind.upper().replace('IMAGENET', 'ImageNet')} WordNet-id"
    return _folder_dataset(spec, root, [wnids[k] for k in subset], what, [names[k] for k in subset], identity, transform, subset)


def _imagenet_c(spec: str, arguments: list[str], root: Path, split: str, transform) -> ImageFileDataset:
    _test_only(spec, split)
    corruptions = _folders(root)
    if arguments[0] not in corruptions:
        raise ValueError(f"{spec}: expected 'imagenet-c:<corruption>:<severity>:/root' with a corruption folder of "
                         f"{root}; its corruptions: {', '.join(corruptions) or 'none'}")
    folder = root / arguments[0] / arguments[1]
    if not folder.is_dir():
        raise FileNotFoundError(f"{spec}: expected severity folders 1 … 5 under {root / arguments[0]}, "
                                f"{_found(_folders(root / arguments[0]))}")
    identity = {"dataset": "imagenet-c", "corruption": arguments[0], "severity": arguments[1], "root": str(root.resolve())}
    wnids = list(imagenet_wnids())
    return _folder_dataset(spec, folder, wnids, "WordNet-id", list(imagenet_classnames()), identity, transform)


def _list_file(spec: str, path: Path, expected: str) -> list[str]:
    if not path.is_file():
        raise FileNotFoundError(f"{spec}: expected {expected} at {path}, found no such file")
    return [line for line in path.read_text().splitlines() if line.strip()]


def _domainnet(spec: str, arguments: list[str], root: Path, split: str, transform) -> ImageFileDataset:
    if arguments[0] not in DOMAINNET_DOMAINS:
        raise ValueError(f"{spec}: expected 'domainnet:<domain>:/root' with a domain of {', '.join(DOMAINNET_DOMAINS)}")
    domain = arguments[0]
    rows = [line.rsplit(maxsplit=1) for line in _list_file(spec, root / f"{domain}_{split}.txt", "DomainNet's list file")]
    classes = {int(label): path.split("/")[1] for path, label in rows}  # "clipart/aircraft_carrier/x.jpg 0"
    if sorted(classes) != list(range(345)):
        raise ValueError(f"{spec}: expected labels 0 … 344 in {root / f'{domain}_{split}.txt'}, found {len(classes)} distinct labels")
    files = [root / path for path, _ in rows]
    _check_files(spec, files)
    identity = {"dataset": "domainnet", "domain": domain, "split": split, "root": str(root.resolve()), "n": len(files)}
    names = [classes[k].replace("_", " ") for k in range(345)]
    return ImageFileDataset(files, [int(label) for _, label in rows], names, identity, transform)


def _check_files(spec: str, files: list[Path]) -> None:
    missing = [f for f in files if not f.is_file()]
    if missing:
        raise FileNotFoundError(f"{spec}: {len(missing)} of the {len(files)} images that its split lists are missing, "
                                f"for example {missing[0]}")


def _coop(spec: str, arguments: list[str], root: Path, split: str, transform) -> ImageFileDataset:
    if arguments[0] not in COOP_DATASETS:
        raise ValueError(f"{spec}: expected 'coop:<name>:/root' with a name of {', '.join(COOP_DATASETS)}")
    name = arguments[0]
    folder_name, image_dir, split_file, _ = COOP_DATASETS[name]
    folder = root / folder_name
    if not folder.is_dir():
        raise FileNotFoundError(f"{spec}: expected CoOp's folder {folder} under {root}, {_found(_folders(root))}")
    images = folder / image_dir
    identity = {"dataset": f"coop:{name}", "split": split, "root": str(root.resolve())}
    if name == "imagenet":  # "<wnid> <class name>" lines, images/{train,val}/<wnid>/
        pairs = [line.split(maxsplit=1) for line in _list_file(spec, folder / split_file, "CoOp's classnames.txt")]
        split_folder = images / ("val" if split == "test" else "train")
        return _folder_dataset(spec, split_folder, [w for w, _ in pairs], "WordNet-id", [n.strip() for _, n in pairs], identity,
                               transform)
    if name == "fgvc_aircraft":  # "<image id> <variant>" lines; variants.txt gives the class order
        classes = [c.strip() for c in _list_file(spec, folder / "variants.txt", "FGVC-Aircraft's variants.txt")]
        rows = [line.split(maxsplit=1) for line in _list_file(spec, folder / split_file.format(split=split), "its split list")]
        label_of = {c: k for k, c in enumerate(classes)}
        items = [(f"{image}.jpg", label_of[variant.strip()], variant.strip()) for image, variant in rows]
    else:
        split_path = folder / split_file
        if not split_path.is_file():
            raise FileNotFoundError(f"{spec}: expected CoOp's split file {split_path}, found no such file "
                                    f"(it comes with CoOp's data preparation, DATASETS.md)")
        items = json.loads(split_path.read_text())[split]  # [[path, label, classname], ...]
    names = {}
    for _, label, classname in items:
        names.setdefault(int(label), classname)
    files = [images / path for path, _, _ in items]
    _check_files(spec, files)
    n_classes = max(names) + 1
    return ImageFileDataset(files, [int(label) for _, label, _ in items], [names.get(k, str(k)) for k in range(n_classes)],
                            {**identity, "n": len(files)}, transform)


_ARGUMENTS = {"imagenet-c": 2, "domainnet": 1, "coop": 1}
_FORMS = {"imagenet-c": "imagenet-c:<corruption>:<severity>:/root", "domainnet": "domainnet:<domain>:/root",
          "coop": "coop:<name>:/root"}


def _parse(spec: str, n_arguments: int) -> tuple[list[str], Path]:
    """``kind:arg1:…:/root`` -> ([arg1, …], root); the root is what follows the spec's arguments."""
    kind, _, rest = spec.partition(":")
    parts = rest.split(":", n_arguments)
    if len(parts) != n_arguments + 1 or not parts[-1] or not all(parts[:-1]):
        raise ValueError(f"{kind}: expected a spec of the form '{_FORMS.get(kind, kind + ':/root')}', but got {spec!r}")
    root = Path(parts[-1]).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(f"{kind}: the folder {root} does not exist (spec {spec!r})")
    return parts[:-1], root


def load_published(spec: str, split: str = "test", transform: Callable | None = None) -> ImageFileDataset:
    """One of the papers' data sets from its spec string (see the module docstring).

    Args:
        spec: such as ``"imagenet-a:/data/imagenet-a"`` or ``"coop:eurosat:/data"``.
        split: ``"train"`` or ``"test"`` (the published test or validation set).
        transform: applied to each RGB PIL image (default: a float tensor in [0, 1]).
    """
    kind = spec.partition(":")[0]
    if kind not in PUBLISHED_SPECS:
        raise ValueError(f"{spec}: unknown spec {kind!r}; the papers' data sets are {', '.join(PUBLISHED_SPECS)}")
    arguments, root = _parse(spec, _ARGUMENTS.get(kind, 0))
    name = ":".join([kind, *arguments])  # how errors name the data set
    loader = {"imagenet-c": _imagenet_c, "domainnet": _domainnet, "coop": _coop}.get(kind)
    if loader is None:
        return _imagenet_family(kind, name, root, split, transform)
    return loader(name, arguments, root, split, transform)


def shift_specs(spec: str) -> dict[str, str]:
    """The shifted conditions of a data set, by name: every corruption/severity pair under an
    ``imagenet-c:/root``, or DomainNet's domains other than that of ``domainnet:<domain>:/root``."""
    kind = spec.partition(":")[0]
    if kind == "imagenet-c":
        _, root = _parse(spec, 0)
        return {f"{c}-{s}": f"imagenet-c:{c}:{s}:{root}" for c in _folders(root) for s in _folders(root / c)}
    if kind == "domainnet":
        (clean,), root = _parse(spec, 1)
        return {d: f"domainnet:{d}:{root}" for d in DOMAINNET_DOMAINS if d != clean}
    raise ValueError(f"{spec}: shifted conditions come from 'imagenet-c:/root' or 'domainnet:<domain>:/root'")
