"""moesuite.vision: ProMoE (diffusion), MoFME (all-weather restoration), AdvMoE (robust MoE-CNNs).

Each system is a subpackage with ``model.py``, ``training.py`` and ``evaluate.py``; what more
than one system uses lives in ``data/`` (MNIST, scikit-learn digits, image folders) and ``nn/``.
The command line is ``moesuite vision train | eval | compare | list | sample | restore | attack``.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("moesuite-vision")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0"

__all__ = ["__version__"]
