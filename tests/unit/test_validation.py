"""Bad input gets a one-line error that names it: config fields, names, data files."""

import json
import math

import pandas as pd
import pytest

from satimp_lab.data.benchmark import BenchmarkConfig, read_benchmark, write_benchmark
from satimp_lab.errors import InputError
from satimp_lab.experiments import Setting, get_setting
from satimp_lab.tiers import ArchConfig, TierConfig, TrainConfig
from satimp_lab.unlearning.run import UnlearnConfig, before_after_lines
from satimp_lab.unlearning.plan import EvalPlan

NAN = float("nan")

# (config class, field, bad value): every numeric field that had no check, and the names
BAD_FIELDS = [
    (UnlearnConfig, "steps", -1), (UnlearnConfig, "steps", 0), (UnlearnConfig, "steps", 2.5),
    (UnlearnConfig, "epochs", 0), (UnlearnConfig, "epochs", -2), (UnlearnConfig, "epochs", NAN),
    (UnlearnConfig, "epochs", math.inf), (UnlearnConfig, "lr", 0), (UnlearnConfig, "lr", NAN),
    (UnlearnConfig, "batch_size", 0), (UnlearnConfig, "gradient_accumulation_steps", 0),
    (UnlearnConfig, "warmup_epochs", -1), (UnlearnConfig, "warmup_epochs", NAN),
    (UnlearnConfig, "weight_decay", -0.1), (UnlearnConfig, "max_grad_norm", -1),
    (UnlearnConfig, "max_grad_norm", NAN), (UnlearnConfig, "seed", -1), (UnlearnConfig, "seed", 1.5),
    (UnlearnConfig, "eval_every", 0), (UnlearnConfig, "eval_max_examples", 0),
    (UnlearnConfig, "eval_batch_size", 0), (UnlearnConfig, "mixed_precision", "fp8"),
    (UnlearnConfig, "batch_size", True), (EvalPlan, "match_level", 0), (EvalPlan, "match_level", 1.5),
    (EvalPlan, "until", "matched"), (EvalPlan, "curves", 1),
    (EvalPlan, "final_metrics", None),
    (TrainConfig, "epochs", -1), (TrainConfig, "epochs", 2.5), (TrainConfig, "lr", NAN),
    (TrainConfig, "batch_size", 0), (TrainConfig, "warmup_ratio", 1.5), (TrainConfig, "max_grad_norm", 0),
    (TrainConfig, "stop_key_accuracy", 0), (TrainConfig, "check_batch_size", 0), (TrainConfig, "seed", -3),
    (ArchConfig, "n_layers", 0), (ArchConfig, "vocab_size", 2.0), (ArchConfig, "hidden_size", 130),
    (TierConfig, "train_subset", 0), (TierConfig, "dtype", "float8"), (TierConfig, "prompt_format", "xml"),
    (BenchmarkConfig, "n_authors", 2.5), (BenchmarkConfig, "n_authors", 0),
    (BenchmarkConfig, "n_world_facts", -1), (BenchmarkConfig, "qa_per_author", 99),
    (Setting, "match_level", NAN), (Setting, "match_level", 0), (Setting, "final_max_examples", 0),
    (Setting, "max_new_tokens", 0), (Setting, "metrics_batch_size", -1), (Setting, "target_seed", -1),
    (Setting, "seeds", ()), (Setting, "seeds", (0, -1)),
]


@pytest.mark.parametrize("cls, name, value", BAD_FIELDS, ids=lambda x: repr(x) if not isinstance(x, type) else x.__name__)
def test_every_bad_numeric_field_is_named_where_the_config_is_built(cls, name, value):
    with pytest.raises(InputError) as info:
        cls(**{name: value})
    message = str(info.value)
    assert name in message and "\n" not in message
    if not isinstance(value, tuple):
        assert repr(value) in message or str(value) in message


@pytest.mark.parametrize("kwargs, named", [
    (dict(method="magic"), "magic"), (dict(forget_split=""), "forget_split"),
    (dict(method_params={"beta_sat": -1}), "beta_sat"), (dict(method_params={"nope": 1}), "nope"),
])
def test_unlearn_config_checks_names_when_built(kwargs, named):
    with pytest.raises(InputError, match=named):
        UnlearnConfig(**kwargs)


@pytest.mark.parametrize("kwargs, named", [
    (dict(tier="huge"), "huge"), (dict(forget_split="forget03"), "forget03"),
    (dict(final_metrics=("es", "rogue")), "rogue"),
])
def test_setting_checks_names_when_built(kwargs, named):
    with pytest.raises(InputError, match=named):
        get_setting("fast", **kwargs)


def test_valid_configs_still_build():
    assert UnlearnConfig(steps=3, epochs=0.5, max_grad_norm=None, eval_every=None).steps == 3
    assert get_setting("fast").tier == "micro" and get_setting("full").name == "full"
    assert TrainConfig(stop_key_accuracy=None).epochs == 30


# ----------------------------------------------------------------------------------------------
# data files


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return write_benchmark(tmp_path_factory.mktemp("data"), BenchmarkConfig(n_authors=20, qa_per_author=2))


