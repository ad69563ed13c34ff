"""Images to patch tokens and back (the ``patchify`` / ``unpatchify`` pair of ViTs and DiTs).

Index legend: ``N`` images, ``C`` channels, ``H x W`` pixels, ``p`` patch side,
``h = H / p``, ``w = W / p``, ``L = h * w`` tokens.
"""

from __future__ import annotations

import torch

__all__ = ["check_patch_size", "patchify", "unpatchify"]


def check_patch_size(height: int, width: int, patch_size: int) -> None:
    """Raise a clear ``ValueError`` unless ``patch_size`` divides both image sides."""
    if not isinstance(patch_size, int) or patch_size < 1:
        raise ValueError(f"patch_size must be a positive int, got {patch_size!r}.")
    if height % patch_size or width % patch_size:
        raise ValueError(
            f"image size {height}x{width} is not divisible by the patch size {patch_size}; "
            f"resize or pad the images to a multiple of {patch_size} (e.g. "
            f"{-(-height // patch_size) * patch_size}x{-(-width // patch_size) * patch_size}) "
            "or choose a patch size that divides both sides."
        )


def patchify(images: torch.Tensor, patch_size: int) -> torch.Tensor:
    """``[N, C, H, W] -> [N, L, p * p * C]``, tokens in row-major order, channels last.

    Examples:
        >>> import torch
        >>> x = torch.arange(2 * 1 * 4 * 4.0).view(2, 1, 4, 4)
        >>> tuple(patchify(x, 2).shape), patchify(x, 2)[0, 1].tolist()
        ((2, 4, 4), [2.0, 3.0, 6.0, 7.0])
        >>> torch.equal(unpatchify(patchify(x, 2), 2, 4, 4), x)
        True
    """
    N, C, H, W = images.shape
    check_patch_size(H, W, patch_size)
    p = patch_size
    x = images.reshape(N, C, H // p, p, W // p, p)
    return x.permute(0, 2, 4, 3, 5, 1).reshape(N, (H // p) * (W // p), p * p * C)


def unpatchify(tokens: torch.Tensor, patch_size: int, height: int, width: int) -> torch.Tensor:
    """``[N, L, p * p * C] -> [N, C, H, W]``, the inverse of :func:`patchify`."""
    check_patch_size(height, width, patch_size)
    N, L, D = tokens.shape
    p = patch_size
    h, w = height // p, width // p
    if L != h * w or D % (p * p):
        raise ValueError(
            f"tokens of shape {tuple(tokens.shape)} do not tile a {height}x{width} image "
            f"with {p}x{p} patches (expected {h * w} tokens of a multiple of {p * p} values)."
        )
    C = D // (p * p)
    x = tokens.reshape(N, h, w, p, p, C)
    return x.permute(0, 5, 1, 3, 2, 4).reshape(N, C, height, width)
