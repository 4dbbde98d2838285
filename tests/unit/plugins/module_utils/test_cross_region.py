# -*- coding: utf-8 -*-
# Copyright: (c) 2025, Azure Backup Data Protection collection contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Cross-region restore helpers: the vault's secondary region from Resource Graph, option checks, the hint that names
the switch, POST list paging, the target's region check."""

from __future__ import annotations

import json

import pytest
from responses import matchers

from ansible_collections.azure_backup.dataprotection.plugins.module_utils import _cross_region as crr
from ansible_collections.azure_backup.dataprotection.plugins.module_utils._errors import DataProtectionError
from ansible_collections.azure_backup.dataprotection.plugins.module_utils._restore_request import (
    DatabaseTarget, FilesTarget,
)
from ansible_collections.azure_backup.dataprotection.tests.unit.conftest import ARM, SUBSCRIPTION

RG_PATH = f'/subscriptions/{SUBSCRIPTION}/resourceGroups/testBkpVaultRG'
VAULT_ID = RG_PATH + '/providers/Microsoft.DataProtection/backupVaults/TestBkpVault'
BI_ID = VAULT_ID + '/backupInstances/src-empdb11-1'
GRAPH = ARM + crr.RESOURCE_GRAPH_PATH
LOC = f'{ARM}{RG_PATH}/providers/Microsoft.DataProtection/locations/northeurope'
PARAMS = {'vault_name': 'TestBkpVault', 'resource_group': 'testBkpVaultRG', 'use_secondary_region': True}
SERVER = f'/subscriptions/{SUBSCRIPTION}/resourceGroups/drrg/providers/Microsoft.DBforPostgreSQL/servers/drserver'


def vault_row(state='Enabled', replicated=('northeurope',), location='westeurope'):
    return {'id': VAULT_ID, 'name': 'TestBkpVault', 'location': location, 'properties': {
        'featureSettings': {'crossRegionRestoreSettings': {'state': state}}, 'replicatedRegions': list(replicated)}}


@pytest.mark.parametrize('row, explicit, expected', [
    (vault_row(), None, 'northeurope'),
    (vault_row(), 'North Europe', 'northeurope'),                    # the same region, written as the portal does
    (vault_row(replicated=()), 'northeurope', 'northeurope'),        # a vault that does not report it
    (vault_row(replicated=()), None, 'SecondaryRegionUnknown'),
    (vault_row(), 'eastus', ValueError),                              # not the vault's secondary region
    (vault_row(state='Disabled'), None, crr.NOT_ENABLED),
    (vault_row(state=None), None, crr.NOT_ENABLED),
    (None, None, 'ResourceNotFound'),
])
def test_find_vault(rsps, make_client, row, explicit, expected):
    rsps.post(GRAPH, json={'data': [row] if row else []}, match=[
        matchers.query_param_matcher({'api-version': crr.RESOURCE_GRAPH_API_VERSION})])
    client = make_client()
    params = dict(PARAMS, secondary_region=explicit)
    if expected is ValueError:
        with pytest.raises(ValueError, match="'eastus' is not the secondary region.*'northeurope'"):
            crr.find_vault(client, params)
    elif expected != 'northeurope':
        with pytest.raises(DataProtectionError) as err:
            crr.find_vault(client, params)
        assert err.value.code == expected
    else:
        ctx = crr.find_vault(client, params)
        assert (ctx.source_region, ctx.secondary_region, ctx.vault_id) == ('westeurope', expected, VAULT_ID)
        assert ARM + ctx.location_path == LOC
    body = json.loads(rsps.calls[0].request.body)
    assert body['subscriptions'] == [SUBSCRIPTION]
    assert "resourceGroup =~ 'testBkpVaultRG'" in body['query'] and "name =~ 'TestBkpVault'" in body['query']


def test_find_backup_instance_keeps_the_vaults_own(rsps, make_client):
    other = BI_ID.replace('/TestBkpVault/', '/OtherVault/')
    rsps.post(GRAPH, json={'data': [{'id': other}, {'id': BI_ID, 'name': 'src-empdb11-1'}]})
    ctx = crr.CrossRegion({}, VAULT_ID, 'westeurope', 'northeurope', LOC[len(ARM):])
    raw = crr.find_backup_instance(make_client(), dict(PARAMS, datasource_id='/subscriptions/x/db'), ctx)
    assert raw['id'] == BI_ID
    assert "properties.dataSourceInfo.resourceID =~ '/subscriptions/x/db'" in json.loads(rsps.calls[0].request.body)[
        'query']


@pytest.mark.parametrize('params, error', [
    ({'use_secondary_region': True, 'secondary_region': 'northeurope'}, None),
    ({'use_secondary_region': True}, None),
    ({'use_secondary_region': False}, None),
    ({'use_secondary_region': False, 'secondary_region': 'northeurope'}, 'only used with use_secondary_region'),
    ({'use_secondary_region': True, 'secondary_region': ' '}, 'must not be empty'),
])
def test_check_params(params, error):
    if error:
        with pytest.raises(ValueError, match=error):
            crr.check_params(params)
    else:
        crr.check_params(params)


