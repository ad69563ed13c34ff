"""moesuite-physics: EvidenceMoE for fluorescence LiDAR and MixER for families of ODEs.

Layout (one subpackage per system, each with ``model.py``, ``training.py``, ``evaluate.py``):

* :mod:`~moesuite.physics.data`: the FLiDAR simulator (:mod:`~moesuite.physics.data.flidar`)
  and the ODE families and datasets (:mod:`~moesuite.physics.data.odes`, also importable as
  :mod:`moesuite.physics.odes`);
* :mod:`~moesuite.physics.evidence`: EvidenceMoE and its baselines;
* :mod:`~moesuite.physics.mixer`: MixER and its baselines;
* :mod:`~moesuite.physics.cli` (``moesuite physics``) and :mod:`~moesuite.physics.demo` (its
  rows of ``moesuite demo``).
"""
