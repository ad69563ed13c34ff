"""Triton kernels (see moesuite.core.kernels.triton)."""
