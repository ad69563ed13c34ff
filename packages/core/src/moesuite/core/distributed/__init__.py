"""Expert parallelism on ``torch.distributed``: experts split across ranks, tokens sent to them.

- :func:`all_to_all`: an autograd-aware all-to-all of rows with variable splits.
- :class:`ExpertParallelExperts`: this rank's ``E / world`` experts behind the
  ``experts(x, plan)`` contract, so it drops into :class:`~moesuite.core.MoELayer`.
- :func:`shard_experts` / :func:`expert_block`: which experts a rank owns, cut from a full module.

Examples:
    >>> from moesuite.core.distributed import expert_block
    >>> list(expert_block(num_experts=6, rank=2, world_size=3))
    [4, 5]
"""

from moesuite.core.distributed.all_to_all import all_to_all, group_rank, group_size
from moesuite.core.distributed.expert_parallel import (
    ExpertParallelExperts,
    expert_block,
    shard_experts,
)

__all__ = [
    "ExpertParallelExperts",
    "all_to_all",
    "expert_block",
    "group_rank",
    "group_size",
    "shard_experts",
]
