# Build, packaging and quality gates of the azure_backup.dataprotection collection.
#
#   make test     every gate, fast ones first, stops at the first failure
#   make help     all targets
#
# Works from a fresh clone: the venv (.venv) is built from the requirement files (rebuilt when they
# change), the collection is built into dist/ and installed from that tarball into .cache/collections,
# and every gate after `install` uses the installed copy (ANSIBLE_COLLECTIONS_PATH, PYTHONPATH), so the
# tests prove that the tarball works. Ansible state lives under .cache/ (ANSIBLE_HOME, and the HOME that
# ansible-test uses, with its sanity venvs and the offline get-pip shim from scripts/), not in ~/.ansible.

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help
.DELETE_ON_ERROR:
.NOTPARALLEL:
MAKEFLAGS += --no-builtin-rules --no-print-directory

PYTHON ?= python3
VENV ?= $(CURDIR)/.venv
CACHE := $(CURDIR)/.cache
COLLECTIONS := $(CACHE)/collections
INSTALLED := $(COLLECTIONS)/ansible_collections/azure_backup/dataprotection
CHECK_COPY := $(CACHE)/check/ansible_collections/azure_backup/dataprotection
TEST_HOME := $(CACHE)/home
EMULATOR_STATE ?= $(CURDIR)/.emulator

# Extra arguments, e.g. make sanity SANITY_ARGS='--test pep8'  /  make unit PYTEST_ARGS='-k ids'
# MOLECULE_SCENARIOS: scenario names to run (default: every extensions/molecule/*/molecule.yml)
SANITY_ARGS ?=
PYTEST_ARGS ?=
LINT_ARGS ?=
MOLECULE_ARGS ?=
MOLECULE_SCENARIOS ?=
EMULATOR_ARGS ?=

VERSION := $(shell sed -n 's/^version: *//p' galaxy.yml)
TARBALL := dist/azure_backup-dataprotection-$(VERSION).tar.gz

VENV_STAMP := $(VENV)/.requirements.stamp
# `make build` needs ansible-galaxy only: the development venv's when it exists, else a venv of ansible-core alone
# (the oldest release meta/runtime.yml accepts, or newer), so that a tarball does not cost ansible-lint, molecule and
# the SDK. Decided when make starts: a development venv built later in the same run does not change it.
BUILD_VENV := $(CACHE)/build-venv
BUILD_CORE := ansible-core$(shell sed -n "s/^requires_ansible: *['\"]*\([^'\"]*\).*/\1/p" meta/runtime.yml)
ANSIBLE_GALAXY := $(if $(wildcard $(VENV)/bin/ansible-galaxy),$(VENV)/bin/ansible-galaxy,$(BUILD_VENV)/bin/ansible-galaxy)
GALAXY_STAMP := $(if $(wildcard $(VENV)/bin/ansible-galaxy),,$(BUILD_VENV)/.stamp)
REQUIREMENTS := requirements.txt tests/requirements-dev.txt $(wildcard tests/emulator/pyproject.toml)
INSTALL_STAMP := $(CACHE)/installed.stamp
CHECK_STAMP := $(CACHE)/check.stamp
HOME_STAMP := $(TEST_HOME)/.bootstrap.stamp
# Azurite (npm), the emulator's blob data plane for restores as files: every target that starts an emulator needs it.
AZURITE_STAMP := $(CACHE)/azurite/.version

# Collection sources: every file the build may pick up. The list itself is kept in a file that
# changes only when a file is added or removed, so that a deletion also triggers a rebuild.
SOURCES := $(shell find . \( -path ./.git -o -path ./.venv -o -path ./.cache -o -path ./dist -o -path './.emulator*' \
	-o -path ./.bench -o -path ./.ansible -o -path ./tests/output -o -path ./tests/emulator -o -path ./tests/bench -o -name __pycache__ \
	-o -name .pytest_cache -o -name '*.egg-info' \) -prune -o -type f ! -name '*.pyc' ! -name '* *' -print | LC_ALL=C sort)
