"""The physics domain's data: built-in generators and readers of the formats people have.

* :mod:`~moesuite.physics.data.flidar`: the fluorescence-LiDAR photon-transport simulator
  (TCSPC histograms of a fluorescent inclusion in tissue) and its ``.npz`` reader/writer, for
  EvidenceMoE;
* :mod:`~moesuite.physics.data.odes` (also :mod:`moesuite.physics.odes`): the parametric ODE
  families, their registry, the multi-environment dataset generator and its ``.npz`` format,
  for MixER.
"""
