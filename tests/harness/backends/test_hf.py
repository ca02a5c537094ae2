"""HFGenerator on a real (untrained) tiny Llama built locally."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.backends.base import GenerationRequest, Message, SamplingParams, sha256_hex
from harness.backends.hf import HFGenerator, weights_digest_of_dir
from harness.errors import BackendError
from trainers.tiny import EOM, PYTHON_TAG


def _requests(max_tokens: int = 12) -> list[GenerationRequest]:
    sp = SamplingParams(max_tokens=max_tokens)
    reqs = [
        GenerationRequest(request_id=f"p{i}", prompt="def f" + "x" * i + "(a):", sampling=sp)
        for i in range(7)
    ]
    reqs += [
        GenerationRequest(
            request_id=f"c{i}",
            messages=(Message(role="user", content="hello " * (i + 1)),),
            sampling=sp,
        )
        for i in range(4)
    ]
    return reqs


def test_greedy_results_do_not_depend_on_batch_size(hf_generator: HFGenerator) -> None:
    reqs = _requests()
    outputs = {}
    for bs in (1, 3, 8):
        hf_generator.batch_size = bs
        outputs[bs] = [g.texts for g in hf_generator.generate(reqs)]
    hf_generator.batch_size = 4
    assert outputs[1] == outputs[3] == outputs[8]
    assert len({t for texts in outputs[1] for t in texts}) > 1  # not a constant output


def test_sampling_is_seeded_per_request_and_independent_of_batch(
    hf_generator: HFGenerator,
) -> None:
    sp = SamplingParams(temperature=1.0, n=4, seed=7, max_tokens=10)
    req = GenerationRequest(request_id="s", prompt="def", sampling=sp)
    alone = hf_generator.generate([req])[0]
    mixed = hf_generator.generate([*_requests()[:3], req])[-1]
    assert alone.texts == mixed.texts
    assert len(alone.texts) == 4 and len(set(alone.texts)) > 1
    other = hf_generator.generate(
        [req.model_copy(update={"sampling": sp.model_copy(update={"seed": 8})})]
    )[0]
    assert other.texts != alone.texts


def test_tiny_top_p_equals_greedy(hf_generator: HFGenerator) -> None:
    greedy = GenerationRequest(request_id="g", prompt="def", sampling=SamplingParams(max_tokens=8))
    nucleus = greedy.model_copy(
        update={"sampling": SamplingParams(max_tokens=8, temperature=1.0, top_p=1e-6, n=2)}
    )
    g, s = hf_generator.generate([greedy, nucleus])
    assert s.texts == (g.text, g.text)


def test_greedy_n_samples_are_replicated(hf_generator: HFGenerator) -> None:
    req = GenerationRequest(
        request_id="g", prompt="x = ", sampling=SamplingParams(n=3, max_tokens=5)
    )
    gen = hf_generator.generate([req])[0]
    assert len(gen.texts) == 3 and len(set(gen.texts)) == 1
    assert gen.finish_reasons == ("length",) * 3 or "stop" in gen.finish_reasons


def test_generation_carries_identity_latency_and_counts(
    hf_generator: HFGenerator, tiny_model_dir: Path
) -> None:
    gen = hf_generator.generate(_requests(max_tokens=6)[:2])[0]
    ident = gen.model
    assert ident.backend == "hf" and ident.fully_pinned
    assert ident.weights_digest == weights_digest_of_dir(tiny_model_dir)
    assert ident.chat_template_digest == sha256_hex(hf_generator.tokenizer.chat_template)
    assert ident.dtype == "float32"
    assert gen.latency.total_s > 0
    assert gen.latency.ttft_s is not None and 0 < gen.latency.ttft_s <= gen.latency.total_s
    assert gen.prompt_tokens and gen.prompt_tokens > 0
    assert gen.completion_tokens[0] <= 6
    assert gen.lane == "real" and not gen.cached


def test_max_tokens_gives_length_finish(hf_generator: HFGenerator) -> None:
    reqs = _requests(max_tokens=3)
    for gen in hf_generator.generate(reqs):
        if gen.finish_reasons[0] == "length":
            assert gen.completion_tokens == (3,)
        else:
            assert gen.completion_tokens[0] <= 3


def test_stop_string_cuts_the_text(hf_generator: HFGenerator) -> None:
    base = GenerationRequest(
        request_id="a", prompt="def f(a):", sampling=SamplingParams(max_tokens=12)
    )
    full = hf_generator.generate([base])[0].text
    stop = full[4:6]
    assert stop and stop not in full[:4]
    cut = hf_generator.generate(
        [base.model_copy(update={"sampling": SamplingParams(max_tokens=12, stop=(stop,))})]
    )[0]
    assert cut.text == full[: full.find(stop)]
    assert cut.finish_reasons == ("stop",)


def test_tool_call_stop_token_is_kept(hf_generator: HFGenerator) -> None:
    tok = hf_generator.tokenizer
    ids = tok(PYTHON_TAG + '{"name": "f", "parameters": {}}' + EOM, add_special_tokens=False)[
        "input_ids"
    ]
    row = hf_generator._decode(ids + [tok.pad_token_id] * 3, max_tokens=50, stop=())
    assert row.text == PYTHON_TAG + '{"name": "f", "parameters": {}}' + EOM
    assert row.finish == "tool_call" and row.tokens == len(ids)


def test_chat_template_renders_tool_calls_and_rejects_nothing_valid(
    hf_generator: HFGenerator,
) -> None:
    from harness.backends.base import ToolCall

    req = GenerationRequest(
        request_id="t",
        messages=(
            Message(role="user", content="weather?"),
            Message(role="assistant", tool_calls=(ToolCall(name="w", arguments={"c": "P"}),)),
            Message(role="tool", content="21C"),
        ),
        tools=({"type": "function", "function": {"name": "w"}},),
    )
    text = hf_generator.tokenizer.decode(hf_generator.render(req))
    assert PYTHON_TAG + '{"name": "w", "parameters": {"c": "P"}}' + EOM in text
    assert text.endswith("<|start_header_id|>assistant<|end_header_id|>\n\n")


def test_missing_template_and_pad_are_clear_errors(hf_generator: HFGenerator) -> None:
    import copy

    tok = copy.deepcopy(hf_generator.tokenizer)
    tok.chat_template = None
    gen = HFGenerator(hf_generator.model, tok, name="no-template", weights_digest="x")
    with pytest.raises(BackendError, match="no chat template; send prompt="):
        gen.generate(
            [GenerationRequest(request_id="m", messages=(Message(role="user", content="hi"),))]
        )
    tok.pad_token = None
    with pytest.raises(BackendError, match="no pad token"):
        HFGenerator(hf_generator.model, tok, name="no-pad", weights_digest="x")


def test_from_pretrained_rejects_non_model_dir(tmp_path: Path) -> None:
    with pytest.raises(BackendError, match=r"no config\.json"):
        HFGenerator.from_pretrained(tmp_path)


def test_in_memory_weights_digest_tracks_parameters(hf_generator: HFGenerator) -> None:
    import copy

    import torch

    model = copy.deepcopy(hf_generator.model)
    first = HFGenerator(model, hf_generator.tokenizer, name="mem").identity.weights_digest
    again = HFGenerator(model, hf_generator.tokenizer, name="mem").identity.weights_digest
    with torch.no_grad():
        next(model.parameters())[0, 0] += 1.0
    changed = HFGenerator(model, hf_generator.tokenizer, name="mem").identity.weights_digest
    assert first == again != changed