SOURCES_LIST := $(CACHE)/sources.list
$(shell mkdir -p $(CACHE) && printf '%s\n' $(SOURCES) > $(SOURCES_LIST).$$$$ \
	&& { cmp -s $(SOURCES_LIST).$$$$ $(SOURCES_LIST) || mv $(SOURCES_LIST).$$$$ $(SOURCES_LIST); } ; rm -f $(SOURCES_LIST).$$$$)

# Tools from the venv; collection state under .cache/.
export PATH := $(VENV)/bin:$(PATH)
export ANSIBLE_HOME := $(CACHE)/ansible
export ANSIBLE_COLLECTIONS_PATH := $(COLLECTIONS)
unexport PYTHONPATH

PYVER = $$($(VENV)/bin/python -c 'import sys; print("%d.%d" % sys.version_info[:2])')
# pytest runs in the installed collection (tests/ ships in the tarball), so that the code under test is the
# tarball's and `ansible_collections.azure_backup.dataprotection` resolves to .cache/collections. Options as
# `ansible-test units` sets them. DP_REPO_ROOT tells tests where the source tree is (for files that do not ship,
# e.g. emulator worlds). Exit status 5 (no tests collected) counts as "nothing to test yet".
PYTEST = cd $$(readlink -f $(INSTALLED)) && DP_REPO_ROOT=$(CURDIR) PYTHONPATH=$$(readlink -f $(COLLECTIONS)) PYTHONDONTWRITEBYTECODE=1 \
	pytest -p no:cacheprovider --rootdir . --confcutdir . --strict-markers -o xfail_strict=true

TEST_GATES := venv build install changelog-lint ee-check unit unit-compat docs-lint lint sanity integration test-faults molecule

.PHONY: help venv build install unit unit-compat sanity lint docs-lint changelog-lint ee-check integration molecule \
	test test-faults demo bench emulator-start emulator-stop clean distclean

help:
	@echo 'Targets (all re-runnable; each one builds what it needs first):'
	@echo '  make test            all gates in order: $(TEST_GATES)'
	@echo '  make demo            scripts/demo.sh: fresh machine to a restored database on the emulator'
	@echo '  make venv            .venv from requirements.txt + tests/requirements-dev.txt (+ tests/emulator)'
	@echo '  make build           ansible-galaxy collection build -> $(TARBALL) (needs ansible-core only)'
	@echo '  make install         install the tarball into .cache/collections (what every gate below uses)'
	@echo '  make unit            pytest tests/unit, run inside the installed collection'
	@echo '  make unit-compat     the unit tests again on each of COMPAT_CORE_VERSIONS ($(COMPAT_CORE_VERSIONS)), own venvs'
	@echo '  make sanity          ansible-test sanity --local on a copy of the installed collection'
	@echo '  make lint            ansible-lint (production profile, .config/ansible-lint.yml)'
	@echo '  make docs-lint       antsibull-docs lint-collection-docs --plugin-docs on a copy of the installed collection'
	@echo '  make changelog-lint  antsibull-changelog lint'
	@echo '  make ee-check        ansible-builder introspect --sanitize on the installed collection'
	@echo '  make integration     pytest tests/emulator/tests, then tests/integration inside the installed collection'
	@echo '  make test-faults     pytest tests/integration/faults: the role and modules while the emulator misbehaves'
	@echo '  make molecule        molecule test for each extensions/molecule/<scenario>'
	@echo '  make bench           scripts/bench.py (prints figures; not a test)'
	@echo '  make emulator-start  dpemulator start --state $(EMULATOR_STATE)   (emulator-stop to stop it)'
	@echo '  make clean           remove dist/, tests/output/ and .cache/ except the ansible-test venvs'
	@echo '  make distclean       clean + remove .venv and all of .cache/'

# ---------------------------------------------------------------------------- environment and package

venv: $(VENV_STAMP)

$(VENV_STAMP): $(REQUIREMENTS) scripts/bootstrap.sh
	scripts/bootstrap.sh venv $(VENV) $(PYTHON)
	touch $@

build: $(TARBALL)

