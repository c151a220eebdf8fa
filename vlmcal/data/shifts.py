"""Distribution shifts for small grayscale images: a corruption suite in the manner of ImageNet-C / CIFAR-10-C
(Hendrycks & Dietterich, ICLR 2019) and domain-style renderings (blended in with weight severity/5).

Each corruption follows the reference's formula (``imagecorruptions``), batched in torch, with severities re-scaled
to 28 pixels (each constant says where it comes from). Image ``i``'s random draws come from a generator seeded by
``(seed, name, i)``: independent of batching, the same at every severity."""

from __future__ import annotations

import hashlib
import io
import math
from typing import Any, Callable, Literal

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch.utils.data import Dataset

__all__ = ["CORRUPTIONS", "DOMAIN_SHIFTS", "SEVERITIES", "SHIFT_FAMILIES", "shift_family", "list_shifts", "check_shift",
           "apply_shift", "ShiftedDataset"]

SEVERITIES = (1, 2, 3, 4, 5)


def _image_generators(seed: int, name: str, indices: torch.Tensor) -> list[torch.Generator]:
    """One torch generator per image, seeded by (seed, name, index)."""
    base = int.from_bytes(hashlib.sha256(f"{seed}/{name}".encode()).digest()[:8], "little")
    # An odd multiplier spreads consecutive indices over the 64-bit seed space.
    return [torch.Generator().manual_seed((base + int(i) * 0x9E3779B97F4A7C15) % 2**63) for i in indices]


def _per_image(gens: list[torch.Generator], fn: Callable[[torch.Generator], torch.Tensor]) -> torch.Tensor:
    return torch.stack([fn(g) for g in gens])


