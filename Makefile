# Two commands do all set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
CORES  ?= 2
# Where `snakemake --profile NAME` looks (platformdirs): $XDG_CONFIG_HOME, else ~/.config.
PROFILE_HOME ?= $(or $(XDG_CONFIG_HOME),$(HOME)/.config)/snakemake

.PHONY: venv test test-fast demo dryrun-paper lint format bench install-profile clean-demo

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --disable-pip-version-check -q --upgrade pip
	$(BIN)/pip install --disable-pip-version-check -q -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

test: $(STAMP)
	PATH=$(CURDIR)/$(BIN):$$PATH $(BIN)/python -m pytest -q

test-fast: $(STAMP)
	PATH=$(CURDIR)/$(BIN):$$PATH $(BIN)/python -m pytest -q -m "not slow and not slurm"

demo: $(STAMP)
	PATH=$(CURDIR)/$(BIN):$$PATH $(BIN)/snakemake --profile profiles/local \
		--configfile config/demo.yaml --cores $(CORES)
	@echo "Report: results/demo/report.html"

dryrun-paper: $(STAMP)
	PATH=$(CURDIR)/$(BIN):$$PATH $(BIN)/snakemake -n --profile profiles/slurm \
		--configfile config/config.yaml

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/snakefmt --check Snakefile rules
	$(BIN)/snakemake --lint --configfile config/demo.yaml

format: $(STAMP)
	$(BIN)/ruff format src tests bench
	$(BIN)/ruff check --fix src tests bench
	$(BIN)/snakefmt Snakefile rules

bench: $(STAMP)
	for b in bench/*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

# Snakemake resolves `--profile slurm` from ./ or $XDG_CONFIG_HOME/snakemake/ (default
# ~/.config/snakemake/), not from profiles/:
# copy ours there, never over a copy the user has edited.
install-profile:
	@mkdir -p $(PROFILE_HOME)/slurm
	@if [ -e $(PROFILE_HOME)/slurm/config.yaml ] && ! cmp -s profiles/slurm/config.yaml $(PROFILE_HOME)/slurm/config.yaml; then \
		echo "$(PROFILE_HOME)/slurm/config.yaml exists and differs: left as it is (compare with profiles/slurm/config.yaml)"; \
	else cp profiles/slurm/config.yaml $(PROFILE_HOME)/slurm/config.yaml && echo "installed $(PROFILE_HOME)/slurm/config.yaml"; fi

clean-demo:
	rm -rf results/demo logs/demo
