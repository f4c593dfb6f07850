"""prefrl — learning from preferences.

Preference models (Bradley–Terry, generative, pairwise, policy-aware) behind one interface, and the
recipes that train them and align policies with them. See DESIGN.md for the layers:
data → rollout → preference scoring → objectives → engine step.
"""

__version__ = "0.1.0"

# Before anything imports torch: idle OpenMP threads sleep instead of spinning (engine/threads.py).
from prefrl.engine.threads import set_passive_wait_policy  # noqa: E402

set_passive_wait_policy()

from prefrl.errors import PrefrlError  # noqa: E402

__all__ = ["PrefrlError", "__version__"]
