# -*- coding: utf-8 -*-
# Copyright: (c) 2025, Azure Backup Data Protection collection contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""One pass: a playbook signs in once (token cache shared by its tasks, cloud metadata read once), and waiting
costs one request per poll in one task, with a progress line at each poll. Counted by the emulator."""

from __future__ import annotations

import stat

SIGN_IN_ROUTES = ('GET metadata.endpoints', 'GET aad.openid', 'POST aad.token')


def sign_ins(emulator):
    counts = emulator.request_counts()
    return {route: counts.get(route, 0) for route in SIGN_IN_ROUTES}


def listing_tasks(emulator, count):
    params = {'vault_name': 'TestBkpVault', 'resource_group': 'testBkpVaultRG',
              'backup_instance_name': emulator.backup_instance('empdb11')['name'], 'select': 'latest'}
    return [{'name': 'list %d' % n, 'module': 'pg_recovery_point_info', 'params': params} for n in range(count)]


def test_the_tasks_of_a_run_sign_in_once(emulator, run_tasks, tmp_path):
    cache = tmp_path / 'cache'
    emulator.reset_counters()
    first = run_tasks(listing_tasks(emulator, 3), emulator=emulator,
                      env={'AZURE_BACKUP_CACHE_DIR': str(cache)}).assert_ok()
    assert sign_ins(emulator) == dict.fromkeys(SIGN_IN_ROUTES, 1), first.tail()
    assert stat.S_IMODE(cache.stat().st_mode) == 0o700
    files = sorted(p.name for p in cache.iterdir())
    assert 'msal_token_cache.nocae' in files, files
    assert all(stat.S_IMODE((cache / name).stat().st_mode) == 0o600 for name in files)

    emulator.reset_counters()  # the next playbook run finds everything cached
    run_tasks(listing_tasks(emulator, 2), emulator=emulator, env={'AZURE_BACKUP_CACHE_DIR': str(cache)}).assert_ok()
    assert sign_ins(emulator) == dict.fromkeys(SIGN_IN_ROUTES, 0)


def test_a_cloud_metadata_file_saves_the_metadata_request(emulator, run_tasks, tmp_path):
    emulator.reset_counters()
    run_tasks(listing_tasks(emulator, 2), emulator=emulator,
              env={'AZURE_BACKUP_CACHE_DIR': str(tmp_path / 'cache'),
                   'AZURE_CLOUD_ENVIRONMENT': emulator.env['DPEMULATOR_CLOUD_FILE']}).assert_ok()
    assert sign_ins(emulator) == {'GET metadata.endpoints': 0, 'GET aad.openid': 1, 'POST aad.token': 1}


def test_without_the_cache_every_task_signs_in(emulator, run_tasks, tmp_path):
    emulator.reset_counters()
    run_tasks(listing_tasks(emulator, 2), emulator=emulator,
              env={'AZURE_BACKUP_CACHE_DIR': str(tmp_path / 'unused'), 'AZURE_BACKUP_TOKEN_CACHE': 'false'}).assert_ok()
    assert sign_ins(emulator) == dict.fromkeys(SIGN_IN_ROUTES, 2)
    assert not (tmp_path / 'unused').exists()


def test_waiting_is_one_request_per_poll_with_a_progress_line_each(emulator, run_module, unique_name):
    emulator.wait_idle()
    knobs = emulator.knobs()
    emulator.set_knobs(job_duration=4)
    try:
        emulator.backup('empdb11')
        database = unique_name('onepass')
        emulator.reset_counters()
        result, record = run_module('pg_restore', {
            'vault_name': 'TestBkpVault', 'resource_group': 'testBkpVaultRG',
            'backup_instance_name': emulator.backup_instance('empdb11')['name'], 'select': 'latest',
            'target_server_id': emulator.server_id('targetossserver'), 'target_database_name': database,
            'secret_uri': emulator.kv_uri() + 'secrets/targetossserver-conn', 'wait': True, 'poll_interval': 1},
            emulator=emulator)
    finally:
        emulator.set_knobs(job_duration=knobs['job_duration'])
    result.assert_ok()
    job_id = record['result']['job_id']
    lines = [line for line in result.stdout.splitlines() if line.startswith('[localhost] restore job %s: ' % job_id)]
    polls = emulator.request_counts().get('GET dataprotection.backupJobs.get', 0)
    assert len(lines) >= 3, result.stdout  # a 4 s job polled every second
    assert polls == len(lines), (polls, lines)  # one request per poll, and a line for each
    assert 'Completed' in lines[-1] and all('InProgress' in line for line in lines[:-1]), lines
    assert database in emulator.databases('targetossserver')
