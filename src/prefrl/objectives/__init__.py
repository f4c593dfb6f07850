"""Pure tensor functions: every loss, weight and advantage. No models, no I/O.

Each returns `(loss, stats)` (or the tensor it computes) and carries its paper equation.
Modules: bradley_terry (reward models), policy (PPO / GRPO / RLOO / GAE / KL / aggregation),
dwrl (generative preference models), pairwise (the pairwise judge's verdict loss),
preference_optimization (SPPO, DPO, IPO), r2m.
"""

from prefrl.objectives.bradley_terry import bradley_terry_loss
from prefrl.objectives.dwrl import dwrl_thought_loss
from prefrl.objectives.pairwise import pairwise_verdict_loss

__all__ = ["bradley_terry_loss", "dwrl_thought_loss", "pairwise_verdict_loss"]
