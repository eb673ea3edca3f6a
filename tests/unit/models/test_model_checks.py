"""Input checks for foreign models (satimp_lab.models.checks): a context too short for the longest
row, a tokenizer without an EOS, a chat format without a chat template -- one InputError naming the
model, its limit and the row, before any work (issue: a 40-position GPT-2 ended in torch's
``IndexError: index out of range in self`` inside ``get_model`` and ``evaluate``)."""

from __future__ import annotations

import pytest
import torch

from satimp_lab.data.batching import encode_dataset
from satimp_lab.errors import InputError
from satimp_lab.models.build import ModelBundle, benchmark_texts, get_tier, train_tokenizer
from satimp_lab.models.checks import check_model_fits, context_limit
from satimp_lab.tiers import TrainConfig
from satimp_lab.unlearning.loop import unlearn
from satimp_lab.unlearning.run import UnlearnConfig


@pytest.fixture(scope="module")
def tokenizer(small_benchmark):
    return train_tokenizer(benchmark_texts([small_benchmark["full"].to_list()]), 300)


def gpt2(tokenizer, positions: int, name: str = "tiny-gpt2"):
    """A GPT-2 of a few thousand parameters with ``positions`` learned positions."""
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    model = GPT2LMHeadModel(GPT2Config(vocab_size=len(tokenizer), n_positions=positions, n_embd=8,
                                       n_layer=1, n_head=2, bos_token_id=tokenizer.bos_token_id,
                                       eos_token_id=tokenizer.eos_token_id,
                                       pad_token_id=tokenizer.pad_token_id))
    model.config._name_or_path = name
    return model.eval()


def llama(tokenizer, positions: int = 256):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    return LlamaForCausalLM(LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=8, intermediate_size=16, num_hidden_layers=1,
        num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=positions,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id)).eval()


def longest(tokenizer, rows) -> tuple[int, int]:
    """(qa_id, tokens) of the longest encoded row, the oracle for the messages."""
    encoded = encode_dataset(tokenizer, rows, "qa")
    best = max(encoded, key=lambda e: len(e["input_ids"]))
    return best["example_id"], len(best["input_ids"])


def test_a_short_context_raises_one_line_naming_model_limit_and_row(tokenizer, small_benchmark):
    splits = {"forget10": small_benchmark["forget10"], "retain90": small_benchmark["retain90"]}
    tokens = 0  # the oracle: the longest row of all splits (the first one on ties)
    for name, rows in splits.items():
        if longest(tokenizer, rows)[1] > tokens:
            (qa_id, tokens), split = longest(tokenizer, rows), name
    assert tokens > 40  # the premise: the rows do not fit 40 positions
    with pytest.raises(InputError) as err:
        check_model_fits(gpt2(tokenizer, 40), tokenizer, splits)
    assert str(err.value) == (
        f"model 'tiny-gpt2' reads at most 40 tokens (config.n_positions) but row qa_id {qa_id} of "
        f"split {split!r} is {tokens} tokens (prompt + answer + EOS); use a model with a longer "
        f"context or shorter rows")


def test_the_message_names_the_first_split_whose_row_does_not_fit(tokenizer, small_benchmark):
    qa_id, tokens = longest(tokenizer, small_benchmark["forget10"])
    with pytest.raises(InputError, match=rf"qa_id {qa_id} of split 'forget10' is {tokens} tokens"):
        check_model_fits(gpt2(tokenizer, tokens - 1), tokenizer, {"forget10": small_benchmark["forget10"]})
    report = check_model_fits(gpt2(tokenizer, tokens), tokenizer, {"forget10": small_benchmark["forget10"]})
    assert report["longest_tokens"] == tokens and report["longest_qa_id"] == qa_id
    assert report["limit"] == tokens and report["limit_source"] == "config.n_positions"


def test_fitting_models_pass_and_report_their_limit(tokenizer, small_benchmark):
    for model, source in ((gpt2(tokenizer, 256), "config.n_positions"),
                          (llama(tokenizer), "config.max_position_embeddings")):
        report = check_model_fits(model, tokenizer, small_benchmark["full"])  # one split's rows
        assert report["limit"] == 256 and report["limit_source"] == source
        assert report["where"] == "split 'rows'"
        assert report["longest_tokens"] == longest(tokenizer, small_benchmark["full"])[1]
    # transformers' 1e30 placeholder is no limit; a real, smaller tokenizer limit is
    assert context_limit(llama(tokenizer), tokenizer) == (256, "config.max_position_embeddings")
    short = train_tokenizer(["a b c"], 260)
    short.model_max_length = 30
    assert context_limit(llama(short), short) == (30, "tokenizer.model_max_length")
    short.model_max_length = int(1e30)
    assert context_limit(object(), short) == (None, "")


