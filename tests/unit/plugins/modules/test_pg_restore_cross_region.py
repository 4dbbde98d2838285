# -*- coding: utf-8 -*-
# Copyright: (c) 2025, Azure Backup Data Protection collection contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""pg_restore with use_secondary_region: nothing goes to the vault's region (no call under the vault's path), the
restore is one POST of crossRegionRestore, a re-run finds the job in fetchCrossRegionRestoreJobs, check mode validates
with validateCrossRegionRestore only, and a target outside the secondary region fails before anything is sent."""

from __future__ import annotations

import pytest
import responses

from ansible_collections.azure_backup.dataprotection.plugins.modules import pg_restore as module

from ansible_collections.azure_backup.dataprotection.tests.unit.plugins.modules.dp_fakes import (
    ARM, BI_NAME, BI_PATH, JOB_ID, OP_RESULT_URL, RP_VAULT, SECRET_URI, SUB, TARGET_DB, TARGET_SERVER, VAULT_ARGS, VAULT_PATH,
    FakeArm, deep, load,
)

LOC = f'/subscriptions/{SUB}/resourceGroups/testBkpVaultRG/providers/Microsoft.DataProtection/locations/eastus'
GRAPH = ARM + '/providers/Microsoft.ResourceGraph/resources'
ARGS = dict(VAULT_ARGS, backup_instance_name=BI_NAME, select='latest', target_server_id=TARGET_SERVER,
            target_database_name='emprestored21', secret_uri=SECRET_URI, use_secondary_region=True)


@pytest.fixture
def arm(rsps, monkeypatch, exit_fail):  # pylint: disable=unused-argument
    return FakeArm(rsps, monkeypatch)


def crr_job(status):
    body = deep(load('job_restore_inprogress' if status == 'InProgress' else 'job_restore_completed'))
    body.update(name=JOB_ID, id=VAULT_PATH + '/backupJobs/' + JOB_ID)
    return body


def prepared(arm, jobs=(), server_location='eastus', target_exists=False):
    """Resource Graph (vault, backup instance), the target server's region, the secondary points and jobs, the
    target database: what every cross-region run reads before it decides."""
    vault = dict(deep(load('backup_vault')), location='westus')
    vault['properties'] = dict(vault.get('properties') or {}, replicatedRegions=['eastus'], featureSettings={
        'crossRegionRestoreSettings': {'state': 'Enabled'}})
    arm.rsps.add(responses.POST, GRAPH, json={'data': [vault]})
    arm.rsps.add(responses.POST, GRAPH, json={'data': [load('backup_instance_single')]})
    arm.get(TARGET_SERVER, {'id': TARGET_SERVER, 'location': server_location})
    if server_location != 'eastus':
        return
    arm.rsps.add(responses.POST, ARM + LOC + '/fetchSecondaryRecoveryPoints', json={'value': [load('recovery_point_vault')]})
    arm.rsps.add(responses.POST, ARM + LOC + '/fetchCrossRegionRestoreJobs', json={'value': list(jobs)})
    if target_exists:
        arm.get(TARGET_DB, {'id': TARGET_DB, 'name': 'emprestored21'})
    elif not any(j['properties']['status'] == 'InProgress' for j in jobs):
        arm.get_404(TARGET_DB)


def primary_calls(arm):
    return [c.request.url for c in arm.rsps.calls if VAULT_PATH.lower() in c.request.url.lower()]


@pytest.mark.parametrize('jobs, check_mode, posted, changed', [
    ((), False, ['/crossRegionRestore'], True),                         # a new restore: one POST
    ((), True, ['/validateCrossRegionRestore'], True),                  # check mode validates only
    (('InProgress',), False, [], False),                                # a re-run finds the running job
    (('Completed',), False, [], False),                                 # ... or the completed one, its database there
])
def test_cross_region_restore(arm, jobs, check_mode, posted, changed):
    prepared(arm, jobs=[crr_job(s) for s in jobs], target_exists='Completed' in jobs)
    if posted == ['/crossRegionRestore']:
        arm.lro(LOC + '/crossRegionRestore', load('operation_restore_succeeded'))
    elif posted:
        arm.lro(LOC + '/validateCrossRegionRestore', load('operation_validate_succeeded'))
        arm.rsps.remove(responses.GET, OP_RESULT_URL)  # a validation's result is not read (as for validateRestore)
    result, failed = arm.run(module, ARGS, check_mode=check_mode)
    assert not failed, result
    assert result['changed'] is changed
    assert result['cross_region'] == {'source_region': 'westus', 'secondary_region': 'eastus'}
    assert primary_calls(arm) == []                   # nothing was sent to the vault's region
    sent = [c for c in arm.calls('POST') if 'ResourceGraph' not in c.request.url and '/fetch' not in c.request.url]
    assert [c.request.url.split('?')[0][len(ARM + LOC):] for c in sent] == posted
    if posted:
        body = arm.posted(posted[0])[0]
        assert body['crossRegionRestoreDetails'] == {'sourceRegion': 'westus', 'sourceBackupInstanceId': BI_PATH}
        assert body['restoreRequestObject']['restoreTargetInfo']['restoreLocation'] == 'eastus'
        assert body['restoreRequestObject']['recoveryPointId'] == RP_VAULT
    if jobs:
        assert result['job_id'] == JOB_ID and 'already exists' in result['msg']
    if posted == ['/crossRegionRestore']:
        assert 'cross-region, from the secondary region eastus (the vault is in westus)' in result['msg']


def test_a_target_outside_the_secondary_region_fails_before_anything_is_sent(arm):
    prepared(arm, server_location='westus')
    result, failed = arm.run(module, ARGS)
    assert failed and result['error']['code'] == 'TargetNotInSecondaryRegion'
    assert "'westus'" in result['msg'] and "'eastus'" in result['msg']
    assert [c for c in arm.calls('POST') if 'ResourceGraph' not in c.request.url] == []