$(BUILD_VENV)/.stamp: meta/runtime.yml
	rm -rf $(BUILD_VENV) && $(PYTHON) -m venv $(BUILD_VENV)
	$(BUILD_VENV)/bin/python -m pip --disable-pip-version-check install -q "$(BUILD_CORE)"
	touch $@

# Several `make` runs may share this checkout (developers, helpers, CI): the tarball is built aside and
# renamed into dist/, and .cache/collections and .cache/check are symlinks swapped atomically to fresh
# directories (the previous one is kept, so that a run still using it is not pulled from under it).
$(TARBALL): $(GALAXY_STAMP) $(SOURCES_LIST) $(SOURCES)
	@tmp=$(CACHE)/build.$$$$; rm -rf $$tmp; mkdir -p $$tmp dist; \
	$(ANSIBLE_GALAXY) collection build --output-path $$tmp . && mv -f $$tmp/$(notdir $(TARBALL)) $(TARBALL); \
	rm -rf $$tmp; find dist -name 'azure_backup-dataprotection-*.tar.gz' ! -name $(notdir $(TARBALL)) -delete
	@echo "built $(TARBALL)"

install: $(INSTALL_STAMP)
	@echo "installed: $(INSTALLED) -> $$(readlink -f $(INSTALLED))"

# Every gate after this one needs the development venv (they depend on the install): it comes in here, not with build.
$(INSTALL_STAMP): $(TARBALL) $(VENV_STAMP)
	@# The tarball must hold collection content only (galaxy.yml build_ignore).
	@if tar -tzf $(TARBALL) | grep -E '^(\.venv|\.cache|\.ci|\.emulator[^/]*|\.bench|dist|scripts|tests/output|tests/emulator|tests/bench|docs/dev)(/|$$)|^Makefile$$'; then \
		echo "$(TARBALL) contains the files above, which galaxy.yml build_ignore should exclude" >&2; exit 1; fi
	@id=$$(date +%s%N).$$$$; \
	ansible-galaxy collection install --offline --no-deps --force -p $(CACHE)/installs/$$id $(TARBALL) 2>&1 \
		| { grep -v 'is not part of the configured Ansible collections path' || true; }; \
	test -f $(CACHE)/installs/$$id/ansible_collections/azure_backup/dataprotection/MANIFEST.json; \
	$(call swap_link,installs/$$id,$(COLLECTIONS))
	touch $@

# The copy that ansible-test and antsibull-docs check: exactly the installed tarball content at
# ansible_collections/<ns>/<name>, in a git repository of its own. Both tools list files through the
# enclosing git repository, and this repository ignores .cache/: without its own repo they would see
# no files at all (and pass).
$(CHECK_STAMP): $(INSTALL_STAMP)
	@id=$$(date +%s%N).$$$$; dir=$(CACHE)/checks/$$id/ansible_collections/azure_backup; \
	mkdir -p $$dir && cp -a $$(readlink -f $(INSTALLED)) $$dir/dataprotection; \
	git -C $$dir/dataprotection init -q; \
	printf '%s\n' tests/output/ __pycache__/ '*.pyc' >> $$dir/dataprotection/.git/info/exclude; \
	$(call swap_link,checks/$$id,$(CACHE)/check)
	touch $@

# $(call swap_link,TARGET relative to .cache,LINK): point LINK at TARGET atomically; prune older siblings of
# TARGET, keeping the newest two.
swap_link = { [ -L $(2) ] || rm -rf $(2); } && ln -sfn $(1) $(2).tmp.$$$$ && mv -T $(2).tmp.$$$$ $(2) \
	&& ls -1d $(CACHE)/$(dir $(1))* | sort -r | tail -n +3 | xargs -r rm -rf

$(AZURITE_STAMP): scripts/ensure-azurite.sh
	scripts/ensure-azurite.sh
	touch $@

$(HOME_STAMP): $(VENV_STAMP) scripts/bootstrap.sh scripts/get_pip_offline.py
	scripts/bootstrap.sh ansible-test-home $(VENV) $(TEST_HOME)
	touch $@

