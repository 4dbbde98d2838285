# -*- coding: utf-8 -*-
# Copyright: (c) 2025, Azure Backup Data Protection collection contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Transport faults the restore must ride out: throttling, 5xx, dropped connections, latency, short-lived tokens.

Each test runs the product's playbook (playbooks/restore_database.yml, what users run) or the modules, against the
suite's emulator with faults injected, and proves that the restore completes with exactly one restore job.
"""

from __future__ import annotations

import re

import pytest

DP = r'/providers/Microsoft\.DataProtection/backupVaults/[^/]+'


def _datasource(femu):
    return '/subscriptions/%s/resourceGroups/sourcerg/providers/Microsoft.DBforPostgreSQL/servers/sourceossserver' \
        '/databases/empdb11' % femu.sub


def _one_restore_job(femu, database):
    jobs = femu.jobs_to(database)
    assert len(jobs) == 1, [j['name'] for j in jobs]
    assert jobs[0]['properties']['status'] == 'Completed', jobs[0]['properties']
    return jobs[0]['name']


def _restored(femu, database):
    rows = femu.psql('targetossserver', database, 'SELECT count(*) FROM employees')
    assert int(rows[0][0]) > 0
    femu.watch(database)


def test_429_storm_on_reads_and_posts(femu, play, unique_name):
    """429 + Retry-After on every kind of read and on both POSTs (validate, restore): the run completes, each 429
    was waited out (Retry-After honoured, a warning per retry), and exactly one restore was requested and made."""
    db = unique_name('t429')
    # Every read the run makes (each made once: the backup instance is found by the listing and not read again).
    storm = [('GET', DP + r'/backupInstances$', 2),
             ('GET', r'/recoveryPoints', 2), ('GET', DP + r'/backupJobs$', 2), ('GET', DP + r'/backupJobs/[^/]+$', 2),
             ('GET', r'/operationStatus/', 2), ('GET', DP + r'$', 2),
             ('POST', r'/validateRestore$', 3), ('POST', r'/restore$', 3)]
    for method, path, count in storm:
        femu.fault('status', path, method=method, count=count, status=429, retry_after=1)
    # datasource_id: the backup instance is found by listing the vault's (a paged read)
    values = femu.restore_vars(db, datasource_id=_datasource(femu))
    del values['backup_instance_name']
    result = play('restore_database', values).assert_ok()
    injected = sum(rule[2] for rule in storm)
    assert femu.counters().get('throttled_429') == injected
    assert len(re.findall(r'HTTP 429; retrying in (?:1\.\d|2\.0)s', result.output)) >= injected - 2  # 1 s + jitter
    assert femu.counters()['restores_requested'] == 1
    _one_restore_job(femu, db)
    _restored(femu, db)


def _restore_tasks(femu, db, **restore):
    """pg_recovery_point_info (latest) then pg_restore with wait: one module process waits for the job."""
    target = femu.module_target(db)
    point = {k: target[k] for k in ('vault_name', 'resource_group', 'backup_instance_name')}
    params = dict(target, recovery_point_id='{{ point.recovery_point.recovery_point_id }}', wait=True,
                  poll_interval=1, wait_timeout=300)
    params.update(restore)
    return [{'name': 'Latest point', 'module': 'pg_recovery_point_info', 'params': dict(point, select='latest'),
             'register': 'point'},
            {'name': 'Restore and wait', 'module': 'pg_restore', 'params': params}]


def test_throttling_headers_running_low(femu, play, unique_name):
    """ARM's token buckets with little capacity: x-ms-ratelimit-remaining-* run down to 0 and ARM answers 429 with
    its own Retry-After; the modules wait and complete the restore, once."""
    db = unique_name('bucket')
    tasks = _restore_tasks(femu, db)
    femu.set_knobs(throttle={'enabled': True, 'read_capacity': 4, 'read_refill': 2.0, 'write_capacity': 2,
                             'write_refill': 0.5})
    result = play.tasks(tasks).assert_ok()
    femu.set_knobs(throttle={'enabled': False})
    assert femu.counters().get('throttled_429', 0) > 0
    assert 'HTTP 429; retrying' in result.output
    _one_restore_job(femu, db)
    _restored(femu, db)


def test_5xx_on_reads_operation_polls_and_job_polls(femu, play, unique_name):
    """500/502/503/504 on the reads, on the operation status polls (validate and restore) and on the job polls of
    the role's wait loop: each is retried with backoff, the run completes, one restore."""
    db = unique_name('t5xx')
    femu.set_knobs(job_duration=3)
    # Every read the run makes (the recovery point comes from the list: it is not read again by id; an operation's
    # Location is not read once its status has said Succeeded, with the job id for a restore).
    faults = [(DP + r'/backupInstances/[^/]+$', 500, 1), (r'/recoveryPoints$', 502, 1),
              (DP + r'/backupJobs$', 500, 1), (DP + r'$', 504, 1),
              (r'/operationStatus/', 503, 2), (DP + r'/backupJobs/[^/]+$', 504, 2),
              (r'/databases/[^/]+$', 500, 1)]
    for path, status, count in faults:
        femu.fault('status', path, method='GET', count=count, status=status)
    result = play('restore_database', femu.restore_vars(db)).assert_ok()
    hits = femu.fault_hits()
    assert sum(hits.values()) == sum(rule[2] for rule in faults), femu.control('GET', 'faults')
    for status in (500, 502, 503, 504):
        assert 'HTTP %d; retrying' % status in result.output
    _one_restore_job(femu, db)
    _restored(femu, db)


