"""One contract, two engines: the transformers backend and the vLLM backend (on a fake vLLM that
enforces vLLM's own argument checks, ``fake_vllm.py``) run through the same assertions."""

from __future__ import annotations

import pytest

from in2x_cli.backends import SamplingParams, load_backend
from tests.backends import fake_vllm

CONVS = [
    [{"role": "user", "content": "Translate into Japanese: The cat sleeps."}],
    [{"role": "user", "content": "こんにちは"}],
]


@pytest.fixture(scope="module")
def model_dir(tiny_model_warm, tmp_path_factory):
    """The warm tiny model, whose generation config also ends a completion at the token greedy
    decoding emits 6th for the first conversation (the tiny model never ends its turns by itself):
    both engines must stop there and leave the token out."""
    import json
    import shutil

    out = tmp_path_factory.mktemp("contract") / "model"
    shutil.copytree(tiny_model_warm, out)
    probe = load_backend("transformers", str(out))
    stop_at = probe.chat(CONVS[:1], SamplingParams(temperature=0.0, max_tokens=8))[0][0].token_ids[5]
    gen = json.loads((out / "generation_config.json").read_text())
    gen["eos_token_id"] = [*gen["eos_token_id"], stop_at]
    (out / "generation_config.json").write_text(json.dumps(gen))
    return out


@pytest.fixture(scope="module")
def hf(model_dir):
    return load_backend("transformers", str(model_dir), batch_size=4)


@pytest.fixture
def vllm(model_dir, monkeypatch):
    fake_vllm.install(monkeypatch)
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    return load_backend("vllm", str(model_dir), gpu_memory_utilization=0.3)


@pytest.fixture(params=["transformers", "vllm"])
def engine(request, hf):
    return hf if request.param == "transformers" else request.getfixturevalue("vllm")


def test_greedy_n_copies(engine, hf):
    out = engine.chat(CONVS, SamplingParams(n=3, temperature=0.0, max_tokens=24, logprobs=True))
    assert [len(x) for x in out] == [3, 3]
    assert all(len({tuple(c.token_ids) for c in comps}) == 1 for comps in out)
    # the same tokens, text, log-probabilities and finish reasons as the transformers backend
    ref = hf.chat(CONVS, SamplingParams(n=3, temperature=0.0, max_tokens=24, logprobs=True))
    assert [[(c.token_ids, c.text, c.finish_reason) for c in x] for x in out] == [[(c.token_ids, c.text, c.finish_reason) for c in x] for x in ref]
    assert out[0][0].logprobs == pytest.approx(ref[0][0].logprobs, abs=1e-4)


def test_ends_at_the_end_of_turn_token_without_returning_it(engine):
    c = engine.chat(CONVS[:1], SamplingParams(temperature=0.0, max_tokens=50, logprobs=True))[0][0]
    assert c.finish_reason == "stop" and len(c.token_ids) == len(c.logprobs) == 5
    assert c.text == engine.tokenizer.decode(c.token_ids, skip_special_tokens=True)


def test_max_tokens_is_what_was_asked(engine):
    out = engine.chat(CONVS, SamplingParams(temperature=0.0, max_tokens=40, stop=()))
    assert all(len(x[0].token_ids) <= 40 for x in out)
    assert any(len(x[0].token_ids) > fake_vllm.VLLM_DEFAULT_MAX_TOKENS for x in out) or all(x[0].finish_reason == "stop" for x in out)
    short = engine.chat(CONVS, SamplingParams(temperature=0.0, max_tokens=3))
    assert all(len(x[0].token_ids) == 3 and x[0].finish_reason == "length" for x in short)


def test_stop_strings_cut_text_and_tokens(engine, hf):
    full = hf.chat(CONVS[:1], SamplingParams(temperature=0.0, max_tokens=30))[0][0].text
    stop = full.strip()[3:6]
    assert stop
    c = engine.chat(CONVS[:1], SamplingParams(temperature=0.0, max_tokens=30, stop=(stop,)))[0][0]
    assert stop not in c.text and full.startswith(c.text) and c.finish_reason == "stop"
    assert len(c.token_ids) < len(hf.tokenizer(full, add_special_tokens=False)["input_ids"]) + 1


def test_samples_are_seeded_per_request(engine):
    params = SamplingParams(n=2, temperature=1.0, max_tokens=10, seed=5)
    a = engine.chat(CONVS, params)
    b = engine.chat(CONVS[1:], params)
    assert [c.token_ids for c in a[1]] == [c.token_ids for c in b[0]]
    assert [len(x) for x in a] == [2, 2]


def test_vllm_gets_token_ids_stop_ids_and_max_tokens(vllm):
    vllm.chat(CONVS, SamplingParams(n=4, temperature=0.0, max_tokens=7))
    engine = fake_vllm.LLM.instances[-1]
    tok = vllm.tokenizer
    for ids, sp in engine.requests:
        assert ids[0] != tok.convert_tokens_to_ids(fake_vllm.BOS_FOR_STRINGS)  # no second BOS
        assert ids == tok(tok.decode(ids), add_special_tokens=False)["input_ids"]
        assert sp.n == 1 and sp.max_tokens == 7
        assert tok.convert_tokens_to_ids("<|im_end|>") in sp.stop_token_ids


def test_vllm_engine_per_rank_under_a_launcher(model_dir, monkeypatch):
    fake_vllm.install(monkeypatch)
    monkeypatch.setenv("WORLD_SIZE", "8")
    monkeypatch.setenv("RANK", "5")
    load_backend("vllm", str(model_dir), gpu_memory_utilization=0.3, seed=1)
    kw = fake_vllm.LLM.instances[-1].kwargs
    assert kw["distributed_executor_backend"] == "external_launcher" and kw["seed"] == 6


def test_fake_rejects_what_vllm_rejects():
    with pytest.raises(ValueError, match="n must be 1 when using greedy sampling"):
        fake_vllm.SamplingParams(n=2, temperature=0.0)
    assert fake_vllm.SamplingParams().max_tokens == 16
    with pytest.raises(TypeError):
        fake_vllm.SamplingParams(max_new_tokens=5)
