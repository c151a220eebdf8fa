"""Data loading, checksums, label splits and class subsets."""

from __future__ import annotations

import gzip
import math
import subprocess
import re
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from vlmcal.data import datasets, templates


@pytest.fixture(scope="module")
def test_split():
    return datasets.load_fashion_mnist("test")


def test_fashion_mnist_shapes_labels_and_class_names(test_split):
    assert len(test_split) == 10_000
    assert test_split.images.shape == (10_000, 1, 28, 28) and test_split.images.dtype == torch.uint8
    img, label = test_split[0]
    assert img.shape == (1, 28, 28) and img.dtype == torch.float32
    assert 0.0 <= float(img.min()) and float(img.max()) <= 1.0
    assert test_split.class_names == templates.FASHION_MNIST_CLASSNAMES
    # The published test split is balanced: 1,000 images per class.
    assert torch.bincount(test_split.labels).tolist() == [1000] * 10
    assert test_split.identity == {"dataset": "fashion-mnist", "split": "test", "n": 10_000}


def test_first_test_image_matches_raw_idx_file(test_split):
    """Independent parse of the raw file with numpy: the first image and label agree."""
    d = datasets.find_fashion_mnist(download=False)
    with gzip.open(d / "t10k-images-idx3-ubyte.gz", "rb") as fh:
        raw = fh.read()
    first = np.frombuffer(raw[16 : 16 + 784], dtype=np.uint8).reshape(28, 28)
    assert np.array_equal(test_split.images[0, 0].numpy(), first)
    with gzip.open(d / "t10k-labels-idx1-ubyte.gz", "rb") as fh:
        assert fh.read()[8] == int(test_split.labels[0])


def test_train_split_size():
    train = datasets.load_fashion_mnist("train")
    assert len(train) == 60_000 and torch.bincount(train.labels).tolist() == [6000] * 10


def test_transform_receives_pil(test_split):
    ds = datasets.load_fashion_mnist("test", transform=lambda pil: pil)
    img, _ = ds[3]
    assert isinstance(img, Image.Image) and img.size == (28, 28)
    assert np.array_equal(np.asarray(img), test_split.images[3, 0].numpy())


def test_missing_data_says_what_was_looked_for(tmp_path, monkeypatch):
    monkeypatch.setattr(datasets, "DEBIAN_FASHION_MNIST_DIR", tmp_path / "nowhere")
    monkeypatch.setenv(datasets.DATA_ENV, str(tmp_path / "also-nowhere"))
    monkeypatch.setenv("VLMCAL_CACHE_DIR", str(tmp_path / "cache"))
    with pytest.raises(FileNotFoundError) as err:
        datasets.find_fashion_mnist(download=False)
    msg = str(err.value)
    assert "apt-get install dataset-fashion-mnist" in msg and "also-nowhere" in msg and "nowhere" in msg


def test_corrupt_file_fails_its_checksum(tmp_path):
    good = datasets.find_fashion_mnist(download=False)
    for name, _ in datasets._FASHION_MNIST_FILES.values():
        (tmp_path / name).write_bytes((good / name).read_bytes())
    with gzip.open(tmp_path / "t10k-labels-idx1-ubyte.gz", "wb") as fh:
        fh.write(b"\x00\x00\x08\x01" + (10).to_bytes(4, "big") + bytes(10))
    with pytest.raises(ValueError, match="Checksum mismatch"):
        datasets.load_fashion_mnist("test", data_dir=tmp_path)


def test_data_dir_argument_is_used(tmp_path):
    good = datasets.find_fashion_mnist(download=False)
    for name, _ in datasets._FASHION_MNIST_FILES.values():
        (tmp_path / name).symlink_to(good / name)
    assert datasets.find_fashion_mnist(tmp_path, download=False) == tmp_path


@pytest.mark.parametrize("n", [2, 3, 5, 10, 11, 100])
def test_base_new_split(n):
    base, new = datasets.base_new_split([f"c{k}" for k in range(n)])
    assert base == list(range(math.ceil(n / 2))) and new == list(range(math.ceil(n / 2), n))


def test_base_new_split_rejects_one_class():
    with pytest.raises(ValueError, match="at least 2"):
        datasets.base_new_split(["only"])


def test_class_subset_relabels_in_given_order(test_split):
    sub = datasets.class_subset(test_split, [7, 2])
    assert sub.class_names == ["sneaker", "pullover"]
    assert len(sub) == 2000 and sorted(torch.bincount(sub.labels).tolist()) == [1000, 1000]
    for i in (0, 1, 1999):
        img, label = sub[i]
        orig_img, orig_label = test_split[int(sub.indices[i])]
        assert torch.equal(img, orig_img) and orig_label == [7, 2][label]
    assert torch.equal(sub.images_float(), test_split.images_float()[sub.indices])
    assert sub.identity["classes"] == [7, 2]


