"""Labelled image data: Fashion-MNIST (the book's data set), the reader's own data, label splits.

Data sets carry ``class_names``, ``labels`` ([N] int64) and ``identity`` (a JSON-able dict for cache keys).
Fashion-MNIST (Xiao, Rasul & Vollgraf, 2017) is read from ``data_dir`` only, if given; else from
``$VLMCAL_DATA_DIR`` (or its ``fashion-mnist/``), Debian's ``/usr/share/datasets/fashion-mnist``, the cache, or
a download, each file checked by the SHA-256 of its decompressed payload. The papers' own data sets
(``imagenet:/root``, ``coop:<name>:/root`` ...) are read by :mod:`vlmcal.data.published`.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import math
import os
import urllib.request
from pathlib import Path
from typing import Any, Callable, Literal, Sequence

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from vlmcal.data.base import LabelledDataset
from vlmcal.data.published import PUBLISHED_SPECS, load_published
from vlmcal.data.templates import FASHION_MNIST_CLASSNAMES
from vlmcal.pipeline.atomic import atomic_path
from vlmcal.pipeline.cache import cache_dir

__all__ = ["DATA_ENV", "DEBIAN_FASHION_MNIST_DIR", "LabelledDataset", "TensorImageDataset", "TorchvisionDataset",
           "ClassSubset", "load_fashion_mnist", "load_dataset", "base_new_split", "class_subset"]

DATA_ENV = "VLMCAL_DATA_DIR"
DEBIAN_FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
FASHION_MNIST_URL = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"

Split = Literal["train", "test"]

# file name -> SHA-256 of its decompressed IDX payload (measured on Debian's copy).
_FASHION_MNIST_FILES = {
    ("train", "images"): ("train-images-idx3-ubyte.gz", "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888"),
    ("train", "labels"): ("train-labels-idx1-ubyte.gz", "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9"),
    ("test", "images"): ("t10k-images-idx3-ubyte.gz", "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b"),
    ("test", "labels"): ("t10k-labels-idx1-ubyte.gz", "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34"),
}  # fmt: skip


class TensorImageDataset(LabelledDataset):
    """Images held in memory as one uint8 tensor.

    Args:
        images, labels: [N, C, H, W] uint8 and [N] integer labels in [0, len(class_names)).
        identity: what names this data (for cache keys).
        transform: if given, items are ``transform(PIL image)``; else [C, H, W] floats in [0, 1].
    """
    def __init__(self, images: torch.Tensor, labels: torch.Tensor, class_names: Sequence[str], identity: dict[str, Any],
                 transform: Callable | None = None):
        if images.ndim != 4 or images.dtype != torch.uint8:
            raise ValueError(f"Expected `images` as a [N, C, H, W] uint8 tensor, but got {images.dtype} {tuple(images.shape)}")
        if len(images) != len(labels):
            raise ValueError(f"Expected as many labels as images, but got {len(labels)} labels for {len(images)} images")
        self.images = images
        self.labels = torch.as_tensor(labels, dtype=torch.long)
        self.class_names = list(class_names)
        self.identity = dict(identity)
        self.transform = transform

    def images_float(self) -> torch.Tensor:
        """All images at once: [N, C, H, W] float32 in [0, 1]."""
        return self.images.float() / 255.0

    def __getitem__(self, i: int):
        if self.transform is None:
            return self.images[i].float() / 255.0, int(self.labels[i])
        img = self.images[i]  # [C, H, W]
        pil = Image.fromarray(img[0].numpy(), mode="L") if img.shape[0] == 1 else Image.fromarray(img.permute(1, 2, 0).numpy())
        return self.transform(pil), int(self.labels[i])


class TorchvisionDataset(LabelledDataset):
    """A torchvision data set (or ImageFolder) returning ``(PIL image, label)``, seen through vlmcal's interface.

    Args:
        transform: applied to each PIL image; default: ``torchvision.transforms.functional.to_tensor``.
    """
    def __init__(self, dataset: Dataset, class_names: Sequence[str], identity: dict[str, Any], transform: Callable | None = None):
        from torchvision.transforms.functional import to_tensor
        self.dataset = dataset
        self.class_names = list(class_names)
        self.identity = dict(identity)
        self.transform = transform or to_tensor
        targets = getattr(dataset, "targets", None)
        targets = getattr(dataset, "labels", None) if targets is None else targets
        if targets is None:
            targets = [dataset[i][1] for i in range(len(dataset))]
        self.labels = torch.as_tensor(np.asarray(targets), dtype=torch.long)

    def __getitem__(self, i: int):
        img, label = self.dataset[i]
        return self.transform(img.convert("RGB") if img.mode not in ("RGB", "L") else img), int(label)

    def images_float(self) -> torch.Tensor:
        """All images at once, [N, C, H, W] float in [0, 1], decoded once (for images of one size; shifts need it)."""
        if getattr(self, "_images", None) is None:
            from torchvision.transforms.functional import to_tensor
            first = self.dataset[0][0]
            mode = "RGB" if first.mode not in ("RGB", "L") else first.mode
            images = [to_tensor(self.dataset[i][0].convert(mode)) for i in range(len(self.dataset))]
            shapes = {tuple(x.shape) for x in images}
            if len(shapes) != 1:
                raise ValueError(f"{self.identity.get('dataset')}: distribution shifts need images of one size, "
                                 f"but found {len(shapes)} sizes (e.g. {sorted(shapes)[:3]}); resize the images first")
            self._images = torch.stack(images)  # [N, C, H, W]
        return self._images


class ClassSubset(LabelledDataset):
    """The examples of some classes of a data set, relabelled ``0..K-1`` in the order given.

    Args:
        classes: K distinct labels of ``dataset`` to keep; new label ``k`` is old label ``classes[k]``.
    """
    def __init__(self, dataset: LabelledDataset, classes: Sequence[int]):
        classes = [int(c) for c in classes]
        n = len(dataset.class_names)
        if not classes or len(set(classes)) != len(classes) or not all(0 <= c < n for c in classes):
            raise ValueError(f"Expected `classes` to be distinct labels in [0, {n}), but got {classes}")
        self.dataset = dataset
        self.classes = classes
        old_to_new = torch.full((n,), -1, dtype=torch.long)
        old_to_new[torch.tensor(classes)] = torch.arange(len(classes))
        new = old_to_new[dataset.labels]  # [N_all]
        self.indices = torch.nonzero(new >= 0).squeeze(1)  # [N]
        self.labels = new[self.indices]
        self.class_names = [dataset.class_names[c] for c in classes]
        self.identity = {**dataset.identity, "classes": classes}

    def images_float(self) -> torch.Tensor:
        """[N, C, H, W] float in [0, 1], when the underlying data set holds its images in memory."""
        if not hasattr(self.dataset, "images_float"):
            raise TypeError(f"{type(self.dataset).__name__} does not hold its images in memory; iterate over it instead")
        return self.dataset.images_float()[self.indices]

    def __getitem__(self, i: int):
        img, _ = self.dataset[int(self.indices[i])]
        return img, int(self.labels[i])


# ----------------------------------------------------------------------------- Fashion-MNIST
def _read_idx(path: Path, expected_sha256: str) -> np.ndarray:
    """Decompress one IDX file, check its payload's SHA-256, parse it into an array."""
    with gzip.open(path, "rb") as fh:
        raw = fh.read()
    digest = hashlib.sha256(raw).hexdigest()
    if digest != expected_sha256:
        raise ValueError(f"Checksum mismatch for {path}: the decompressed file has SHA-256 {digest}, expected "
                         f"{expected_sha256}. The file is corrupt or not Fashion-MNIST; delete it and load again.")
    ndim = raw[3]
    dims = np.frombuffer(raw, dtype=">i4", count=ndim, offset=4)
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(*dims)


