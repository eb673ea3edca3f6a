"""Mutation check: plant known bugs one at a time and see whether the tests named for each catch it.

    OMP_NUM_THREADS=1 python benchmarks/mutation_check.py               # every mutant
    python benchmarks/mutation_check.py --only tr_inverted min_k_ceil   # some of them
    python benchmarks/mutation_check.py --list                          # names, files, tests
    python benchmarks/mutation_check.py --tests-from HEAD~3             # the tests of another commit
    python benchmarks/mutation_check.py --only tr_inverted --tests tests/unit/evaluation/test_metrics.py

Each mutant is an exact (file, old text, new text) replacement and the test ids that should fail
when it is planted. The repository (without ``.git``) is copied once to a temporary folder; each
mutant is applied to that copy, its tests run there with ``python -m pytest`` (so the copy's
``satimp_lab`` is imported, never the installed one), and the file is restored. The working tree
is never modified. A mutant is *caught* when pytest reports a failing test (exit code 1),
*missed* when its tests pass (0); any other exit code (collection error, no tests found) is
reported as an error. A mutant whose old text no longer occurs exactly once in its file is
reported as *stale* (the code moved on: update the mutant).

``--tests-from REV`` takes ``tests/`` from a git revision instead of the working tree (to measure
what an older test suite caught); test ids that do not exist there are dropped and listed.
Before the mutants, the union of all selected tests runs once on the unmodified copy: a mutant
can only be "caught" by tests that pass without it (``--no-baseline`` skips that run).

Time: each mutant is one pytest process (imports, fixtures), 10-25 s for the unit-level ones and
30-65 s for those whose tests train the session's micro models (``tests/conftest.py``); the first
20 with the baseline took 622 s on a shared 2-core CPU (load ~7), one thread each. The eight of the
verdict layer run in ~90 s (``--only verdict_rule_inverted ...``): their tests read synthetic tables
and the committed report snapshot (``docs/results/<size>/``), never a reproduction.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Mutant:
    name: str
    file: str
    """Path relative to the repository root."""
    old: str
    new: str
    tests: tuple[str, ...]
    """pytest node ids (``file::test``) that must fail when the mutant is planted."""
    what: str


M = "satimp_lab/evaluation/metrics.py"
UNIT_METRICS = "tests/unit/evaluation/test_metrics.py"
MU = "satimp_lab/evaluation/muse.py"
UNIT_MUSE = "tests/unit/evaluation/test_muse_metrics.py"
V = "satimp_lab/studies/verdicts.py"
UNIT_VERDICTS = "tests/unit/studies/test_verdicts.py"
SNAPSHOT = "tests/unit/test_readme_claims.py"
"""The README snapshot's tests: the committed report claims against the library (no runs)."""
DIRECTION = ("tests/integration/test_unlearn.py::test_forget_likelihood_falls",
             "tests/integration/test_unlearn.py::test_every_method_family_unlearns")

