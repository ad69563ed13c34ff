"""Expert-compute backends and the ``auto`` choice.

=============  ==========================================================================
``loop``       readable reference: a matmul pair per expert; any device, any dtype
``grouped_mm`` torch's native grouped GEMM (``torch.nn.functional.grouped_mm``) with
               moesuite's autograd (CPU quirks handled)
``segment_mm`` one in-place BLAS GEMM per expert segment under one fused MLP autograd node;
               the CPU default (fastest measured, see benchmarks/core)
``triton``     moesuite's Triton kernels (scatter, grouped GEMM, combine; fwd and bwd);
               CUDA, or CPU under ``TRITON_INTERPRET=1`` for correctness tests only
=============  ==========================================================================

Examples:
    >>> import torch
    >>> from moesuite.core import backends
    >>> [s.name for s in backends.available()]
    ['loop', 'grouped_mm', 'segment_mm', 'triton']
    >>> backends.resolve("auto", "cpu", torch.float32).name
    'segment_mm'
"""

from __future__ import annotations

import functools

import torch

from moesuite.core.backends.base import Backend, BackendStatus, ExpertWeights
from moesuite.core.backends.grouped_mm import GroupedMMBackend
from moesuite.core.backends.loop import LoopBackend
from moesuite.core.backends.segment_mm import SegmentMMBackend
from moesuite.core.backends.triton import TritonBackend
from moesuite.core.registry import Registry

__all__ = [
    "BACKENDS",
    "Backend",
    "BackendStatus",
    "ExpertWeights",
    "available",
    "get",
    "resolve",
    "names",
]

BACKENDS: Registry[Backend] = Registry("backend")
_ORDER = tuple(cls.name for cls in (LoopBackend, GroupedMMBackend, SegmentMMBackend, TritonBackend))
for _cls in (LoopBackend, GroupedMMBackend, SegmentMMBackend, TritonBackend):
    BACKENDS.register(_cls.name, _cls)

# fastest first, per device type; the Triton interpreter is never chosen automatically
_PREFERENCE = {
    "cuda": ("triton", "grouped_mm", "segment_mm", "loop"),
    "cpu": ("segment_mm", "grouped_mm", "loop"),
}


def names() -> list[str]:
    """Backend names (registration order), plus ``"auto"``."""
    return [*_ORDER, "auto"]


@functools.cache
def get(name: str) -> Backend:
    """The backend registered under ``name`` (one stateless instance per name)."""
    if name == "auto":
        raise ValueError(
            "'auto' is resolved per device and dtype; use backends.resolve('auto', device, dtype)."
        )
    return BACKENDS.create(name)


def available(
    device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32
) -> list[BackendStatus]:
    """Every backend with whether it runs on ``device``/``dtype`` and, if not, why."""
    device = torch.device(device)
    out = []
    for name in _ORDER:
        reason = get(name).unavailable_reason(device, dtype)
        out.append(BackendStatus(name, reason is None, reason or ""))
    return out


def resolve(name: str, device: torch.device | str, dtype: torch.dtype) -> Backend:
    """The backend to run: ``name`` itself (if it can run here) or, for ``"auto"``, the fastest.

    Raises:
        ValueError: unknown name.
        RuntimeError: the named backend cannot run on this device/dtype (with the reason).
    """
    device = torch.device(device)
    if name == "auto":
        for candidate in _PREFERENCE.get(device.type, ("loop",)):
            if get(candidate).unavailable_reason(device, dtype) is None:
                return get(candidate)
        return get("loop")
    backend = get(name)
    reason = backend.unavailable_reason(device, dtype)
    if reason is not None:
        raise RuntimeError(f"backend {name!r} cannot run on {device} with {dtype}: {reason}.")
    return backend
