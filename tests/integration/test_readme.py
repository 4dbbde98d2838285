# -*- coding: utf-8 -*-
# Copyright: (c) 2025, Azure Backup Data Protection collection contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The README's examples, run as written (issue 15, items 1, 2 and 8): the blocks marked `<!-- readme-test: NAME -->`.

They run in a folder that looks like a clone (`dist/` and `tests/` of this one), with the environment a new user has:
no ANSIBLE_* variables or PYTHONPATH, a home of its own. Three substitutions, each because running the line here would test
something else or break the other test workers: `make build` is not run (test_make_build.py covers it; the tarball
is this run's), `pip install ...tests/emulator` is not run (the venv has it, and reinstalling it would pull it from
under the emulators of the other workers), and the emulator's state folder `/tmp/emu` is one of this test's own.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
import yaml

BLOCK = re.compile(r'<!-- readme-test: (?P<name>[\w-]+) -->\n```(?P<lang>\w+)\n(?P<body>.*?)\n```', re.S)
LONG_NAME = 'contoso-production-postgresql-restore-targets-westeurope'  # a real-world resource group name


@pytest.fixture(scope='module')
def blocks(dp_repo_root):
    found = {}
    for readme in ('README.md', 'roles/postgresql_restore/README.md'):
        found.update((m['name'], m['body']) for m in BLOCK.finditer((dp_repo_root / readme).read_text()))
    assert {'install', 'playbook', 'emulator', 'azure-vars', 'role-database', 'role-files'} <= set(found), sorted(found)
    return found


@pytest.fixture(scope='module')
def clone(dp_repo_root):
    if not list((dp_repo_root / 'dist').glob('*.tar.gz')):
        pytest.skip('needs the built tarball in dist/ (make install)')
    # Under /tmp: the emulator's PostgreSQL runs as the postgres user when we are root and must reach its state.
    base = Path(tempfile.mkdtemp(prefix='dp-readme-'))
    os.chmod(base, 0o755)
    for name in ('dist', 'tests'):
        (base / name).symlink_to(dp_repo_root / name)
    yield base
    shutil.rmtree(base, ignore_errors=True)


def _as_written(body, state):
    lines = []
    for line in body.splitlines():
        if line.startswith('make build'):
            continue
        if re.match(r'^(python3 -m )?pip install \S*tests/emulator', line):
            lines.append('command -v dpemulator >/dev/null')
            continue
        lines.append(line.replace('/tmp/emu', str(state)))
    return '\n'.join(lines)


def _bash(script, cwd, state=None, timeout=600):
    # A new user's shell: no Ansible settings of ours, no Azure credential, a home of its own.
    env = {k: v for k, v in os.environ.items() if not k.startswith(('ANSIBLE_', 'AZURE_', 'REQUESTS_CA_BUNDLE', 'PYTHONPATH'))}
    home = Path(cwd).parent / 'home' if Path(cwd).name == 'my-restores' else Path(cwd) / 'home'
    home.mkdir(exist_ok=True)
    env.update(HOME=str(home), ANSIBLE_NOCOLOR='1')
    prologue = 'set -euo pipefail\n'
    if state is not None:  # whatever fails, the emulator the block started is stopped
        prologue += "trap 'dpemulator stop --state %s >/dev/null 2>&1 || true' EXIT\n" % state
    proc = subprocess.run(['bash', '-c', prologue + script], cwd=str(cwd), env=env, capture_output=True, text=True,
                          timeout=timeout, check=False)
    assert proc.returncode == 0, 'README block failed (rc %d):\n%s\n--- stdout\n%s\n--- stderr\n%s' % (
        proc.returncode, script, proc.stdout[-6000:], proc.stderr[-4000:])
    return proc.stdout


@pytest.fixture(scope='module')
def project(blocks, clone):
    """The install block: a project folder of its own that finds the collection (item 1)."""
    out = _bash(_as_written(blocks['install'], None), clone)
    assert 'azure_backup.dataprotection.pg_restore ' in out, out[-3000:]
    assert (clone / 'my-restores' / 'ansible.cfg').exists()
    return clone / 'my-restores'


def test_install_then_a_first_restore_on_the_emulator(blocks, project):
    """The role example (restore.yml) and the shipped playbook restore on the emulator as the README says (item 2)."""
    (project / 'restore.yml').write_text(blocks['playbook'] + '\n')
    state = project.parent / 'emu'
    out = _bash(_as_written(blocks['emulator'], state), project, state=state)
    recaps = re.findall(r'^localhost\s+: ok=\d+\s+changed=(\d+)\s+unreachable=0\s+failed=0', out, re.M)
    assert len(recaps) == 2 and all(int(changed) > 0 for changed in recaps), out[-4000:]
    assert out.count('Status: Completed') == 2, out[-4000:]
    written = yaml.safe_load((project / 'restore-vars.yml').read_text())
    azure = yaml.safe_load(blocks['azure-vars'])
    assert set(azure) <= set(written), 'the Azure vars file and example-vars name different inputs'


def test_ids_continued_over_lines_are_whole():
    """The backslash continuation (item 8) joins the lines with no space: the parsed ids are whole ARM ids."""
    text = '---\nid: "/subscriptions/s/resourceGroups/rg/providers/\\\n  Microsoft.DBforPostgreSQL/servers/x"\n'
    assert yaml.safe_load(text)['id'] == '/subscriptions/s/resourceGroups/rg/providers/Microsoft.DBforPostgreSQL/servers/x'


def _pasted(text):
    """A snippet with a real subscription id and long resource group names pasted in."""
    text = text.replace('<subscription-id>', '2f4c1a9e-3b7d-4e8a-9c61-0d5e7f8a9b10')
    return text.replace('sourcerg', LONG_NAME).replace('targetrg', LONG_NAME + '-dr')


def test_the_snippets_pass_ansible_lint_with_real_ids_pasted_in(blocks, project, tmp_path):
    """Item 8: the README's and the role README's snippets with a real subscription id and long names, in a project
    of their own: ansible-lint's production profile passes (line length included)."""
    azure = _pasted(blocks['azure-vars'])
    parsed = yaml.safe_load(azure)
    assert parsed['datasource_id'] == ('/subscriptions/2f4c1a9e-3b7d-4e8a-9c61-0d5e7f8a9b10/resourceGroups/%s/providers/'
                                       'Microsoft.DBforPostgreSQL/servers/sourceossserver/databases/empdb11' % LONG_NAME)
    files = {'restore.yml': blocks['playbook'], 'restore-vars.yml': azure,
             'role-database.yml': _pasted(blocks['role-database']), 'role-files.yml': _pasted(blocks['role-files'])}
    for name, text in files.items():
        (tmp_path / name).write_text(text + '\n')
    lint = shutil.which('ansible-lint')
    if lint is None:
        pytest.skip('ansible-lint is not installed')
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(project / 'collections'), NO_COLOR='1')
    env.pop('ANSIBLE_CONFIG', None)
    proc = subprocess.run([lint, '--profile', 'production', '--offline', '--nocolor'] + sorted(files),
                          cwd=str(tmp_path), env=env, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
