# -*- coding: utf-8 -*-
# Copyright: (c) 2025, Azure Backup Data Protection collection contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The RETURN block of a module is a contract: this checks a module's result against it.

Used by the unit tests (every exit_json/fail_json of a module, tests/unit/conftest.py) and the integration tests
(every task result of one of this collection's modules, tests/integration/conftest.py), so that a returned key
that is renamed, dropped, retyped or added without its documentation fails `make test`.

Rules, applied at every level that documents `contains`:
- every key the module returns is documented (Ansible's own result keys excepted, at the top level only);
- a key documented as `returned: always` is present, and at the top level `returned: success` too when the
  module did not fail (nested keys without `returned` are optional);
- a value has its documented `type` (and list `elements`); null is accepted for any type.
"""

from __future__ import annotations

import ast
import functools

import yaml

# Keys Ansible itself, or AnsibleModule, adds to a module's result.
ANSIBLE_RESULT_KEYS = frozenset((
    'changed', 'failed', 'msg', 'warnings', 'deprecations', 'diff', 'invocation', 'skipped', 'skip_reason',
    'exception', 'module_stdout', 'module_stderr', 'rc', 'attempts', 'retries', 'censored', 'false_condition',
    'ansible_facts', 'item', 'ansible_loop_var', 'ansible_index_var', 'results', 'stdout', 'stderr', 'stdout_lines',
    'stderr_lines', 'start', 'end', 'delta', 'unreachable', 'ansible_job_id', 'finished', 'started',
    'failed_when_result', 'changed_when_result', 'failed_when_suppressed_exception',
))

_TYPES = {
    'str': (str,),
    'path': (str,),
    'int': (int,),
    'float': (int, float),
    'bool': (bool,),
    'dict': (dict,),
    'list': (list,),
    'complex': (dict, list),
}


def parse_return_doc(text):
    """The RETURN YAML as a dict (an empty RETURN documents nothing)."""
    return yaml.safe_load(text) or {}


@functools.lru_cache(maxsize=None)
def return_doc_of_file(path):
    """The parsed RETURN block of the module source at `path`, read without importing it."""
    with open(path, encoding='utf-8') as handle:
        tree = ast.parse(handle.read(), path)
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, 'id', None) == 'RETURN' for t in node.targets):
            return parse_return_doc(node.value.value)
    raise ValueError('%s has no RETURN block' % path)


def _type_ok(value, doc_type):
    if value is None or doc_type in (None, 'raw'):
        return True
    expected = _TYPES.get(doc_type)
    if expected is None:
        return False  # a type the checker does not know is a documentation error too
    if isinstance(value, bool) and bool not in expected:
        return False  # bool is an int subclass in Python, never in the docs
    return isinstance(value, expected)


def _check_value(path, value, doc, problems):
    doc_type = doc.get('type')
    if not _type_ok(value, doc_type):
        problems.append('%s: documented as type %s, returned %s %r' % (path, doc_type, type(value).__name__, value))
        return
    contains = doc.get('contains')
    if doc_type == 'list' and isinstance(value, list):
        elements = doc.get('elements')
        for index, item in enumerate(value):
            if elements and not _type_ok(item, elements):
                problems.append('%s[%d]: documented as elements %s, returned %s %r'
                                % (path, index, elements, type(item).__name__, item))
            elif contains and isinstance(item, dict):
                _check_keys('%s[%d]' % (path, index), item, contains, problems, top=False, failed=False)
    elif contains and isinstance(value, dict):
        _check_keys(path, value, contains, problems, top=False, failed=False)


def _check_keys(path, result, docs, problems, top, failed):
    prefix = path + '.' if path else ''
    # A loop item's result also holds the loop variable, under the name the task chose.
    own = ANSIBLE_RESULT_KEYS | {result.get('ansible_loop_var'), result.get('ansible_index_var')} if top else ()
    for key, value in result.items():
        if key.startswith('_ansible') or key in own:
            continue
        if key not in docs:
            problems.append('%s%s: returned but not documented' % (prefix, key))
            continue
        _check_value(prefix + key, value, docs[key], problems)
    for key, doc in docs.items():
        returned = doc.get('returned')
        required = returned == 'always' or (top and returned == 'success')
        if required and not failed and key not in result:
            problems.append('%s%s: documented as returned %s, missing' % (prefix, key, returned))


def contract_problems(result, return_doc, failed=None):
    """What in `result` (a module's result dict) breaks `return_doc` (a parsed RETURN): a list of strings."""
    if failed is None:
        failed = bool(result.get('failed'))
    problems = []
    _check_keys('', result, return_doc, problems, top=True, failed=failed)
    return problems


def assert_matches_return_doc(result, return_doc, module='module', failed=None):
    problems = contract_problems(result, return_doc, failed=failed)
    assert not problems, '%s result does not match its RETURN documentation:\n  %s' % (module, '\n  '.join(problems))
