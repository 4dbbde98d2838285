# -*- coding: utf-8 -*-
# Copyright: (c) 2025, Azure Backup Data Protection collection contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The controller runner: a module's run() in the worker, with AnsibleModule's validation, masking and results."""

from __future__ import annotations

import os
import subprocess
import sys
import types

import pytest

from ansible_collections.azure_backup.dataprotection.plugins.module_utils._errors import DataProtectionError
from ansible_collections.azure_backup.dataprotection.plugins.modules import pg_restore, restore_permissions
from ansible_collections.azure_backup.dataprotection.plugins.plugin_utils import _controller

from ansible_collections.azure_backup.dataprotection.tests.unit.conftest import SENTINEL_SECRET


def fake_module(run, argspec=None, constraints=None):
    return types.SimpleNamespace(ARGSPEC=argspec or {'name': {'type': 'str', 'required': True},
                                                     'token': {'type': 'str', 'no_log': True},
                                                     'count': {'type': 'int', 'default': 2}},
                                 CONSTRAINTS=constraints or {}, run=run)


def test_the_module_gets_validated_params_and_its_result_is_masked():
    seen = {}

    def run(module):
        seen.update(params=module.params, check_mode=module.check_mode, diff=module._diff)
        module.warn('careful with ' + module.params['token'])
        return {'changed': True, 'echo': module.params['token'], 'count': module.params['count']}

    result = _controller.run_in_process(fake_module(run), {'name': 'x', 'token': SENTINEL_SECRET, 'count': '5'},
                                        check_mode=True, diff=True)
    assert seen['params']['count'] == 5 and seen['check_mode'] is True and seen['diff'] is True
    assert seen['params']['subscription_id'] is None  # the auth options are there too
    assert result['changed'] is True and result['count'] == 5
    assert SENTINEL_SECRET not in repr(result)
    # as AnsibleModule.exit_json masks them
    assert result['echo'] == 'VALUE_SPECIFIED_IN_NO_LOG_PARAMETER'
    assert result['warnings'] == ['careful with ********']
    assert result['invocation']['module_args']['token'] == 'VALUE_SPECIFIED_IN_NO_LOG_PARAMETER'


@pytest.mark.parametrize('args, message', [
    ({}, 'missing required arguments: name'),
    ({'name': 'x', 'count': 'many'}, "count"),
    ({'name': 'x', 'colour': 'red'}, 'colour'),
])
def test_bad_arguments_fail_as_a_module_would(args, message):
    result = _controller.run_in_process(fake_module(lambda m: {}), args)
    assert result['failed'] is True and result['changed'] is False
    assert message in result['msg']


def test_constraints_of_the_module_are_checked():
    result = _controller.run_in_process(
        fake_module(lambda m: {}, constraints={'mutually_exclusive': [('name', 'token')],
                                               'supports_check_mode': True}), {'name': 'x', 'token': 'a-long-token'})
    assert result['failed'] and 'mutually exclusive' in result['msg']


def test_fail_json_and_errors_end_the_task_like_a_module():
    def run(module):
        raise DataProtectionError('Get vault', 'no such vault', code='ResourceNotFound', status=404)

    result = _controller.run_in_process(fake_module(run), {'name': 'x'})
    assert result['failed'] is True and result['changed'] is False
    assert result['msg'].startswith('Get vault: ResourceNotFound: no such vault')
    assert result['error']['code'] == 'ResourceNotFound'

    def bad(module):
        raise ValueError('name must be short')

    assert _controller.run_in_process(fake_module(bad), {'name': 'x'})['msg'] == 'name must be short'


def test_the_task_environment_reaches_the_fallbacks_and_is_undone(monkeypatch):
    monkeypatch.delenv('AZURE_SUBSCRIPTION_ID', raising=False)
    seen = {}

    def run(module):
        seen['subscription'] = module.params['subscription_id']
        return {}

    _controller.run_in_process(fake_module(run), {'name': 'x'}, environment={'AZURE_SUBSCRIPTION_ID': 'sub-1'})
    assert seen['subscription'] == 'sub-1'
    assert 'AZURE_SUBSCRIPTION_ID' not in os.environ


def test_progress_lines_go_to_the_display_masked_and_with_the_host(monkeypatch):
    lines = []
    monkeypatch.setattr(_controller.display, 'display', lines.append)

    def run(module):
        module.progress('job 1: InProgress ' + module.params['token'])
        return {}

    _controller.run_in_process(fake_module(run), {'name': 'x', 'token': SENTINEL_SECRET}, host='db1')
    assert lines == ['[db1] job 1: InProgress ********']


@pytest.mark.parametrize('code', [pg_restore, restore_permissions])
def test_every_module_exposes_what_the_runner_needs(code):
    assert isinstance(code.ARGSPEC, dict) and callable(code.run)
    params, dummy, error = _controller.validate_arguments(code, {'vault_name': 'v', 'resource_group': 'rg'})
    assert error is not None and params is None  # their own required options are enforced


def test_loading_an_action_plugin_puts_the_main_process_objects_beyond_the_collector():
    """The strategy loads the plugin in the main process, then forks a worker per task: the objects there by then are
    frozen, so a collection in a worker does not walk (and copy) them. A fresh interpreter shows it."""
    code = ('import gc; before = gc.get_freeze_count(); '
            'from ansible_collections.azure_backup.dataprotection.plugins.action import pg_restore; '
            'print(before, gc.get_freeze_count())')
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, check=True,
                         env=dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p)))
    before, after = (int(n) for n in out.stdout.split())
    assert before == 0 and after > 10000, out.stdout
