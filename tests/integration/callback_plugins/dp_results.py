# -*- coding: utf-8 -*-
# Copyright: (c) 2025, Azure Backup Data Protection collection contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Test helper callback (not part of the collection's plugins): appends every task result, as ansible-core hands
it to callbacks (already censored for no_log), and the final stats, as JSON lines to the file named by the
environment variable DP_RESULTS_FILE. The screen output stays the default callback's, so the tests see exactly
what a user sees; the file gives them the structured results. Each line is flushed at once, so a run killed
part-way still leaves the results of the tasks it finished.
"""

from __future__ import annotations

DOCUMENTATION = r'''
name: dp_results
type: aggregate
short_description: Write task results and stats as JSON lines (integration tests)
description:
  - Appends one JSON object per task result and one for the play recap to the file E(DP_RESULTS_FILE).
requirements:
  - enable in ansible.cfg or with E(ANSIBLE_CALLBACKS_ENABLED)
'''

import json
import os

from ansible.plugins.callback import CallbackBase


def _plain(value):
    """JSON-safe copy (tagged strings and other ansible types become plain values)."""
    return json.loads(json.dumps(value, default=str))


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = 'aggregate'
    CALLBACK_NAME = 'dp_results'
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._path = os.environ.get('DP_RESULTS_FILE')

    def _write(self, record):
        if not self._path:
            return
        with open(self._path, 'a', encoding='utf-8') as handle:
            handle.write(json.dumps(_plain(record), default=str) + '\n')

    def _record(self, status, result, item=False):
        task = result._task  # pylint: disable=protected-access
        data = getattr(result, 'result', None)
        if data is None:
            data = result._result  # pylint: disable=protected-access
        role = getattr(task, '_role', None)
        self._write({
            'event': 'item' if item else 'task',
            'status': status,
            'host': result._host.get_name(),  # pylint: disable=protected-access
            'task': task.get_name(),
            'action': task.action,
            'role': role.get_name() if role else None,
            'no_log': bool(task.no_log) if isinstance(task.no_log, bool) else None,
            'result': dict(data),
        })

    def v2_runner_on_ok(self, result):
        self._record('changed' if result.is_changed() else 'ok', result)

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._record('ignored' if ignore_errors else 'failed', result)

    def v2_runner_on_skipped(self, result):
        self._record('skipped', result)

    def v2_runner_on_unreachable(self, result):
        self._record('unreachable', result)

    def v2_runner_item_on_ok(self, result):
        self._record('changed' if result.is_changed() else 'ok', result, item=True)

    def v2_runner_item_on_failed(self, result):
        self._record('failed', result, item=True)

    def v2_runner_item_on_skipped(self, result):
        self._record('skipped', result, item=True)

    def v2_runner_retry(self, result):
        self._record('retry', result)

    def v2_playbook_on_stats(self, stats):
        hosts = sorted(stats.processed.keys())
        self._write({'event': 'stats', 'stats': {host: stats.summarize(host) for host in hosts}})
