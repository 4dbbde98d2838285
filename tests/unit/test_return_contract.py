# -*- coding: utf-8 -*-
# Copyright: (c) 2025, Azure Backup Data Protection collection contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The RETURN-documentation checker (tests/return_contract.py), and that every module's RETURN is checkable."""

from __future__ import annotations

import importlib
import pkgutil

import pytest
import yaml

from ansible_collections.azure_backup.dataprotection.plugins import modules as modules_package
from ansible_collections.azure_backup.dataprotection.plugins.modules import dataprotection_job_info
from ansible_collections.azure_backup.dataprotection.tests.return_contract import (
    _TYPES, contract_problems, parse_return_doc,
)
from ansible_collections.azure_backup.dataprotection.tests.unit.plugins.modules.dp_fakes import (
    JOB_ID, VAULT_ARGS, VAULT_PATH, FakeArm, load,
)

DOC = parse_return_doc('''
job_id: {description: x, returned: always, type: str}
created: {description: x, returned: success, type: bool}
count: {description: x, returned: when counted, type: int}
ratio: {description: x, returned: when counted, type: float}
names: {description: x, returned: always, type: list, elements: str}
job:
  description: x
  returned: when found
  type: dict
  contains:
    status: {description: x, returned: always, type: str}
    note: {description: x, type: str}
    errors:
      description: x
      returned: always
      type: list
      elements: dict
      contains:
        code: {description: x, returned: always, type: str}
''')
GOOD = {'changed': False, 'job_id': 'j', 'created': True, 'names': ['a'], 'count': 2, 'ratio': 1,
        'job': {'status': 'Completed', 'errors': [{'code': 'X'}]}}


def _without(data, key):
    return {k: v for k, v in data.items() if k != key}


@pytest.mark.parametrize('result, failed, expected', [
    (GOOD, None, []),
    (dict(GOOD, warnings=['w'], invocation={}, _ansible_no_log=False), None, []),  # Ansible's own keys
    (dict(GOOD, ansible_loop_var='poll', poll=3, failed_when_result=False), None, []),  # a loop item's
    (dict(GOOD, job_id=None), None, []),  # null is accepted for any type
    (_without(GOOD, 'count'), None, []),  # conditional keys may be missing
    (dict(_without(GOOD, 'job_id'), jobid='j'), None,
     ['jobid: returned but not documented', 'job_id: documented as returned always, missing']),
    (_without(GOOD, 'created'), None, ['created: documented as returned success, missing']),
    ({'failed': True, 'msg': 'x'}, None, []),  # a failure need not carry the success keys
    (dict(GOOD, count='2'), None, ["count: documented as type int, returned str '2'"]),
    (dict(GOOD, count=True), None, ['count: documented as type int, returned bool True']),
    (dict(GOOD, created=1), None, ['created: documented as type bool, returned int 1']),
    (dict(GOOD, names=['a', 3]), None, ['names[1]: documented as elements str, returned int 3']),
    (dict(GOOD, job={'status': 'x', 'errors': [], 'extra': 1}), None, ['job.extra: returned but not documented']),
    (dict(GOOD, job={'errors': []}), None, ['job.status: documented as returned always, missing']),
    (dict(GOOD, job={'status': 'x', 'errors': [{'code': 1}]}), None,
     ['job.errors[0].code: documented as type str, returned int 1']),
    (dict(GOOD, job={'status': 'x', 'errors': [{}]}), None, ['job.errors[0].code: documented as returned always, missing']),
])
def test_contract_problems(result, failed, expected):
    assert contract_problems(result, DOC, failed=failed) == expected


def _all_module_docs():
    for info in pkgutil.iter_modules(modules_package.__path__):
        yield info.name, parse_return_doc(importlib.import_module(modules_package.__name__ + '.' + info.name).RETURN)


def _walk(doc, path=''):
    for key, entry in doc.items():
        yield path + key, entry
        yield from _walk(entry.get('contains') or {}, path + key + '.')


@pytest.mark.parametrize('name, doc', list(_all_module_docs()))
def test_every_module_return_doc_is_checkable(name, doc):
    """A type the checker does not know would make every result of that key fail: catch the typo here."""
    assert doc, name
    for path, entry in _walk(doc):
        assert entry.get('type') in set(_TYPES) | {'raw'}, (name, path, entry.get('type'))
        if entry.get('type') == 'list':
            assert entry.get('elements') in set(_TYPES) | {'raw'}, (name, path, 'list without a known elements')
        assert entry.get('description'), (name, path, 'no description')
        assert 'returned' in entry or path.count('.'), (name, path, 'no returned')


def test_unit_results_are_held_to_the_return_doc(rsps, monkeypatch, exit_fail):  # pylint: disable=unused-argument
    """The exit_json hook of tests/unit/conftest.py really checks: a module whose RETURN no longer documents a key
    it returns fails the test that ran it (as a renamed return value would)."""
    arm = FakeArm(rsps, monkeypatch)
    arm.get(VAULT_PATH + '/backupJobs/' + JOB_ID, load('job_restore_completed'))
    doc = parse_return_doc(dataprotection_job_info.RETURN)
    del doc['job']['contains']['status']
    monkeypatch.setattr(dataprotection_job_info, 'RETURN', yaml.safe_dump(doc))
    with pytest.raises(AssertionError, match=r'job\.status: returned but not documented'):
        arm.run(dataprotection_job_info, dict(VAULT_ARGS, job_id=JOB_ID))
