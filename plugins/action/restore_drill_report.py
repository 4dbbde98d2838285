# -*- coding: utf-8 -*-
# Copyright: (c) 2025, Azure Backup Data Protection collection contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Writes the restore drill's report on the controller, whatever the host's connection: the report is the run's,
not a host's, and the records are already in the controller's memory."""

from __future__ import annotations

from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible.plugins.action import ActionBase

from ansible_collections.azure_backup.dataprotection.plugins.modules import restore_drill_report


class ActionModule(ActionBase):
    TRANSFERS_FILES = False

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        outcome = ArgumentSpecValidator(restore_drill_report.ARGSPEC, **restore_drill_report.CONSTRAINTS).validate(
            dict(self._task.args))
        if outcome.error_messages:
            result.update(failed=True, msg='; '.join(outcome.error_messages))
            return result
        try:
            result.update(restore_drill_report.run(outcome.validated_parameters, check_mode=bool(self._task.check_mode)))
        except ValueError as exc:
            result.update(failed=True, msg=str(exc))
        return result