def test_connection_dropped_mid_response(femu, play, unique_name):
    """The connection is reset after the service handled a read (the answer never arrives): recovery points, job
    list, operation status and job reads are simply read again."""
    db = unique_name('drop')
    tasks = _restore_tasks(femu, db)
    for path in (r'/recoveryPoints$', DP + r'/backupJobs$', r'/operationStatus/', DP + r'/backupJobs/[^/]+$',
                 r'/oauth2/v2\.0/token$'):
        femu.fault('drop_after', path, method='GET' if 'token' not in path else 'POST', count=1)
    result = play.tasks(tasks).assert_ok()
    hits = femu.fault_hits()
    assert all(hits.values()), femu.control('GET', 'faults')
    assert 'retrying' in result.output
    _one_restore_job(femu, db)
    _restored(femu, db)


def test_slow_responses_on_every_call(femu, play, unique_name):
    """Every call (metadata, token, ARM) answers after seconds: nothing times out, nothing is retried."""
    db = unique_name('slow')
    tasks = _restore_tasks(femu, db)
    femu.fault('latency', r'^/(?!_emulator)', latency=1.5)
    result = play.tasks(tasks).assert_ok()
    assert 'retrying' not in result.output
    _one_restore_job(femu, db)
    _restored(femu, db)


def test_restore_post_dropped_after_it_was_taken(femu, play, unique_name):
    """The connection drops right after the restore POST reached the service (the job was created, the 202 is lost):
    the module does not post again; it finds the job in the vault and follows it. Exactly one restore job."""
    db = unique_name('lost')
    femu.fault('drop_after', r'/restore$', method='POST', count=1)
    result = play('restore_database', femu.restore_vars(db)).assert_ok()
    assert femu.counters()['restores_requested'] == 1
    job = _one_restore_job(femu, db)
    warnings = result.task('Restore (recovery point, earlier restore')['result'].get('warnings') or []
    assert any('restore request got no usable answer' in w and job in w for w in warnings), warnings
    _restored(femu, db)


def test_access_tokens_expire_during_a_long_job(femu, play, unique_name):
    """Tokens that live 5 s while one module waits 15 s for its job: azure-identity gets new ones; no request is
    refused with 401 and no 401 reaches the user."""
    db = unique_name('token')
    tasks = _restore_tasks(femu, db, poll_interval=2)
    femu.set_knobs(token_lifetime=5, job_duration=15)
    before = femu.request_counts().get('POST aad.token', 0)
    result = play.tasks(tasks).assert_ok()
    tokens = femu.request_counts().get('POST aad.token', 0) - before
    assert tokens >= 4, tokens   # 2 module runs, and the waiting one renewed its token at least twice
    unauthorized = re.findall(r'.*(?:HTTP 401|ExpiredAuthenticationToken|InvalidAuthenticationToken).*', result.output)
    assert not unauthorized, unauthorized[:5]
    refused = re.findall(r'.* (?:GET|POST|PUT|PATCH|DELETE) \S+ 401 .*', femu.log_since_start())
    assert not refused, refused[-5:]
    _one_restore_job(femu, db)
    _restored(femu, db)


@pytest.mark.parametrize('fault', ['dropped', '503'])
def test_validation_post_dropped_or_5xx(femu, play, unique_name, fault):
    """validateRestore changes nothing, so a dropped answer or a 5xx on it is only a reason to ask again: the run
    completes with one restore."""
    db = unique_name('val' + fault)
    if fault == 'dropped':
        femu.fault('drop_after', r'/validateRestore$', method='POST', count=1)
    else:
        femu.fault('status', r'/validateRestore$', method='POST', count=1, status=503)
    play('restore_database', femu.restore_vars(db)).assert_ok()
    _one_restore_job(femu, db)
    _restored(femu, db)
