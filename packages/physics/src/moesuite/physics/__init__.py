"""moesuite-physics: EvidenceMoE for fluorescence LiDAR and MixER for families of ODEs.

Subpackages: :mod:`~.flidar` (photon-transport simulator), :mod:`~.evidence` (EvidenceMoE and
baselines), :mod:`~.odes` (parametric ODE families), :mod:`~.mixer` (MixER and baselines);
:mod:`~.cli` is ``moesuite physics``.
"""