def _candidate_dirs() -> list[Path]:
    """Where Fashion-MNIST is looked for when no ``data_dir`` is given (the last: the download target)."""
    dirs: list[Path] = []
    if os.environ.get(DATA_ENV):
        root = Path(os.environ[DATA_ENV]).expanduser()
        dirs += [root, root / "fashion-mnist"]
    dirs += [DEBIAN_FASHION_MNIST_DIR, cache_dir() / "data" / "fashion-mnist"]
    return dirs


_HOW_TO_GET_FASHION_MNIST = (
    "Install it with `apt-get install dataset-fashion-mnist` (Debian/Ubuntu; files in "
    f"{DEBIAN_FASHION_MNIST_DIR}), or put the four files from https://github.com/zalandoresearch/fashion-mnist "
    f"in a folder and pass that folder as `data_dir` or set ${DATA_ENV} to it."
)


def _check_data_dir(data_dir: str | os.PathLike) -> Path:
    """The folder ``data_dir`` names, if it holds the four files; else a FileNotFoundError naming what is missing."""
    try:
        d = Path(data_dir).expanduser()
    except TypeError as err:
        raise TypeError(f"Expected argument `data_dir` to be a folder path (str or os.PathLike) or None, but got {data_dir!r}") from err
    names = [name for name, _ in _FASHION_MNIST_FILES.values()]
    if not d.is_dir():
        problem = "is not a folder"
    elif missing := [name for name in names if not (d / name).is_file()]:
        problem = (f"lacks {', '.join(missing)} (vlmcal reads an explicit `data_dir` only, "
                   "and does not download into it)")
    else:
        return d
    raise FileNotFoundError(f"Expected argument `data_dir` to be a folder holding the Fashion-MNIST files "
                            f"{', '.join(names)}, but {str(d)!r} {problem}. {_HOW_TO_GET_FASHION_MNIST} "
                            "Or pass data_dir=None to use those locations.")


