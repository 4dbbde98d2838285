# -*- coding: utf-8 -*-
# Copyright: (c) 2025, Azure Backup Data Protection collection contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Interrupted restores: the playbook killed (SIGKILL, its whole process group) at each step and run again, and the
emulator restarted under a running restore. The re-run must continue with the same job: never a second restore,
never a replaced database."""

from __future__ import annotations

import re

import pytest

from fault_helpers import wait_for_job_polls  # pylint: disable=import-error

RESTORE_TASK = 'Restore (recovery point, earlier restore'


def _job_of(result):
    """The job id the role reports (the fact postgresql_restore_result of its summary)."""
    facts = result.task('Record the result')['result'].get('ansible_facts') or {}
    job = (facts.get('postgresql_restore_result') or {}).get('job_id')
    assert job, result.tail()
    return job


def _restored_once(femu, db):
    jobs = femu.jobs_to(db)
    assert len(jobs) == 1, [(j['name'], j['properties']['status']) for j in jobs]
    assert jobs[0]['properties']['status'] == 'Completed'
    assert int(femu.psql('targetossserver', db, 'SELECT count(*) FROM employees')[0][0]) > 0
    femu.watch(db)
    return jobs[0]['name']


@pytest.mark.parametrize('step', ['after_validation', 'after_trigger', 'while_waiting'])
def test_killed_then_run_again(femu, play, unique_name, step):
    """SIGKILL at a step, then the same playbook again: it finishes with the one job the first run started (or starts
    the only one when the first run was killed before the trigger)."""
    db = unique_name('kill')
    femu.set_knobs(job_duration=8 if step != 'after_validation' else 1)
    values = femu.restore_vars(db)
    first = play.start('restore_database', values)
    if step == 'after_validation':
        femu.wait_counter('validations_requested', 1)  # killed while the validation runs: before the trigger
    elif step == 'after_trigger':
        femu.wait_counter('restores_requested', 1)
    else:
        femu.wait_counter('restore_jobs_created', 1)
        wait_for_job_polls(femu, 1)
    first.kill()
    killed = first.wait()
    assert killed.rc != 0
    if step != 'after_validation':
        femu.wait_counter('restore_jobs_created', 1, timeout=30)  # the service finishes the POST it received
    jobs = femu.jobs_to(db)
    if step == 'after_validation':
        assert femu.counters().get('restores_requested', 0) == 0 and not jobs, 'killed too late'
    else:
        assert len(jobs) == 1 and jobs[0]['properties']['status'] == 'InProgress', 'killed too late'
    started = jobs[0]['name'] if jobs else None

    again = play('restore_database', values).assert_ok()
    job = _job_of(again)
    assert job == _restored_once(femu, db)
    if started:
        assert job == started
        assert re.search(r'already restores this recovery point|started by an earlier run', again.output)
    assert femu.counters()['restores_requested'] == 1

    if step == 'while_waiting':
        # Once more after the end (the restored database holds a marker now): nothing is started or replaced.
        third = play('restore_database', values).assert_ok()
        assert _job_of(third) == job
        assert third.changed == 0, third.tail()
        assert femu.counters()['restores_requested'] == 1


def test_emulator_restarted_during_restore(femu, play, unique_name):
    """The service goes away (stop) and comes back (start, same state) while the role waits for the job: the state
    survives, the job resumes, the run completes with that job and nothing was started twice."""
    db = unique_name('restart')
    femu.set_knobs(job_duration=8)
    values = femu.restore_vars(db)
    running = play.start('restore_database', values)
    femu.wait_counter('restore_jobs_created', 1)
    wait_for_job_polls(femu, 1)
    jobs = femu.jobs_to(db)
    assert len(jobs) == 1 and jobs[0]['properties']['status'] == 'InProgress'
    femu.restart(pause=2)
    result = running.wait().assert_ok()
    assert _job_of(result) == jobs[0]['name'] == _restored_once(femu, db)
    assert femu.counted()['restores_requested'] == 1