MUTANTS = (
    # -- the layer between formulas and verdicts (issue 14) ------------------------------------
    Mutant("matched_retain_absolute", "satimp_lab/experiments/lab.py",
           "threshold = level * retain[0]", "threshold = level",
           ("tests/integration/test_experiments.py::test_matched_retain_interpolates_and_flags_unreached",
            "tests/integration/test_experiments.py::test_matched_retain_level_is_a_share_of_the_start"),
           "matched retain level compared as an absolute ES instead of a share of the start value"),
    Mutant("evaluate_retain_tr_as_forget", M,
           'kind = "forget" if role == "forget" else "retain"', 'kind = "forget"',
           (f"{UNIT_METRICS}::test_evaluate_table_shape_with_the_oracle",
            f"{UNIT_METRICS}::test_evaluate_cells_equal_standalone_metrics"),
           "evaluate aggregates the retain / world-facts truth ratio with the forget rule"),
    Mutant("evaluate_wf_probability_unnormalised", M,
           'perturbed(role) if role == "world_facts" else None', "None",
           (f"{UNIT_METRICS}::test_evaluate_table_shape_with_the_oracle",
            f"{UNIT_METRICS}::test_evaluate_cells_equal_standalone_metrics"),
           "evaluate leaves the world-facts probability unnormalised"),
    Mutant("token_logprobs_shift", "satimp_lab/models/reading.py",
           "logits = logits[:, :-1]", "logits = logits[:, 1:]",
           ("tests/unit/models/test_model_reading.py",),
           "token_logprobs scores label j+1 with the logits of position j+1 (off by one)"),
    Mutant("tr_inverted", M,
           "r = float(np.mean([math.exp(-x) for x in nll_perturbed])) / p_base",
           "r = p_base / float(np.mean([math.exp(-x) for x in nll_perturbed]))",
           (f"{UNIT_METRICS}::test_truth_ratio_by_hand",),
           "truth ratio R inverted (p(true) / mean p(perturbed))"),
    Mutant("min_k_ceil", M,
           "lp[:max(1, int(k * lp.size))]", "lp[:max(1, math.ceil(k * lp.size))]",
           (f"{UNIT_METRICS}::test_min_k_and_zlib_by_hand",),
           "min-k% rounds k*n up (ceil) instead of down (int, open-unlearning)"),
    # -- the verdict layer: population rule and studies (issue 14) -----------------------------
    Mutant("verdict_rule_inverted", V,
           'if low > 0 and effect >= min_effect:\n        return "reproduced"\n'
           '    if high < 0 and effect <= -min_effect:\n        return "contradicted"',
           'if low > 0 and effect >= min_effect:\n        return "contradicted"\n'
           '    if high < 0 and effect <= -min_effect:\n        return "reproduced"',
           (f"{UNIT_VERDICTS}::test_decide", f"{UNIT_VERDICTS}::test_positive_effect_is_reproduced",
            f"{SNAPSHOT}::test_snapshot_verdicts_follow_the_rule"),
           "verdicts.decide calls an interval above 0 contradicted and one below 0 reproduced"),
    Mutant("paired_sign_flipped", V,
           "sign = -1.0 if lower_is_better else 1.0", "sign = 1.0 if lower_is_better else -1.0",
           (f"{UNIT_VERDICTS}::test_positive_effect_is_reproduced",
            f"{SNAPSHOT}::test_snapshot_claims_are_what_the_studies_decide_from_its_units"),
           "paired difference A - B where lower is better (and B - A where higher is)"),
    Mutant("p_improvement_wrong_side", V,
           'wins = np.sign(diffs["diff"].to_numpy(float)) * 0.5 + 0.5',
           'wins = -np.sign(diffs["diff"].to_numpy(float)) * 0.5 + 0.5',
           (f"{UNIT_VERDICTS}::test_positive_effect_is_reproduced",
            f"{SNAPSHOT}::test_snapshot_claims_are_what_the_studies_decide_from_its_units"),
           "P(improvement) counts the units where B beats A"),
    Mutant("unreached_dropped", V,
           "        rows = table[table[label] == name]\n",
           "        rows = table[table[label] == name]\n"
           '        rows = rows[rows["reached"].astype(bool)] if "reached" in rows else rows\n',
           (f"{UNIT_VERDICTS}::test_unreached_units_stay_paired_and_are_counted",
            f"{SNAPSHOT}::test_snapshot_claims_are_what_the_studies_decide_from_its_units"),
           "runs that never reached the matched level are dropped instead of kept with their final value"),
    Mutant("combine_disagreeing_reproduced", V,
           'if "reproduced" in verdicts or "partly" in verdicts:\n        return "partly"',
           'if "reproduced" in verdicts or "partly" in verdicts:\n        return "reproduced"',
           (f"{UNIT_VERDICTS}::test_combine", f"{SNAPSHOT}::test_snapshot_verdicts_follow_the_rule"),
           "verdicts.combine calls a claim reproduced when one part is and another is not"),
    Mutant("obs1_direction_flipped", "satimp_lab/studies/obs1.py",
           'verdicts.compare(summary, "simsat", imp, METRIC)',
           'verdicts.compare(summary, "simsat", imp, METRIC, lower_is_better=False)',
           ("tests/unit/studies/test_studies.py::test_obs1_directions",
            f"{SNAPSHOT}::test_snapshot_claims_are_what_the_studies_decide_from_its_units"),
           "observation (i)'s study takes a higher forget ES at matched retain as better"),
    Mutant("obs2_direction_flipped", "satimp_lab/studies/obs2.py",
           'METRIC, lower_is_better=False,', 'METRIC, lower_is_better=True,',
           ("tests/unit/studies/test_studies.py::test_obs2_other_minus_key",
            f"{SNAPSHOT}::test_snapshot_claims_are_what_the_studies_decide_from_its_units"),
           "observation (ii)'s study takes a lower likelihood of the other tokens as the claim's direction"),
    Mutant("target_sweep_every_target", "satimp_lab/studies/base.py",
           "if r.target_seed == target]", "if r.target_seed is not None]",
           ("tests/unit/studies/test_studies.py::test_target_sweep_is_the_studys_own_runs_on_the_labs_target",),
           "a notebook's single-target figures mix every target model's runs"),
    # -- formula layer (caught before issue 14) ------------------------------------------------
    Mutant("satimp_exponents_swapped", "satimp_lab/unlearning/weighting.py",
           "w = p.pow(beta_sat) * (1.0 - p).pow(beta_imp)", "w = p.pow(beta_imp) * (1.0 - p).pow(beta_sat)",
           ("tests/unit/unlearning/test_weighting.py::test_satimp_headline_value_and_closed_form",),
           "SatImp weight with its two exponents swapped"),
    Mutant("npo_sign", "satimp_lab/unlearning/objectives.py",
           "F_.logsigmoid(beta * (L - L_ref))", "F_.logsigmoid(beta * (L_ref - L))",
           ("tests/unit/unlearning/test_objectives.py::test_npo_and_simnpo_by_hand",),
           "NPO compares L_ref - L instead of L - L_ref"),
    Mutant("tr_forget_aggregation", M,
           "np.mean(np.minimum(r, 1 / r))", "min(np.mean(r), 1 / np.mean(r))",
           (f"{UNIT_METRICS}::test_truth_ratio_by_hand",),
           "forget truth ratio: min(R, 1/R) of the mean instead of the mean of min(R, 1/R)"),
    Mutant("min_k_highest", M,
           "lp = np.sort(np.asarray(token_logps, dtype=float).reshape(-1))",
           "lp = -np.sort(-np.asarray(token_logps, dtype=float).reshape(-1))",
           (f"{UNIT_METRICS}::test_min_k_and_zlib_by_hand",),
           "min-k% averages the highest token log-probabilities"),
    Mutant("es_with_eos", M,
           "end = None if include_eos else -1", "end = None",
           (f"{UNIT_METRICS}::test_es_excludes_eos_unless_asked",),
           "ES counts the EOS label"),
    Mutant("group_sort_ascending", "satimp_lab/unlearning/weighting.py",
           "sorted_w, order = torch.sort(key, dim=1, descending=True, stable=True)",
           "sorted_w, order = torch.sort(key, dim=1, descending=False, stable=True)",
           ("tests/unit/unlearning/test_weighting.py::test_group_hand_worked_partial_bucket",),
           "group averaging buckets tokens in ascending weight order"),
    # -- direction of unlearning, per method family ---------------------------------------------
    Mutant("loop_sign", "satimp_lab/unlearning/loop.py",
           "accelerator.backward(loss)", "accelerator.backward(-loss)",
           DIRECTION, "the training loop ascends its loss (every method learns instead of unlearning)"),
    Mutant("ga_sign", "satimp_lab/unlearning/objectives.py",
           'return ForgetTerm(weighted_ga_loss(logp, mask, None if self.forget == "ga" else w), w, "token")',
           'return ForgetTerm(-weighted_ga_loss(logp, mask, None if self.forget == "ga" else w), w, "token")',
           DIRECTION, "GA and every token-weighted method descend the forget NLL"),
    Mutant("weighted_sign", "satimp_lab/unlearning/objectives.py",
           'return ForgetTerm(weighted_ga_loss(logp, mask, None if self.forget == "ga" else w), w, "token")',
           'return ForgetTerm(weighted_ga_loss(logp, mask) if self.forget == "ga" else '
           '-weighted_ga_loss(logp, mask, w), w, "token")',
           DIRECTION, "token-weighted methods (SimSat, SatImp, annotated, hard, group) learn; GA is right"),
    Mutant("npo_direction", "satimp_lab/unlearning/objectives.py",
           'return ForgetTerm(npo_loss(logp, ref_logp, mask, P["npo_beta"]),',
           'return ForgetTerm(-npo_loss(logp, ref_logp, mask, P["npo_beta"]),',
           DIRECTION, "NPO / NPO+GD forget term with its sign flipped"),
    Mutant("simnpo_direction", "satimp_lab/unlearning/objectives.py",
           'return ForgetTerm(simnpo_loss(logp, mask, P["npo_beta"], P["gamma"]),',
           'return ForgetTerm(-simnpo_loss(logp, mask, P["npo_beta"], P["gamma"]),',
           DIRECTION, "SimNPO / SimNPO+GD forget term with its sign flipped"),
    Mutant("instance_direction", "satimp_lab/unlearning/objectives.py",
           'return ForgetTerm(instance_ga_loss(logp, mask, seq_w), w, "sequence")',
           'return ForgetTerm(-instance_ga_loss(logp, mask, seq_w), w, "sequence")',
           DIRECTION, "instance / batch weighted methods (summed NLL) with their sign flipped"),
    Mutant("retain_term_sign", "satimp_lab/unlearning/objectives.py",
           "total = total + self.retain_weight * retain_loss",
           "total = total - self.retain_weight * retain_loss",
           ("tests/integration/test_unlearn.py::test_retain_term_protects_the_retain_set",),
           "GD / KL variants ascend their retain term (the retain set is unlearned too)"),
    # -- the MUSE-shaped family: its metrics, what its models read, its study (issue 24) ---------
    Mutant("muse_rouge_stemmed", MU, "scorer = _rouge_scorer(bool(use_stemmer))", "scorer = _rouge_scorer(True)",
           (f"{UNIT_MUSE}::test_rouge_l_f1_by_hand",),
           "VerbMem / KnowMem score ROUGE-L with a stemmer (open-unlearning's), not MUSE's plain tokens"),
    Mutant("muse_verbmem_truth_off_by_one", MU, "truths.append(ids[prefix_tokens:prefix_tokens + max_new_tokens])",
           "truths.append(ids[prefix_tokens - 1:prefix_tokens + max_new_tokens])",
           (f"{UNIT_MUSE}::test_verbmem_of_perfect_memorisation_is_one",
            f"{UNIT_MUSE}::test_verbmem_of_partial_continuations_by_hand"),
           "VerbMem's true continuation starts one token inside the prefix"),
    Mutant("muse_verbmem_fixed_budget", MU, "_continue(model, tokenizer, prompts, [len(t) for t in truths], batch_size)",
           "_continue(model, tokenizer, prompts, [max_new_tokens for t in truths], batch_size)",
           (f"{UNIT_MUSE}::test_verbmem_compares_the_same_length_budget",),
           "VerbMem generates the full budget even where the passage ends sooner (a run-on is penalised)"),
    Mutant("muse_verbmem_whole_passage", MU, "ids = ids[:block - len(lead)]", "ids = ids",
           (f"{UNIT_MUSE}::test_verbmem_reads_the_first_training_block",),
           "VerbMem reads past the first training block (text the model never saw behind that prefix)"),
    Mutant("muse_verbmem_short_kept", MU, "if len(ids) <= prefix_tokens:", "if len(ids) < prefix_tokens:",
           (f"{UNIT_MUSE}::test_a_passage_not_longer_than_the_prefix_is_skipped_and_counted",),
           "a passage exactly as long as the prefix is scored (on an empty continuation)"),
    Mutant("muse_knowmem_no_stopwords", MU, "answers = {i: _cut_at_stopwords(gens[i]) for i in ids}",
           "answers = {i: gens[i].strip() for i in ids}",
           (f"{UNIT_MUSE}::test_knowmem_by_hand",),
           "KnowMem scores the whole generation, not the answer before MUSE's stop words"),
    Mutant("muse_min_k_last_block_only", MU,
           'parts.setdefault(text_block_source(example["example_id"])[0], []).append(reading.logp)',
           'parts[text_block_source(example["example_id"])[0]] = [reading.logp]',
           (f"{UNIT_MUSE}::test_min_k_pools_the_blocks_of_a_passage", f"{UNIT_MUSE}::test_min_k_reads_every_block_of_a_passage"),
           "a passage's min-k% reads its last block alone instead of every block pooled"),
    Mutant("muse_min_k_drops_last_token", MU, "min_k_score(torch.cat(p).double().numpy(), k, include_eos=True)",
           "min_k_score(torch.cat(p).double().numpy(), k, include_eos=False)",
           (f"{UNIT_MUSE}::test_min_k_of_a_passage_at_k_04_by_hand",),
           "a passage's min-k% drops its last token (open-unlearning's EOS rule on text without an EOS)"),
    Mutant("privleak_sign", "satimp_lab/evaluation/privacy.py",
           "return ((1 - auc) - (1 - auc_ref)) / (1 - auc_ref) * 100",
           "return (auc - auc_ref) / (1 - auc_ref) * 100",
           (f"{UNIT_MUSE}::test_privleak_of_passages_by_hand",),
           "PrivLeak in our AUC orientation instead of MUSE's (the sign of a leak reversed)"),
    Mutant("muse_retrained_reads_forget_questions", "satimp_lab/data/muse_family.py",
           'return {"text": _rows(benchmark, "retain", kind), "qa": _rows(benchmark, "retain_qa", kind)}',
           'return {"text": _rows(benchmark, "retain", kind), "qa": _rows(benchmark, "forget_qa", kind) '
           '+ _rows(benchmark, "retain_qa", kind)}',
           ("tests/unit/data/test_muse_family.py::test_the_target_reads_every_row_about_the_forget_articles_and_the_retrained_model_none",),
           "the retrained model reads the forget articles' questions (it is no longer the reference)"),
    Mutant("muse_claims_reversed", "satimp_lab/studies/muse.py",
           "return [verdicts.compare(summary, a, b, metric) for a in SATURATION for b in BASELINES]",
           "return [verdicts.compare(summary, b, a, metric) for a in SATURATION for b in BASELINES]",
           ("tests/unit/studies/test_muse_study.py::test_the_claims_follow_the_metrics",),
           "the MUSE claims compare the baselines against SimSat / SatImp (direction reversed)"),
    Mutant("muse_privleak_signed", "satimp_lab/studies/muse.py",
           "summary[PRIVLEAK].abs() / 100.0", "summary[PRIVLEAK] / 100.0",
           ("tests/unit/studies/test_muse_study.py::test_privleak_is_compared_by_its_distance_to_zero",
            "tests/unit/studies/test_muse_study.py::test_the_claims_follow_the_metrics"),
           "PrivLeak compared by its value, not its distance to 0 (over-unlearning would count as better)"),
)