def _separable_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Gaussian blur of [N, C, H, W] with reflect padding."""
    r = max(1, math.ceil(3 * sigma))
    k = torch.exp(-(torch.arange(-r, r + 1, dtype=torch.float32) ** 2) / (2 * sigma**2))
    k = k / k.sum()  # [K]
    n, c, h, w = x.shape
    y = F.conv2d(F.pad(x.reshape(n * c, 1, h, w), (r, r, 0, 0), mode="reflect"), k.view(1, 1, 1, -1))
    y = F.conv2d(F.pad(y, (0, 0, r, r), mode="reflect"), k.view(1, 1, -1, 1))
    return y.reshape(n, c, h, w)


def _disk_kernel(radius: float, supersample: int = 8) -> torch.Tensor:
    """A normalised disk of ``radius`` pixels, anti-aliased by supersampling each pixel."""
    r = math.ceil(radius)
    steps = (torch.arange(supersample, dtype=torch.float32) + 0.5) / supersample - 0.5
    grid = torch.arange(-r, r + 1, dtype=torch.float32)
    fine = (grid[:, None] + steps[None, :]).reshape(-1)  # [(2r+1)*S]
    inside = (fine[:, None] ** 2 + fine[None, :] ** 2) <= radius**2
    k = inside.float().reshape(2 * r + 1, supersample, 2 * r + 1, supersample).mean(dim=(1, 3))
    return k / k.sum()  # [2r+1, 2r+1]


def _conv_same(x: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """Convolve every channel of [N, C, H, W] with one [K, K] kernel, reflect padding."""
    n, c, h, w = x.shape
    r = kernel.shape[-1] // 2
    return F.conv2d(F.pad(x.reshape(n * c, 1, h, w), (r,) * 4, mode="reflect"), kernel[None, None]).reshape(n, c, h, w)


# Corruptions: each takes (x [N,C,H,W] in [0,1], severity index 0..4, per-image generators) -> [N,C,H,W].
def _gaussian_noise(x, s, gens):
    sigma = (0.08, 0.12, 0.18, 0.26, 0.38)[s]  # ImageNet-C's; CIFAR-10-C's (<= 0.10) barely moves a 28px image
    return x + sigma * _per_image(gens, lambda g: torch.randn(x.shape[1:], generator=g))


def _shot_noise(x, s, gens):
    photons = (60.0, 25.0, 12.0, 5.0, 3.0)[s]  # ImageNet-C's photon counts: Poisson(x * c) / c
    return torch.stack([torch.poisson(x[i] * photons, generator=g) / photons for i, g in enumerate(gens)])


def _impulse_noise(x, s, gens):
    amount = (0.03, 0.06, 0.09, 0.17, 0.27)[s]  # ImageNet-C's salt-and-pepper fraction
    u = _per_image(gens, lambda g: torch.rand((2, *x.shape[1:]), generator=g))  # [N, 2, C, H, W]: hit, salt
    return torch.where(u[:, 0] < amount, (u[:, 1] < 0.5).float(), x)


def _speckle_noise(x, s, gens):
    scale = (0.15, 0.20, 0.35, 0.45, 0.60)[s]  # ImageNet-C's: x + x * N(0, c^2)
    return x + x * scale * _per_image(gens, lambda g: torch.randn(x.shape[1:], generator=g))


def _gaussian_blur(x, s, gens):
    sigma = (0.5, 0.75, 1.0, 1.25, 1.5)[s]  # CIFAR-10-C's 0.4..1.0 was set for 32px; spread to reach a strong blur
    return _separable_blur(x, sigma)


def _defocus_blur(x, s, gens):
    radius = (0.6, 0.9, 1.2, 1.6, 2.0)[s]  # CIFAR-10-C's disk radii 0.3..1.5 at 32px, anti-aliased here by supersampling
    return _conv_same(x, _disk_kernel(radius))


def _motion_blur(x, s, gens):
    length = (2.0, 3.0, 4.0, 5.0, 6.0)[s]  # streak length in pixels; CIFAR-10-C blurs over ~10 px of a 32px image with a soft profile
    r = math.ceil(length / 2)
    angle = _per_image(gens, lambda g: torch.rand((), generator=g)) * math.pi  # [N] direction of motion
    # Each image's kernel: a line segment of the given length through the centre, sampled finely.
    t = torch.linspace(-length / 2, length / 2, 64)  # [T] positions along the streak
    px, py = (t[None, :] * f(angle)[:, None] for f in (torch.cos, torch.sin))  # [N, T] each
    grid = torch.arange(-r, r + 1, dtype=torch.float32)  # [K]
    wx, wy = ((1 - (grid[None, None, :] - p[..., None]).abs()).clamp(min=0) for p in (px, py))  # [N, T, K] bilinear
    kernels = torch.einsum("ntk,ntl->nkl", wy, wx)  # [N, K, K] (rows = y, cols = x)
    kernels = kernels / kernels.sum(dim=(1, 2), keepdim=True)
    n, c, h, w = x.shape
    y = F.pad(x.reshape(1, n * c, h, w), (r, r, r, r), mode="reflect")
    weight = kernels.repeat_interleave(c, dim=0)[:, None]  # [N*C, 1, K, K]
    return F.conv2d(y, weight, groups=n * c).reshape(n, c, h, w)


def _zoom_blur(x, s, gens):
    max_zoom = (1.06, 1.11, 1.16, 1.21, 1.26)[s]  # CIFAR-10-C's largest zooms
    zooms = torch.linspace(1.0, max_zoom, 6)[1:]
    out = x.clone()
    for z in zooms.tolist():
        theta = torch.tensor([[1 / z, 0.0, 0.0], [0.0, 1 / z, 0.0]]).expand(len(x), 2, 3)
        grid = F.affine_grid(theta, list(x.shape), align_corners=False)
        out = out + F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
    return out / (len(zooms) + 1)


def _contrast(x, s, gens):
    factor = (0.6, 0.45, 0.3, 0.2, 0.1)[s]  # between CIFAR-10-C's (0.75..0.15) and ImageNet-C's (0.4..0.05)
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - mean) * factor + mean


def _brightness(x, s, gens):
    return x + (0.1, 0.2, 0.3, 0.4, 0.5)[s]  # ImageNet-C's shift of the HSV value channel; grayscale: the value itself


def _pixelate(x, s, gens):
    factor = (0.85, 0.7, 0.55, 0.45, 0.35)[s]  # side kept before box-downsampling; 28px -> 24, 20, 15, 13, 10 px
    h, w = x.shape[-2:]
    small = F.interpolate(x, size=(round(h * factor), round(w * factor)), mode="area")
    return F.interpolate(small, size=(h, w), mode="nearest")


def _jpeg_compression(x, s, gens):
    quality = (30, 20, 15, 10, 7)[s]  # ImageNet-C's 25..7; a 28px image stays readable at lower quality than CIFAR-10-C's 80..40 suggest
    as_uint8 = (x.clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()  # [N, H, W, C]
    out = np.empty_like(as_uint8)
    for i, img in enumerate(as_uint8):  # PIL's libjpeg, one image at a time (~30 us each at 28x28)
        buf = io.BytesIO()
        Image.fromarray(img[..., 0] if img.shape[-1] == 1 else img).save(buf, format="JPEG", quality=quality)
        out[i] = np.asarray(Image.open(buf)).reshape(img.shape)  # grayscale decodes to [H, W]
    return torch.from_numpy(out).permute(0, 3, 1, 2).float() / 255.0


def _elastic_transform(x, s, gens):
    amplitude = (0.5, 1.0, 1.5, 2.0, 2.5)[s]  # peak-ish displacement in pixels (std of the smoothed field)
    n, c, h, w = x.shape
    field = _per_image(gens, lambda g: torch.rand((2, h, w), generator=g) * 2 - 1)  # [N, 2, H, W]
    field = _separable_blur(field, sigma=3.0)  # Simard et al.'s smooth random field (sigma ~ 4 for MNIST's 28px)
    field = field / field.std(dim=(1, 2, 3), keepdim=True).clamp(min=1e-8) * amplitude  # [N, 2, H, W] pixels
    ys, xs = torch.meshgrid(torch.arange(h, dtype=torch.float32), torch.arange(w, dtype=torch.float32), indexing="ij")
    # [N, H, W, 2]: (x, y) in grid_sample's [-1, 1]
    grid = torch.stack([(xs + field[:, 0]) * 2 / (w - 1) - 1, (ys + field[:, 1]) * 2 / (h - 1) - 1], dim=-1)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=True)


def _sobel_edges(x: torch.Tensor) -> torch.Tensor:
    """Per-channel Sobel gradient magnitude, scaled so each image's strongest edge is 1."""
    kx = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]])
    n, c, h, w = x.shape
    y = F.pad(x.reshape(n * c, 1, h, w), (1, 1, 1, 1), mode="replicate")
    mag = torch.sqrt(F.conv2d(y, kx[None, None]) ** 2 + F.conv2d(y, kx.T[None, None]) ** 2).reshape(n, c, h, w)
    return mag / mag.amax(dim=(1, 2, 3), keepdim=True).clamp(min=1e-8)


