import os
import sys
from pathlib import Path

import pytest

# Tests run against the source tree even without `pip install -e .`.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# The policy recipes default to bf16 autocast where the CPU has bf16 units; tests pin fp32 so their
# numbers are the same on every machine (a test that wants bf16 asks for it).
os.environ["PREFRL_DEFAULT_BF16"] = "0"

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def tiny_name() -> str:
    return "tiny"


def write_jsonl(path: Path, rows: list) -> Path:
    import json

    path.write_text("".join((row if isinstance(row, str) else json.dumps(row)) + "\n" for row in rows))
    return path


@pytest.fixture(autouse=True)
def fresh_accelerator_state():
    """accelerate keeps one mixed-precision setting per process: reset it so each test's run gets
    the precision its config asks for, whatever ran before it."""
    yield
    from accelerate.state import AcceleratorState

    AcceleratorState._reset_state()