# ----------------------------------------------------------------------------------------------


def copy_repository(dest: Path, tests_from: str | None) -> None:
    """The working tree without .git and caches; ``tests/`` from ``tests_from`` if given."""
    ignore = shutil.ignore_patterns(".git", "__pycache__", ".pytest_cache", "*.egg-info", "reports",
                                    "build", ".ipynb_checkpoints")
    shutil.copytree(ROOT, dest, ignore=ignore, dirs_exist_ok=True)
    if tests_from:
        shutil.rmtree(dest / "tests")
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", tests_from, "tests"],
                                 check=True, capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)


def existing(test_id: str, root: Path) -> bool:
    """Whether the file (and the test function, if named) exists under ``root``."""
    path, _, name = test_id.partition("::")
    file = root / path
    if not file.exists():
        return False
    return not name or re.search(rf"^def {re.escape(name.split('[')[0])}\(", file.read_text(),
                                 re.MULTILINE) is not None


def run_tests(tests: list[str], root: Path, timeout: float) -> tuple[int, float, str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false",
           "PYTHONDONTWRITEBYTECODE": "1"}
    env.pop("PYTHONPATH", None)
    start = time.perf_counter()
    try:
        done = subprocess.run([sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider",
                               "-W", "ignore", *tests], cwd=root, env=env, capture_output=True,
                              text=True, timeout=timeout)
        code, out = done.returncode, done.stdout + done.stderr
    except subprocess.TimeoutExpired:
        code, out = -1, "timed out"
    return code, time.perf_counter() - start, out


