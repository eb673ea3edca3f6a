"""The paper's setting from the command line, offline: TOFU files in the Hub's layout (written by
``satimp-lab data --layout tofu``) and tiny Hugging Face GPT-2 and Llama models built here with
``transformers`` and saved with ``save_pretrained`` -- the same code path as
``--base-model microsoft/phi-1_5`` on the real ``locuslab/TOFU``.

The README's "From TOFU files and a model to a metrics table" block is read from README.md and
run command by command (the model name swapped for a tiny local one, and a higher fine-tuning
learning rate so that a randomly initialised model learns something in a few seconds)."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pandas as pd
import pytest
import torch

from satimp_lab.cli import main
from satimp_lab.data.benchmark import BenchmarkConfig
from satimp_lab.data.tofu_layout import write_tofu_layout
from satimp_lab.models.build import train_tokenizer

ROOT = Path(__file__).resolve().parents[2]
SMALL = BenchmarkConfig(n_authors=20, qa_per_author=2, n_holdout_authors=4, n_world_facts=10)
HUB_MODEL_IN_README = "microsoft/phi-1_5"


@pytest.fixture(scope="module")
def tofu_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tofu")
    write_tofu_layout(folder, SMALL)
    return folder


def _texts(folder: Path) -> list[str]:
    texts = []
    for path in sorted(folder.glob("*.json")):
        for line in path.read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            texts.append(f"Question: {row['question']}\nAnswer: {row['answer']}")
    return texts


@pytest.fixture(scope="module")
def hf_models(tmp_path_factory, tofu_dir):
    """{family: folder} of a tiny random GPT-2 and Llama with a BPE tokenizer trained on the files."""
    from transformers import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM

    tok = train_tokenizer(_texts(tofu_dir), 512)
    special = dict(bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    torch.manual_seed(0)
    models = {
        "llama": LlamaForCausalLM(LlamaConfig(vocab_size=len(tok), hidden_size=64, intermediate_size=128,
                                              num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=2,
                                              max_position_embeddings=256, **special)),
        "gpt2": GPT2LMHeadModel(GPT2Config(vocab_size=len(tok), n_embd=64, n_layer=1, n_head=2,
                                           n_positions=256, **special)),
    }
    out = {}
    for family, model in models.items():
        folder = tmp_path_factory.mktemp(f"tiny-{family}")
        model.save_pretrained(folder)
        tok.save_pretrained(folder)
        out[family] = folder
    return out


@pytest.fixture()
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SATIMP_LAB_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def readme_paper_commands() -> list[str]:
    """The commands of README's block between ``<!-- paper-commands -->`` and the end of its code
    fence, one per line (comments dropped)."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    match = re.search(r"<!-- paper-commands -->\s*```bash\n(.*?)```", text, re.S)
    assert match, "README.md has no <!-- paper-commands --> block"
    return [line.split("#")[0].strip() for line in match.group(1).splitlines() if line.split("#")[0].strip()]


def test_readme_block_is_the_data_train_unlearn_evaluate_path():
    commands = readme_paper_commands()
    assert [shlex.split(c)[1] for c in commands] == ["data", "train", "unlearn", "evaluate"]
    assert any(HUB_MODEL_IN_README in c for c in commands)


