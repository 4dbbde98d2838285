# -*- coding: utf-8 -*-
# Copyright: (c) 2025, Azure Backup Data Protection collection contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A restore job that fails, and one that is cancelled: the playbook fails with the service's error details and the
job id, and the module returns them structured."""

from __future__ import annotations

import json

from fault_helpers import wait_for_job_polls  # pylint: disable=import-error

FAILURE_CODE = 'UserErrorDBUserAuthFailed'
FAILURE_MESSAGE = 'The user could not be authenticated on the target server (injected).'


def _failure_text(result):
    failed = result.failed
    assert failed, result.tail()
    return failed[-1]['result'].get('msg', '')


def test_failed_job_reports_service_error_and_job_id(femu, play, unique_name):
    """The job the restore creates fails: the role stops with the job id, the service's code, message and
    recommended action; pg_restore (wait) returns them under `error` with the job id."""
    db = unique_name('jobfail')
    target = femu.module_target(db)
    femu.fault('job_failure', r'/restore$', method='POST', count=2, code=FAILURE_CODE, message=FAILURE_MESSAGE)
    result = play('restore_database', femu.restore_vars(db)).assert_failed()
    jobs = femu.jobs_to(db)
    assert len(jobs) == 1 and jobs[0]['properties']['status'] == 'Failed'
    job = jobs[0]['name']
    message = _failure_text(result)
    for expected in (job, 'Failed', FAILURE_CODE, FAILURE_MESSAGE, 'Recommended action'):
        assert expected in message, message

    # The module alone (wait=true): the same details, structured, and the job it started.
    femu.wait_idle()
    dummy, record = play.module('pg_restore', dict(target, wait=True, poll_interval=1))
    assert record['status'] == 'failed'
    outcome = record['result']
    assert outcome['error']['code'] == FAILURE_CODE and outcome['error']['message'] == FAILURE_MESSAGE
    assert outcome['error']['recommended_actions']
    assert outcome['job_id'] and outcome['job_id'] in outcome['msg'] and outcome['changed'] is True
    assert outcome['job']['status'] == 'Failed'
    assert len(femu.jobs_to(db)) == 2  # a failed restore does not block a new one, and the database was not made
    assert db not in femu.databases('targetossserver')


def test_failed_job_without_progress_lines_fails_the_restore_task(femu, play, unique_name):
    """progress=false: pg_restore waits in the role's restore task, so the failed job fails that task, with the job
    id and the service's details, and exactly one restore is made (a failed job is not retried by the role)."""
    db = unique_name('jobfailq')
    femu.fault('job_failure', r'/restore$', method='POST', count=1, code=FAILURE_CODE, message=FAILURE_MESSAGE)
    requested = femu.counters().get('restores_requested', 0)
    result = play('restore_database', dict(femu.restore_vars(db), progress=False)).assert_failed()
    jobs = femu.jobs_to(db)
    assert len(jobs) == 1 and jobs[0]['properties']['status'] == 'Failed'
    failed = result.failed[-1]
    assert failed['action'].endswith('pg_restore'), failed['task']
    for expected in (jobs[0]['name'], FAILURE_CODE, FAILURE_MESSAGE):
        assert expected in failed['result']['msg'], failed['result']['msg']
    assert failed['result']['job']['status'] == 'Failed'
    assert femu.counters().get('restores_requested', 0) == requested + 1
    assert not [r for r in result.results if 'Poll the restore job' in r['task'] and r['status'] != 'skipped']


def test_cancelled_job_reports_cancellation_and_job_id(femu, play, unique_name):
    """Someone cancels the restore job while the role waits: the role stops, saying the job was cancelled, with
    its id; the half-restored database is removed by the service and nothing else is touched."""
    db = unique_name('cancel')
    femu.set_knobs(job_duration=15)
    running = play.start('restore_database', femu.restore_vars(db))
    femu.wait_counter('restore_jobs_created', 1)
    wait_for_job_polls(femu, 1)
    jobs = femu.jobs_to(db)
    assert len(jobs) == 1
    job = jobs[0]['name']
    femu.cancel_job(job)
    result = running.wait().assert_failed()
    message = _failure_text(result)
    assert job in message and 'Cancel' in message, message
    # no error details: what to read next, and that a re-run starts afresh
    assert 'job_status.yml playbook (job_id=%s)' % job in message and 'starts a new restore' in message, message
    assert femu.wait_job(job) == 'Cancelled'
    assert db not in femu.databases('targetossserver')
    assert json.dumps(result.failed[-1]['result']).count(job) >= 1
