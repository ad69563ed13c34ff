"""AdvMoE (ICCV 2023): adversarially robust MoE-CNNs by router-expert alternating training.

``model`` (timm ResNet-18 with channel-group MoE convolutions and hard top-1 routers),
``attacks`` (FGSM, PGD, TRADES-KL, router-only; torch only), ``training`` (dense TRADES,
joint TRADES, AdvMoE alternating steps), ``evaluate`` (clean and robust accuracy, FLOPs,
latency, expert usage) and ``system`` (the CLI's functions).
"""

# ``moesuite.vision.systems`` imports every ``<system>.system`` module when it is imported; a
# direct ``import moesuite.vision.advmoe.system`` must therefore let it start first, or that
# import would meet this package's ``system`` module half-initialised (circular import).
import moesuite.vision.systems  # noqa: E402, F401
