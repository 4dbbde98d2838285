# -*- coding: utf-8 -*-
# Copyright: (c) 2025, Azure Backup Data Protection collection contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""End to end, cross-region restore: the vault's region (westeurope) is down on the emulator (world crr.yml).

- the restore_database playbook with use_secondary_region restores the latest SECONDARY point (hours older than the
  primary's latest) into drtargetserver, in the secondary region northeurope; the rows are those of that point;
  check mode starts nothing; a re-run changes nothing; the summary says it ran cross-region and from where;
- without the switch the same run fails at once and its message names use_secondary_region;
- interrupted after the cross-region restore was triggered, a re-run finds that job and starts no second restore.
"""

from __future__ import annotations

import time

import pytest

PRIMARY, SECONDARY = 'westeurope', 'northeurope'


@pytest.fixture(scope='module')
def crr(emulator_session_factory, dp_repo_root):
    return emulator_session_factory(str(dp_repo_root / 'tests' / 'emulator' / 'dpemulator' / 'worlds' / 'crr.yml'))


@pytest.fixture()
def outage(crr):
    crr.set_knobs(region_outage={'region': PRIMARY, 'mode': 'status', 'status': 503})
    yield crr
    crr.set_knobs(region_outage={'region': ''})


def extravars(crr, database, **extra):
    return dict({'vault_name': 'TestBkpVault', 'vault_resource_group': 'testBkpVaultRG',
                 'backup_instance_name': crr.backup_instance('empdb11')['name'],
                 'target_server_id': crr.server_id('drtargetserver', rg='drtargetrg'),
                 'target_database_name': database, 'secret_uri': crr.kv_uri('drtargetkv') + 'secrets/drtargetserver-conn',
                 'use_secondary_region': True, 'poll_interval': 1, 'validate_delay': 1, 'busy_delay': 1}, **extra)


def crr_restores(crr):
    counters = crr.counters()
    return counters.get('crr_restores_requested', 0), counters.get('restore_jobs_created', 0)


def secondary_point_between_markers(crr, restore_checks, tag):
    """A point already in the secondary region (taken 13 h ago: the lag is 12 h) between two marker rows, then a fresh
    backup holding the 'after' row: the newest point of the primary region, not yet in the secondary one."""
    crr.wait_idle()
    crr.psql('sourceossserver', 'empdb11', restore_checks.MARKER_SQL.format(tag=tag + '_before'))
    point = crr.control('POST', 'backup', {'backup_instance': crr.backup_instance('empdb11')['name'], 'hours_ago': 13})
    state = restore_checks.snapshot(crr, 'sourceossserver', 'empdb11')
    crr.psql('sourceossserver', 'empdb11', restore_checks.MARKER_SQL.format(tag=tag + '_after'))
    newest = crr.backup('empdb11')
    return point, state, newest


def test_the_playbook_restores_the_latest_secondary_point_while_the_region_is_down(
        crr, run_playbook, unique_name, restore_checks):
    tag, database = unique_name('crre2e'), unique_name('crrdb')
    point, state, newest = secondary_point_between_markers(crr, restore_checks, tag)
    crr.set_knobs(region_outage={'region': PRIMARY, 'mode': 'status', 'status': 503})
    try:
        before = crr_restores(crr)
        checked = run_playbook('restore_database', extravars=extravars(crr, database), check=True,
                               emulator=crr).assert_ok()
        assert 'Status: NotStarted' in checked.stdout and crr_restores(crr) == before
        assert database not in crr.databases('drtargetserver')

        first = run_playbook('restore_database', extravars=extravars(crr, database), emulator=crr).assert_ok()
        assert 'Status: Completed' in first.stdout
        assert 'Region: cross-region restore from the secondary region northeurope (the vault is in westeurope)' \
            in first.stdout
        assert 'Recovery point: %s' % point['name'] in first.stdout and newest['name'] not in first.stdout
        assert crr_restores(crr) == (before[0] + 1, before[1] + 1)

        again = run_playbook('restore_database', extravars=extravars(crr, database), emulator=crr).assert_ok()
        assert again.changed == 0 and '(started by an earlier run)' in again.stdout
        assert crr_restores(crr) == (before[0] + 1, before[1] + 1)
    finally:
        crr.set_knobs(region_outage={'region': ''})
    restore_checks.assert_restored_as_of(crr, database, state, tag, server='drtargetserver')


def test_without_the_switch_the_run_fails_fast_naming_it(outage, run_playbook, unique_name):
    before = crr_restores(outage)
    started = time.monotonic()
    result = run_playbook('restore_database', extravars=extravars(outage, unique_name('crrdb'),
                                                                  use_secondary_region=False), emulator=outage)
    result.assert_failed()
    assert 'use_secondary_region: true' in result.output and 'ServiceUnavailable' in result.output
    assert crr_restores(outage) == before
    assert time.monotonic() - started < 120   # bounded retries of the 503 (Retry-After 1), not the wait timeout


def test_interrupted_after_the_cross_region_trigger_then_run_again(outage, run_playbook, unique_name):
    crr, database = outage, unique_name('crrintr')
    before = crr_restores(crr)
    knobs = crr.knobs()
    crr.set_knobs(job_duration=6)  # still running when the run is killed and when it restarts
    try:
        running = run_playbook.start('restore_database', extravars=extravars(crr, database), emulator=crr)
        deadline = time.monotonic() + 300
        while crr_restores(crr)[1] == before[1]:
            assert running.proc.poll() is None, running.wait().tail()
            assert time.monotonic() < deadline, 'the restore was never triggered'
            time.sleep(0.1)
        running.kill()
        killed = running.wait()
        assert killed.rc != 0 and killed.stats is None, 'the run was not interrupted'
        resumed = run_playbook('restore_database', extravars=extravars(crr, database), emulator=crr).assert_ok()
    finally:
        crr.set_knobs(job_duration=knobs['job_duration'])
    assert 'Status: Completed' in resumed.stdout and '(started by an earlier run)' in resumed.stdout
    assert crr_restores(crr) == (before[0] + 1, before[1] + 1), 'a second restore was started'
    assert database in crr.databases('drtargetserver')


def test_the_flexible_playbook_restores_as_files_from_the_secondary_region_and_loads(crr, run_playbook, unique_name):
    """restore_flexible_server with use_secondary_region: the files of a secondary point land in a container of the
    secondary region; the load finds them from the container and prefix (the job is not in the vault's region)."""
    from test_flexible_server import DB, MARKER_SQL, SNAPSHOT_SQL, SOURCE, TARGET  # pylint: disable=import-error
    tag, target_db = unique_name('crrflex'), unique_name('crrflexdb')
    crr.wait_idle()
    crr.psql(SOURCE, DB, MARKER_SQL.format(tag=tag + '_before'))
    point = crr.control('POST', 'backup', {'backup_instance': crr.backup_instance(SOURCE)['name'], 'hours_ago': 13})
    snap = crr.psql(SOURCE, DB, SNAPSHOT_SQL)[0]
    crr.psql(SOURCE, DB, MARKER_SQL.format(tag=tag + '_after'))
    info = crr.server(TARGET)
    extravars = {'vault_name': 'TestBkpVault', 'vault_resource_group': 'testBkpVaultRG',
                 'backup_instance_name': crr.backup_instance(SOURCE)['name'], 'recovery_point_id': point['name'],
                 'target_container_url': crr.env['DPEMULATOR_BLOB_URL'] + 'drtargetstorage/restored-files',
                 'target_storage_account_id': '/subscriptions/%s/resourceGroups/drtargetrg/providers/'
                                              'Microsoft.Storage/storageAccounts/drtargetstorage' % crr.sub,
                 'target_file_prefix': unique_name('crrflexpb').replace('_', '-'), 'target_host': info['host'],
                 'target_port': info['port'], 'source_database': DB, 'target_database': target_db,
                 'login_user': info['admin_user'], 'login_password': info['admin_password'], 'ssl_root_cert': crr.ca,
                 'use_secondary_region': True, 'poll_interval': 1, 'validate_delay': 1, 'busy_delay': 1}
    crr.set_knobs(region_outage={'region': PRIMARY, 'mode': 'status', 'status': 503})
    try:
        before = crr_restores(crr)
        first = run_playbook('restore_flexible_server', extravars=extravars, emulator=crr).assert_ok()
        assert 'Region: cross-region restore from the secondary region northeurope' in first.stdout
        assert crr_restores(crr)[0] == before[0] + 1
        assert crr.psql(TARGET, target_db, SNAPSHOT_SQL)[0] == snap          # the rows of the secondary point
        again = run_playbook('restore_flexible_server', extravars=extravars, emulator=crr).assert_ok()
        assert again.changed == 0
    finally:
        crr.set_knobs(region_outage={'region': ''})
