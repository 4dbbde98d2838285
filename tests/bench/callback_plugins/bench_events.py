# Copyright: (c) 2025, Azure Backup Data Protection collection contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Bench helper (scripts/bench.py): writes when the controller learnt that a job ended, and every failure.

Enabled with ANSIBLE_CALLBACK_PLUGINS=<this dir> ANSIBLE_CALLBACKS_ENABLED=bench_events and BENCH_EVENTS=<file>.
One JSON line per task that ends ok (its seconds), one per result that carries a terminal `job` (what the controller shows the user at that moment) or a
selected `recovery_point`, and one per failed or unreachable task.
"""

from __future__ import annotations

import json
import os
import time

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = r'''
name: bench_events
type: aggregate
short_description: time stamps of terminal jobs and failures, for scripts/bench.py
description:
  - Appends JSON lines to the file named by the BENCH_EVENTS environment variable.
requirements:
  - enabled in the configuration (callbacks_enabled)
'''


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = 'aggregate'
    CALLBACK_NAME = 'bench_events'
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._path = os.environ.get('BENCH_EVENTS')

    def _write(self, event):
        if self._path:
            with open(self._path, 'a', encoding='utf-8') as handle:
                handle.write(json.dumps(event) + '\n')

    def _job(self, result, seen):
        point = result._result.get('recovery_point')  # pylint: disable=protected-access  # the callback API's way
        if isinstance(point, dict):
            self._write({'event': 'point', 'host': result._host.get_name(),  # pylint: disable=protected-access
                         'recovery_point_id': point.get('recovery_point_id'), 'seen': seen, 'task': result.task_name})
        job = result._result.get('job')  # pylint: disable=protected-access
        if isinstance(job, dict) and job.get('is_terminal'):
            self._write({'event': 'done', 'host': result._host.get_name(),  # pylint: disable=protected-access
                         'job_id': job.get('job_id'), 'status': job.get('status'),
                         'ok': bool(job.get('succeeded')), 'seen': seen, 'task': result.task_name})

    def v2_playbook_on_task_start(self, task, is_conditional):
        self._task_start = time.time()

    def v2_runner_on_ok(self, result):
        now = time.time()
        # the task's own time (its module run and the worker around it), without ansible-playbook's start
        self._write({'event': 'task', 'task': result.task_name, 'seconds': now - getattr(self, '_task_start', now)})
        self._job(result, now)

    def v2_runner_item_on_ok(self, result):
        self._job(result, time.time())

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._write({'event': 'failed', 'host': result._host.get_name(),  # pylint: disable=protected-access
                     'task': result.task_name, 'ignored': bool(ignore_errors), 'seen': time.time(),
                     'msg': str(result._result.get('msg', ''))[:500]})  # pylint: disable=protected-access

    def v2_runner_on_unreachable(self, result):
        self._write({'event': 'failed', 'host': result._host.get_name(),  # pylint: disable=protected-access
                     'task': result.task_name, 'ignored': False, 'seen': time.time(), 'msg': 'unreachable'})