# ---------------------------------------------------------------------------- gates

changelog-lint: $(VENV_STAMP)
	antsibull-changelog lint
	antsibull-changelog lint-changelog-yaml changelogs/changelog.yaml

ee-check: $(INSTALL_STAMP)
	ansible-builder introspect --sanitize $(COLLECTIONS) | tee $(CACHE)/ee-introspect.txt
	@# the EE gets exactly the runtime requirements (requirements.txt), and all of them reach the introspection
	@if ! diff <(sed -e 's/#.*//' -e '/^\s*$$/d' requirements.txt | sort) <(sed -e 's/#.*//' -e '/^\s*$$/d' meta/ee-requirements.txt | sort); then \
		echo "ee-check: requirements.txt and meta/ee-requirements.txt differ" >&2; exit 1; fi
	@for req in $$(sed -e 's/#.*//' meta/ee-requirements.txt); do \
		grep -qF -- "$$req" $(CACHE)/ee-introspect.txt || { echo "ee-check: $$req missing from the introspection" >&2; exit 1; }; \
	done; echo "ee-check: ok"

unit: $(INSTALL_STAMP)
	@($(PYTEST) $(PYTEST_ARGS) tests/unit) || rc=$$?; \
	if [ "$${rc:-0}" = 5 ]; then echo "unit: no unit tests collected"; elif [ "$${rc:-0}" != 0 ]; then exit $$rc; fi

docs-lint: $(CHECK_STAMP)
	antsibull-docs lint-collection-docs --plugin-docs $$(readlink -f $(CHECK_COPY))

lint: $(INSTALL_STAMP)
	ansible-lint $(LINT_ARGS)

sanity: $(CHECK_STAMP) $(HOME_STAMP)
	cd $$(readlink -f $(CHECK_COPY)) && rm -rf tests/output && HOME=$(TEST_HOME) ansible-test sanity --local --python $(PYVER) --color no $(SANITY_ARGS)

# pytest workers for tests/integration and the fault suite (each worker has its own emulator): most of their time is
# ansible-playbook runs waiting on the emulator, not CPU; on two cores 3 workers take the integration tests from
# ~7 to ~4 minutes.
TEST_WORKERS ?= 3
integration: $(INSTALL_STAMP) $(AZURITE_STAMP)
	@# the emulator's own tests first (tests/emulator/tests, run from its package directory)
	@if [ -n "$$(find tests/emulator/tests -name 'test_*.py' 2>/dev/null | head -1)" ]; then \
		(cd tests/emulator && pytest -p no:cacheprovider --strict-markers $(PYTEST_ARGS)) || \
			{ rc=$$?; [ $$rc = 5 ] || exit $$rc; echo "integration: no emulator tests collected"; }; \
	else echo "integration: no emulator tests under tests/emulator/tests yet"; fi
	@if [ -z "$$(find tests/integration -name 'test_*.py' 2>/dev/null | head -1)" ]; then \
		echo "integration: no tests under tests/integration yet"; exit 0; fi; \
	($(PYTEST) -n $(TEST_WORKERS) $(PYTEST_ARGS) --ignore=tests/integration/faults tests/integration) || rc=$$?; \
	if [ "$${rc:-0}" = 5 ]; then echo "integration: no integration tests collected"; elif [ "$${rc:-0}" != 0 ]; then exit $$rc; fi

# The oldest ansible-core releases meta/runtime.yml accepts (requires_ansible), each in a small venv of its own under
# .cache/compat (rebuilt when tests/unit/requirements.txt changes): the unit tests run every module on each, so an
# AnsibleModule or module_utils difference between releases fails here, not on a user's AWX execution environment.
# (The main venv has the newest ansible-core this Python can run; sanity and integration run there.)
COMPAT_CORE_VERSIONS ?= 2.17 2.18
unit-compat: $(INSTALL_STAMP)
	@for v in $(COMPAT_CORE_VERSIONS); do \
		venv=$(CACHE)/compat/core-$$v; stamp=$$venv/.stamp; \
		if [ ! -f $$stamp ] || [ tests/unit/requirements.txt -nt $$stamp ]; then \
			rm -rf $$venv && $(PYTHON) -m venv $$venv && \
			$$venv/bin/python -m pip --disable-pip-version-check install -q "ansible-core==$$v.*" \
				-r tests/unit/requirements.txt pytest pytest-mock pyyaml && touch $$stamp; \
		fi; \
		echo "unit-compat: ansible-core $$($$venv/bin/python -c "from ansible.release import __version__; print(__version__)")"; \
		(export PATH=$$venv/bin:$$PATH; $(PYTEST) -q $(PYTEST_ARGS) tests/unit) || exit $$?; \
	done

