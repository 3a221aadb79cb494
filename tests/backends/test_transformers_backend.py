import math

import pytest
import torch

from in2x_cli.backends import SamplingParams, load_backend
from in2x_cli.backends.base import tokens_covering
from in2x_cli.errors import UserError


@pytest.fixture(scope="module")
def backend(tiny_model):
    return load_backend("transformers", str(tiny_model), batch_size=4)


CONVS = [
    [{"role": "user", "content": "Translate into Japanese: The cat sleeps."}],
    [{"role": "user", "content": "こんにちは"}],
    [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "What is 2 + 3? Answer with a number only, please, thanks."}],
]


def test_n_samples_with_logprobs(backend):
    params = SamplingParams(n=3, temperature=1.0, max_tokens=12, seed=1, logprobs=True)
    out = backend.chat(CONVS, params)
    assert [len(x) for x in out] == [3, 3, 3]
    for comps in out:
        for c in comps:
            assert c.logprobs is not None and len(c.logprobs) == len(c.token_ids) <= 12
            assert all(lp <= 0 for lp in c.logprobs)
            assert c.finish_reason in ("stop", "length")
        assert len({tuple(c.token_ids) for c in comps}) > 1  # different samples


def test_logprobs_match_a_teacher_forced_forward_pass(backend):
    """The reported per-token logprobs are the model's raw log-softmax at each generated token."""
    params = SamplingParams(n=1, temperature=1.0, max_tokens=8, seed=3, logprobs=True)
    comp = backend.chat(CONVS[:1], params)[0][0]
    prompt_ids = backend.tokenizer(backend.chat_prompt(CONVS[0]), add_special_tokens=False)["input_ids"]
    ids = torch.tensor([prompt_ids + comp.token_ids])
    with torch.no_grad():
        logits = backend.model(input_ids=ids).logits[0].float()
    logp = torch.log_softmax(logits, -1)
    expected = [logp[len(prompt_ids) - 1 + i, t].item() for i, t in enumerate(comp.token_ids)]
    assert comp.logprobs == pytest.approx(expected, abs=1e-4)


def test_samples_do_not_depend_on_batch_composition(backend):
    params = SamplingParams(n=2, temperature=0.8, top_p=0.9, max_tokens=10, seed=7)
    together = backend.chat(CONVS, params)
    alone = backend.chat(CONVS[1:2], params)
    assert [c.token_ids for c in together[1]] == [c.token_ids for c in alone[0]]
    again = backend.chat(CONVS, params)
    assert [[c.text for c in x] for x in again] == [[c.text for c in x] for x in together]


def test_greedy_returns_n_identical_copies(backend):
    out = backend.chat(CONVS[:1], SamplingParams(n=2, temperature=0.0, max_tokens=6))
    assert out[0][0].token_ids == out[0][1].token_ids


def test_stop_strings_cut_the_text(backend):
    params = SamplingParams(n=1, temperature=0.0, max_tokens=20)
    full = backend.chat(CONVS[:1], params)[0][0].text
    assert len(full) > 3
    stop = full[2:4]
    cut = backend.chat(CONVS[:1], SamplingParams(n=1, temperature=0.0, max_tokens=20, stop=(stop,)))[0][0]
    assert stop not in cut.text and full.startswith(cut.text) and cut.finish_reason == "stop"


def test_stop_strings_trim_token_ids_and_logprobs_to_the_kept_text(backend):
    """A stop string drops the tokens that spelled it, with their logprobs: the completion's
    token_ids are the shortest prefix of the uncut generation that decodes to the kept text."""
    params = SamplingParams(n=1, temperature=1.0, max_tokens=20, seed=3, logprobs=True)
    full = backend.chat(CONVS[:1], params)[0][0]  # (the untrained model's greedy text is all newlines)
    ids = full.token_ids
    decode = lambda t: backend.tokenizer.decode(t, skip_special_tokens=True)  # noqa: E731
    # a stop string made of two whole tokens that starts at a clean token boundary
    j = next(j for j in range(1, len(ids) - 2)
             if decode(ids[:j]) and full.text.find(decode(ids[j : j + 2])) == len(decode(ids[:j])) and decode(ids[:j]) == full.text[: len(decode(ids[:j]))])
    stop = decode(ids[j : j + 2])
    cut = backend.chat(CONVS[:1], SamplingParams(n=1, temperature=1.0, max_tokens=20, seed=3, logprobs=True, stop=(stop,)))[0][0]
    assert cut.text == decode(ids[:j]) and cut.finish_reason == "stop"
    assert cut.token_ids == ids[:j]
    assert cut.logprobs == full.logprobs[:j]
    assert decode(cut.token_ids) == cut.text


def test_tokens_covering_keeps_a_token_that_straddles_the_stop_string():
    pieces = ["ab", "c|", "de", "|f"]
    decode = lambda t: "".join(pieces[i] for i in t)  # noqa: E731
    tokens = [0, 1, 2, 3]
    assert tokens_covering(tokens, "abc", decode) == 2  # "c|" made the kept "c": kept, "de|f" dropped
    assert tokens_covering(tokens, "ab", decode) == 1
    assert tokens_covering(tokens, "", decode) == 0  # the stop string opened the completion
    assert tokens_covering(tokens, "abc|de|f", decode) == 4


def test_prompt_beyond_context_is_a_user_error(tiny_model):
    b = load_backend("transformers", str(tiny_model), max_model_len=16)
    with pytest.raises(UserError, match="context"):
        b.chat([[{"role": "user", "content": "word " * 50}]], SamplingParams(max_tokens=4))


def test_unknown_backend_and_missing_model():
    with pytest.raises(UserError, match="unknown backend"):
        load_backend("nope", "x")
    with pytest.raises(UserError, match="directory not found"):
        load_backend("transformers", "/does/not/exist")


def test_vllm_backend_agrees_with_transformers_greedy(tiny_model, backend):
    pytest.importorskip("vllm", reason="vLLM is the GPU extra; not installed on CPU machines")
    if not torch.cuda.is_available():
        pytest.skip("vLLM needs a GPU")
    v = load_backend("vllm", str(tiny_model), dtype="float32", gpu_memory_utilization=0.3, enforce_eager=True)
    params = SamplingParams(n=2, temperature=0.0, max_tokens=8, logprobs=True)
    ours, theirs = backend.chat(CONVS, params), v.chat(CONVS, params)
    assert [[c.token_ids for c in x] for x in ours] == [[c.token_ids for c in x] for x in theirs]
    assert theirs[0][0].logprobs == pytest.approx(ours[0][0].logprobs, abs=1e-3)


def test_cumulative_logprob(backend):
    c = backend.chat(CONVS[:1], SamplingParams(max_tokens=5, logprobs=True))[0][0]
    assert math.isclose(c.cumulative_logprob, sum(c.logprobs))
