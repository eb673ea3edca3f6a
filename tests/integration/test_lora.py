"""LoRA unlearning and fine-tuning through peft on tiny Hugging Face models (a Llama and a GPT-2,
whose layers are Conv1D), and the unlearned model saved as a folder that
``AutoModelForCausalLM.from_pretrained`` loads.

trl-style: the adapter's parameters moved, every base parameter stayed where it was (frozen)
until the merge, the merged model is a plain model of its class that differs from the target and
evaluates. Each test takes seconds on a CPU."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from satimp_lab.evaluation.metrics import evaluate
from satimp_lab.models import lora
from satimp_lab.models.build import (ModelBundle, benchmark_texts, build_tiny_model, get_tier,
                                     pretrained_bundle, train_tokenizer)
from satimp_lab.models.lora import default_target_modules
from satimp_lab.tiers import TrainConfig
from satimp_lab.unlearning.loop import unlearn
from satimp_lab.unlearning.run import UnlearnConfig

LORA = dict(lora_rank=4, lora_alpha=8.0, lora_dropout=0.0)
"""Dropout off: a step's update is then exactly what the test's own arithmetic expects."""


@pytest.fixture(scope="module")
def tokenizer(small_benchmark):
    return train_tokenizer(benchmark_texts([small_benchmark["full"].to_list()]), 300)


def _save(model, tokenizer, folder):
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module", params=["llama", "gpt2"])
def hf_path(request, tokenizer, tmp_path_factory):
    """A tiny random Llama or GPT-2 (a few thousand parameters) saved like any HF checkpoint."""
    from transformers import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM

    ids = dict(bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
               pad_token_id=tokenizer.pad_token_id)
    torch.manual_seed(0)
    if request.param == "llama":
        model = LlamaForCausalLM(LlamaConfig(
            vocab_size=len(tokenizer), hidden_size=16, intermediate_size=32, num_hidden_layers=1,
            num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=256, **ids))
    else:
        model = GPT2LMHeadModel(GPT2Config(vocab_size=len(tokenizer), n_positions=256, n_embd=16,
                                           n_layer=1, n_head=2, **ids))
    return _save(model, tokenizer, tmp_path_factory.mktemp("hf") / f"tiny-{request.param}")


class _Spy:
    """Wraps ``add_lora``/``merge_lora`` where a module imported them: the wrapped model's
    parameters right after wrapping and right before the merge."""

    def __init__(self, monkeypatch, module):
        self.start = self.end = self.trainable = None
        monkeypatch.setattr(module, "add_lora", self.add)
        monkeypatch.setattr(module, "merge_lora", self.merge)

    def add(self, model, *args, **kwargs):
        wrapped = lora.add_lora(model, *args, **kwargs)
        self.start = {n: p.detach().clone() for n, p in wrapped.named_parameters()}
        self.trainable = {n for n, p in wrapped.named_parameters() if p.requires_grad}
        return wrapped

    def merge(self, model):
        if lora.is_lora(model):
            self.end = {n: p.detach().clone() for n, p in model.named_parameters()}
        return lora.merge_lora(model)

    def check_adapter_moved_base_frozen(self):
        assert self.trainable and all(".lora_A." in n or ".lora_B." in n for n in self.trainable)
        assert {n for n in self.start if ".lora_" in n} == self.trainable
        for name, before in self.start.items():
            if name in self.trainable:
                assert not torch.equal(before, self.end[name]), f"adapter parameter {name} did not move"
            else:
                assert torch.equal(before, self.end[name]), f"base parameter {name} changed"


def _changed(before: dict, model) -> set[str]:
    return {n for n, p in model.state_dict().items() if not torch.equal(before[n], p)}


def _metrics(model, tokenizer, bench) -> dict:
    frame = evaluate(model, tokenizer, bench, "forget10", metrics=("es", "probability"), max_examples=4,
                     batch_size=8)
    return {(r.metric, r.role): r.value for r in frame.itertuples()}


def test_default_targets_are_every_linear_but_the_head(hf_path):
    bundle = pretrained_bundle(str(hf_path))
    if "gpt2" in hf_path.name:  # GPT-2's projections are Conv1D; its only nn.Linear is lm_head
        assert default_target_modules(bundle.model) == ("c_attn", "c_fc", "c_proj")
    else:
        assert default_target_modules(bundle.model) == ("down_proj", "gate_proj", "k_proj", "o_proj",
                                                        "q_proj", "up_proj", "v_proj")


def test_lora_unlearning_trains_the_adapter_only_and_merges(hf_path, small_benchmark, monkeypatch):
    from satimp_lab.unlearning import loop

    target = pretrained_bundle(str(hf_path))
    before = {n: p.detach().clone() for n, p in target.model.state_dict().items()}
    spy = _Spy(monkeypatch, loop)
    config = UnlearnConfig(method="simimp", steps=4, lr=1e-2, batch_size=2, eval_every=2,
                           eval_max_examples=4, **LORA)
    run = unlearn(target, small_benchmark, config, progress=False)
    assert run.status == "completed" and len(run.trace_frame) > 0
    spy.check_adapter_moved_base_frozen()

    # merged: a plain model of the target's class, trainable again, same parameter names
    assert type(run.model) is type(target.model) and not lora.is_lora(run.model)
    assert all(p.requires_grad for p in run.model.parameters())
    assert set(run.model.state_dict()) == set(before)
    changed = _changed(before, run.model)
    targets = default_target_modules(target.model)
    assert changed and all(n.split(".")[-2] in targets for n in changed)  # only adapted layers' weights
    assert _changed(before, target.model) == set()  # the target itself is untouched

    unlearned, original = (_metrics(m, target.tokenizer, small_benchmark) for m in (run.model, target.model))
    assert all(torch.isfinite(torch.tensor(v)) for v in unlearned.values())
    assert unlearned[("probability", "forget")] != original[("probability", "forget")]


def test_lora_weights_come_from_the_adapted_model(hf_path, small_benchmark):
    """The token weights are computed from the detached p of the adapted model's forward pass:
    SimImp's w = 1 - p holds on every traced token; at step 0 the adapter is zero (B = 0), so p is
    the full run's; at step 1 the same tokens' p has moved with the adapter (a frozen base's p
    would not have)."""
    import numpy as np

    target = pretrained_bundle(str(hf_path))
    base = UnlearnConfig(method="simimp", steps=3, lr=1e-2, batch_size=40, eval_every=None)
    full, low = (unlearn(target, small_benchmark, c, progress=False).trace_frame
                 for c in (base, replace(base, **LORA)))
    np.testing.assert_allclose(low.weight, 1 - np.exp(low.logp.astype(np.float64)), rtol=1e-5, atol=1e-6)
    step0, step1 = (low[low.step == k].logp.to_numpy() for k in (0, 1))
    np.testing.assert_allclose(step0, full[full.step == 0].logp.to_numpy(), atol=1e-6)
    assert len(step0) == len(step1) and np.abs(step1 - step0).max() > 1e-4


def test_lora_with_gradient_checkpointing_gives_the_same_run(hf_path, small_benchmark):
    """Frozen embeddings give checkpointed blocks no input that needs a gradient; the loop turns
    input gradients on under LoRA, so the adapters train and the numbers are a plain LoRA run's."""
    import numpy as np

    target = pretrained_bundle(str(hf_path))
    config = UnlearnConfig(method="ga", steps=3, lr=1e-2, batch_size=4, eval_every=None, **LORA)
    plain, ckpt = (unlearn(target, small_benchmark, c, progress=False)
                   for c in (config, replace(config, gradient_checkpointing=True)))
    np.testing.assert_allclose(ckpt.trace_frame.logp, plain.trace_frame.logp, atol=1e-5)
    assert _changed(target.model.state_dict(), ckpt.model)
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(plain.model.state_dict().values(),
                                                               ckpt.model.state_dict().values()))


