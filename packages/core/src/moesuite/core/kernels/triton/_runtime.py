"""Launch-time plumbing shared by the kernels: interpreter-aware autotuning and input checks.

Triton decides when a kernel is *decorated* whether it compiles it (a GPU) or interprets it
in numpy (``TRITON_INTERPRET=1`` set before ``import triton``). Everything here follows that
decision instead of keeping a flag of its own.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence

import torch
import triton

__all__ = [
    "autotune",
    "interpreting",
    "check_launchable",
    "check_float",
    "check_index",
    "FLOAT_DTYPES",
]

FLOAT_DTYPES = (torch.float32, torch.bfloat16, torch.float16)


def interpreting() -> bool:
    """Whether ``@triton.jit`` currently builds interpreted (numpy) kernels."""
    knobs = getattr(triton, "knobs", None)
    if knobs is not None:
        return bool(knobs.runtime.interpret)
    return os.environ.get("TRITON_INTERPRET", "0").lower() in ("1", "true", "on", "yes")


def autotune(configs: Sequence[triton.Config], key: list[str]) -> Callable:
    """``triton.autotune`` over ``configs`` on a GPU, over ``configs[0]`` alone when interpreting.

    Benchmarking several configs needs an active GPU driver (it raises ``0 active drivers``
    on a CPU host), and the interpreter does not model speed anyway; with one config the
    autotuner launches it directly. Put a config that is valid and cheap to interpret first.
    """
    if not configs:
        raise ValueError("autotune needs at least one triton.Config.")
    chosen = list(configs[:1]) if interpreting() else list(configs)
    return triton.autotune(configs=chosen, key=key)


def _is_interpreted(kernel: object) -> bool:
    from triton.runtime.interpreter import InterpretedFunction

    while hasattr(kernel, "fn") and not isinstance(kernel, InterpretedFunction):
        kernel = kernel.fn  # unwrap Autotuner / Heuristics
    return isinstance(kernel, InterpretedFunction)


def check_launchable(kernel: object, name: str, t: torch.Tensor) -> None:
    """Raise unless ``kernel`` can run on ``t``'s device.

    Compiled kernels need CUDA tensors; interpreted ones run on CPU (and CUDA) tensors.
    """
    if t.device.type == "cuda":
        return
    if t.device.type == "cpu":
        if not _is_interpreted(kernel):
            raise RuntimeError(
                f"{name} is a CPU tensor but the Triton kernels were compiled for a GPU; set "
                "TRITON_INTERPRET=1 before importing triton (correctness only) or use the "
                "'segment_mm' backend on the CPU."
            )
        return
    raise RuntimeError(
        f"{name} is on {t.device}; the Triton kernels run on CUDA (or CPU when interpreted)."
    )


def check_float(
    name: str, t: object, dim: int, like: torch.Tensor | None = None, like_name: str = ""
) -> None:
    """``t`` must be a ``dim``-D float32/bfloat16/float16 tensor (``like``'s device and dtype)."""
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}.")
    if t.dim() != dim:
        raise ValueError(f"{name} must be {dim}-D, got shape {tuple(t.shape)}.")
    if t.dtype not in FLOAT_DTYPES:
        raise TypeError(
            f"{name} must be float32, bfloat16 or float16 for the Triton kernels, got {t.dtype}; "
            "use the 'loop' backend for float64."
        )
    if like is not None:
        if t.device != like.device:
            raise ValueError(
                f"{name} is on {t.device} but {like_name} is on {like.device}; "
                "move them to one device."
            )
        if t.dtype != like.dtype:
            raise TypeError(
                f"{name} has dtype {t.dtype} but {like_name} has {like.dtype}; cast one of them."
            )


def check_index(name: str, t: object, like: torch.Tensor, dim: int = 1) -> None:
    """``t`` must be a ``dim``-D integer tensor on ``like``'s device."""
    if not isinstance(t, torch.Tensor) or t.dim() != dim:
        shape = tuple(t.shape) if isinstance(t, torch.Tensor) else type(t).__name__
        raise ValueError(f"{name} must be a {dim}-D integer tensor, got {shape}.")
    if t.is_floating_point() or t.is_complex() or t.dtype == torch.bool:
        raise TypeError(f"{name} must be an integer tensor, got {t.dtype}.")
    if t.device != like.device:
        raise ValueError(
            f"{name} is on {t.device} but the data is on {like.device}; move them to one device."
        )
