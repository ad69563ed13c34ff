"""ProMoE: prototypical-routing MoE diffusion transformers (ICLR 2026), with DiT, TC-DiT, EC-DiT.

Modules: ``model`` (the networks), ``diffusion`` (rectified flow and DDPM on diffusers'
schedulers, guided sampling), ``data``, ``training`` (core trainer, EMA, run directories),
``evaluate`` (FID/KID/precision/recall with a local feature net, class-expert MI, FLOPs),
``registry`` (the models by name) and ``system`` (the CLI's functions and the demo row).
"""