def test_evaluation_fields_and_generated_tokens_count(tokenizer, small_benchmark):
    rows = small_benchmark["forget10"]
    plain = check_model_fits(llama(tokenizer), tokenizer, rows)
    wide = check_model_fits(llama(tokenizer), tokenizer, rows,
                            question_fields=("question", "paraphrased_question"),
                            answer_fields=("answer", "paraphrased_answer", "perturbed_answer"))
    assert wide["longest_tokens"] >= plain["longest_tokens"]
    fields = dict(question_fields=("question", "paraphrased_question"),
                  answer_fields=("answer", "paraphrased_answer", "perturbed_answer"))
    prompt, limit = wide["longest_prompt_tokens"], wide["longest_tokens"] + 5
    check_model_fits(llama(tokenizer, limit), tokenizer, rows, new_tokens=limit - prompt, **fields)
    with pytest.raises(InputError, match=rf"at most {limit} tokens .* the prompt of row qa_id \d+ of "
                                         rf"split 'rows' is {prompt} tokens, and {limit - prompt + 1} new"):
        check_model_fits(llama(tokenizer, limit), tokenizer, rows, new_tokens=limit - prompt + 1, **fields)


def test_a_tokenizer_without_eos_is_named(tokenizer, small_benchmark):
    from transformers import PreTrainedTokenizerFast

    no_eos = PreTrainedTokenizerFast(tokenizer_object=tokenizer.backend_tokenizer, bos_token="<s>",
                                     pad_token="<pad>")
    assert no_eos.eos_token_id is None
    with pytest.raises(InputError, match=r"tokenizer of model 'tiny-gpt2' has no EOS token"):
        check_model_fits(gpt2(tokenizer, 256), no_eos, small_benchmark["forget10"])


def test_a_chat_format_needs_a_chat_template(tokenizer, small_benchmark):
    rows = small_benchmark["forget10"]
    with pytest.raises(InputError, match=r"prompt format 'chat' needs the tokenizer's chat template, "
                                         r"but the tokenizer of model 'my-model' has none"):
        check_model_fits(gpt2(tokenizer, 256), tokenizer, rows, "chat", name="my-model")
    chat = train_tokenizer(benchmark_texts([small_benchmark["full"].to_list()]), 300)
    chat.chat_template = ("{% for m in messages %}<s>{{ m['role'] }}: {{ m['content'] }}</s>{% endfor %}"
                          "{% if add_generation_prompt %}<s>assistant:{% endif %}")
    assert check_model_fits(gpt2(chat, 256), chat, rows, "chat")["limit"] == 256


# ----------------------------------------------------------------------------------------------
# the callers: before any work, no IndexError


def test_unlearn_checks_before_any_work(tokenizer, small_benchmark, monkeypatch):
    from types import SimpleNamespace

    from satimp_lab.unlearning import loop

    bundle = ModelBundle(gpt2(tokenizer, 40), tokenizer, get_tier("paper", base_model="tiny-gpt2"), "target", {})
    monkeypatch.setattr(loop, "copy", SimpleNamespace(deepcopy=lambda *a: pytest.fail("work before the check")))
    with pytest.raises(InputError, match=r"model 'tiny-gpt2' reads at most 40 tokens \(config.n_positions\)"):
        unlearn(bundle, small_benchmark, UnlearnConfig(method="ga", steps=1, eval_every=None), progress=False)


def test_fine_tuning_checks_before_any_work(tokenizer, small_benchmark, tmp_path):
    from satimp_lab.models.cache import get_model

    folder = tmp_path / "tiny-gpt2"
    gpt2(tokenizer, 40).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    tier = get_tier("paper", base_model=str(folder), train=TrainConfig(epochs=1, stop_key_accuracy=None))
    with pytest.raises(InputError, match=rf"model '{folder}' reads at most 40 tokens .* of target \(full\)"):
        get_model(small_benchmark, "target", tier=tier, use_cache=False, progress=False)
