# -*- coding: utf-8 -*-
# Copyright: (c) 2025, Azure Backup Data Protection collection contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Recovery point normalisation, filters and streaming selection."""

from __future__ import annotations

import tracemalloc
from datetime import datetime, timezone

import pytest

from ansible_collections.azure_backup.dataprotection.plugins.module_utils import _recovery_points as rp


def raw_point(rp_id, when, stores=('VaultStore',)):
    """A recovery point as the live service lists it (reference §3; nulls sent explicitly)."""
    return {
        'id': ('/subscriptions/11111111-2222-3333-4444-555555555555/resourceGroups/testBkpVaultRG/providers/'
               'Microsoft.DataProtection/backupVaults/TestBkpVault/backupInstances/testpostgresql-empdb11-957d23b1/'
               'recoveryPoints/' + rp_id),
        'name': rp_id,
        'type': 'Microsoft.DataProtection/backupVaults/backupInstances/recoveryPoints',
        'properties': {
            'objectType': 'AzureBackupDiscreteRecoveryPoint',
            'recoveryPointId': rp_id,
            'recoveryPointTime': when,
            'recoveryPointType': 'Full',
            'friendlyName': 'f-' + rp_id,
            'recoveryPointDataStoresDetails': [
                {'id': 'ds-%s-%d' % (rp_id, i), 'type': store, 'creationTime': when, 'expiryTime': None,
                 'metaData': None, 'visible': True, 'state': 'COMMITTED', 'rehydrationExpiryTime': None,
                 'rehydrationStatus': None}
                for i, store in enumerate(stores)
            ],
            'retentionTagName': 'Default',
            'retentionTagVersion': '637212748405148394',
            'policyName': 'osspol3',
            'policyVersion': None,
        },
    }


def utc(*args):
    return datetime(*args, tzinfo=timezone.utc)


@pytest.mark.parametrize('text,expected', [
    ('2021-10-21T16:31:16.8316716Z', utc(2021, 10, 21, 16, 31, 16, 831671)),
    ('2021-10-21T16:31:16Z', utc(2021, 10, 21, 16, 31, 16)),
    ('2021-10-21T16:31:16', utc(2021, 10, 21, 16, 31, 16)),
    ('2021-10-21 16:31', utc(2021, 10, 21, 16, 31)),
    ('2021-10-21', utc(2021, 10, 21)),
    ('2021-10-21T18:31:16+02:00', utc(2021, 10, 21, 16, 31, 16)),
    ('2021-10-21T10:31:16-0600', utc(2021, 10, 21, 16, 31, 16)),
])
def test_parse_time(text, expected):
    assert rp.parse_time(text) == expected


@pytest.mark.parametrize('text', ['yesterday', '2021-13-01', '21-10-2021', '2021-10-21T25:00:00Z', '', None])
def test_parse_time_refuses_with_format_help(text):
    with pytest.raises(ValueError) as err:
        rp.parse_time(text, 'before')
    assert str(err.value).startswith('before ')
    assert 'ISO 8601' in str(err.value)


def test_time_filter_is_formatted_like_the_cli():
    start = rp.parse_time('2024-05-01T10:00:00+02:00')
    end = rp.parse_time('2024-05-02T00:00:00.5Z')
    assert rp.build_time_filter(start, end) == (
        "startDate eq '2024-05-01T08:00:00.0000000Z' and endDate eq '2024-05-02T00:00:00.5000000Z'")
    assert rp.build_time_filter(start, None) == "startDate eq '2024-05-01T08:00:00.0000000Z'"
    assert rp.build_time_filter(None, end) == "endDate eq '2024-05-02T00:00:00.5000000Z'"
    assert rp.build_time_filter(None, None) is None


def test_normalize_recovery_point():
    point = rp.normalize_recovery_point(raw_point('eb006fde78cb47198be5a320fbe45e9b', '2021-10-21T16:31:16.8316716Z'))
    assert point['recovery_point_id'] == 'eb006fde78cb47198be5a320fbe45e9b'
    assert point['recovery_point_time'] == '2021-10-21T16:31:16.8316716Z'
    assert point['recovery_point_type'] == 'Full'
    assert point['friendly_name'] == 'f-eb006fde78cb47198be5a320fbe45e9b'
    assert point['policy_name'] == 'osspol3'
    assert point['retention_tag_name'] == 'Default'
    assert point['datastores'] == ['VaultStore']
    assert point['in_vault_store'] is True
    assert point['archive_only'] is False
    assert point['datastore_details'][0] == {
        'id': 'ds-eb006fde78cb47198be5a320fbe45e9b-0', 'type': 'VaultStore', 'state': 'COMMITTED', 'visible': True,
        'creation_time': '2021-10-21T16:31:16.8316716Z', 'expiry_time': None, 'rehydration_status': None,
        'rehydration_expiry_time': None}