@pytest.mark.parametrize('status, code, params, hinted', [
    (503, 'ServiceUnavailable', {'use_secondary_region': False}, True),
    (500, 'InternalServerError', {'use_secondary_region': False}, True),
    (None, 'ConnectionFailed', {'use_secondary_region': False}, True),
    (503, 'ServiceUnavailable', {'use_secondary_region': True}, False),   # already cross-region
    (404, 'ResourceNotFound', {'use_secondary_region': False}, False),     # not an outage
    (503, 'ServiceUnavailable', {'name': 'x'}, False),                     # a module without the option
])
def test_outage_hint_names_the_switch(status, code, params, hinted):
    err = crr.with_outage_hint(DataProtectionError('Get backup vault', 'down.', code=code, status=status), params)
    assert ('use_secondary_region: true' in str(err)) is hinted
    crr.with_outage_hint(err, params)
    assert err.recommended_actions.count(crr.SWITCH_HINT) == (1 if hinted else 0)


def test_secondary_points_post_then_follow_next_links_with_get(rsps, make_client):
    ctx = crr.CrossRegion({}, VAULT_ID, 'westeurope', 'northeurope', LOC[len(ARM):])
    nxt = LOC + '/fetchSecondaryRecoveryPoints?api-version=2024-04-01&$skipToken=abc'
    rsps.post(LOC + '/fetchSecondaryRecoveryPoints', json={'value': [{'name': 'a'}], 'nextLink': nxt}, match=[
        matchers.json_params_matcher({'sourceRegion': 'westeurope', 'sourceBackupInstanceId': BI_ID}),
        matchers.query_param_matcher({'api-version': '2024-04-01', '$filter': "endDate eq 'x'"})])
    rsps.get(nxt, json={'value': [{'name': 'b'}]})
    points = crr.iter_secondary_points(make_client(api_version='2024-04-01'), ctx, BI_ID, "endDate eq 'x'")
    assert [p['name'] for p in points] == ['a', 'b']


@pytest.mark.parametrize('target, answers, restore_location, expected', [
    (DatabaseTarget(SERVER, 'db', 'https://kv/secrets/s'), [('GET', ARM + SERVER, {'location': 'northeurope'})],
     None, 'northeurope'),
    (DatabaseTarget(SERVER, 'db', 'https://kv/secrets/s'), [('GET', ARM + SERVER, {'location': 'North Europe'})],
     'northeurope', 'North Europe'),
    (DatabaseTarget(SERVER, 'db', 'https://kv/secrets/s'), [('GET', ARM + SERVER, {'location': 'westeurope'})],
     None, crr.WRONG_REGION),
    (DatabaseTarget(SERVER, 'db', 'https://kv/secrets/s'), [], 'westeurope', ValueError),   # nothing read
    (FilesTarget('https://drstore.blob.core.windows.net/restored', 'p', None),
     [('GET', f'{ARM}/subscriptions/{SUBSCRIPTION}/providers/Microsoft.Storage/storageAccounts',
       {'value': [{'name': 'other', 'location': 'westeurope'}, {'name': 'drstore', 'location': 'westeurope'}]})],
     None, crr.WRONG_REGION),
    (FilesTarget('https://127.0.0.1:1/blob/drstore/restored', 'p', None),
     [('GET', f'{ARM}/subscriptions/{SUBSCRIPTION}/providers/Microsoft.Storage/storageAccounts',
       {'value': [{'name': 'drstore', 'location': 'northeurope'}]})], None, 'northeurope'),
    (FilesTarget('https://drstore.blob.core.windows.net/restored', 'p', None),
     [('GET', f'{ARM}/subscriptions/{SUBSCRIPTION}/providers/Microsoft.Storage/storageAccounts', {'value': []})],
     None, 'TargetLocationUnknown'),
])
def test_target_must_be_in_the_secondary_region(rsps, make_client, target, answers, restore_location, expected):
    for method, url, body in answers:
        rsps.add(method, url, json=body)
    ctx = crr.CrossRegion({}, VAULT_ID, 'westeurope', 'northeurope', LOC[len(ARM):])
    client = make_client()
    if expected is ValueError:
        with pytest.raises(ValueError, match='restore_location'):
            crr.check_target_region(client, ctx, target, restore_location)
    elif expected in (crr.WRONG_REGION, 'TargetLocationUnknown'):
        with pytest.raises(DataProtectionError) as err:
            crr.check_target_region(client, ctx, target, restore_location)
        assert err.value.code == expected
    else:
        assert crr.check_target_region(client, ctx, target, restore_location) == expected
