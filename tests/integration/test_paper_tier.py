"""The paper tier without the network: any HF causal LM by path, TOFU-shaped local files, the
official recipe presets, bf16, gradient checkpointing and gradient accumulation.

"Any HF causal LM" is exercised with a tiny randomly initialised ``LlamaForCausalLM`` and the
benchmark-trained BPE tokenizer, saved with ``save_pretrained`` and loaded back by path -- the same
code path as ``get_tier("paper", base_model="microsoft/phi-1_5")`` online.
"""

from __future__ import annotations

import json
from dataclasses import replace

import datasets
import pytest
import torch

from satimp_lab.models.build import (benchmark_texts, build_tiny_model, get_tier, load_hf_model, pretrained_bundle,
                                     prompt_format_for, train_tokenizer)
from satimp_lab.models.cache import get_model
from satimp_lab.tiers import ArchConfig, PAPER_LR, TrainConfig
from satimp_lab.unlearning.loop import unlearn
from satimp_lab.unlearning.run import PRESETS, UnlearnConfig

FAST_TRAIN = TrainConfig(epochs=3, lr=3e-3, batch_size=16, warmup_ratio=0.2, stop_key_accuracy=None)


@pytest.fixture(scope="module")
def tiny_hf_path(tmp_path_factory, small_benchmark):
    """A tiny random Llama + tokenizer saved like any Hugging Face checkpoint."""
    texts = benchmark_texts([small_benchmark["full"].to_list()])
    tokenizer = train_tokenizer(texts, 512)
    model = build_tiny_model(ArchConfig(n_layers=1, hidden_size=64, n_heads=2, intermediate_size=256,
                                        vocab_size=512, max_length=256), tokenizer, seed=1)
    path = tmp_path_factory.mktemp("hf") / "tiny-llama"
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def _write_tofu(folder, n_authors=5, qa=20):
    """A local stand-in for locuslab/TOFU (config names and fields of the real one)."""
    def rows(start, stop, perturbed):
        out = []
        for i in range(start, stop):
            row = {"question": f"What did author {i // qa} write in year {i}?",
                   "answer": f"Author {i // qa} wrote book {i * 7 % 97} in {1900 + i}."}
            if perturbed:
                row.update(paraphrased_question=row["question"], paraphrased_answer=row["answer"],
                           perturbed_answer=[f"Author {i // qa} wrote book {k}." for k in (1, 2, 3)])
            out.append(row)
        return out

    n = n_authors * qa
    configs = {"full": rows(0, n, False), "forget10": rows(n - n // 10, n, False),
               "forget10_perturbed": rows(n - n // 10, n, True),
               "retain90": rows(0, n - n // 10, False), "holdout10": rows(n, n + qa, False),
               "world_facts_perturbed": [{"question": "What is the capital of France?",
                                          "answer": "Paris.", "perturbed_answer": ["Rome.", "Oslo."]}]}
    for name, content in configs.items():
        (folder / f"{name}.json").write_text("".join(json.dumps(r) + "\n" for r in content))
    return folder


# ----------------------------------------------------------------------------------------------
# tier and recipe


def test_prompt_format_per_family():
    assert prompt_format_for("microsoft/phi-1_5") == "qa"
    assert prompt_format_for("NousResearch/Llama-2-7b-chat-hf") == "llama2"
    assert prompt_format_for("meta-llama/Llama-2-7b-hf") == "llama2"
    assert prompt_format_for("HuggingFaceTB/SmolLM2-135M-Instruct") == "chat"
    assert prompt_format_for("/some/local/checkpoint") == "qa"


def test_paper_tier_needs_a_base_model_and_picks_the_official_recipe():
    with pytest.raises(ValueError, match="base_model"):
        get_tier("paper")
    phi = get_tier("paper", base_model="microsoft/phi-1_5")
    llama = get_tier("paper", base_model="NousResearch/Llama-2-7b-chat-hf")
    assert (phi.prompt_format, phi.train.lr) == ("qa", 2e-5)
    assert (llama.prompt_format, llama.train.lr) == ("llama2", 1e-5)
    for tier in (phi, llama):  # TOFU fine-tuning: 5 epochs, batch 32, warm-up 1 epoch, wd 0
        assert tier.dtype == "float32"  # fp32 weights; bf16 compute via mixed precision
        assert tier.train.epochs == 5 and tier.train.batch_size == 32
        assert tier.train.warmup_ratio == pytest.approx(1 / 5) and tier.train.weight_decay == 0.0
    # explicit choices win over the guesses
    custom = get_tier("paper", base_model="microsoft/phi-1_5", prompt_format="llama2", dtype="bfloat16")
    assert custom.prompt_format == "llama2" and custom.train.lr == PAPER_LR["llama2"]
    assert custom.dtype == "bfloat16"


def test_unlearning_presets_match_the_official_recipe():
    """docs/methods.md#training-recipes: lr 1e-5 (Llama-2-7B) / 2e-5 (Phi-1.5), 5 epochs, effective batch 16, warm-up one
    epoch, bf16, weight decay 0, clipping at 1."""
    for name, lr in (("paper", 1e-5), ("paper_phi", 2e-5)):
        c = PRESETS[name]
        assert c.lr == lr and c.epochs == 5 and c.warmup_epochs == 1
        assert c.batch_size * c.gradient_accumulation_steps == 16
        assert c.mixed_precision == "bf16" and c.weight_decay == 0 and c.max_grad_norm == 1


# ----------------------------------------------------------------------------------------------
# any HF causal LM by path, on TOFU-shaped files


def test_load_any_hf_model_by_path(tiny_hf_path):
    model, tokenizer = load_hf_model(str(tiny_hf_path))
    assert type(model).__name__ == "LlamaForCausalLM" and tokenizer.eos_token_id is not None
    bf16, _ = load_hf_model(str(tiny_hf_path), dtype="bfloat16")
    assert next(bf16.parameters()).dtype == torch.bfloat16
    ids = tokenizer("Question: Hi?\nAnswer:", return_tensors="pt")["input_ids"]
    assert torch.isfinite(bf16(input_ids=ids).logits.float()).all()


def test_paper_tier_on_tofu_files(tiny_hf_path, tmp_path, session_cache):
    from satimp_lab.data.benchmark import load_benchmark

    bench = load_benchmark("tofu", splits=["full", "forget10", "retain90"],
                           data_dir=_write_tofu(tmp_path))
    tier = get_tier("paper", base_model=str(tiny_hf_path), train=FAST_TRAIN)
    assert tier.prompt_format == "qa"
    target = get_model(bench, "target", tier=tier, progress=False)
    assert not target.from_cache and target.report["epochs"] == 3
    again = get_model(bench, "target", tier=tier, progress=False)
    assert again.from_cache
    assert all(torch.equal(a, b) for a, b in zip(again.model.state_dict().values(),
                                                target.model.state_dict().values()))

    # the official recipe, shortened, on a CPU: no bf16 autocast here
    config = replace(PRESETS["paper_phi"], mixed_precision="no", steps=2, method="satimp",
                     forget_split="forget10")
    run = unlearn(target, bench, config, progress=False)
    assert run.status == "completed" and len(run.history) == 2
    assert set(run.trace_frame["example_id"]) == set(bench["forget10"]["qa_id"])

    # gradient checkpointing recomputes activations: the same numbers on CPU
    ckpt = unlearn(target, bench, replace(config, gradient_checkpointing=True), progress=False)
    assert torch.allclose(torch.as_tensor(ckpt.trace.columns()["logp"]),
                          torch.as_tensor(run.trace.columns()["logp"]), atol=1e-5)


def test_pretrained_bundle_wraps_a_finetuned_checkpoint(tiny_hf_path, small_benchmark):
    bundle = pretrained_bundle(str(tiny_hf_path))
    assert bundle.tier.name == "paper" and bundle.tier.prompt_format == "qa" and bundle.kind == "target"
    run = unlearn(bundle, small_benchmark, UnlearnConfig(method="ga", steps=1, eval_every=None),
                  progress=False)
    assert run.status == "completed"


def test_llama2_format_encodes_with_any_tokenizer(tiny_hf_path, small_benchmark):
    from satimp_lab.data.batching import IGNORE_INDEX, encode_example

    _, tokenizer = load_hf_model(str(tiny_hf_path))
    row = small_benchmark["full"][0]
    enc = encode_example(tokenizer, row["question"], row["answer"], row["key_spans"], "llama2")
    answer = [t for t, l in zip(enc["input_ids"], enc["labels"]) if l != IGNORE_INDEX]
    assert tokenizer.decode(answer[:-1]).strip() == row["answer"] and answer[-1] == tokenizer.eos_token_id
    assert tokenizer.decode(enc["input_ids"][1:]).startswith(f"[INST] {row['question']} [/INST]")


# ----------------------------------------------------------------------------------------------
# gradient accumulation


class _RecordingAdamW(torch.optim.AdamW):
    """AdamW that keeps a copy of the gradients it is first asked to apply."""

    first_grads = None

    def step(self, closure=None):
        if _RecordingAdamW.first_grads is None:
            _RecordingAdamW.first_grads = [p.grad.detach().clone() for g in self.param_groups
                                           for p in g["params"] if p.grad is not None]
        return super().step(closure)


def _first_gradient(monkeypatch, target, bench, batch_size, accumulation):
    _RecordingAdamW.first_grads = None
    monkeypatch.setattr(torch.optim, "AdamW", _RecordingAdamW)
    config = UnlearnConfig(method="ga", forget_split="forget10", steps=1, batch_size=batch_size,
                           gradient_accumulation_steps=accumulation, max_grad_norm=0.0,
                           eval_every=None, trace=False)
    unlearn(target, bench, config, progress=False)
    return torch.cat([g.flatten() for g in _RecordingAdamW.first_grads])


def _forget_set(target, benchmark, counts_wanted):
    """8 rows as the forget split, chosen by their answer-token count; the retain split as is."""
    from satimp_lab.data.batching import IGNORE_INDEX, encode_example

    rows = benchmark["full"].to_list() + benchmark["holdout"].to_list()
    by_count = {}
    for r in rows:
        enc = encode_example(target.tokenizer, r["question"], r["answer"], r["key_spans"])
        by_count.setdefault(sum(l != IGNORE_INDEX for l in enc["labels"]), []).append(r)
    chosen = []
    for count, k in counts_wanted(by_count):
        chosen += by_count[count][:k]
    assert len(chosen) == 8
    forget = datasets.Dataset.from_list(chosen, features=benchmark["full"].features)
    return datasets.DatasetDict({"forget10": forget, "retain90": benchmark["retain90"]})


def test_gradient_accumulation_matches_one_big_batch_for_equal_token_counts(
        monkeypatch, micro_target, small_benchmark):
    """2 micro-batches of 4 accumulated == one batch of 8, for plain GA, when every forget example
    has the same number of answer tokens.

    Why the condition: the GA loss is a token mean per micro-batch, F_k = (1/N_k) sum_t logp_t, and
    accelerate averages the micro-batch losses, so the accumulated gradient is
    (1/2)(g_1/N_1 + g_2/N_2), while one batch gives (g_1 + g_2)/(N_1 + N_2). They agree iff
    N_1 = N_2, which equal answer lengths guarantee whatever the shuffle puts in each micro-batch.
    Adam's first update is ~lr * sign(gradient) and would hide scale errors, so the test compares
    the gradient handed to the optimiser (no clipping), not the update.
    """
    def equal(by_count):
        count = max((c for c in by_count if len(by_count[c]) >= 8), key=lambda c: len(by_count[c]))
        return [(count, 8)]

    bench = _forget_set(micro_target, small_benchmark, equal)
    one = _first_gradient(monkeypatch, micro_target, bench, batch_size=8, accumulation=1)
    two = _first_gradient(monkeypatch, micro_target, bench, batch_size=4, accumulation=2)
    assert one.abs().sum() > 0
    torch.testing.assert_close(two, one, rtol=1e-4, atol=1e-7)


def test_gradient_accumulation_differs_for_unequal_token_counts(monkeypatch, micro_target, small_benchmark):
    """The documented caveat: with 7 short answers and 1 much longer one, N_1 != N_2 in any split,
    so the accumulated gradient is a mean of per-micro-batch token means and differs."""
    def unequal(by_count):
        counts = sorted(by_count)
        short = max((c for c in counts if len(by_count[c]) >= 7), key=lambda c: len(by_count[c]))
        return [(short, 7), (max(counts), 1)]

    bench = _forget_set(micro_target, small_benchmark, unequal)
    one = _first_gradient(monkeypatch, micro_target, bench, batch_size=8, accumulation=1)
    two = _first_gradient(monkeypatch, micro_target, bench, batch_size=4, accumulation=2)
    assert (two - one).norm() > 1e-3 * one.norm()
