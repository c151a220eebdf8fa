"""Another data set as a shifted condition (ImageNet's natural shifts, ImageNet-C, DomainNet's domains): its own
images, evaluated against the clean calibration's temperature, and checked against torchmetrics."""

import pytest
import torch
from PIL import Image
from torchmetrics.functional.classification import multiclass_calibration_error

from vlmcal.calibration import TemperatureScaling
from vlmcal.papers import es
from vlmcal.papers.common.settings import known_shifts, shift_conditions
from vlmcal.pipeline.runs import Run, condition_name, is_dataset_shift, split_calibration

MODEL = "openclip:vlmcal-tiny:random"


def _folder(root, n_per_class, seed):
    generator = torch.Generator().manual_seed(seed)
    for name in ("cat", "dog", "fish"):
        (root / name).mkdir(parents=True)
        for i in range(n_per_class):
            pixels = (torch.rand(12, 12, 3, generator=generator) * 255).to(torch.uint8).numpy()
            Image.fromarray(pixels).save(root / name / f"{i}.png")
    return root


def test_names_conditions_and_expansion(tmp_path):
    assert condition_name("imagenet-sketch:/data/sketch", 0) == "imagenet-sketch"
    assert condition_name("imagenet-c:fog:3:/data/c", 3) == "imagenet-c:fog:3"
    assert condition_name("imagefolder:/data/photos/", 0) == "imagefolder:photos"
    assert condition_name("contrast", 2) == "contrast-2" and not is_dataset_shift("contrast")
    for corruption in ("fog", "snow"):
        for severity in ("1", "3"):
            (tmp_path / "c" / corruption / severity).mkdir(parents=True)
    expanded = known_shifts(("contrast", f"imagenet-c:{tmp_path / 'c'}"))
    assert expanded[0] == "contrast" and sorted(expanded[1:]) == sorted(
        f"imagenet-c:{c}:{s}:{tmp_path / 'c'}" for c in ("fog", "snow") for s in ("1", "3"))
    assert shift_conditions(expanded, [3, 5]) == [("clean", 0), ("contrast", 3), ("contrast", 5),
                                                   (f"imagenet-c:fog:3:{tmp_path / 'c'}", 3), (f"imagenet-c:snow:3:{tmp_path / 'c'}", 3)]
    assert known_shifts((f"domainnet:{tmp_path}",), dataset=f"domainnet:real:{tmp_path}") == tuple(
        f"domainnet:{d}:{tmp_path}" for d in ("clipart", "infograph", "painting", "quickdraw", "sketch"))
    with pytest.raises(ValueError, match="DomainNet's domains shift a DomainNet domain"):
        known_shifts((f"domainnet:{tmp_path}",), dataset="fashion-mnist")
    with pytest.raises(FileNotFoundError, match="the folder /no/such/folder does not exist"):
        known_shifts(("imagenet-sketch:/no/such/folder",))
    with pytest.raises(ValueError, match=r"Unknown shifts \['fgo'\]"):
        known_shifts(("fgo",))


def test_an_unpaired_set_draws_as_many_of_its_own_rows():
    run = Run("m", "VLM", "imagenet-a:/x", 0, torch.randn(30, 4), torch.arange(30) % 4)
    rows = torch.tensor([1, 4, 5, 9])
    drawn = run.evaluation_rows(rows)
    assert not run.paired and len(drawn) == 4 and len(set(drawn.tolist())) == 4 and torch.equal(drawn, run.evaluation_rows(rows))
    assert not torch.equal(drawn, run.evaluation_rows(torch.tensor([0, 4, 5, 9])))
    assert torch.equal(Run("m", "VLM", "contrast", 3, torch.randn(30, 4), torch.arange(30) % 4).evaluation_rows(rows), rows)
    with pytest.raises(ValueError, match="imagenet-a holds 30 images, fewer than the 31 clean evaluation images"):
        run.evaluation_rows(torch.arange(31))


def test_es_table_on_a_data_set_shift_matches_torchmetrics(tmp_path):
    clean, shifted = _folder(tmp_path / "clean", 8, seed=0), _folder(tmp_path / "other", 6, seed=1)
    settings = es.StudySettings(backbones=[MODEL], supervised="", dataset=f"imagefolder:{clean}", seeds=[0], n_bins=5,
                                device="cpu", cache_dir=str(tmp_path / "cache"), shifts=[f"imagefolder:{shifted}"],
                                severities=[3], templates="hard")
    assert settings.conditions == [("clean", 0), (f"imagefolder:{shifted}", 0)]
    runs = es.collect_runs(settings, progress=False)
    assert [len(run.labels) for run in runs] == [24, 18] and runs[1].condition == "imagefolder:other"
    calibration_rows, evaluation_rows = split_calibration(runs[0].labels, seed=0)
    table = es.ts_across_shifts(runs, calibration_rows, evaluation_rows, n_bins=5)
    temperature = TemperatureScaling().fit(*runs[0].subset(calibration_rows)).temperature_
    own = runs[1].evaluation_rows(evaluation_rows)
    logits, labels = runs[1].logits[own], runs[1].labels[own]
    expected = multiclass_calibration_error((logits / temperature).softmax(-1), labels, 3, n_bins=5, norm="l1")
    row = table.iloc[1]
    assert row["condition"] == "imagefolder:other" and row["family"] == "natural" and row["coverage"] == "unknown"
    assert row["ece_after"] == pytest.approx(float(expected), abs=1e-5)
    before = multiclass_calibration_error(logits.softmax(-1), labels, 3, n_bins=5, norm="l1")
    assert row["ece_before"] == pytest.approx(float(before), abs=1e-5)
    assert row["accuracy"] == pytest.approx(float((logits.argmax(-1) == labels).double().mean()))


def test_label_sets_refuse_a_set_with_other_classes():
    clean = Run("m", "VLM", "clean", 0, torch.randn(8, 10), torch.arange(8))
    subset = Run("m", "VLM", "imagenet-a:/x", 0, torch.randn(8, 4), torch.arange(8) % 4)
    with pytest.raises(ValueError, match=r"which \['imagenet-a'\] do not have .*leave them out of `shifts`"):
        es.confidence_accuracy_points([clean, subset], {"m": 1.0}, torch.arange(4), {"all": list(range(10))})
