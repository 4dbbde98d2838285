# -*- coding: utf-8 -*-
# Copyright: (c) 2025, Azure Backup Data Protection collection contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
#
# INTERNAL USE ONLY: private to the azure_backup.dataprotection collection; no compatibility promise.
"""Run a module of this collection inside the controller's worker process, through its action plugin.

Every module is a client of Azure's REST API: it runs where Ansible runs (``hosts: localhost``, an inventory of
backup instances, an AWX execution environment). Run there as a module, each task is a new Python process that
unpacks its payload, imports requests and azure-identity and signs in; run here, the action plugin's import already
happened once in the main process (the strategy loads the plugin before it forks a worker), and a wait can print a
progress line at every poll through Ansible's display, which the worker forwards to the main process.

The module's own code runs unchanged: its ``ARGSPEC``, ``CONSTRAINTS`` and ``run(module)`` are given a
ControllerModule instead of an AnsibleModule. The arguments are validated by ansible-core's ArgumentSpecValidator
(the same checks, environment fallbacks and no_log values as AnsibleModule), and the result is masked the same way.
A task that does not run on the controller (another connection than local) runs the module as usual.
"""

from __future__ import annotations

import gc
import os
from contextlib import contextmanager

from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible.module_utils.common.parameters import remove_values
from ansible.plugins.action import ActionBase
from ansible.utils.display import Display

from ansible_collections.azure_backup.dataprotection.plugins.module_utils import _auth
from ansible_collections.azure_backup.dataprotection.plugins.module_utils._module import (
    AzureParts, missing_libraries,
)

display = Display()


def _freeze_inherited_objects():
    """Move every object the main process holds now (ansible-core's parsed config, plugin docs and playbook, the
    libraries just imported) out of the garbage collector's reach, as Python's gc docs advise before fork().

    The strategy imports this plugin in the main process and forks a worker per task: without it, a full collection in
    a worker walks every inherited object and so writes to (copies) nearly every page of the parent's heap, and the
    main process walks them again at each of its own full collections. Objects made later are collected as usual.
    One restore: about 0.07 CPU-seconds less on the controller (docs/benchmarks.md).
    """
    gc.freeze()


_freeze_inherited_objects()

_VALIDATOR_KEYS = ('mutually_exclusive', 'required_together', 'required_one_of', 'required_if', 'required_by')


class _ModuleExit(Exception):
    """exit_json / fail_json of a ControllerModule: ends run() with its result, as sys.exit ends a module."""

    def __init__(self, result):
        super().__init__('module exit')
        self.result = result


class ControllerModule(AzureParts):
    """What a module's run() uses of DataProtectionModule, in the controller's worker process."""

    # pylint: disable-next=too-many-arguments
    def __init__(self, params, no_log_values, check_mode=False, diff=False, host=None):
        self.params = params
        self.no_log_values = set(no_log_values)
        self.check_mode = check_mode
        self._diff = diff
        self._host = host
        self.warnings = []

    def warn(self, warning):
        self.warnings.append(warning)

    def progress(self, message):
        """A line in the output now, while the task runs (AnsibleModule has no such channel)."""
        text = remove_values(message, self.no_log_values)
        display.display(f'[{self._host}] {text}' if self._host else text)

    def exit_json(self, **result):
        raise _ModuleExit(result)

    def fail_json(self, msg, **result):
        raise _ModuleExit(dict(result, failed=True, msg=msg))


@contextmanager
def task_environment(environment):
    """The task's `environment:` in os.environ while the module runs (a module process would get it).

    The worker is a fork that ends with the task, but the change is undone anyway.
    """
    saved = dict(os.environ)
    os.environ.update({str(k): str(v) for k, v in (environment or {}).items()})
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def validate_arguments(module_code, args):
    """(validated params, no_log values, error message or None) as AnsibleModule would give them."""
    spec = dict(_auth.AUTH_ARGSPEC, **module_code.ARGSPEC)
    constraints = {k: v for k, v in getattr(module_code, 'CONSTRAINTS', {}).items() if k in _VALIDATOR_KEYS}
    validator = ArgumentSpecValidator(spec, **constraints)
    outcome = validator.validate(args)
    # pylint: disable-next=protected-access
    no_log_values = outcome._no_log_values  # what AnsibleModule masks; there is no public accessor
    if outcome.error_messages:
        return None, no_log_values, '; '.join(outcome.error_messages)
    return outcome.validated_parameters, no_log_values, None


def run_in_process(module_code, args, check_mode=False, diff=False, host=None, environment=None):
    """The result of the module's run(), as the module process would have returned it."""
    with task_environment(environment):
        params, no_log_values, error = validate_arguments(module_code, args)
        if error is not None:
            return remove_values({'failed': True, 'msg': error, 'changed': False}, no_log_values)
        module = ControllerModule(params, no_log_values, check_mode=check_mode, diff=diff, host=host)
        result = {}
        try:
            module.exit_with(module_code.run)
        except _ModuleExit as done:
            result = done.result
    if module.warnings:
        result['warnings'] = module.warnings
    result.setdefault('changed', False)
    result['invocation'] = {'module_args': params}
    return remove_values(result, module.no_log_values)


class DataProtectionAction(ActionBase):
    """Base of the collection's action plugins: MODULE is the module's Python module (ARGSPEC, CONSTRAINTS, run)."""

    MODULE = None
    TRANSFERS_FILES = False

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        if not self._runs_on_controller():
            result.update(self._execute_module(task_vars=task_vars))
            return result
        environment = {}
        for entry in self._task.environment or []:
            environment.update(self._templar.template(entry) or {})
        result.update(run_in_process(
            self.MODULE, dict(self._task.args), check_mode=bool(self._task.check_mode), diff=bool(self._task.diff),
            host=(task_vars or {}).get('inventory_hostname'), environment=environment))
        return result

    def _runs_on_controller(self):
        """A local connection, and the libraries importable here (else the module process may find them)."""
        local = getattr(self._connection, 'transport', None) in ('local', 'ansible.builtin.local')
        return local and all(present for present, dummy_library, dummy_error in missing_libraries())