@pytest.mark.parametrize("family", ["llama", "gpt2"])
def test_readme_commands_from_tofu_files_and_a_model_to_a_metrics_table(family, hf_models, tmp_path,
                                                                        cache, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    for command in readme_paper_commands():
        argv = shlex.split(command.replace(HUB_MODEL_IN_README, str(hf_models[family])))[1:]
        if argv[0] == "data":  # the README's fixture at the test's small size
            write_tofu_layout(argv[argv.index("--out") + 1], SMALL)
            continue
        if argv[0] == "train":  # a random model needs a higher rate than a pretrained one
            argv += ["--epochs", "2", "--lr", "3e-3"]
        if argv[0] == "unlearn":
            argv += ["--steps", "3", "--lr", "1e-3"]
        if argv[0] == "evaluate":
            argv += ["--max-new-tokens", "16"]
        assert main(argv) == 0, (command, capsys.readouterr().err[-2000:])
    out = capsys.readouterr().out
    assert "model utility components" in out
    # the unlearned model is a plain Hugging Face folder other tools can load
    from transformers import AutoModelForCausalLM

    unlearned = AutoModelForCausalLM.from_pretrained(tmp_path / "runs/satimp/model")
    target = AutoModelForCausalLM.from_pretrained(tmp_path / "models/target")
    assert any(not torch.equal(a, b) for a, b in zip(unlearned.state_dict().values(), target.state_dict().values()))
    meta = json.loads((tmp_path / "runs/satimp/metrics/metrics.json").read_text())
    assert len(meta["model_utility_components"]) == 9  # retain, real authors, world facts x 3
    assert {r["metric"] for r in meta["metrics"]} >= {"forget_quality", "model_utility", "truth_ratio", "rouge"}
    splits = {r["split"] for r in meta["metrics"]}
    assert {"forget10_perturbed", "retain_perturbed", "real_authors_perturbed", "world_facts_perturbed"} <= splits
    per_example = pd.read_csv(tmp_path / "runs/satimp/metrics/per_example.csv")
    assert len(per_example) > 0 and set(per_example.columns) == {"metric", "split", "qa_id", "value"}


def test_evaluate_needs_a_retain_model_for_forget_quality(hf_models, tofu_dir, cache, capsys):
    code = main(["evaluate", str(hf_models["llama"]), "--benchmark", "tofu", "--data-dir", str(tofu_dir)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "--retain-model" in err, err


def test_base_model_goes_with_the_paper_tier(hf_models, tofu_dir, cache, capsys):
    code = main(["train", "--tier", "tiny", "--base-model", str(hf_models["llama"])])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "--base-model" in err and "paper" in err, err
    assert not (cache / "models").exists()


def test_lora_options_need_a_rank(hf_models, tofu_dir, cache, capsys):
    code = main(["unlearn", "--target-model", str(hf_models["llama"]), "--benchmark", "tofu",
                 "--data-dir", str(tofu_dir), "--lora-alpha", "16"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "--lora-alpha" in err and "--lora-rank" in err, err


def test_reproduce_paper_tier_dry_run_on_cpu(hf_models, tofu_dir, tmp_path, cache, capsys):
    """``reproduce --tier paper --fast``: the paper recipe's studies (here observation (i)) on a tiny
    HF model and TOFU-layout files, with the annotated runs left out (TOFU has no key spans)."""
    out = tmp_path / "report"
    code = main(["reproduce", "--base-model", str(hf_models["llama"]), "--benchmark", "tofu",
                 "--data-dir", str(tofu_dir), "--fast", "--only", "04", "--out", str(out)])
    printed = capsys.readouterr()
    assert code == 0, printed.out[-3000:] + printed.err[-3000:]
    claims = json.loads((out / "population" / "obs1.json").read_text())
    comparisons = {(p["a"], p["b"]) for c in claims for p in c["parts"]}
    assert ("simsat", "simimp") in comparisons and not any("annotated" in pair for pair in comparisons)
    report = (out / "report.md").read_text()
    assert "tier=paper" in report and "dry run" in report
    runs = json.loads((out / "runs.json").read_text())
    assert runs[0]["status"] == "ok" and "without annotated" in runs[0]["left_out"][0] and not runs[0]["error"]
    assert "Left out: obs1: without annotated" in report and "The target starts at forget ES" in report
    assert "has not learned its answers" in report  # the paper recipe's 2e-5 teaches a random model nothing
    assert runs[1]["status"] == "not run"
    # the studies' runs used the paper recipe (Phi-style format for a local path: paper_phi)
    summaries = [json.loads(p.read_text()) for p in (cache / "runs").glob("*/summary.json")]
    assert summaries and all("eval_forget_quality" in s["summary"] for s in summaries)


@pytest.fixture(scope="module")
def short_gpt2(tmp_path_factory, hf_models):
    """The tiny GPT-2 with a 16-position context: shorter than any prompt + answer."""
    from transformers import AutoTokenizer, GPT2Config, GPT2LMHeadModel

    tok = AutoTokenizer.from_pretrained(hf_models["gpt2"])
    model = GPT2LMHeadModel(GPT2Config(vocab_size=len(tok), n_embd=32, n_layer=1, n_head=2, n_positions=16,
                                       bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id))
    folder = tmp_path_factory.mktemp("short-gpt2")
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


@pytest.mark.parametrize("command", ["train", "unlearn", "evaluate"])
def test_a_model_with_a_short_context_is_one_line_naming_model_limit_and_row(command, short_gpt2, tofu_dir,
                                                                            tmp_path, cache, capsys):
    data = ["--benchmark", "tofu", "--data-dir", str(tofu_dir)]
    argv = {"train": ["train", "--base-model", str(short_gpt2), *data],
            "unlearn": ["unlearn", "--target-model", str(short_gpt2), *data, "--steps", "1"],
            "evaluate": ["evaluate", str(short_gpt2), "--metrics", "es", *data]}[command]
    code = main(argv)
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert str(short_gpt2) in err and "16" in err and "qa_id" in err, err


def test_one_process_runs_recipes_of_two_precisions_one_after_the_other(micro_target, small_benchmark):
    """The paper recipe computes in bf16, the tiny one in fp32: a notebook or a test session runs
    both (accelerate alone refuses a second precision in one process)."""
    from satimp_lab.unlearning.loop import unlearn
    from satimp_lab.unlearning.run import UnlearnConfig

    for precision in ("no", "bf16", "no"):
        run = unlearn(micro_target, small_benchmark, UnlearnConfig(method="ga", steps=1, eval_every=None,
                                                                   mixed_precision=precision), progress=False)
        assert run.status == "completed"


def test_reproduce_paper_tier_shared_among_two_launched_processes_equals_one_process(
        hf_models, tofu_dir, tmp_path):
    """What ``accelerate launch`` / ``torchrun`` set (RANK, WORLD_SIZE, LOCAL_RANK) makes two
    processes share the runs of ``reproduce --tier paper``: one fine-tunes while the other waits,
    each computes every other run, the first writes the report; its claims equal one process's."""
    import os
    import subprocess
    import sys

    args = [sys.executable, "-m", "satimp_lab.cli", "reproduce", "--base-model", str(hf_models["llama"]),
            "--benchmark", "tofu", "--data-dir", str(tofu_dir), "--fast", "--only", "04"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    alone = subprocess.run([*args, "--out", str(tmp_path / "alone")], capture_output=True, text=True,
                           env={**env, "SATIMP_LAB_CACHE": str(tmp_path / "cache-alone")}, timeout=900)
    assert alone.returncode == 0, alone.stderr[-3000:]
    shared = {**env, "SATIMP_LAB_CACHE": str(tmp_path / "cache-shared"), "WORLD_SIZE": "2"}
    procs = [subprocess.Popen([*args, "--out", str(tmp_path / "shared")], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True,
                              env={**shared, "RANK": str(r), "LOCAL_RANK": str(r)}) for r in (0, 1)]
    outputs = [p.communicate(timeout=900) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [err[-3000:] for _, err in outputs]
    assert "report:" in outputs[0][0] and "report:" not in outputs[1][0]  # the first writes it
    claims = [json.loads((tmp_path / d / "population" / "obs1.json").read_text()) for d in ("alone", "shared")]
    assert claims[0] == claims[1]
    runs = list((tmp_path / "cache-shared" / "runs").glob("*/summary.json"))
    assert len(runs) == len(list((tmp_path / "cache-alone" / "runs").glob("*/summary.json"))) > 0
    assert not list((tmp_path / "cache-shared" / "runs").glob("*.failed"))


def test_the_paper_tier_reads_tofu_unless_told_otherwise(hf_models, tofu_dir, cache, capsys):
    assert main(["evaluate", str(hf_models["llama"]), "--data-dir", str(tofu_dir), "--metrics", "es"]) == 0
    assert "forget10_perturbed" in capsys.readouterr().out
    code = main(["train", "--tier", "paper", "--data-dir", str(tofu_dir)])  # no base model: one line
    err = capsys.readouterr().err.strip()
    assert code == 2 and "--base-model" in err and len(err.splitlines()) == 1, err


@pytest.mark.parametrize("command", ["train", "unlearn", "evaluate", "evaluate-retain", "reproduce"])
def test_a_model_that_is_not_there_is_one_line_before_any_work(command, hf_models, tofu_dir, tmp_path, cache,
                                                              capsys, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # a Hub-shaped name must not retry the network
    missing = str(tmp_path / "no-such-model")
    data = ["--data-dir", str(tofu_dir)]
    argv = {"train": ["train", "--base-model", missing, *data],
            "unlearn": ["unlearn", "--target-model", "someone/not-cached-model", *data],
            "evaluate": ["evaluate", missing, "--metrics", "es", *data],
            "evaluate-retain": ["evaluate", str(hf_models["llama"]), "--retain-model", "models/nosuch", *data],
            "reproduce": ["reproduce", "--base-model", missing, *data, "--fast", "--out", str(tmp_path / "r")]}[command]
    code = main(argv)
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert ("no-such-model" in err or "not-cached-model" in err or "models/nosuch" in err), err
    assert not (tmp_path / "r").exists()


def test_new_weights_in_the_same_folder_are_another_base_model(hf_models, tofu_dir, tmp_path, cache):
    """The model cache knows a local base model by its files: replacing the weights in the folder
    fine-tunes again instead of serving the old model."""
    import shutil

    from satimp_lab.data.benchmark import load_benchmark
    from satimp_lab.models.build import get_tier
    from satimp_lab.models.cache import model_key

    folder = tmp_path / "base"
    shutil.copytree(hf_models["llama"], folder)
    bench = load_benchmark("tofu", splits=["full", "forget10", "retain90"], data_dir=tofu_dir)
    tier = get_tier("paper", base_model=str(folder))
    before = model_key(bench, "target", "forget10", tier)["digest"]
    assert model_key(bench, "target", "forget10", tier)["digest"] == before  # stable
    shutil.rmtree(folder)
    shutil.copytree(hf_models["gpt2"], folder)
    assert model_key(bench, "target", "forget10", tier)["digest"] != before


def test_the_report_warns_only_when_the_target_has_not_learned_its_answers():
    from satimp_lab.mainjob.reproduce import MEMORISED_AT_LEAST, starting_point_note

    learned = {"forget_es": 0.9, "retain_es": 0.85, "answer_accuracy": 0.97}
    assert "Warning" not in starting_point_note(learned) and "0.850" in starting_point_note(learned)
    for retain_es in (0.0, MEMORISED_AT_LEAST / 2, float("nan")):
        assert "has not learned its answers" in starting_point_note({**learned, "retain_es": retain_es})


def test_unlearn_warns_when_the_target_has_not_learned_its_answers(hf_models, tofu_dir, cache, capsys):
    """A random model has learned nothing: unlearning it is meaningless, and the command says so."""
    assert main(["unlearn", "--target-model", str(hf_models["llama"]), "--data-dir", str(tofu_dir),
                 "--steps", "1"]) == 0
    assert "warning: the target reproduces little of its answers" in capsys.readouterr().out