def _download_fashion_mnist(target: Path, timeout: float = 30.0) -> Path:
    target.mkdir(parents=True, exist_ok=True)
    for name, sha in _FASHION_MNIST_FILES.values():
        if (target / name).is_file():
            continue
        with atomic_path(target / name) as tmp:
            with urllib.request.urlopen(FASHION_MNIST_URL + name, timeout=timeout) as resp:
                tmp.write_bytes(resp.read())
            _read_idx(tmp, sha)  # raises on a bad download, before the file gets its final name
    return target


def find_fashion_mnist(data_dir: str | os.PathLike | None = None, download: bool = True) -> Path:
    """The directory holding the four Fashion-MNIST files, downloading them if allowed and needed.

    Args:
        data_dir: the only folder to read (nothing is downloaded); None: the places in the module docstring.
        download: without ``data_dir``, whether to download the files when they are nowhere here.
    Raises:
        FileNotFoundError: the files are not in ``data_dir``, or nowhere and not downloaded.
    """
    if data_dir is not None:
        return _check_data_dir(data_dir)
    dirs = _candidate_dirs()
    if found := next((d for d in dirs if all((d / name).is_file() for name, _ in _FASHION_MNIST_FILES.values())), None):
        return found
    error: Exception | None = None
    if download:
        try:
            return _download_fashion_mnist(dirs[-1])
        except Exception as exc:  # offline, mirror down, bad checksum: report below
            error = exc
    looked = "\n  ".join(str(d) for d in dirs)
    raise FileNotFoundError(
        f"Fashion-MNIST was not found. Looked for the four *-ubyte.gz files in:\n  {looked}\n"
        + (f"and downloading from {FASHION_MNIST_URL} failed: {error!r}\n" if error else "and download=False.\n")
        + _HOW_TO_GET_FASHION_MNIST)


