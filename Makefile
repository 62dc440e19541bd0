# `make test` and the main jobs set themselves up: a .venv built with the machine's python3.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: test finetune bench bench-matching clean system-deps sources

$(BIN)/activate:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# Re-install whenever the pinned dependencies change.
$(VENV)/.installed: $(BIN)/activate setup.cfg pyproject.toml
	$(BIN)/pip install --quiet -e '.[test,data]'
	touch $@

# FluidSynth, TiMidity++ and the FluidR3_GM, MuseScore_General and FreePats banks render the
# dataset (data_prep/); WavPack decodes the GrandOrgue demo organ's pipes at `make sources`.
# x42-eq (x42-plugins) and LSP Parametric Equalizer (lsp-plugins-lv2) run headless in
# lv2file and lv2apply (lilv-utils) to check the exported LV2 presets (tests/test_presets.py).
# Installed from Debian where apt-get exists and they are missing (CI runs as root); see
# README.md for macOS.
DEBIAN_PACKAGES := fluidsynth fluid-soundfont-gm musescore-general-soundfont-small timidity wavpack \
  freepats x42-plugins lsp-plugins-lv2 lilv-utils lv2file
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
system-deps:
	@if command -v apt-get >/dev/null && ! dpkg -s $(DEBIAN_PACKAGES) >/dev/null 2>&1; then \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq \
	    --no-install-recommends $(DEBIAN_PACKAGES); fi

# The real recordings (tonejs-instruments, Salamander Grand Piano, hydrogen-drumkits, avldrums,
# and Debian's fillets-ng-data-cs, klettres-data, csoundqt-examples, grandorgue-demo,
# fretsonfire-songs-muldjord and chuck-data), pinned by version and SHA256 and cached in $JAXEQ_SOURCES or ~/.cache/jaxeq/sources; sources
# already fetched are skipped.
sources: system-deps $(VENV)/.installed
	$(BIN)/python -m data_prep.fetch --sources all

test: system-deps sources $(VENV)/.installed
	$(BIN)/python -m pytest -q

# The main job: renders the embedded default dataset when absent, fine-tunes the shipped
# matchers on its real-track difference curves and writes the comparison to workdirs/finetune.
finetune: system-deps sources $(VENV)/.installed
	$(BIN)/python -m experiments.finetune --workdir=workdirs/finetune

bench: $(VENV)/.installed
	$(BIN)/python -m benchmarks.dsp

bench-matching: $(VENV)/.installed
	$(BIN)/python -m benchmarks.matching

clean:
	rm -rf $(VENV) build *.egg-info