def _blend(x: torch.Tensor, rendering: torch.Tensor, s: int) -> torch.Tensor:
    alpha = (s + 1) / 5  # severity 5 is the pure rendering
    return (1 - alpha) * x + alpha * rendering


CORRUPTIONS: dict[str, Callable] = {
    "gaussian_noise": _gaussian_noise, "shot_noise": _shot_noise, "impulse_noise": _impulse_noise,
    "speckle_noise": _speckle_noise, "gaussian_blur": _gaussian_blur, "defocus_blur": _defocus_blur,
    "motion_blur": _motion_blur, "zoom_blur": _zoom_blur, "contrast": _contrast, "brightness": _brightness,
    "pixelate": _pixelate, "jpeg_compression": _jpeg_compression, "elastic_transform": _elastic_transform,
}

DOMAIN_SHIFTS: dict[str, Callable] = {
    "invert": lambda x, s, gens: _blend(x, 1 - x, s),
    "edges": lambda x, s, gens: _blend(x, _sobel_edges(x), s),
    "sketch": lambda x, s, gens: _blend(x, 1 - _sobel_edges(x), s),
}

_RANDOM = {"gaussian_noise", "shot_noise", "impulse_noise", "speckle_noise", "motion_blur", "elastic_transform"}


def list_shifts(kind: Literal["all", "corruption", "domain"] = "all") -> list[str]:
    """Names of the shifts: corruptions, domain shifts, or both (corruptions first)."""
    if kind not in ("all", "corruption", "domain"):
        raise ValueError(f"Expected `kind` to be 'all', 'corruption' or 'domain', but got {kind!r}")
    return [*(CORRUPTIONS if kind in ("all", "corruption") else []),
            *(DOMAIN_SHIFTS if kind in ("all", "domain") else [])]


# ImageNet-C's four categories (Hendrycks & Dietterich, 2019, Fig. 1; its "extra" speckle noise and gaussian
# blur under noise and blur), plus the renditions. ``vlmcal.standins.corpus.COVERED_FAMILIES`` covers some.
SHIFT_FAMILIES: dict[str, tuple[str, ...]] = {
    "noise": ("gaussian_noise", "shot_noise", "impulse_noise", "speckle_noise"),
    "blur": ("gaussian_blur", "defocus_blur", "motion_blur", "zoom_blur"),
    "weather": ("brightness",),
    "digital": ("contrast", "elastic_transform", "pixelate", "jpeg_compression"),
    "rendition": ("invert", "edges", "sketch"),
}


def shift_family(name: str) -> str:
    """The family of a shift: ``shift_family("contrast") == "digital"``."""
    check_shift(name, 1)
    return next(family for family, names in SHIFT_FAMILIES.items() if name in names)


