"""The prompt-learning page on several data sets (as the DOR paper averages CoOp's 11): each data set's runs are those
of a page run on it alone, and every figure is the mean over data sets, each set's images resampled apart."""

from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from vlmcal.metrics.paired import outcome_figures
from vlmcal.papers import dor
from vlmcal.papers.dor import base_to_new as b2n

TINY = "openclip:vlmcal-tiny:random"


def _folder(root, names, seed):
    generator = torch.Generator().manual_seed(seed)
    for split, n in (("train", 3), ("test", 4)):
        for name in names:
            (root / split / name).mkdir(parents=True)
            for i in range(n):
                pixels = (torch.rand(12, 12, 3, generator=generator) * 255).to(torch.uint8).numpy()
                Image.fromarray(pixels).save(root / split / name / f"{i}.png")
    return f"imagefolder:{root}"


@pytest.fixture
def fake_pool(monkeypatch):
    """DOR's outlier pool from eight nouns, not WordNet's, so that the test scores no dictionary."""
    def pool(net, base_names, settings, **_):
        names = ["hat", "scarf", "glove", "jacket", "sock", "belt", "vest", "skirt"]
        with torch.no_grad():
            feats = F.normalize(net.encode_text([f"a photo of a {w}." for w in names]).float(), dim=-1)
        return SimpleNamespace(names=names, text_features=feats, scores=torch.zeros(len(names)),
                               sample=lambda n, generator: torch.randperm(len(names), generator=generator)[:n])
    monkeypatch.setattr(b2n, "outlier_pool", pool)


def test_page_runs_average_over_data_sets(tmp_path, fake_pool):
    first = _folder(tmp_path / "animals", ("cat", "dog", "fish", "bird"), 0)
    second = _folder(tmp_path / "tools", ("saw", "drill", "hammer", "wrench", "file", "plane"), 1)
    common = dict(backbone=TINY, shots=2, epochs=1, batch_size=4, seeds=[1], device="cpu", cache_dir=str(tmp_path / "cache"))
    runs = b2n.page_runs(dor.DORPageSettings(dataset=first, datasets=[second], **common), progress=False)
    assert [(r.method, r.dataset) for r in runs.runs][:2] == [("zero-shot", first), ("zero-shot", second)]
    assert len(runs.runs) == 2 * 5 and runs.run("CoOp").dataset == first and runs.data[1].dataset == first
    alone = b2n.page_runs(dor.DORPageSettings(dataset=second, **{**common, "cache_dir": str(tmp_path / "cold")}), progress=False)
    for run in alone.runs:  # the second data set's runs are those of a page run on it alone
        twin = next(r for r in runs.runs if (r.method, r.dataset) == (run.method, second))
        assert torch.allclose(twin.logits["new"], run.logits["new"], atol=1e-5) and twin.logits["base"].shape[1] == 3
    figures = b2n.contrast_figures(runs.runs, {"gap": b2n.Contrast("new", "gap", "CoOp", "zero-shot")}, n_bins=5, n_resamples=50)
    row = figures.iloc[0]

    def gap(method, dataset):
        run = next(r for r in runs.runs if (r.method, r.dataset) == (method, dataset))
        return outcome_figures(*b2n.split_outcomes(run, "new"), 5)["gap"]
    per_set = [gap("CoOp", d) - gap("zero-shot", d) for d in (first, second)]
    assert row["per_seed"] == pytest.approx(per_set) and row["seeds"] == 2
    assert row["estimate"] == pytest.approx(sum(per_set) / 2) and row["lower"] <= row["estimate"] <= row["upper"]
