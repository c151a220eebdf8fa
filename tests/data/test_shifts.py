"""The corruption suite and domain shifts: determinism, ranges, severity ordering."""

from __future__ import annotations

import pytest
import torch

from vlmcal.data import shifts
from vlmcal.data.datasets import class_subset, load_fashion_mnist


@pytest.fixture(scope="module")
def images():
    return load_fashion_mnist("test").images_float()[:96]  # [96, 1, 28, 28]


def test_suite_size():
    assert len(shifts.list_shifts("corruption")) >= 10
    assert len(shifts.list_shifts("domain")) >= 1
    assert shifts.list_shifts() == shifts.list_shifts("corruption") + shifts.list_shifts("domain")


@pytest.mark.parametrize("name", shifts.list_shifts())
def test_shape_range_and_determinism(images, name):
    for severity in shifts.SEVERITIES:
        out = shifts.apply_shift(images, name, severity, seed=3)
        assert out.shape == images.shape and out.dtype == images.dtype
        assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0
        assert not torch.equal(out, images)
        assert torch.equal(out, shifts.apply_shift(images, name, severity, seed=3))


@pytest.mark.parametrize("name", sorted(shifts._RANDOM))
def test_seed_changes_random_shifts(images, name):
    assert not torch.equal(shifts.apply_shift(images, name, 3, seed=0), shifts.apply_shift(images, name, 3, seed=1))


@pytest.mark.parametrize("name", shifts.list_shifts())
def test_result_does_not_depend_on_batching(images, name):
    whole = shifts.apply_shift(images, name, 4, seed=5)
    parts = torch.cat([shifts.apply_shift(images[i : i + 40], name, 4, seed=5, indices=torch.arange(i, min(i + 40, 96))) for i in range(0, 96, 40)])
    torch.testing.assert_close(parts, whole, rtol=0, atol=1e-6)


@pytest.mark.parametrize("name", shifts.list_shifts())
def test_distance_from_clean_grows_with_severity(images, name):
    dist = [float((shifts.apply_shift(images, name, s, seed=0) - images).abs().mean()) for s in shifts.SEVERITIES]
    assert all(b > a for a, b in zip(dist, dist[1:])), dist


def test_reference_formulas_on_simple_inputs():
    x = torch.full((2, 1, 28, 28), 0.5)
    x[1, 0, :, :14] = 0.0  # a half-dark image
    torch.testing.assert_close(shifts.apply_shift(x, "brightness", 2), (x + 0.2).clamp(0, 1))
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    torch.testing.assert_close(shifts.apply_shift(x, "contrast", 5), (x - mean) * 0.1 + mean)
    torch.testing.assert_close(shifts.apply_shift(x, "invert", 5), 1 - x)
    # Blurs preserve a constant image; edges of a constant image are zero, so sketch is white.
    const = torch.full((1, 1, 28, 28), 0.3)
    for name in ("gaussian_blur", "defocus_blur", "motion_blur", "zoom_blur", "pixelate"):
        torch.testing.assert_close(shifts.apply_shift(const, name, 5), const)
    assert float(shifts.apply_shift(const, "sketch", 5).min()) == 1.0


def test_noise_statistics_match_reference_sigma():
    x = torch.full((50, 1, 28, 28), 0.5)
    noise = shifts.apply_shift(x, "gaussian_noise", 1, seed=0) - x  # sigma 0.08, no clipping at 0.5 +/- 0.4
    assert abs(float(noise.std()) - 0.08) < 0.003 and abs(float(noise.mean())) < 0.003
    shot = shifts.apply_shift(x, "shot_noise", 1, seed=0) - x  # Poisson(0.5 * 60) / 60 - 0.5: mean 0, variance 0.5 / 60
    assert abs(float(shot.mean())) < 0.005 and abs(float(shot.std()) - (0.5 / 60) ** 0.5) < 0.004


def test_shifted_dataset_matches_apply_shift():
    test = load_fashion_mnist("test")
    sub = class_subset(test, [0, 1])
    ds = shifts.ShiftedDataset(sub, "impulse_noise", severity=2, seed=4, chunk=300)
    assert len(ds) == len(sub) and ds.class_names == sub.class_names
    torch.testing.assert_close(ds.images_float(), shifts.apply_shift(sub.images_float(), "impulse_noise", 2, seed=4))
    img, label = ds[5]
    assert img.shape == (1, 28, 28) and label == int(sub.labels[5])
    assert ds.identity["shift"] == "impulse_noise" and ds.identity["severity"] == 2


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"name": "fog"}, "Unknown shift 'fog'"),
        ({"name": "contrast", "severity": 0}, "severity"),
        ({"name": "contrast", "severity": 6}, "severity"),
    ],
)
def test_bad_arguments(images, kwargs, match):
    with pytest.raises(ValueError, match=match):
        shifts.apply_shift(images, **kwargs)


def test_rejects_uint8_images():
    with pytest.raises(ValueError, match="float tensor"):
        shifts.apply_shift(torch.zeros(1, 1, 28, 28, dtype=torch.uint8), "contrast", 1)