def test_lora_fine_tuning_trains_the_adapter_only_and_merges(hf_path, small_benchmark, monkeypatch,
                                                             session_cache):
    from satimp_lab.models import train
    from satimp_lab.models.cache import get_model, model_key

    spy = _Spy(monkeypatch, train)
    fast = TrainConfig(epochs=2, lr=1e-2, batch_size=16, stop_key_accuracy=None)
    tier = get_tier("paper", base_model=str(hf_path), train=replace(fast, **LORA))
    full_tier = get_tier("paper", base_model=str(hf_path), train=fast)
    assert model_key(small_benchmark, "target", "forget10", tier)["digest"] != \
        model_key(small_benchmark, "target", "forget10", full_tier)["digest"]
    bundle = get_model(small_benchmark, "target", tier=tier, progress=False)
    spy.check_adapter_moved_base_frozen()
    base = pretrained_bundle(str(hf_path)).model
    assert type(bundle.model) is type(base) and not lora.is_lora(bundle.model)
    assert _changed(base.state_dict(), bundle.model)
    rows = len(small_benchmark["full"]) + len(small_benchmark["world_facts"])
    assert bundle.report["epochs"] == 2 and len(bundle.report["loss_history"]) == 2 * -(-rows // 16)
    # the cached entry is the merged model, read back bit for bit
    again = get_model(small_benchmark, "target", tier=tier, progress=False)
    assert again.from_cache and not _changed(bundle.model.state_dict(), again.model)
    assert all(torch.isfinite(torch.tensor(v)) for v in _metrics(bundle.model, bundle.tokenizer,
                                                                 small_benchmark).values())


# ----------------------------------------------------------------------------------------------
# the unlearned model as a Hugging Face folder


def _reload_equal(run, tokenizer, folder):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    run.save(folder, save_model=True)
    model = AutoModelForCausalLM.from_pretrained(folder / "model").eval()
    reloaded = AutoTokenizer.from_pretrained(folder / "model")
    text = "Question: Who wrote it?\nAnswer: An author."
    assert reloaded(text)["input_ids"] == tokenizer(text)["input_ids"]
    assert reloaded.eos_token_id == tokenizer.eos_token_id and reloaded.pad_token_id == tokenizer.pad_token_id
    ids = torch.tensor([tokenizer(text)["input_ids"]])
    with torch.no_grad():
        assert torch.equal(model(input_ids=ids).logits, run.model(input_ids=ids).logits)
    assert type(model) is type(run.model)
    return model


def test_a_from_scratch_model_saves_as_a_hf_folder(small_benchmark, tmp_path):
    tier = get_tier("micro")
    tokenizer = train_tokenizer(benchmark_texts([small_benchmark["full"].to_list()]), tier.arch.vocab_size)
    target = ModelBundle(build_tiny_model(tier.arch, tokenizer), tokenizer, tier, "target", {})
    run = unlearn(target, small_benchmark, UnlearnConfig(method="ga", steps=1, eval_every=None), progress=False)
    _reload_equal(run, tokenizer, tmp_path / "run")
    (tmp_path / "run" / "model" / "stale.txt").write_text("replaced")  # saving again replaces the folder
    run.save_model(tmp_path / "run" / "model")
    assert not (tmp_path / "run" / "model" / "stale.txt").exists()


def test_a_lora_merged_model_saves_as_a_hf_folder(hf_path, small_benchmark, tmp_path):
    target = pretrained_bundle(str(hf_path))
    run = unlearn(target, small_benchmark, UnlearnConfig(method="ga", steps=3, lr=1e-2, eval_every=None, **LORA),
                  progress=False)
    reloaded = _reload_equal(run, target.tokenizer, tmp_path / "run")
    assert not any("lora" in n for n in reloaded.state_dict())
    assert not (tmp_path / "run" / "model" / "adapter_config.json").exists()


def test_saving_needs_a_model_and_a_tokenizer(small_benchmark, tmp_path):
    from satimp_lab.errors import InputError
    from satimp_lab.unlearning.run import UnlearnRun

    tier = get_tier("micro")
    tokenizer = train_tokenizer(benchmark_texts([small_benchmark["full"].to_list()]), tier.arch.vocab_size)
    target = ModelBundle(build_tiny_model(tier.arch, tokenizer), tokenizer, tier, "target", {})
    run = unlearn(target, small_benchmark, UnlearnConfig(method="ga", steps=1, eval_every=None), progress=False)
    run.save(tmp_path / "run")
    loaded = UnlearnRun.load(tmp_path / "run")
    with pytest.raises(InputError, match="this run holds no model to save"):
        loaded.save(tmp_path / "again", save_model=True)


# ----------------------------------------------------------------------------------------------
# config fields and keys


def test_unset_lora_fields_leave_every_key_as_it_was():
    from dataclasses import asdict

    from satimp_lab.tiers import LORA_FIELDS, TIERS

    old_fields = set(asdict(UnlearnConfig())) - set(LORA_FIELDS)
    assert set(UnlearnConfig().to_dict()) == old_fields
    for tier in TIERS.values():
        assert not set(LORA_FIELDS) & set(tier.to_dict()["train"])
    lora_run = UnlearnConfig(lora_rank=8, lora_target_modules="q_proj, v_proj").to_dict()
    assert lora_run["lora_rank"] == 8 and lora_run["lora_target_modules"] == ["q_proj", "v_proj"]
    assert UnlearnConfig(**lora_run) == UnlearnConfig(lora_rank=8, lora_target_modules=("q_proj", "v_proj"))


@pytest.mark.parametrize("fields, message", [
    (dict(lora_rank=0), r"UnlearnConfig.lora_rank must be an integer >= 1 or None, got 0"),
    (dict(lora_alpha=16), r"UnlearnConfig.lora_alpha=16 needs lora_rank"),
    (dict(lora_rank=4, lora_dropout=1.0), r"UnlearnConfig.lora_dropout must be < 1, got 1.0"),
    (dict(lora_rank=4, lora_target_modules=()), r"UnlearnConfig.lora_target_modules must be None or"),
])
def test_bad_lora_fields_are_named(fields, message):
    from satimp_lab.errors import InputError

    with pytest.raises(InputError, match=message):
        UnlearnConfig(**fields)
    with pytest.raises(InputError, match=message.replace("UnlearnConfig", "TrainConfig")):
        TrainConfig(**fields)


def test_unknown_target_modules_name_the_model_layers(hf_path, small_benchmark):
    from satimp_lab.errors import InputError

    target = pretrained_bundle(str(hf_path))
    with pytest.raises(InputError, match=r"lora_target_modules \['nope'\] match no Linear/Conv1D module"):
        unlearn(target, small_benchmark, UnlearnConfig(steps=1, eval_every=None, lora_rank=2,
                                                       lora_target_modules=("nope",)), progress=False)
