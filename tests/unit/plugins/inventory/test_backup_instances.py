# -*- coding: utf-8 -*-
# Copyright: (c) 2025, Azure Backup Data Protection collection contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The backup_instances inventory: which vaults it reads, and the host vars of a backup instance."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from ansible.errors import AnsibleParserError

from ansible_collections.azure_backup.dataprotection.plugins.inventory import backup_instances as inv

SUB = '00000000-0000-0000-0000-000000000001'
VAULT = {'id': '/subscriptions/%s/resourceGroups/rg1/providers/Microsoft.DataProtection/backupVaults/v1' % SUB,
         'name': 'v1', 'location': 'westeurope'}
SERVER = '/subscriptions/%s/resourceGroups/src/providers/Microsoft.DBforPostgreSQL/servers/pg1' % SUB
FLEX = '/subscriptions/%s/resourceGroups/src/providers/Microsoft.DBforPostgreSQL/flexibleServers/flex1' % SUB


def options(**kw):
    return dict({'vaults': [], 'subscriptions': [], 'resource_groups': []}, **kw)


def test_vaults_by_id_name_and_scope():
    vaults, scopes = inv._vault_paths(options(vaults=[VAULT['id'], {'name': 'v2', 'resource_group': 'rg2'}],
                                              resource_groups=['rg3', SUB + '/rg4'], subscriptions=[SUB]), SUB)
    assert vaults == [VAULT['id'], VAULT['id'].replace('rg1', 'rg2').replace('/v1', '/v2')]
    assert scopes == ['/subscriptions/%s' % SUB, '/subscriptions/%s/resourceGroups/rg3' % SUB,
                      '/subscriptions/%s/resourceGroups/rg4' % SUB]


def test_default_is_the_subscription_and_without_one_a_clear_error():
    assert inv._vault_paths(options(), SUB) == ([], ['/subscriptions/%s' % SUB])
    with pytest.raises(AnsibleParserError, match='AZURE_SUBSCRIPTION_ID'):
        inv._vault_paths(options(), None)
    with pytest.raises(AnsibleParserError, match='neither a vault ARM id nor a mapping'):
        inv._vault_paths(options(vaults=[{'name': 'only'}]), SUB)
    with pytest.raises(ValueError, match='not a valid ARM id'):
        inv._vault_paths(options(vaults=['/subscriptions/x']), SUB)


def test_single_server_database_host_vars():
    raw = {'id': VAULT['id'] + '/backupInstances/pg1-db1-x', 'name': 'pg1-db1-x', 'properties': {
        'friendlyName': 'pg1\\db1', 'currentProtectionState': 'ProtectionConfigured',
        'protectionStatus': {'status': 'ProtectionConfigured'},
        'policyInfo': {'policyId': VAULT['id'] + '/backupPolicies/pol1'},
        'dataSourceInfo': {'datasourceType': inv.DB_TYPE, 'resourceID': SERVER + '/databases/db1',
                           'resourceName': 'db1', 'resourceLocation': 'northeurope'},
        'dataSourceSetInfo': {'resourceID': SERVER}}}
    now = datetime(2025, 1, 2, tzinfo=timezone.utc)
    point = {'recovery_point_id': 'rp1', 'recovery_point_time': '2025-01-01T00:00:00.0000000Z', 'count': 3}
    host = inv.describe_instance(VAULT, raw, point, now)
    assert host['dp_datasource_kind'] == 'single' and host['dp_server_name'] == 'pg1'
    assert host['dp_server_id'] == SERVER and host['dp_database_name'] == 'db1'
    assert host['dp_vault_resource_group'] == 'rg1' and host['dp_subscription_id'] == SUB
    assert host['dp_policy_name'] == 'pol1' and host['dp_datasource_location'] == 'northeurope'
    assert host['dp_latest_recovery_point_age_hours'] == 24.0 and host['dp_recovery_point_count'] == 3


def test_flexible_server_without_points():
    raw = {'id': VAULT['id'] + '/backupInstances/flex1-x', 'name': 'flex1-x', 'properties': {
        'dataSourceInfo': {'datasourceType': inv.FLEX_TYPE, 'resourceID': FLEX, 'resourceName': 'flex1'}}}
    host = inv.describe_instance(VAULT, raw, {'count': 0}, datetime.now(timezone.utc))
    assert host['dp_datasource_kind'] == 'flexible' and host['dp_database_name'] == ''
    assert host['dp_server_name'] == 'flex1' and host['dp_datasource_location'] == 'westeurope'
    assert host['dp_latest_recovery_point_time'] == '' and host['dp_latest_recovery_point_age_hours'] is None


@pytest.mark.parametrize('prefix, value, name', [('vault', 'TestBkpVault', 'vault_testbkpvault'),
                                                 ('region', 'West Europe', 'region_west_europe'),
                                                 ('server', 'pg-01.x', 'server_pg_01_x')])
def test_group_names(prefix, value, name):
    assert inv.group_name(prefix, value) == name