@functools.lru_cache(maxsize=4)
def _fashion_mnist_arrays(directory: str, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    images, labels = [_read_idx(Path(directory) / name, sha)  # [N, 28, 28], [N]
                      for name, sha in (_FASHION_MNIST_FILES[(split, part)] for part in ("images", "labels"))]
    return torch.from_numpy(images.copy()).unsqueeze(1), torch.from_numpy(labels.astype(np.int64))


def _check_split(split) -> str:
    if split not in ("train", "test"):
        raise ValueError(f"Expected argument `split` to be 'train' or 'test', but got {split!r}")
    return split


def load_fashion_mnist(split: Split = "test", data_dir: str | os.PathLike | None = None,
                       transform: Callable | None = None, download: bool = True) -> TensorImageDataset:
    """Fashion-MNIST, one split: 60,000 (train) or 10,000 (test) 28x28 grayscale images, 10 classes.

    Args:
        data_dir, download: as for :func:`find_fashion_mnist`.
        transform: applied to each PIL image; default: [1, 28, 28] float in [0, 1].
    Returns:
        A ``TensorImageDataset``: ``images`` [N, 1, 28, 28] uint8, ``labels`` [N], prompt-style ``class_names``.
    Example:
        >>> test = load_fashion_mnist("test")
        >>> img, label = test[0]; tuple(img.shape), test.class_names[label]
        ((1, 28, 28), 'ankle boot')
    """
    _check_split(split)
    images, labels = _fashion_mnist_arrays(str(find_fashion_mnist(data_dir, download=download)), split)
    identity = {"dataset": "fashion-mnist", "split": split, "n": len(labels)}
    return TensorImageDataset(images, labels, FASHION_MNIST_CLASSNAMES, identity, transform)


# ----------------------------------------------------------------------------- other data
# name -> (torchvision class name, how its constructor names the split)
_TORCHVISION = {
    "cifar10": ("CIFAR10", "train"), "cifar100": ("CIFAR100", "train"), "mnist": ("MNIST", "train"),
    "kmnist": ("KMNIST", "train"), "fashion-mnist-torchvision": ("FashionMNIST", "train"),
    "svhn": ("SVHN", "split"), "stl10": ("STL10", "split"),
}


def load_dataset(spec: str, split: Split = "test", transform: Callable | None = None) -> LabelledDataset:
    """A data set from a spec string.

    Args:
        spec: ``"fashion-mnist[:/dir]"``, ``"<name>:/root"`` for a torchvision set already downloaded under /root
            (cifar10, cifar100, mnist, kmnist, svhn, stl10), or ``"imagefolder:/dir"`` (``/dir[/<split>]/<class>/*``).
        transform: applied to each PIL image (default: a float tensor in [0, 1]).
    """
    known = ["fashion-mnist", "imagefolder", *_TORCHVISION, *PUBLISHED_SPECS]
    if not isinstance(spec, str):
        raise ValueError(f"Expected argument `spec` to be a string such as 'fashion-mnist' or 'cifar10:/path', but got {spec!r}")
    _check_split(split)
    kind, _, path = spec.partition(":")
    kind = kind.strip().lower()
    if kind not in known:
        raise ValueError(f"Unknown data set {kind!r} in argument `spec` ({spec!r}); known: {', '.join(known)} "
                         "('fashion-mnist' alone; the others as '<name>:/path/to/data')")
    if kind in PUBLISHED_SPECS:
        return load_published(spec, split, transform)
    if kind == "fashion-mnist":
        return load_fashion_mnist(split, data_dir=path or None, transform=transform)
    if not path:
        raise ValueError(f"Expected a spec like '{kind}:/path/to/data', but got {spec!r} (no path)")
    root = Path(path).expanduser()
    if not root.exists():
        raise FileNotFoundError(f"{spec!r}: the folder {root} does not exist")
    if kind == "imagefolder":
        from torchvision.datasets import ImageFolder
        folder = root / split if (root / split).is_dir() else root
        try:
            ds = ImageFolder(str(folder))
        except FileNotFoundError as exc:  # no class folders, or no image files in them
            raise FileNotFoundError(f"{spec!r}: expected the layout {folder}/<class>/<image> (one folder per class, "
                                    f"images with extensions such as .png or .jpg), but torchvision says: {exc}"
                                    ) from exc
        return TorchvisionDataset(ds, ds.classes, {"dataset": "imagefolder", "path": str(folder.resolve()), "n": len(ds)}, transform)
    import torchvision.datasets as tvd  # every other known kind is a torchvision data set
    cls_name, split_arg = _TORCHVISION[kind]
    kwargs = {"train": split == "train"} if split_arg == "train" else {"split": split}
    try:
        ds = getattr(tvd, cls_name)(str(root), download=False, **kwargs)
    except RuntimeError as exc:
        raise FileNotFoundError(
            f"{spec!r}: torchvision's {cls_name} found no data under {root} ({exc}). vlmcal does not download it: "
            f"run torchvision.datasets.{cls_name}({str(root)!r}, download=True) once.") from exc
    names = list(getattr(ds, "classes", [str(k) for k in range(int(max(ds.labels)) + 1)]))
    return TorchvisionDataset(ds, names, {"dataset": kind, "split": split, "root": str(root.resolve()), "n": len(ds)}, transform)


# ----------------------------------------------------------------------------- label splits
def base_new_split(class_names: Sequence[str]) -> tuple[list[int], list[int]]:
    """The base-to-new protocol's halves (CoOp/CoCoOp) of the labels of ``class_names``: ``(base_labels,
    new_labels)``, base = the first ceil(n/2) labels, new = the rest.

    Example:
        >>> base_new_split(["a", "b", "c", "d", "e"])
        ([0, 1, 2], [3, 4])
    """
    n = len(class_names)
    if n < 2:
        raise ValueError(f"Expected at least 2 classes to split, but got {n}")
    n_base = math.ceil(n / 2)
    return list(range(n_base)), list(range(n_base, n))


def class_subset(dataset: LabelledDataset, classes: Sequence[int]) -> ClassSubset:
    """The examples of ``classes`` only, relabelled ``0..K-1`` in the order given (see ``ClassSubset``)."""
    return ClassSubset(dataset, classes)