def _edit_first_row(src, dst, edit):
    import shutil

    shutil.copytree(src, dst)
    lines = (dst / "full.jsonl").read_text().splitlines()
    row = json.loads(lines[0])
    edit(row)
    lines[0] = json.dumps(row)
    (dst / "full.jsonl").write_text("\n".join(lines) + "\n")
    return dst


@pytest.mark.parametrize("edit, field", [
    (lambda r: r.update(answer=""), "answer"),
    (lambda r: r.update(answer="   "), "answer"),
    (lambda r: r.update(key_spans=[[0, 10_000]]), "key_spans"),
    (lambda r: r.update(key_spans=[[8, 3]]), "key_spans"),
    (lambda r: r.update(key_spans=[[-1, 3]]), "key_spans"),
    (lambda r: r.update(author_id="seven"), "author_id"),
    (lambda r: r.update(author_id=1.5), "author_id"),
    (lambda r: r.update(qa_id="x"), "qa_id"),
    (lambda r: r.update(perturbed_answer="not a list"), "perturbed_answer"),
])
def test_a_bad_row_names_file_line_and_field(data_dir, tmp_path, edit, field):
    bad = _edit_first_row(data_dir, tmp_path / "bad", edit)
    with pytest.raises(InputError) as info:
        read_benchmark(bad)
    message = str(info.value)
    assert "full.jsonl:1:" in message and repr(field) in message and "\n" not in message


@pytest.mark.parametrize("text, named", [
    ('{"forget01": [19],\n "forget05": [19]\n "forget10": [18, 19]}', "splits.json:3:"),
    ('{"forget10": ["a", 19]}', "'forget10'"),
    ('{"forget03": [19]}', "'forget03'"),
    ('[19]', "splits.json"),
])
def test_a_bad_splits_file_is_named(data_dir, tmp_path, text, named):
    import shutil

    bad = tmp_path / "bad"
    shutil.copytree(data_dir, bad)
    (bad / "splits.json").write_text(text)
    with pytest.raises(InputError, match=named.replace("(", r"\(")):
        read_benchmark(bad)


def test_in_memory_rows_with_an_empty_answer_or_a_bad_span_are_refused():
    from satimp_lab.data.batching import encode_example
    from satimp_lab.models.build import train_tokenizer

    tok = train_tokenizer(["Question: who?\nAnswer: Ann Bell wrote it."] * 4, vocab_size=300)
    assert encode_example(tok, "who?", "Ann Bell", [[0, 3]])["labels"]
    with pytest.raises(InputError, match="'answer'"):
        encode_example(tok, "who?", "", example_id=7)
    for span in ([0, 99], [5, 2]):
        with pytest.raises(InputError, match="key_spans"):
            encode_example(tok, "who?", "Ann Bell", [span], example_id=7)


# ----------------------------------------------------------------------------------------------
# the CLI's before/after line


def test_before_after_says_when_no_evaluation_after_step_0_exists():
    diverged = pd.DataFrame({"step": [0], "forget_es": [0.91], "retain_es": [0.88]})
    lines = before_after_lines(diverged)
    assert "no evaluation after step 0" in lines[0]
    assert not any("->" in line for line in lines)
    done = pd.DataFrame({"step": [0, 10], "forget_es": [0.91, 0.40], "retain_es": [0.88, 0.80]})
    lines = before_after_lines(done)
    assert "step 10" in lines[0] and any("0.9100 ->    0.4000" in line for line in lines)


def test_lab_refuses_a_bad_run_config_before_any_work():
    from satimp_lab.experiments import Lab

    lab = Lab("fast", progress=False)
    for bad in (dict(steps=0), dict(steps=-1), dict(epochs=0), dict(epochs=NAN)):
        with pytest.raises(InputError, match=next(iter(bad))):
            lab.config("ga", **bad)
    assert "target" not in vars(lab)  # no model was built


def test_a_plan_that_searches_needs_periodic_evaluations_and_a_level(micro_target, small_benchmark):
    from satimp_lab.unlearning.loop import unlearn
    from satimp_lab.unlearning.plan import MATCHED

    with pytest.raises(InputError, match="eval_every is None"):
        unlearn(micro_target, small_benchmark, UnlearnConfig(eval_every=None, steps=1),
                plan=EvalPlan(curves=False, final_metrics=False, until="match", match_level=0.9))
    with pytest.raises(InputError, match="match_level"):
        unlearn(micro_target, small_benchmark, UnlearnConfig(steps=1), plan=MATCHED)
    # the split is the benchmark family's: checked before any work, named with the valid ones
    with pytest.raises(InputError, match="forget03.*tofu.*forget01"):
        unlearn(micro_target, small_benchmark, UnlearnConfig(forget_split="forget03", steps=1))


def test_a_group_swept_on_the_own_target_alone_must_exist():
    from satimp_lab.experiments import Lab

    lab = Lab("fast", progress=False)
    with pytest.raises(InputError, match=r"own_target_only names no group: \['refs'\]"):
        lab.sweep_groups({"a": [{"method": "ga"}]}, own_target_only=("refs",))
    assert "target" not in vars(lab)  # nothing was built