def check_shift(name, severity, arg: str = "name", also: tuple[str, ...] = ()) -> Callable:
    """The shift's function, after checking ``name`` and ``severity`` (1..5); ``arg`` and ``also`` shape the message."""
    fn = (CORRUPTIONS.get(name) or DOMAIN_SHIFTS.get(name)) if isinstance(name, str) else None
    if fn is None:
        raise ValueError(f"Unknown shift {name!r} in argument `{arg}`; known: {', '.join([*also, *list_shifts()])}")
    if isinstance(severity, (bool, np.bool_)) or not isinstance(severity, (int, np.integer)) or severity not in SEVERITIES:
        raise ValueError(f"Expected argument `severity` to be an integer in 1..5, but got {severity!r}")
    return fn


def apply_shift(images: torch.Tensor, name: str, severity: int = 3, seed: int = 0,
                indices: torch.Tensor | None = None) -> torch.Tensor:
    """Corrupt or re-render a batch of images: [N, C, H, W] float in [0, 1] (C = 1 or 3), in and out.
    Args:
        name: one of ``list_shifts()``.
        severity: 1 (mild) .. 5 (strong); for domain shifts, the rendering's blend weight / 5.
        seed: the random seed (with ``name`` and each image's index it fixes every random draw).
        indices: [N] the images' indices in their data set (default ``0..N-1``), for a slice.
    Example:
        >>> x = torch.rand(4, 1, 28, 28)
        >>> y = apply_shift(x, "gaussian_noise", severity=2, seed=0)
        >>> tuple(y.shape), bool(y.min() >= 0 and y.max() <= 1)
        ((4, 1, 28, 28), True)
    """
    fn = check_shift(name, severity)
    if not isinstance(images, torch.Tensor) or images.ndim != 4 or not images.is_floating_point():
        got = f"{images.dtype} {tuple(images.shape)}" if isinstance(images, torch.Tensor) else type(images).__name__
        raise ValueError(f"Expected `images` as a [N, C, H, W] float tensor in [0, 1], but got {got}")
    if images.numel():
        lo, hi = (float(v) for v in torch.aminmax(images.detach()))  # NaN propagates through both
        if not (0.0 <= lo and hi <= 1.0):
            raise ValueError(f"Expected `images` in [0, 1], but got values in [{lo}, {hi}]")
    indices = torch.arange(len(images)) if indices is None else indices
    if len(indices) != len(images):
        raise ValueError(f"Expected one index per image, but got {len(indices)} indices for {len(images)} images")
    gens = _image_generators(seed, name, indices) if name in _RANDOM else []
    return fn(images.detach().float().cpu(), severity - 1, gens).clamp(0.0, 1.0).to(images.dtype)


class ShiftedDataset(Dataset):
    """A data set with every image shifted on first use, then kept in memory (labels, identity known up front).
    Args:
        dataset: a data set with ``images_float()`` -> [N, C, H, W] in [0, 1] (e.g. Fashion-MNIST).
        name, severity, seed: as for :func:`apply_shift`.
        chunk: images shifted per call (bounds memory; the result does not depend on it).
    """
    def __init__(self, dataset: Any, name: str, severity: int = 3, seed: int = 0, chunk: int = 4096):
        if not hasattr(dataset, "images_float"):
            raise TypeError(f"Expected a data set with images in memory (`images_float()`), but got {type(dataset).__name__}")
        check_shift(name, severity)
        self._clean, self.name, self.severity, self.seed, self.chunk = dataset, name, severity, seed, chunk
        self._images: torch.Tensor | None = None
        self.labels, self.class_names = dataset.labels, list(dataset.class_names)
        self.identity = {**dataset.identity, "shift": name, "severity": severity, "shift_seed": seed}

    @property
    def images(self) -> torch.Tensor:
        """[N, C, H, W] float in [0, 1]: the shifted images (computed on first access)."""
        if self._images is None:
            clean, step = self._clean.images_float(), self.chunk  # [N, C, H, W]
            self._images = torch.cat([apply_shift(clean[i : i + step], self.name, self.severity, self.seed,
                                                  indices=torch.arange(i, min(i + step, len(clean))))
                                      for i in range(0, len(clean), step)])  # [N, C, H, W]
        return self._images

    def images_float(self) -> torch.Tensor:
        """[N, C, H, W] float in [0, 1]: the shifted images."""
        return self.images

    def prepare(self) -> None:
        """Compute the shifted images now (``vlmcal.pipeline.features`` calls it before starting workers)."""
        self.images

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int):
        return self.images[i], int(self.labels[i])
