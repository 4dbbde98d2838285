# -*- coding: utf-8 -*-
# Copyright: (c) 2025, Azure Backup Data Protection collection contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The action plugins' controller path on the ansible-core that runs the tests (make unit-compat: each supported
release): a real ansible-playbook, whose worker prints progress lines while the task runs, module_defaults and the
task's environment reach the module, and a second host runs in its own worker."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap

import pytest

PROBE = '''
import time
import types

from ansible_collections.azure_backup.dataprotection.plugins.plugin_utils._controller import DataProtectionAction


def run(module):
    for poll in range(1, 4):
        module.progress('poll %d of %s (%s)' % (poll, module.params['name'], module.params['subscription_id']))
        time.sleep(0.2)
    return {'changed': False, 'pid': __import__('os').getpid()}


class ActionModule(DataProtectionAction):
    MODULE = types.SimpleNamespace(ARGSPEC={'name': {'type': 'str', 'required': True}}, CONSTRAINTS={}, run=run)
'''

PLAYBOOK = '''
- hosts: all
  gather_facts: false
  connection: local
  module_defaults:
    progress_probe:
      name: from-defaults
  tasks:
    - name: Probe
      progress_probe:
      environment:
        AZURE_SUBSCRIPTION_ID: sub-from-task
'''


@pytest.fixture
def project(tmp_path):
    (tmp_path / 'action_plugins').mkdir()
    (tmp_path / 'action_plugins' / 'progress_probe.py').write_text(PROBE)
    (tmp_path / 'play.yml').write_text(textwrap.dedent(PLAYBOOK))
    return tmp_path


def test_progress_lines_are_printed_while_the_task_runs(project):
    playbook = shutil.which('ansible-playbook', path=os.path.dirname(sys.executable)) or shutil.which('ansible-playbook')
    env = dict(os.environ, ANSIBLE_NOCOLOR='1', ANSIBLE_FORCE_COLOR='0', ANSIBLE_PYTHON_INTERPRETER=sys.executable)
    env.pop('AZURE_SUBSCRIPTION_ID', None)
    done = subprocess.run([playbook, '-i', 'db1,db2,', str(project / 'play.yml')], cwd=project, env=env,
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    task = next(i for i, line in enumerate(lines) if line.startswith('TASK [Probe]'))
    first_ok = next(i for i, line in enumerate(lines) if line.startswith('ok: ['))
    for host in ('db1', 'db2'):
        shown = [line for line in lines[task:first_ok] if line.startswith('[%s] poll' % host)]
        assert shown == ['[%s] poll %d of from-defaults (sub-from-task)' % (host, n) for n in (1, 2, 3)], done.stdout
