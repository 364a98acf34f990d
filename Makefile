# Two commands set dosezoo up: `make demo` and `make test`. Both create .venv when absent.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
# The first interpreter found that is Python >= 3.12 (pyenv's 3.12 is pinned by .python-version).
PYTHON_FOR_VENV := $(shell for p in python3.12 python3.13 python3.14 python3 python; do \
	if command -v $$p >/dev/null 2>&1 && $$p -c 'import sys; sys.exit(sys.version_info < (3, 12))' 2>/dev/null; \
	then command -v $$p; break; fi; done)
export OPENBLAS_NUM_THREADS := 1
export MKL_NUM_THREADS := 1
export OMP_NUM_THREADS := 1

.PHONY: demo test test-slow lint docs bench validate study redesign lse-study lse-appendix bench-binary bench-paths joint-probit-study optimus-study bench-boin12 combination-bo-study weibull-study bench-weibull results bench-store bench-startup bench-scaleout bench-speed compare-binary-oc three-pnd-large-sample three-pnd-rules clean

$(VENV)/.installed: pyproject.toml
	@if [ ! -x $(PY) ]; then \
		if [ -z "$(PYTHON_FOR_VENV)" ]; then echo "No Python >= 3.12 found on PATH" >&2; exit 1; fi; \
		$(PYTHON_FOR_VENV) -m venv $(VENV); \
	fi
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[all]"
	@touch $@

demo: $(VENV)/.installed
	$(PY) -m dosezoo.cli demo

test: $(VENV)/.installed
	$(PY) -m pytest -q -n 2

test-slow: $(VENV)/.installed
	$(PY) -m pytest -q -m slow

# ruff, then mypy on the library (tools/typecheck.py lays it out as installed; see [tool.mypy]).
lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(PY) tools/typecheck.py

# The documentation site (Sphinx) into build/docs/html/: the API reference, the notebooks
# executed (cached in build/docs/jupyter_cache; only changed notebooks rerun), the results
# pages; any warning fails the build. The docs extra is installed on first use.
DOCS_BUILD := build/docs
$(VENV)/.installed-docs: $(VENV)/.installed
	$(PY) -m pip install --quiet -e ".[docs]"
	@touch $@

docs: $(VENV)/.installed-docs
	PYDEVD_DISABLE_FILE_VALIDATION=1 DOSEZOO_DOCS_BUILD=$(DOCS_BUILD) \
		$(VENV)/bin/sphinx-build -b html -c docs -W --keep-going . $(DOCS_BUILD)/html
	@echo "open $(DOCS_BUILD)/html/index.html"

# The studies and benchmarks write their data and one page each into docs/results/.
# Speed of one 3PND posterior update (docs/results/three_pnd_speed.md).
bench: $(VENV)/.installed
	$(PY) benchmarks/bench_3pnd.py

# Validation of the 3PND samplers: agreement with NUTS, SBC (docs/results/three_pnd_validation.md).
validate: $(VENV)/.installed
	$(PY) benchmarks/validate_3pnd.py

# Lee (2023)'s simulation study (36 configurations x 1000 trials) on 2 worker processes
# (docs/results/lee2023_study.md).
study: $(VENV)/.installed
	$(PY) benchmarks/lee2023_study.py --trials 1000 --jobs 2

# The 3PND design in large samples (Lee 2023, Theorem 2): NPD/n, NPO/n, BTM, RMSE and the MTD
# posterior's width at n = 30 ... 1000, 8 trials per true curvature
# (docs/results/three_pnd_large_sample.md).
three-pnd-large-sample: $(VENV)/.installed
	$(PY) benchmarks/three_pnd_large_sample.py --trials 8 --jobs 2

# The 3PND quadrature rule: accuracy against a fine reference and speed, per rule tried
# (docs/results/three_pnd_rules.md).
three-pnd-rules: $(VENV)/.installed
	$(PY) benchmarks/three_pnd_rules.py

# Lee (2023)'s O6-BG re-design: one seeded trial and 500 replicates per design
# (docs/results/o6bg_redesign.md).
redesign: $(VENV)/.installed
	$(PY) benchmarks/o6bg_redesign.py

# Seno et al. (2025)'s comparison study (5 designs x 20 scenarios x 2000 trials)
# (docs/results/lse_comparison.md).
lse-study: $(VENV)/.installed
	$(PY) benchmarks/lse_comparison.py --trials 2000 --jobs 2

# The rest of Seno et al. (2025), reusing lse-study's saved cells (run it first): the
# acquisition comparison of Appendix D, the lambda sensitivity on all 20 scenarios, the
# constants acting at the lowest dose and the prior's monotonicity of Appendix B
# (docs/results/lse_acquisition.md, lse_lambda_sensitivity.md, lse_lowest_dose.md,
# lse_gp_monotonicity.md).
lse-appendix: $(VENV)/.installed
	$(PY) benchmarks/lse_appendix.py --trials 2000 --jobs 2 --acquisition-comparison --lambda-sensitivity --lowest-dose-sensitivity --monotonicity

# Decision speed and operating characteristics of CRM, BOIN, 3+3, BLRM and EWOC
# (docs/results/binary_designs.md).
bench-binary: $(VENV)/.installed
	$(PY) benchmarks/bench_binary.py

