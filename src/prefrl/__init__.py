"""prefrl — learning from preferences.

Preference models (Bradley–Terry, generative, pairwise, policy-aware) behind one interface, and the
recipes that train them and align policies with them. See DESIGN.md for the layers:
data → rollout → preference scoring → objectives → engine step.
"""

__version__ = "0.1.0"

from prefrl.errors import PrefrlError  # noqa: E402

__all__ = ["PrefrlError", "__version__"]
