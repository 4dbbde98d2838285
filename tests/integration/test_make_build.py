# -*- coding: utf-8 -*-
# Copyright: (c) 2025, Azure Backup Data Protection collection contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""`make build` needs ansible-core only (issue 15, item 1): without the development venv it builds the tarball with
a venv of ansible-core alone (.cache/build-venv), never the development venv (ansible-lint, molecule, the SDK ...).

A dry run (`make -n -B`: what make would do from a fresh clone, every step printed, nothing run), on the source tree.
"""

from __future__ import annotations

import shutil
import subprocess

import pytest


@pytest.fixture(scope='module')
def dry_build(dp_repo_root, tmp_path_factory):
    if not (dp_repo_root / 'Makefile').exists() or not shutil.which('make'):
        pytest.skip('needs the source tree (DP_REPO_ROOT) and make')
    no_venv = tmp_path_factory.mktemp('no-dev-venv') / 'venv'  # a development venv that does not exist
    proc = subprocess.run(['make', '-n', '-B', '-C', str(dp_repo_root), 'build', 'VENV=%s' % no_venv],
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout, dp_repo_root


def test_build_does_not_make_the_development_venv(dry_build):
    commands, dummy = dry_build
    assert 'bootstrap.sh venv' not in commands and 'requirements-dev.txt' not in commands, commands


def test_build_uses_a_venv_of_ansible_core_alone(dry_build):
    commands, root = dry_build
    installs = [line for line in commands.splitlines() if ' pip ' in line and ' install ' in line]
    assert installs and all('ansible-core' in line for line in installs), installs
    assert not any(name in line for line in installs for name in ('ansible-lint', 'molecule', '-r ')), installs
    assert '%s/.cache/build-venv/bin/ansible-galaxy collection build' % root in commands, commands