@pytest.mark.parametrize('stores,archive_only,in_vault', [
    (['ArchiveStore'], True, False),
    (['archivestore'], True, False),
    (['VaultStore', 'ArchiveStore'], False, True),
    ([], False, False),
])
def test_archive_only(stores, archive_only, in_vault):
    point = rp.normalize_recovery_point(raw_point('a1', '2024-01-01T00:00:00Z', stores))
    assert point['archive_only'] is archive_only
    assert point['in_vault_store'] is in_vault


POINTS = [
    raw_point('rp-b', '2024-03-02T01:00:00.0000000Z'),
    raw_point('rp-a', '2024-03-01T01:00:00.0000000Z', ('ArchiveStore',)),
    raw_point('rp-d', '2024-03-04T01:00:00.1234567Z', ('VaultStore', 'ArchiveStore')),
    raw_point('rp-c', '2024-03-03T01:00:00.0000000Z'),
]


@pytest.mark.parametrize('mode,before,datastore,expected', [
    ('latest', None, None, 'rp-d'),
    ('earliest', None, None, 'rp-a'),
    ('latest', '2024-03-03T01:00:00Z', None, 'rp-c'),          # at or before: an exact time qualifies
    ('latest', '2024-03-03T00:59:59Z', None, 'rp-b'),
    ('latest', '2030-01-01', None, 'rp-d'),
    ('earliest', '2024-03-03', None, 'rp-a'),
    ('latest', None, 'ArchiveStore', 'rp-d'),
    ('earliest', None, 'ArchiveStore', 'rp-a'),
    ('earliest', None, 'VaultStore', 'rp-b'),
    ('latest', '2024-03-03T12:00:00+00:00', 'ArchiveStore', 'rp-a'),
])
def test_select(mode, before, datastore, expected):
    before_dt = rp.parse_time(before) if before else None
    points = rp.iter_filtered(iter(POINTS), datastore=datastore)
    assert rp.select_recovery_point(points, mode, before=before_dt)['recovery_point_id'] == expected


def test_select_before_the_first_point_names_the_earliest():
    with pytest.raises(rp.RecoveryPointNotFound) as err:
        rp.select_recovery_point(rp.iter_filtered(iter(POINTS)), 'latest', before=rp.parse_time('2024-02-01'))
    message = str(err.value)
    assert 'No recovery point at or before 2024-02-01T00:00:00Z' in message
    assert "the earliest available is 'rp-a' (2024-03-01T01:00:00.0000000Z)" in message
    assert err.value.count == 4
    assert err.value.earliest['recovery_point_id'] == 'rp-a'


def test_select_nothing():
    with pytest.raises(rp.RecoveryPointNotFound) as err:
        rp.select_recovery_point(iter([]), 'latest')
    assert err.value.count == 0 and err.value.earliest is None


def test_select_bad_mode():
    with pytest.raises(ValueError):
        rp.select_recovery_point(iter([]), 'all')


def test_window_filter_client_side():
    start, end = rp.parse_time('2024-03-02T00:00:00Z'), rp.parse_time('2024-03-03T12:00:00Z')
    ids = [p['recovery_point_id'] for p in rp.iter_filtered(iter(POINTS), start=start, end=end)]
    assert ids == ['rp-b', 'rp-c']


def test_datastore_filter_is_case_insensitive():
    ids = [p['recovery_point_id'] for p in rp.iter_filtered(iter(POINTS), datastore='archivestore')]
    assert ids == ['rp-a', 'rp-d']


def _pages(count=100, size=100):
    """Raw points page by page, one page alive at a time (as ArmClient.iter_pages streams them)."""
    for page in range(count):
        batch = [raw_point('rp%05d' % n, '2024-01-%02dT00:00:00Z' % (1 + n % 28))
                 for n in range(page * size, (page + 1) * size)]
        yield from batch
        batch = None


def _peak_memory(func):
    tracemalloc.start()
    try:
        func()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_selection_streams_and_keeps_no_pages():
    """10,000 points over 100 pages: selecting latest holds about one page, never all of them."""
    one_page = _peak_memory(lambda: [rp.normalize_recovery_point(p) for p in _pages(count=1)])
    chosen = {}

    def select():
        chosen['point'] = rp.select_recovery_point(rp.iter_filtered(_pages()), 'latest')

    peak = _peak_memory(select)
    assert chosen['point']['recovery_point_time'] == '2024-01-28T00:00:00Z'
    # Keeping the 10,000 points (raw or normalised) would take ~100 pages' worth.
    assert peak < 5 * one_page, (peak, one_page)


def test_the_streaming_check_can_fail():
    """Sanity check of the measurement itself: a selection that lists everything is caught."""
    one_page = _peak_memory(lambda: [rp.normalize_recovery_point(p) for p in _pages(count=1)])
    peak = _peak_memory(lambda: rp.select_recovery_point(iter(list(rp.iter_filtered(_pages()))), 'latest'))
    assert peak > 20 * one_page