# Speed of the dose transition pathways of the binary designs (docs/results/dose_paths_speed.md).
bench-paths: $(VENV)/.installed
	$(PY) benchmarks/bench_paths.py
# dosezoo on the R packages' reference work (dfcrm crmsim, BOIN get.oc) and per-decision
# timings of CRM, BLRM and EWOC (docs/results/speed.md, speed.json).
bench-speed: $(VENV)/.installed
	$(PY) benchmarks/bench_speed.py

# CRM, BLRM and EWOC operating characteristics with the exact-tail posteriors against the
# earlier grid's (docs/results/binary_oc.csv) (docs/results/binary_oc_comparison.md).
compare-binary-oc: $(VENV)/.installed
	$(PY) benchmarks/compare_binary_oc.py

# Lin (2023)'s joint toxicity-efficacy model: validation (NUTS, SBC) and the simulation against
# CRM (docs/results/joint_probit_study.md).
joint-probit-study: $(VENV)/.installed
	$(PY) benchmarks/joint_probit_study.py --part validate
	$(PY) benchmarks/joint_probit_study.py --part simulate --trials 150 --jobs 2 --futility-cutoff none --range-probability 0.2 --tag _lin2023_rule

# Project Optimus: the joint-probit design vs BOIN12 vs CRM vs BOIN on six efficacy-toxicity
# scenarios, the whole trial (dose range, randomised pick-the-winner), sensitivity of the
# overdose cut-off and range thresholds (docs/results/optimus_study.md); then the same designs
# with the backfill conduct (docs/results/optimus_study_backfill.md).
optimus-study: $(VENV)/.installed
	$(PY) benchmarks/optimus_study.py --trials 2000 --jobs 2
	$(PY) benchmarks/optimus_study.py --trials 2000 --jobs 2 --backfill --no-sensitivity --tag _backfill

# BOIN12: 2000 simulated trials of one scenario on one core (docs/results/boin12_speed.md).
bench-boin12: $(VENV)/.installed
	$(PY) benchmarks/bench_boin12.py --trials 2000 --runs 5

# Willard et al. (2024): the simulation study (scenarios 1-3) and the implant designs (S1/P1/S2/P2
# x n_stop), 1000 replicates each, tables and figures in docs/results/combination_bo*.
combination-bo-study: $(VENV)/.installed
	$(PY) benchmarks/willard2024_study.py --trials 1000 --jobs 2

# The Weibull D-optimal paper's studies (Figs 2-6, S1-S4, Tables I-II; 1000 trials per cell) on
# two workers (docs/results/weibull_d_optimal.md).
weibull-study: $(VENV)/.installed
	$(PY) benchmarks/weibull_d_optimal_study.py --trials 1000 --jobs 2

# Speed of the Weibull D-optimal family: designs with their GET check, MLE, trials, NUTS
# (docs/results/weibull_d_optimal_speed.md).
bench-weibull: $(VENV)/.installed
	$(PY) benchmarks/bench_weibull.py

# Cost of the result store: BOIN's simulate with and without path (docs/results/store_overhead.md).
bench-store: $(VENV)/.installed
	$(PY) benchmarks/bench_store.py
# Start-up of the command line (cold `dosezoo next-dose`), the wall times of `make study` and
# `make lse-study` (run those first) and a profile of one cell of each, into
# docs/results/speed.json and study_profiles.md.
bench-startup: $(VENV)/.installed
	$(PY) benchmarks/bench_startup.py

# Parallel simulation on loky worker processes and a dask LocalCluster of 1 and 2 worker
# processes (the crmsim CRM and one configuration of Lee 2023's 3PND study), with a projection
# of a 10^6-trial run (docs/results/scaleout.md).
bench-scaleout: $(VENV)/.installed
	$(PY) benchmarks/bench_scaleout.py

# Rebuild every page of docs/results/ from the saved data, running no study (seconds).
results: $(VENV)/.installed
	$(PY) benchmarks/bench_3pnd.py --report-only
	$(PY) benchmarks/validate_3pnd.py --report-only
	$(PY) benchmarks/bench_binary.py --report-only
	$(PY) benchmarks/bench_paths.py --report-only
	$(PY) benchmarks/bench_speed.py --report-only
	$(PY) benchmarks/compare_binary_oc.py --report-only
	$(PY) benchmarks/lee2023_study.py --report-only
	$(PY) benchmarks/three_pnd_large_sample.py --report-only
	$(PY) benchmarks/o6bg_redesign.py --report-only
	$(PY) benchmarks/three_pnd_rules.py --report-only
	$(PY) benchmarks/lse_comparison.py --report-only
	$(PY) benchmarks/lse_appendix.py --report-only
	$(PY) benchmarks/joint_probit_study.py --report-only
	$(PY) benchmarks/optimus_study.py --report-only
	$(PY) benchmarks/optimus_study.py --report-only --tag _backfill
	$(PY) benchmarks/willard2024_study.py --report-only
	$(PY) benchmarks/weibull_d_optimal_study.py --report-only
	$(PY) benchmarks/bench_weibull.py --report-only
	$(PY) benchmarks/bench_boin12.py --report-only
	$(PY) benchmarks/bench_store.py --report-only
	$(PY) benchmarks/bench_startup.py --report-only
	$(PY) benchmarks/bench_scaleout.py --report-only

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
