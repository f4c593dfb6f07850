"""Pure tensor functions: every loss, weight and advantage. No models, no I/O.

Each returns `(loss, stats)` (or the tensor it computes) and carries its paper equation.
"""

from prefrl.objectives.bradley_terry import bradley_terry_loss

__all__ = ["bradley_terry_loss"]