@pytest.mark.parametrize("bad", [[], [1, 1], [10], [-1]])
def test_class_subset_rejects_bad_classes(test_split, bad):
    with pytest.raises(ValueError, match="distinct labels"):
        datasets.class_subset(test_split, bad)


def test_imagefolder_spec(tmp_path):
    for cls in ("cat", "dog"):
        (tmp_path / "test" / cls).mkdir(parents=True)
        for k in range(2):
            Image.fromarray(np.full((8, 8, 3), 40 * k, dtype=np.uint8)).save(tmp_path / "test" / cls / f"{k}.png")
    ds = datasets.load_dataset(f"imagefolder:{tmp_path}", split="test")
    assert ds.class_names == ["cat", "dog"] and ds.labels.tolist() == [0, 0, 1, 1]
    img, label = ds[2]
    assert img.shape == (3, 8, 8) and label == 1


def test_spec_errors_are_clear(tmp_path):
    with pytest.raises(ValueError, match="Unknown data set 'nope'"):
        datasets.load_dataset(f"nope:{tmp_path}")
    with pytest.raises(ValueError, match="no path"):
        datasets.load_dataset("cifar10")
    with pytest.raises(FileNotFoundError, match="does not download"):
        datasets.load_dataset(f"cifar10:{tmp_path}")


def test_fashion_mnist_spec(test_split):
    assert datasets.load_dataset("fashion-mnist", "test").identity == test_split.identity


def test_templates():
    assert len(templates.CLIP_TEMPLATES) == 80 and len(set(templates.CLIP_TEMPLATES)) == 80
    assert templates.HARD_PROMPT in templates.CLIP_TEMPLATES
    pool = templates.CAPTION_POOL
    assert len(pool) >= 20 and len(set(pool)) == len(pool)
    for t in pool + templates.FASHION_MNIST_TEMPLATES:
        assert t.count("{}") == 1 and t.format("coat").count("coat") == 1
    assert len(templates.FASHION_MNIST_CLASSNAMES) == len(templates.FASHION_MNIST_ORIGINAL_CLASSNAMES) == 10


def _plain(template: str) -> str:
    """A template up to case, punctuation and spacing: "A photo of a {}." and "a photo of a {}" are one."""
    return " ".join(re.sub(r"[^a-z0-9{}' ]+", " ", template.lower()).split())


def test_pretraining_captions_are_not_evaluation_prompts():
    """Zero-shot means the evaluation prompts were not in pretraining: no caption form of the
    stand-ins' pool is an evaluation prompt, even up to case and punctuation."""
    evaluation = {_plain(t) for t in templates.EVALUATION_TEMPLATES}
    assert {_plain(templates.HARD_PROMPT), _plain(templates.CLIP_TEMPLATES[5]), _plain(templates.FASHION_MNIST_TEMPLATES[0])} <= evaluation
    shared = sorted(t for t in templates.CAPTION_POOL if _plain(t) in evaluation)
    assert not shared, f"pretraining captions that are also evaluation prompts: {shared}"
    assert _plain("A photo of a {}!") == _plain(templates.HARD_PROMPT)  # the comparison is not exact-string only


def test_clip_templates_read_without_importing_open_clip(monkeypatch):
    """The 80 templates read from open_clip's data file alone equal those of the imported package."""
    from open_clip.zero_shot_metadata import OPENAI_IMAGENET_TEMPLATES

    expected = [t("{}") for t in OPENAI_IMAGENET_TEMPLATES]
    for name in [m for m in sys.modules if m == "open_clip" or m.startswith("open_clip.")]:
        monkeypatch.delitem(sys.modules, name)
    standalone = [t("{}") for t in templates.open_clip_metadata().OPENAI_IMAGENET_TEMPLATES]
    assert "open_clip" not in sys.modules
    assert standalone == expected == templates.CLIP_TEMPLATES


def test_the_study_modules_import_no_heavy_packages():
    """A page of the study imports these; open_clip, torchvision, sentence-transformers, scipy and
    seaborn cost seconds per kernel and load only when a page needs them."""
    code = (
        "import sys, vlmcal.papers.es, vlmcal.pipeline.predictions, vlmcal.papers.ctpt, vlmcal.papers.dor, vlmcal.papers.common.figures, vlmcal.data.templates, vlmcal.papers.common.verdict, vlmcal.papers.common.paper_values; "
        "print([m for m in ('open_clip', 'torchvision', 'sentence_transformers', 'transformers', 'scipy', 'seaborn') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout
