# -*- coding: utf-8 -*-
# Copyright: (c) 2025, Azure Backup Data Protection collection contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""pg_recovery_point_info against a fake service: paging, selection, filters, backup instance lookup, bad input."""

from __future__ import annotations

import json
import tracemalloc

import pytest

from ansible_collections.azure_backup.dataprotection.plugins.modules import pg_recovery_point_info as module

from ansible_collections.azure_backup.dataprotection.tests.unit.plugins.modules.dp_fakes import (
    BI_NAME, BI_PATH, FLEX_SERVER, SOURCE_DB, SUB, VAULT_ARGS, FakeArm, assert_no_leak, deep, load,
)

ARGS = dict(VAULT_ARGS, backup_instance_name=BI_NAME)


@pytest.fixture
def arm(rsps, monkeypatch, exit_fail):  # pylint: disable=unused-argument
    return FakeArm(rsps, monkeypatch)


def point(rp_id, when, stores=('VaultStore',)):
    body = deep(load('recovery_point_vault'))
    body['id'] = BI_PATH + '/recoveryPoints/' + rp_id
    body['name'] = body['properties']['recoveryPointId'] = rp_id
    body['properties']['recoveryPointTime'] = when
    template = body['properties']['recoveryPointDataStoresDetails'][0]
    body['properties']['recoveryPointDataStoresDetails'] = [dict(template, type=s, id='%s-%s' % (rp_id, s))
                                                            for s in stores]
    return body


PAGES = [
    [point('rp-0302', '2024-03-02T01:00:00.0000000Z'), point('rp-0301', '2024-03-01T01:00:00.0000000Z', ('ArchiveStore',))],
    [point('rp-0305', '2024-03-05T01:00:00.5000000Z', ('VaultStore', 'ArchiveStore')),
     point('rp-0303', '2024-03-03T01:00:00.0000000Z')],
    [point('rp-0304', '2024-03-04T01:00:00.0000000Z', ('ArchiveStore',))],
]


def ids(result):
    return [p['recovery_point_id'] for p in result['recovery_points']]


def test_all_points_over_pages(arm):
    arm.backup_instance()
    seen = arm.paged(BI_PATH + '/recoveryPoints', PAGES)
    result, failed = arm.run(module, ARGS)
    assert not failed and result['changed'] is False
    assert ids(result) == ['rp-0302', 'rp-0301', 'rp-0305', 'rp-0303', 'rp-0304']
    assert 'recovery_point' not in result
    assert '$filter' not in seen['first_query']
    assert result['backup_instance']['name'] == BI_NAME
    assert result['backup_instance']['datasource_id'] == SOURCE_DB
    archived = result['recovery_points'][1]
    assert archived['archive_only'] is True and archived['datastores'] == ['ArchiveStore']
    assert result['recovery_points'][2]['archive_only'] is False
    assert len(arm.calls('GET', '/recoveryPoints')) == 3


@pytest.mark.parametrize('extra,expected', [
    ({'select': 'latest'}, 'rp-0305'),
    ({'select': 'earliest'}, 'rp-0301'),
    ({'before': '2024-03-03T01:00:00Z'}, 'rp-0303'),                 # at or before; select defaults to latest
    ({'before': '2024-03-03T03:00:00+02:00'}, 'rp-0303'),
    ({'before': '2024-03-03T00:59:59Z'}, 'rp-0302'),
    ({'select': 'latest', 'datastore': 'ArchiveStore'}, 'rp-0305'),
    ({'select': 'earliest', 'datastore': 'VaultStore'}, 'rp-0302'),
    ({'before': '2024-03-04T12:00:00Z', 'datastore': 'ArchiveStore'}, 'rp-0304'),
    ({'select': 'earliest', 'before': '2024-12-31'}, 'rp-0301'),
])
def test_selection(arm, extra, expected):
    arm.backup_instance()
    arm.paged(BI_PATH + '/recoveryPoints', PAGES)
    result, failed = arm.run(module, dict(ARGS, **extra))
    assert not failed, result
    assert result['recovery_point']['recovery_point_id'] == expected
    assert ids(result) == [expected]


def test_datastore_filter_with_select_all(arm):
    arm.backup_instance()
    arm.paged(BI_PATH + '/recoveryPoints', PAGES)
    result, failed = arm.run(module, dict(ARGS, datastore='ArchiveStore'))
    assert not failed
    assert ids(result) == ['rp-0301', 'rp-0305', 'rp-0304']


def test_before_with_no_point_that_old_names_the_earliest(arm):
    arm.backup_instance()
    arm.paged(BI_PATH + '/recoveryPoints', PAGES)
    result, failed = arm.run(module, dict(ARGS, before='2024-02-28T00:00:00Z'))
    assert failed
    assert result['msg'] == (
        "Backup instance '%s': No recovery point at or before 2024-02-28T00:00:00Z; the earliest available is "
        "'rp-0301' (2024-03-01T01:00:00.0000000Z). Give a later time in before (or leave it out). "
        "(filters: before=2024-02-28T00:00:00Z)" % BI_NAME)
    assert result['earliest_recovery_point']['recovery_point_id'] == 'rp-0301'


def test_latest_with_no_points_fails_clearly(arm):
    arm.backup_instance()
    arm.paged(BI_PATH + '/recoveryPoints', [[]])
    result, failed = arm.run(module, dict(ARGS, select='latest', datastore='ArchiveStore'))
    assert failed
    assert result['msg'] == "Backup instance '%s': No recovery point found. (filters: datastore=ArchiveStore)" % BI_NAME


def test_time_window_is_sent_as_the_cli_filter(arm):
    arm.backup_instance()
    seen = arm.paged(BI_PATH + '/recoveryPoints', PAGES)
    result, failed = arm.run(module, dict(ARGS, start_time='2024-03-02T00:00:00Z', end_time='2024-03-04T03:00:00+02:00'))
    assert not failed
    assert seen['first_query']['$filter'] == [
        "startDate eq '2024-03-02T00:00:00.0000000Z' and endDate eq '2024-03-04T01:00:00.0000000Z'"]
    # also applied to the answer, in case a service ignores the filter
    assert ids(result) == ['rp-0302', 'rp-0303', 'rp-0304']


def test_one_point_by_id(arm):
    arm.backup_instance()
    body = arm.recovery_point()
    result, failed = arm.run(module, dict(ARGS, recovery_point_id=body['name']))
    assert not failed
    assert result['recovery_point']['recovery_point_id'] == 'eb006fde78cb47198be5a320fbe45e9b'
    assert result['recovery_point']['recovery_point_time'] == '2021-10-21T16:31:16.8316716Z'
    assert result['recovery_point']['friendly_name'] == '794ead7c7661410da03997d210d469e7'
    assert result['recovery_points'] == [result['recovery_point']]


def test_unknown_point_is_a_clear_failure(arm):
    arm.backup_instance()
    arm.get_404(BI_PATH + '/recoveryPoints/0000deadbeef', code='RecoveryPointNotFound',
                message='Recovery point not found')
    result, failed = arm.run(module, dict(ARGS, recovery_point_id='0000deadbeef'))
    assert failed
    assert result['msg'].startswith(
        "Get recovery point '0000deadbeef': RecoveryPointNotFound: recovery point '0000deadbeef' does not exist in "
        "backup instance '%s'. Recommended action: List the recovery points with "
        "azure_backup.dataprotection.pg_recovery_point_info" % BI_NAME)
    assert result['error']['status'] == 404


def test_backup_instance_found_from_datasource_id_over_pages(arm):
    other = deep(load('backup_instance_flexible'))
    single = load('backup_instance_single')
    arm.backup_instances([[other], [single]])
    arm.paged(BI_PATH + '/recoveryPoints', PAGES)
    # the case of the id and a trailing slash do not matter
    result, failed = arm.run(module, {**VAULT_ARGS, 'datasource_id': SOURCE_DB.upper().replace('SUBSCRIPTIONS', 'subscriptions')
                                      .replace(SUB.upper(), SUB) + '/', 'select': 'latest'})
    assert not failed, result
    assert result['backup_instance']['name'] == BI_NAME
    assert result['recovery_point']['recovery_point_id'] == 'rp-0305'


def test_no_backup_instance_for_datasource_lists_what_exists(arm):
    arm.backup_instances([[load('backup_instance_flexible')], [load('backup_instance_single')]])
    missing = SOURCE_DB.replace('empdb11', 'otherdb')
    result, failed = arm.run(module, dict(VAULT_ARGS, datasource_id=missing))
    assert failed
    assert "no backup instance in vault 'TestBkpVault' (resource group 'testBkpVaultRG') protects '%s'" % missing in result['msg']
    assert "'pgflex01-8a7c2e51-40f1-4a33-9c1b-2f0e9d6b5c77' (%s)" % FLEX_SERVER in result['msg']
    assert "'%s' (%s)" % (BI_NAME, SOURCE_DB) in result['msg']
    assert result['error']['code'] == 'BackupInstanceNotFound'


def test_unknown_backup_instance_name_lists_what_exists(arm):
    arm.get_404(BI_PATH.replace(BI_NAME, 'nope'))
    arm.backup_instances([[load('backup_instance_single')]])
    result, failed = arm.run(module, dict(VAULT_ARGS, backup_instance_name='nope'))
    assert failed
    assert "no backup instance 'nope' in vault 'TestBkpVault'" in result['msg']
    assert BI_NAME in result['msg']


@pytest.mark.parametrize('extra,message', [
    ({'datasource_id': '/subscriptions/%s/resourceGroups/r/providers/Microsoft.Sql/servers/s' % SUB}, 'datasource_id'),
    ({'datasource_id': 'empdb11'}, 'datasource_id'),
    ({'backup_instance_name': BI_NAME, 'before': 'last tuesday'}, "before 'last tuesday' is not a valid date/time"),
    ({'backup_instance_name': BI_NAME, 'start_time': '2024-05-02', 'end_time': '2024-05-01'},
     'start_time (2024-05-02T00:00:00Z) is after end_time (2024-05-01T00:00:00Z)'),
    ({'backup_instance_name': BI_NAME, 'recovery_point_id': 'a/b'}, 'recovery_point_id'),
    ({'backup_instance_name': BI_NAME, 'datasource_id': SOURCE_DB}, 'mutually exclusive'),
    ({}, 'one of the following is required: backup_instance_name, datasource_id'),
    ({'backup_instance_name': BI_NAME, 'recovery_point_id': 'x1', 'before': '2024-01-01'}, 'mutually exclusive'),
    ({'backup_instance_name': BI_NAME, 'datastore': 'OperationalStore'}, 'datastore'),
])
def test_bad_input_fails_before_any_call(arm, extra, message):
    result, failed = arm.run(module, dict(VAULT_ARGS, **extra))
    assert failed
    assert message in result['msg']
    assert len(arm.rsps.calls) == 0


def test_check_mode_runs_normally(arm):
    arm.backup_instance()
    arm.paged(BI_PATH + '/recoveryPoints', PAGES)
    result, failed = arm.run(module, dict(ARGS, select='latest'), check_mode=True)
    assert not failed and result['changed'] is False
    assert result['recovery_point']['recovery_point_id'] == 'rp-0305'


def test_no_secret_or_token_in_results(arm):
    arm.backup_instance()
    arm.paged(BI_PATH + '/recoveryPoints', PAGES)
    ok, failed = arm.run(module, dict(ARGS, select='latest'))
    assert not failed
    arm.get_404(BI_PATH.replace(BI_NAME, 'nope'))
    arm.backup_instances([[]])
    error, failed = arm.run(module, dict(VAULT_ARGS, backup_instance_name='nope'))
    assert failed
    assert_no_leak(ok, error)
    # the bearer token was sent, so the sentinel was really in play
    assert arm.calls()[0].request.headers['Authorization'].startswith('Bearer eyJ0eXAi.token-sentinel')


def test_latest_of_10000_points_over_100_pages_streams(arm):
    """Selecting the latest point holds about one page: memory does not grow with the number of pages."""
    template = json.dumps(point('RPID', 'RPTIME'))

    def page(index):
        return '[%s]' % ', '.join(template.replace('RPID', 'rp%05d' % n).replace(
            'RPTIME', '2024-%02d-%02dT00:00:00Z' % (1 + n % 12, 1 + n % 28)) for n in range(index * 100, (index + 1) * 100))

    arm.backup_instance()
    seen = arm.paged(BI_PATH + '/recoveryPoints', (page, 100), forget_calls=True)
    one_page = len(page(0))
    tracemalloc.start()
    try:
        result, failed = arm.run(module, dict(ARGS, select='latest'))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert not failed
    assert result['recovery_point']['recovery_point_time'] == '2024-12-28T00:00:00Z'
    assert seen['pages'] == 100
    # Keeping the 100 pages would take ~100 x one_page of JSON text, plus their parsed objects.
    assert peak < 15 * one_page, (peak, one_page)
