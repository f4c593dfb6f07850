"""Engine.close_step: the one step ending every recipe shares (log → progress → checkpoint)."""

from types import SimpleNamespace

import pytest

from prefrl.engine.engine import Engine


class Recorder:
    """Stands in for the Engine's state and side effects: records what close_step did at each step."""

    def __init__(self, total_steps: int, logging_steps: int, save_steps: int):
        self.step, self.total_steps = 0, total_steps
        self.config = SimpleNamespace(logging_steps=logging_steps, save_steps=save_steps)
        self.logged, self.saved, self.advanced = [], [], []

    def log(self, metrics):
        self.logged.append(self.step)

    def should_save(self):
        return Engine.should_save(self)

    def save_checkpoint(self, extra_state=None):
        self.saved.append((self.step, extra_state))


@pytest.mark.parametrize("total, logging, save, logged, saved", [
    # the last step is always logged and saved, even when logging_steps / save_steps do not divide it
    (7, 3, 0, [3, 6, 7], [7]),
    (6, 2, 4, [2, 4, 6], [4, 6]),
    (4, 1, 2, [1, 2, 3, 4], [2, 4]),
])
def test_close_step_logs_every_logging_steps_and_the_last_and_checkpoints_when_due(total, logging, save, logged, saved):
    engine = Recorder(total, logging, save)
    bar = SimpleNamespace(advance=lambda metrics, keys: engine.advanced.append((engine.step, keys)))
    for _ in range(total):
        engine.step += 1
        Engine.close_step(engine, {"train/loss": 1.0}, bar, ("train/loss",), {"iteration": 1})
    assert engine.logged == logged
    assert engine.saved == [(step, {"iteration": 1}) for step in saved]
    assert [step for step, _ in engine.advanced] == list(range(1, total + 1))
