"""The open_clip backbone against plain open_clip forward passes, on a tiny random-weight model.

No weights are downloaded: ``openclip:vlmcal-tiny:random`` is a registered test architecture,
and the weight-resolution logic is checked against fake cache layouts.
"""

from __future__ import annotations

import socket
import sys
import types

import numpy as np
import open_clip
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from vlmcal.backbones import list_backbones, load_backbone
from vlmcal.backbones import openclip as oc
from vlmcal.backbones.openclip import OpenClipBackbone, WeightsNotFoundError, load_openclip, parse_openclip_name

TINY = "openclip:vlmcal-tiny:random"
PROMPTS = ["a photo of a cat.", "a photo of a dog.", "a blurry photo of a sea lion.", "itap of a t-shirt/top."]


@pytest.fixture(scope="module")
def tiny() -> OpenClipBackbone:
    return load_openclip(TINY, device="cpu")


def _images(n: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(n, 3, 32, 32, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("arch", ["vlmcal-tiny", "vlmcal-tiny-customtext"])
def test_encode_text_matches_open_clip(arch):
    tiny = load_openclip(f"openclip:{arch}:random", device="cpu")
    assert type(tiny.model).__name__ == ("CLIP" if arch == "vlmcal-tiny" else "CustomTextCLIP")
    ref = F.normalize(tiny.model.encode_text(tiny.tokenizer(PROMPTS)), dim=-1)  # open_clip's own forward
    ours = tiny.encode_text(PROMPTS)
    assert ours.shape == (4, tiny.embed_dim) == (4, 32)
    torch.testing.assert_close(ours, ref, atol=1e-6, rtol=0)
    # The comparison means something only if different prompts give different features.
    assert torch.cdist(ours, ours).triu(1)[torch.triu(torch.ones(4, 4), 1).bool()].min() > 1e-2


def test_encode_text_batches_agree(tiny):
    small = OpenClipBackbone(tiny.model, tiny.preprocess, tiny.tokenizer, name=TINY, device="cpu", text_batch_size=3)
    torch.testing.assert_close(small.encode_text(PROMPTS), tiny.encode_text(PROMPTS), atol=1e-6, rtol=0)


def test_image_features_match_open_clip(tiny):
    x = _images(5)
    ref = F.normalize(tiny.model.encode_image(x), dim=-1)
    ours = tiny.encode_images(x)
    torch.testing.assert_close(ours, ref, atol=1e-6, rtol=0)
    torch.testing.assert_close(ours.norm(dim=-1), torch.ones(5))


def test_preprocess_is_the_models_own(tiny):
    _, _, reference = open_clip.create_model_and_transforms("vlmcal-tiny", pretrained=None)
    assert repr(tiny.preprocess) == repr(reference)
    grey = Image.fromarray(np.random.default_rng(0).integers(0, 255, (28, 28), dtype=np.uint8), mode="L")
    x = tiny.preprocess(grey)  # a Fashion-MNIST-like greyscale image becomes a 3-channel input
    assert x.shape == (3, 32, 32)
    torch.testing.assert_close(x, reference(grey))


def test_attributes_and_frozen(tiny):
    assert tiny.logit_scale == pytest.approx(float(tiny.model.logit_scale.exp()))
    assert tiny.token_embedding_dim == tiny.model.token_embedding.weight.shape[1] == 64
    assert tiny.device == torch.device("cpu") and tiny.precision == "fp32"
    assert not tiny.model.training
    assert not any(p.requires_grad for p in tiny.model.parameters())


def test_random_weights_are_reproducible(tiny):
    again = load_openclip(TINY, device="cpu")
    for (name, a), (_, b) in zip(tiny.model.state_dict().items(), again.model.state_dict().items()):
        assert torch.equal(a, b), name
    # ... and loading does not disturb the caller's random stream.
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    load_openclip(TINY, device="cpu")
    assert torch.equal(torch.rand(3), expected)


def test_local_checkpoint(tmp_path):
    torch.manual_seed(7)
    model = open_clip.create_model("vlmcal-tiny", pretrained=None)
    path = tmp_path / "tiny.pt"
    torch.save(model.state_dict(), path)
    bb = load_openclip(f"openclip:vlmcal-tiny:{path}", device="cpu")
    x = _images(3, seed=1)
    torch.testing.assert_close(bb.encode_images(x), F.normalize(model.eval().encode_image(x), dim=-1), atol=1e-6, rtol=0)
    assert bb.cache_identity["file_size"] == path.stat().st_size


def test_quick_gelu_switch():
    gelu = load_openclip(TINY, device="cpu")
    quick = load_openclip(TINY, device="cpu", quick_gelu=True)
    assert not any(isinstance(m, open_clip.transformer.QuickGELU) for m in gelu.model.modules())
    assert any(isinstance(m, open_clip.transformer.QuickGELU) for m in quick.model.modules())
    assert quick.cache_identity != gelu.cache_identity  # different features, different cache keys


def _fake_hf_cache(root, repo_id: str, filename: str):
    """The layout huggingface_hub leaves after a download: refs/main -> snapshots/<rev>/<file>."""
    folder = root / f"models--{repo_id.replace('/', '--')}"
    rev = "0" * 40
    (folder / "refs").mkdir(parents=True)
    (folder / "refs" / "main").write_text(rev)
    (folder / "snapshots" / rev).mkdir(parents=True)
    target = folder / "snapshots" / rev / filename
    target.write_bytes(b"weights")
    return target


def test_openai_tag_uses_quick_gelu_and_cached_weights(tmp_path):
    target = _fake_hf_cache(tmp_path, "timm/vit_base_patch16_clip_224.openai", "open_clip_model.safetensors")
    plan = oc._plan("ViT-B-16", "openai", weights_dir=tmp_path)
    assert plan.quick_gelu is True  # open_clip issue #441: OpenAI weights need QuickGELU
    assert plan.pretrained == str(target)
    assert plan.preprocess["mean"] == open_clip.get_pretrained_cfg("ViT-B-16", "openai")["mean"]
    assert oc._plan("ViT-B-16", "openai", weights_dir=tmp_path, quick_gelu=False).quick_gelu is False


def test_non_openai_tag_keeps_gelu(tmp_path):
    cfg = open_clip.get_pretrained_cfg("ViT-B-16", "laion2b_s34b_b88k")
    repo, filename = cfg["hf_hub"].rstrip("/"), "open_clip_pytorch_model.bin"
    _fake_hf_cache(tmp_path, repo, filename)
    assert oc._plan("ViT-B-16", "laion2b_s34b_b88k", weights_dir=tmp_path).quick_gelu is False


def test_url_cache_is_found(tmp_path):
    cfg = open_clip.get_pretrained_cfg("ViT-B-16", "openai")
    (tmp_path / cfg["url"].rsplit("/", 1)[1]).write_bytes(b"weights")
    found = oc._find_cached_weights({"url": cfg["url"]}, weights_dir=tmp_path)
    assert found == str(tmp_path / "ViT-B-16.pt")


def test_checkpoint_file_named_openai_uses_quick_gelu(tmp_path):
    path = tmp_path / "ViT-B-16-openai.pt"
    path.write_bytes(b"x")
    assert oc._plan("vlmcal-tiny", str(path)).quick_gelu is True
    other = tmp_path / "mine.pt"
    other.write_bytes(b"x")
    assert oc._plan("vlmcal-tiny", str(other)).quick_gelu is False


@pytest.fixture
def no_network(monkeypatch, tmp_path):
    """Any connection attempt or model construction fails the test; HOME has no caches."""

    def refuse(*args, **kwargs):
        raise AssertionError(f"unexpected network access: {args}")

    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(open_clip, "create_model_and_transforms", refuse)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    return tmp_path


def test_missing_weights_offline_fails_at_once(no_network, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(WeightsNotFoundError) as err:
        load_openclip("openclip:ViT-B-16:openai", weights_dir=no_network / "weights")
    msg = str(err.value)
    assert "HF_HUB_OFFLINE" in msg and "openclip:ViT-B-16:/path/to/checkpoint" in msg and "create_model" in msg


def test_missing_weights_unreachable_hub_fails_at_once(no_network, monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    probed = []

    def unreachable(address, timeout=None):
        probed.append((address, timeout))
        raise OSError("network is unreachable")

    monkeypatch.setattr(socket, "create_connection", unreachable)
    with pytest.raises(WeightsNotFoundError, match="unreachable"):
        load_openclip("openclip:ViT-B-16:openai", weights_dir=no_network / "weights")
    assert probed == [(("huggingface.co", 443), oc.HUB_PROBE_TIMEOUT_S)]


@pytest.mark.parametrize(
    "name, error, match",
    [
        ("openclip:ViT-B-16", ValueError, "openclip:<arch>:<pretrained>"),
        ("ViT-B-16:openai", ValueError, "openclip:<arch>:<pretrained>"),
        ("openclip:NoSuchArch:openai", ValueError, "Unknown open_clip architecture 'NoSuchArch'"),
        ("openclip:ViT-B-16:no_such_tag", ValueError, "laion2b_s34b_b88k"),
        ("openclip:vlmcal-tiny:/no/such/file.pt", WeightsNotFoundError, "does not exist"),
    ],
)
def test_bad_names(name, error, match):
    with pytest.raises(error, match=match):
        load_openclip(name) if name.startswith("openclip:") else parse_openclip_name(name)


def test_load_backbone_dispatch(tiny, monkeypatch):
    assert isinstance(load_backbone(TINY, device="cpu"), OpenClipBackbone)
    calls = []
    import vlmcal.standins

    monkeypatch.setattr(vlmcal.standins, "load_default", lambda name, device=None, cache_dir=None, **kw: calls.append((name, device, cache_dir)) or tiny)
    monkeypatch.setattr(vlmcal.standins, "list_default_variants", lambda: ["default", "default-small"])
    assert load_backbone("default-small", device="cpu", cache_dir="/c") is tiny
    assert calls == [("default-small", "cpu", "/c")]
    assert list_backbones()[:4] == ["default", "default-small", TINY, "openclip:vlmcal-tiny-customtext:random"]
    with pytest.raises(ValueError, match="Unknown backbone 'clip'.*openclip:<arch>"):
        load_backbone("clip")


def test_list_backbones_all_pairs():
    names = list_backbones(include_downloadable=True)
    assert TINY in names and "openclip:vlmcal-tiny-customtext:random" in names
    assert "openclip:ViT-B-16:openai" in names


def test_encode_images_rejects_unpreprocessed(tiny):
    with pytest.raises(ValueError, match=r"\[B, 3, H, W\].*got \(3, 32, 32\)"):
        tiny.encode_images(torch.zeros(3, 32, 32))
    with pytest.raises(ValueError, match="non-empty list of strings"):
        tiny.encode_text("a photo of a cat.")
