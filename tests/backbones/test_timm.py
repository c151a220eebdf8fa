"""timm ImageNet classifiers as supervised baselines (``timm:<model>``), with random weights: weights from a checkpoint
file or the hub cache give the same logits as the model they were saved from, and a missing file fails at once."""

import huggingface_hub.constants
import pytest
import torch
from PIL import Image
from safetensors.torch import save_file

from vlmcal.backbones import load_model
from vlmcal.backbones.openclip import WeightsNotFoundError
from vlmcal.data.published import imagenet_subset, imagenet_wnids
from vlmcal.pipeline.predictions import is_supervised, predict

MODEL = "test_resnet.r160_in1k"  # timm's own test model: 0.5 M weights, 160 px


def _pixels(n=2, seed=0):
    return torch.rand(n, 3, 160, 160, generator=torch.Generator().manual_seed(seed))


def test_random_weights_are_seeded_and_the_model_is_an_imagenet_classifier():
    net = load_model(f"timm:{MODEL}:random", device="cpu")
    again = load_model(f"timm:{MODEL}:random", device="cpu")
    x = _pixels()
    assert torch.equal(net.logits(x), again.logits(x)) and net.logits(x).shape == (2, 1000)
    assert len(net.class_names) == 1000 and net.class_names[1].startswith("goldfish") and net.covered_shifts == ()
    assert net.preprocess(Image.new("RGB", (300, 200))).shape == (3, 160, 160)
    assert is_supervised(f"timm:{MODEL}") and not is_supervised("openclip:ViT-B-16:openai")


def test_checkpoint_file_and_hub_cache_load_the_saved_weights(tmp_path, monkeypatch):
    net = load_model(f"timm:{MODEL}:random", device="cpu")
    state = {k: v.contiguous() for k, v in net.model.state_dict().items()}
    torch.save(state, tmp_path / "weights.pth")
    x = _pixels(seed=1)
    assert torch.allclose(load_model(f"timm:{MODEL}:{tmp_path / 'weights.pth'}", device="cpu").logits(x), net.logits(x))
    # The hub cache's layout: models--<org>--<name>/snapshots/<revision>/model.safetensors, refs/main -> revision.
    repo = tmp_path / "hub" / "models--timm--test_resnet.r160_in1k"
    (repo / "snapshots" / "abc").mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("abc")
    save_file(state, repo / "snapshots" / "abc" / "model.safetensors")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    cached = load_model(f"timm:{MODEL}", device="cpu")
    assert torch.allclose(cached.logits(x), net.logits(x)) and cached.cache_identity["file_size"] > 0


def test_missing_weights_and_unknown_models_fail_at_once(tmp_path, monkeypatch):
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "empty"))
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "torch"))
    with pytest.raises(WeightsNotFoundError, match=rf"timm:{MODEL}: its weights are in neither the Hugging Face hub cache"):
        load_model(f"timm:{MODEL}")
    with pytest.raises(WeightsNotFoundError, match=r"the file .*nothing.pth does not exist"):
        load_model(f"timm:{MODEL}:{tmp_path / 'nothing.pth'}")
    with pytest.raises(ValueError, match="timm knows no model 'resnet5000'"):
        load_model("timm:resnet5000")
    with pytest.raises(ValueError, match="Expected a timm model as `timm:<model>"):
        load_model("timm:")


def test_on_imagenet_a_the_baseline_keeps_the_logits_of_its_200_classes(tmp_path):
    subset = imagenet_subset("imagenet-a")
    for position, k in enumerate(subset):  # every folder, one image each
        folder = tmp_path / imagenet_wnids()[k]
        folder.mkdir()
        Image.new("RGB", (20, 20), (position % 256, 3 * position % 256, 9)).save(folder / "0.png")
    name = f"timm:{MODEL}:random"
    run = predict(name, f"imagenet-a:{tmp_path}", progress=False, cache_dir=tmp_path / "cache", device="cpu")
    net = load_model(name, device="cpu")
    files = [tmp_path / imagenet_wnids()[k] / "0.png" for k in subset]  # class order: ImageNet's index order
    full = net.logits(torch.stack([net.preprocess(Image.open(f).convert("RGB")) for f in files[:4]]))  # [4, 1000]
    assert run.kind == "supervised" and run.logits.shape == (200, 200) and run.labels[:4].tolist() == [0, 1, 2, 3]
    assert torch.allclose(run.logits[:4], full[:, list(subset)], atol=1e-5)