def check_import(root: Path) -> None:
    out = subprocess.run([sys.executable, "-c", "import satimp_lab; print(satimp_lab.__file__)"],
                         cwd=root, capture_output=True, text=True, check=True).stdout.strip()
    if not Path(out).resolve().is_relative_to(root.resolve()):
        raise SystemExit(f"the copy imports satimp_lab from {out}, not from {root}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", nargs="*", help="mutant names to run (default: all)")
    parser.add_argument("--list", action="store_true", help="print the mutants and exit")
    parser.add_argument("--tests-from", help="git revision whose tests/ to use (default: working tree)")
    parser.add_argument("--tests", nargs="+", help="run these test ids for every mutant instead of its own")
    parser.add_argument("--no-baseline", action="store_true", help="skip the run on unmodified code")
    parser.add_argument("--timeout", type=float, default=600, help="seconds per pytest run (default 600)")
    parser.add_argument("-v", "--verbose", action="store_true", help="print pytest's tail for each run")
    args = parser.parse_args(argv)
    mutants = [m for m in MUTANTS if not args.only or m.name in args.only]
    unknown = set(args.only or ()) - {m.name for m in MUTANTS}
    if unknown:
        raise SystemExit(f"unknown mutant(s) {sorted(unknown)}; valid: {[m.name for m in MUTANTS]}")
    if args.list:
        for m in mutants:
            print(f"{m.name}: {m.what}\n    {m.file}: {m.old!r} -> {m.new!r}\n    tests: {' '.join(m.tests)}")
        return 0
    total_start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="satimp-mutants-") as tmp:
        root = Path(tmp)
        copy_repository(root, args.tests_from)
        check_import(root)
        wanted = {m.name: tuple(args.tests) if args.tests else m.tests for m in mutants}
        selected = {m.name: [t for t in wanted[m.name] if existing(t, root)] for m in mutants}
        if not args.no_baseline:
            union = sorted({t for ts in selected.values() for t in ts})
            code, secs, out = run_tests(union, root, args.timeout)
            print(f"baseline (unmodified code, {len(union)} test ids): exit {code} in {secs:.0f} s")
            if code != 0:
                print(out[-3000:])
                raise SystemExit("the selected tests fail on the unmodified code: fix that first")
        counts = {"caught": 0, "missed": 0, "stale": 0, "error": 0}
        for m in mutants:
            path = root / m.file
            original = path.read_text()
            tests = selected[m.name]
            absent = [t for t in wanted[m.name] if t not in tests]
            note = f" (absent here: {', '.join(t.split('::')[-1] for t in absent)})" if absent else ""
            if original.count(m.old) != 1:
                status, secs, out = "stale", 0.0, f"old text found {original.count(m.old)} times"
            elif not tests:
                status, secs, out = "missed", 0.0, "no test selected"
            else:
                path.write_text(original.replace(m.old, m.new))
                try:
                    code, secs, out = run_tests(tests, root, args.timeout)
                finally:
                    path.write_text(original)
                status = {0: "missed", 1: "caught"}.get(code, "error")
            counts[status] += 1
            print(f"{status:7s} {m.name:38s} {secs:5.0f} s{note}", flush=True)
            if args.verbose or status == "error":
                print("    " + "\n    ".join(out.strip().splitlines()[-6:]))
    print(f"total: {counts['caught']}/{len(mutants)} caught, {counts['missed']} missed, "
          f"{counts['stale']} stale, {counts['error']} errors in {time.perf_counter() - total_start:.0f} s")
    return 0 if counts["caught"] == len(mutants) else 1


if __name__ == "__main__":
    sys.exit(main())
