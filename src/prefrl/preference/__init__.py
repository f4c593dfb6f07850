"""Preference models behind one interface (see base.py), and loading them from a run directory."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefrl.data.tasks import is_task
from prefrl.errors import ModelNotFoundError
from prefrl.preference.base import MODEL_CARD, PointwisePreferenceModel, PreferenceModel, read_model_card
from prefrl.preference.bradley_terry import BradleyTerryModel
from prefrl.preference.dialog import DialogGPM
from prefrl.preference.gold import GoldJudge
from prefrl.preference.pairwise import PairwiseJudge
from prefrl.preference.thinking_judge import ThinkingJudge

# kind in prefrl_model.json -> class with a `load(directory, **kwargs)` classmethod
REGISTRY: dict[str, Any] = {BradleyTerryModel.kind: BradleyTerryModel, PairwiseJudge.kind: PairwiseJudge, DialogGPM.kind: DialogGPM, ThinkingJudge.kind: ThinkingJudge}


def model_directory(path: str | Path) -> Path:
    """A run directory's final model lives in `<run>/model`; a model directory is used as is."""
    path = Path(path).expanduser()
    if (path / MODEL_CARD).is_file():
        return path
    if (path / "model" / MODEL_CARD).is_file():
        return path / "model"
    if not path.exists():
        raise ModelNotFoundError(f"preference model path {str(path)!r} does not exist")
    raise ModelNotFoundError(f"{str(path)!r} is not a prefrl preference model (no {MODEL_CARD} in it or in its model/ folder)")


def load_preference_model(path: str, n_thoughts: int | None = None, **kwargs: Any) -> PreferenceModel:
    """`gold:TASK` (or a bare task name) gives the task's gold judge; otherwise a saved model directory.
    `n_thoughts` sets the dialog GPM's thoughts per response (other kinds have none)."""
    if path.startswith("gold:"):
        return GoldJudge(path.split(":", 1)[1])
    if is_task(path) and not Path(path).exists():
        return GoldJudge(path)
    directory = model_directory(path)
    card = read_model_card(directory)
    if card.get("kind") not in REGISTRY:
        raise ModelNotFoundError(f"{directory}: unknown preference model kind {card.get('kind')!r} (known: {', '.join(REGISTRY)})")
    if n_thoughts and card["kind"] == DialogGPM.kind:
        kwargs["n_thoughts"] = n_thoughts
    return REGISTRY[card["kind"]].load(directory, **kwargs)


__all__ = ["PreferenceModel", "PointwisePreferenceModel", "BradleyTerryModel", "GoldJudge", "PairwiseJudge", "DialogGPM", "load_preference_model", "REGISTRY"]