# The fault suite: the role and modules while the emulator misbehaves.
test-faults: $(INSTALL_STAMP) $(AZURITE_STAMP)
	$(PYTEST) -n $(TEST_WORKERS) $(PYTEST_ARGS) tests/integration/faults

molecule: $(INSTALL_STAMP) $(AZURITE_STAMP)
	@scenarios="$(MOLECULE_SCENARIOS)"; \
	if [ -z "$$scenarios" ]; then \
		scenarios=$$(for f in extensions/molecule/*/molecule.yml; do [ -f "$$f" ] && basename "$$(dirname "$$f")"; done || true); fi; \
	if [ -z "$$scenarios" ]; then echo "molecule: no scenarios under extensions/molecule yet"; exit 0; fi; \
	for s in $$scenarios; do \
		echo "molecule: scenario $$s"; \
		(cd extensions && molecule test -s "$$s" $(MOLECULE_ARGS)); \
	done

test:
	@summary=(); \
	for gate in $(TEST_GATES); do \
		start=$$SECONDS; echo "==> make $$gate"; \
		if ! $(MAKE) $$gate; then \
			summary+=("FAILED $$gate ($$((SECONDS - start))s)"); printf '  %s\n' "==> summary:" "$${summary[@]}"; exit 1; \
		fi; \
		summary+=("ok     $$gate ($$((SECONDS - start))s)"); \
	done; \
	printf '  %s\n' "==> summary:" "$${summary[@]}"; echo "==> make test: all gates passed"

# ---------------------------------------------------------------------------- demo, bench, emulator

demo: $(INSTALL_STAMP) $(AZURITE_STAMP)
	@if [ -f scripts/demo.sh ]; then bash scripts/demo.sh; \
	else echo "demo: scripts/demo.sh does not exist yet" >&2; exit 1; fi

bench: $(INSTALL_STAMP) $(AZURITE_STAMP)
	@if [ -f scripts/bench.py ]; then python scripts/bench.py; \
	else echo "bench: scripts/bench.py does not exist yet" >&2; exit 1; fi
	@# the flexible server load (pg_restore_files_to_server against download_blob + pg_restore by hand); BENCH_FLEX=0 skips it
	@if [ "$${BENCH_FLEX:-1}" != 0 ]; then python scripts/bench_flexible.py; fi

emulator-start: $(VENV_STAMP) $(AZURITE_STAMP)
	@command -v dpemulator >/dev/null || { echo "emulator-start: dpemulator is not installed (tests/emulator/pyproject.toml missing?)" >&2; exit 1; }
	dpemulator start --state $(EMULATOR_STATE) $(EMULATOR_ARGS)

emulator-stop: $(VENV_STAMP)
	@command -v dpemulator >/dev/null || { echo "emulator-stop: dpemulator is not installed" >&2; exit 1; }
	dpemulator stop --state $(EMULATOR_STATE)

# ---------------------------------------------------------------------------- cleaning

clean:
	@# keeps .cache/home (ansible-test's sanity venvs, slow to rebuild) and .venv: see distclean
	rm -rf dist tests/output .pytest_cache .ansible
	find $(CACHE) -mindepth 1 -maxdepth 1 ! -name home -exec rm -rf {} + 2>/dev/null || true
	find . \( -path ./.venv -o -path ./.git -o -path ./.cache \) -prune -o -name __pycache__ -type d -prune -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV) $(CACHE) .bench
