"""The C-TPT tables page on other data sets: fine-grained sets beside the clean one (as Table 1) and data-set shifts
(as Table 2), each on its own images with its own class names, resampled apart, and the clean side's mean in the claims."""

import pytest
import torch
from PIL import Image

from vlmcal.papers import ctpt

TINY = "openclip:vlmcal-tiny:random"


def _folder(root, names, n_per_class, seed):
    generator = torch.Generator().manual_seed(seed)
    for name in names:
        (root / name).mkdir(parents=True)
        for i in range(n_per_class):
            Image.fromarray((torch.rand(12, 12, 3, generator=generator) * 255).to(torch.uint8).numpy()).save(root / name / f"{i}.png")
    return f"imagefolder:{root}"


@pytest.fixture
def sets(tmp_path):
    return (_folder(tmp_path / "photos", ("cat", "dog", "fish"), 5, 0), _folder(tmp_path / "pets", ("beagle", "pug"), 4, 1),
            _folder(tmp_path / "sketches", ("cat", "dog", "fish"), 3, 2))


def test_fine_grained_and_shifted_sets_each_run_as_their_own_data_set(sets, tmp_path):
    clean, pets, sketches = sets
    settings = ctpt.TPTPageSettings(backbone=TINY, dataset=clean, fine_grained=[pets], shifts=[sketches], severity=3,
                                    n_images=0, n_calibration=3, n_resamples=50, device="cpu", cache_dir=str(tmp_path / "cache"))
    assert settings.conditions == [("clean", 0), (pets, 0), (sketches, 0)]
    grid = ctpt.tpt_grid(settings, progress=False)
    assert grid.sets("clean") == ["clean", "imagefolder:pets"] and grid.sets("shifted") == ["imagefolder:sketches"]
    assert grid.lambdas == {"clean": 50.0, "imagefolder:pets": 50.0, "imagefolder:sketches": 20.0}
    tpt = grid.runs[("imagefolder:pets", "hard")]["TPT"]
    rows = torch.arange(8)  # every image of the set: 2 classes x 4
    assert torch.equal(tpt.rows, rows) and tpt.logits.shape == (8, 2) and len(grid.evaluation_rows) == 12
    alone = ctpt.predict_tpt(TINY, pets, settings=tpt.settings, rows=rows, progress=False, device="cpu",
                             cache_dir=tmp_path / "other-cache")  # the same set as a page's clean set
    assert torch.allclose(alone.logits, tpt.logits, atol=1e-5) and torch.equal(alone.labels, tpt.labels)
    table = ctpt.method_table(outcomes := grid.outcomes(), n_bins=settings.n_bins).set_index(["set", "method"])
    intervals = ctpt.claim_intervals(grid, outcomes, settings)
    rise = sum(table.loc[(s, "TPT"), "ece"] - table.loc[(s, "zero-shot"), "ece"] for s in ("clean", "imagefolder:pets")) / 2
    assert intervals["C7"]["ece_rise"].estimate == pytest.approx(rise, abs=1e-9)
    assert grid.image_sets == {"clean": "clean", "imagefolder:pets": "imagefolder:pets", "imagefolder:sketches": "imagefolder:sketches"}
    layout = ctpt.paper_layout(grid_table := ctpt.method_table(outcomes), {"clean": grid.sets("clean")})
    mean = grid_table[(grid_table["method"] == "TPT") & grid_table["set"].isin(grid.sets("clean"))][["accuracy", "ece"]].mean()
    assert layout.loc[("clean", "hard"), "TPT"] == f"{100 * mean['accuracy']:.1f} / {100 * mean['ece']:.2f}"


def test_fine_grained_sets_are_data_set_specs(sets):
    clean, pets, _ = sets
    with pytest.raises(ValueError, match="`fine_grained` to hold data-set specs"):
        ctpt.TPTPageSettings(backbone=TINY, dataset=clean, fine_grained=["contrast"], shifts=[], severity=3, n_images=4)
    with pytest.raises(FileNotFoundError, match="the folder /nowhere does not exist"):
        ctpt.TPTPageSettings(backbone=TINY, dataset=clean, fine_grained=[pets], shifts=["imagenet-a:/nowhere"], severity=3, n_images=4)
