# -*- coding: utf-8 -*-
# Copyright: (c) 2025, Azure Backup Data Protection collection contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A 5xx on the restore POST itself: the service may or may not have started a job, and the answer does not say.

pg_restore (the module, in a small playbook) never sends the restore again on a 5xx; it looks for the job the
request may have created. Either the service processed the request (fault `status_after`: the job exists) and the
job is found and followed, or it did not (fault `status`) and the task fails saying to run it again, which starts
the one restore. A further run finds the job and changes nothing. The counters prove one restore requested and made.
"""

from __future__ import annotations

RESTORE_POST = r'/backupInstances/[^/]+/restore$'


def _restore(femu, db, **extra):
    """pg_restore of the latest point of empdb11 to a new database, waiting for the job."""
    params = dict(femu.module_target(db), wait=True, poll_interval=1, wait_timeout=300)
    params.update(extra)
    return [{'name': 'Restore', 'module': 'pg_restore', 'params': params, 'ignore_errors': True}]


def _run(femu, play, db, **extra):
    result = play.tasks(_restore(femu, db, **extra))
    return result, result.task('Restore')


def _one_job(femu, db):
    jobs = femu.jobs_to(db)
    assert len(jobs) == 1, [j['name'] for j in jobs]
    return jobs[0]['name']


def _counts(femu):
    counters = femu.counters()
    return counters.get('restores_requested', 0), counters.get('restore_jobs_created', 0)


def test_5xx_after_the_service_took_the_restore(femu, play, unique_name):
    """The service created the job, then answered 500: the module finds that job instead of posting again, says so,
    and waits for it; a re-run finds it and changes nothing."""
    db = unique_name('took5xx')
    femu.fault('status_after', RESTORE_POST, method='POST', count=1, status=500)
    result, record = _run(femu, play, db)
    assert record['status'] == 'changed', result.tail()
    job = _one_job(femu, db)
    assert record['result']['job_id'] == job and record['result']['job']['status'] == 'Completed'
    warnings = record['result'].get('warnings') or []
    assert any('restore request got no usable answer' in w and 'HTTP 500' in w and job in w for w in warnings), \
        warnings
    assert _counts(femu) == (1, 1)
    femu.watch(db)

    again, record = _run(femu, play, db)
    assert record['status'] == 'ok' and record['result']['job_id'] == job, again.tail()
    assert _counts(femu) == (1, 1) and _one_job(femu, db) == job


def test_5xx_before_the_service_took_the_restore(femu, play, unique_name):
    """The service answered 503 without processing the restore: the module does not post again; it looks for a
    job, finds none before its wait_timeout and fails saying to run the task again. The re-run starts the one
    restore; a third run finds it."""
    db = unique_name('lost5xx')
    femu.fault('status', RESTORE_POST, method='POST', count=1, status=503, retry_after=None)
    result, record = _run(femu, play, db, wait_timeout=12)
    assert record['status'] == 'ignored', result.tail()  # failed (ignore_errors: the play goes on to the recap)
    msg = record['result']['msg']
    assert 'HTTP 503' in msg and 'may or may not have started' in msg and 'Run the task again' in msg, msg
    assert record['result']['error']['code'] == 'RequestOutcomeUnknown'
    assert record['result']['changed'] is True  # it may have: a re-run must look before it posts
    assert _counts(femu) == (0, 0) and femu.jobs_to(db) == []
    assert femu.request_counts().get('POST dataprotection.restore', 0) == 1  # sent once, never again

    rerun, record = _run(femu, play, db)
    assert record['status'] == 'changed', rerun.tail()
    job = _one_job(femu, db)
    assert record['result']['job_id'] == job and _counts(femu) == (1, 1)
    femu.watch(db)

    third, record = _run(femu, play, db)
    assert record['status'] == 'ok' and record['result']['job_id'] == job, third.tail()
    assert _counts(femu) == (1, 1)
