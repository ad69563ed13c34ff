"""PatchTST (Nie et al., ICLR 2023) as the dense ablation of MoHETS.

The same RevIN, patching, patch embedding and pre-norm self-attention encoder as
:class:`~moesuite.timeseries.models.mohets.MoHETS`, with PatchTST's dense GELU FFN instead of
the MoHE layer, its flatten head (``N * d_model * H`` weights) instead of the lookback experts,
and no covariates: the two models differ exactly in what MoHETS adds.

Examples:
    >>> from moesuite.timeseries.models import create_model
    >>> m = create_model("patchtst", n_channels=2, lookback=48, horizon=12, d_model=16)
    >>> type(m).__name__, m.get_config()["ffn"], m.get_config()["head"]
    ('MoHETS', 'dense', 'flatten')
"""

from moesuite.timeseries.models._base import MODELS
from moesuite.timeseries.models.mohets import MoHETS

MODELS.register(
    "patchtst",
    MoHETS,
    help="PatchTST: the MoHETS encoder with a dense FFN, flatten head, no covariates",
    ffn="dense",
    head="flatten",
    covariates=False,
)
