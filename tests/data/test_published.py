"""The papers' data sets in their published layouts, on tiny trees that the tests write.

Each class folder gets one 4x4 PNG whose red and green values encode the folder's class index
(``k % 256, k // 256``), so a test can tell which folder an example was read from.
"""

import io
import json

import pytest
from PIL import Image

from vlmcal.data.datasets import load_dataset
from vlmcal.data.published import (
    COOP_DATASETS, dataset_template, imagenet_classnames, imagenet_subset, imagenet_wnids, shift_specs,
)


def _png(k: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (4, 4), (k % 256, k // 256, 7)).save(buffer, format="PNG")
    return buffer.getvalue()


def _tree(root, folders, code=None):
    """``root/<folder>/0.png`` for each folder, the image encoding ``code[i]`` (default: its position)."""
    for i, folder in enumerate(folders):
        (root / folder).mkdir(parents=True, exist_ok=True)
        (root / folder / "0.png").write_bytes(_png(i if code is None else code[i]))
    return root


def _encoded(dataset, i) -> int:
    image, _ = dataset[i]  # [3, 4, 4] in [0, 1]
    red, green = (image[:2, 0, 0] * 255).round().long().tolist()
    return red + 256 * green


def test_class_maps_known_answers():
    wnids, names = imagenet_wnids(), imagenet_classnames()
    assert len(wnids) == len(names) == 1000
    assert (wnids[1], names[1]) == ("n01443537", "goldfish")
    assert (wnids[10], names[10]) == ("n01530575", "brambling")
    a, r = imagenet_subset("imagenet-a"), imagenet_subset("imagenet-r")
    assert len(a) == len(r) == 200
    assert (a[0], wnids[a[0]], names[a[0]]) == (6, "n01498041", "stingray")  # ImageNet-A's first class
    assert (r[0], wnids[r[0]], names[r[0]]) == (1, "n01443537", "goldfish")  # ImageNet-R's first class


@pytest.mark.parametrize("kind", ["imagenet", "imagenet-sketch"])
def test_imagenet_wnid_folders(tmp_path, kind):
    root = _tree(tmp_path / "val" if kind == "imagenet" else tmp_path, imagenet_wnids())
    data = load_dataset(f"{kind}:{tmp_path}")
    assert len(data) == 1000 and data.class_names[1] == "goldfish"
    assert data.labels[1] == 1 and _encoded(data, 1) == 1 and _encoded(data, 999) == 999
    assert data.identity["dataset"] == kind and root.exists()


def test_imagenet_v2_folders_are_class_indices_not_strings(tmp_path):
    _tree(tmp_path, [str(k) for k in range(1000)])
    data = load_dataset(f"imagenet-v2:{tmp_path}")
    # sorted as strings, "10" would come right after "1"; here folder 10 is class 10
    assert data.labels[10] == 10 and _encoded(data, 10) == 10 and data.class_names[10] == "brambling"


@pytest.mark.parametrize("kind", ["imagenet-a", "imagenet-r"])
def test_imagenet_a_r_map_to_imagenet_by_wnid(tmp_path, kind):
    subset = imagenet_subset(kind)
    _tree(tmp_path, [imagenet_wnids()[k] for k in subset])
    data = load_dataset(f"{kind}:{tmp_path}")
    assert len(data.class_names) == 200 and list(data.imagenet_classes) == list(subset)
    first = imagenet_classnames()[subset[0]]
    assert data.class_names[0] == first and data.labels[0] == 0
    assert data.class_names == [imagenet_classnames()[k] for k in subset]


def test_imagenet_c_severity_folders_and_shift_specs(tmp_path):
    for corruption in ("fog", "gaussian_noise"):
        for severity in ("1", "5"):
            _tree(tmp_path / corruption / severity, imagenet_wnids())
    specs = shift_specs(f"imagenet-c:{tmp_path}")
    assert sorted(specs) == ["fog-1", "fog-5", "gaussian_noise-1", "gaussian_noise-5"]
    data = load_dataset(specs["fog-5"])
    assert len(data) == 1000 and data.identity["corruption"] == "fog" and data.identity["severity"] == "5"
    with pytest.raises(ValueError, match=r"imagenet-c:snow:1: expected .*corruptions: fog, gaussian_noise"):
        load_dataset(f"imagenet-c:snow:1:{tmp_path}")
    with pytest.raises(FileNotFoundError, match=r"expected severity folders 1 … 5 under .*fog, found 2 folders named 1, 5"):
        load_dataset(f"imagenet-c:fog:3:{tmp_path}")


def _domainnet(root, domain, n_per_class=1):
    lines = []
    for label in range(345):
        folder = root / domain / f"class_{label:03d}"
        folder.mkdir(parents=True)
        (folder / "a.png").write_bytes(_png(label))
        lines.append(f"{domain}/class_{label:03d}/a.png {label}")
    (root / f"{domain}_test.txt").write_text("\n".join(lines) + "\n")


def test_domainnet_domains_from_list_files(tmp_path):
    _domainnet(tmp_path, "real")
    data = load_dataset(f"domainnet:real:{tmp_path}")
    assert len(data) == 345 and data.class_names[12] == "class 012" and data.labels[12] == 12 and _encoded(data, 12) == 12
    assert set(shift_specs(f"domainnet:real:{tmp_path}")) == {"clipart", "infograph", "painting", "quickdraw", "sketch"}
    with pytest.raises(FileNotFoundError, match=r"domainnet:sketch: expected DomainNet's list file at .*sketch_test.txt"):
        load_dataset(f"domainnet:sketch:{tmp_path}")
    with pytest.raises(ValueError, match="expected 'domainnet:<domain>:/root' with a domain of clipart"):
        load_dataset(f"domainnet:photos:{tmp_path}")


def test_coop_split_json_and_class_names(tmp_path):
    folder = tmp_path / "eurosat"
    items = {"train": [], "val": [], "test": []}
    for label, name in enumerate(["Annual Crop Land", "Forest"]):
        (folder / "2750" / name.replace(" ", "")).mkdir(parents=True)
        (folder / "2750" / name.replace(" ", "") / "1.png").write_bytes(_png(label))
        items["test"].append([f"{name.replace(' ', '')}/1.png", label, name])
    (folder / "split_zhou_EuroSAT.json").write_text(json.dumps(items))
    data = load_dataset(f"coop:eurosat:{tmp_path}")
    assert data.class_names == ["Annual Crop Land", "Forest"] and data.labels.tolist() == [0, 1] and _encoded(data, 1) == 1
    assert dataset_template(f"coop:eurosat:{tmp_path}") == "a centered satellite photo of {}."
    assert dataset_template(f"coop:oxford_pets:{tmp_path}") == "a photo of a {}, a type of pet."
    (folder / "split_zhou_EuroSAT.json").unlink()
    with pytest.raises(FileNotFoundError, match=r"coop:eurosat: expected CoOp's split file .*split_zhou_EuroSAT.json"):
        load_dataset(f"coop:eurosat:{tmp_path}")
    with pytest.raises(FileNotFoundError, match=r"coop:dtd: expected CoOp's folder .*dtd under .*found 1 folder named eurosat"):
        load_dataset(f"coop:dtd:{tmp_path}")


def test_coop_aircraft_and_imagenet(tmp_path):
    aircraft = tmp_path / "fgvc_aircraft"
    (aircraft / "images").mkdir(parents=True)
    (aircraft / "variants.txt").write_text("707-320\nA300B4\n")
    for i, variant in enumerate(["A300B4", "707-320"]):
        (aircraft / "images" / f"{i:07d}.jpg").write_bytes(_png(i))
    (aircraft / "images_variant_test.txt").write_text("0000000 A300B4\n0000001 707-320\n")
    data = load_dataset(f"coop:fgvc_aircraft:{tmp_path}")
    assert data.class_names == ["707-320", "A300B4"] and data.labels.tolist() == [1, 0]
    imagenet = tmp_path / "imagenet"
    wnids = ["n01443537", "n01440764"]
    (imagenet).mkdir()
    (imagenet / "classnames.txt").write_text("n01443537 goldfish\nn01440764 tench\n")
    _tree(imagenet / "images" / "val", wnids)
    data = load_dataset(f"coop:imagenet:{tmp_path}")
    assert data.class_names == ["goldfish", "tench"] and _encoded(data, 1) == 1 and data.labels.tolist() == [0, 1]
    assert set(COOP_DATASETS) >= {"caltech101", "dtd", "eurosat", "food101", "ucf101", "sun397", "stanford_cars"}


@pytest.mark.parametrize("kind, expected", [
    ("imagenet-a", r"imagenet-a: expected 200 ImageNet-A WordNet-id folders under .*, found 3 folders named 0, 1, 2"),
    ("imagenet-r", r"imagenet-r: expected 200 ImageNet-R WordNet-id folders under .*, found 3 folders named 0, 1, 2"),
    ("imagenet", r"imagenet: expected 1000 WordNet-id folders under .*, found 3 folders named 0, 1, 2"),
    ("imagenet-sketch", r"imagenet-sketch: expected 1000 WordNet-id folders under .*, found 3 folders named 0, 1, 2"),
])
def test_wrong_layout_names_spec_folder_expected_and_found(tmp_path, kind, expected):
    _tree(tmp_path, ["0", "1", "2"])
    with pytest.raises(FileNotFoundError, match=expected):
        load_dataset(f"{kind}:{tmp_path}")


def test_wrong_layouts_v2_and_empty_and_missing(tmp_path):
    _tree(tmp_path / "v2", imagenet_wnids())
    with pytest.raises(FileNotFoundError, match=r"imagenet-v2: expected 1000 class-index \(0 … 999\) folders .*found 1000 folders named n01440764"):
        load_dataset(f"imagenet-v2:{tmp_path / 'v2'}")
    for wnid in imagenet_wnids():
        (tmp_path / "empty" / wnid).mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match="imagenet-sketch: found the class folders under .* but no image in them"):
        load_dataset(f"imagenet-sketch:{tmp_path / 'empty'}")
    with pytest.raises(FileNotFoundError, match="imagenet-a: the folder .*nowhere does not exist"):
        load_dataset(f"imagenet-a:{tmp_path / 'nowhere'}")
    with pytest.raises(ValueError, match="coop: expected a spec of the form 'coop:<name>:/root', but got 'coop:/"):
        load_dataset(f"coop:{tmp_path}")
    with pytest.raises(ValueError, match="imagenet-a: this data set has only a test split"):
        load_dataset(f"imagenet-a:{tmp_path}", split="train")
