"""``moesuite.physics.odes``: the ODE families and datasets of :mod:`moesuite.physics.data.odes`.

The domain keeps its data under :mod:`moesuite.physics.data`; this module is the short import
path the MixER side, its users and its issues name (``from moesuite.physics import odes``). It
holds nothing of its own: every name is :mod:`moesuite.physics.data.odes`'s.

Examples:
    >>> from moesuite.physics import odes
    >>> from moesuite.physics.data import odes as data_odes
    >>> odes.generate is data_odes.generate and odes.FAMILIES is data_odes.FAMILIES
    True
"""

from moesuite.physics.data import odes as _odes
from moesuite.physics.data.odes import *  # noqa: F403

__all__ = list(_odes.__all__)
