#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2025, Azure Backup Data Protection collection contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r'''
---
module: pg_recovery_point_info
short_description: List and select recovery points of an Azure Database for PostgreSQL backup instance
version_added: 1.0.0
description:
  - Lists the recovery points of a PostgreSQL backup instance in an Azure Backup vault
    (Microsoft.DataProtection), single server databases and flexible servers alike.
  - Gets one recovery point by id, or lists them all, optionally in a time window (sent to the service as an
    OData C($filter), and applied again on the answer) and in one datastore.
  - Picks the latest or the earliest point, or the latest point at or before a given time, so that a playbook
    does not have to sort anything. Every page of the answer is read (C(nextLink)), one page at a time.
  - The returned fields are normalised to snake_case and say whether a point is only in the archive tier
    (RV(recovery_points[].archive_only)), in which case a restore needs rehydration
    (see M(azure_backup.dataprotection.pg_restore)).
author:
  - Azure Backup Data Protection collection contributors (@azure-backup)
extends_documentation_fragment:
  - azure_backup.dataprotection.auth
  - azure_backup.dataprotection.backup_instance
  - azure_backup.dataprotection.cross_region
  - azure_backup.dataprotection.attributes
  - azure_backup.dataprotection.attributes.ACTION_GROUP
  - azure_backup.dataprotection.attributes.INFO_MODULE
options:
  recovery_point_id:
    description:
      - Get this recovery point only (its id, or its ARM id). Fails clearly when it does not exist.
      - Mutually exclusive with O(start_time), O(end_time), O(datastore) and O(before).
    type: str
  start_time:
    description:
      - Only points taken at or after this time. ISO 8601, for example C(2024-05-01T00:00:00Z); a time without a
        zone is UTC.
      - Sent as C(startDate eq '...') in the C($filter) of the list call, formatted as the az CLI does.
    type: str
  end_time:
    description:
      - Only points taken at or before this time (ISO 8601; no zone means UTC).
      - Sent as C(endDate eq '...') in the C($filter) of the list call.
    type: str
  datastore:
    description:
      - Only points held in this datastore (read from each point's C(recoveryPointDataStoresDetails)).
    type: str
    choices: [VaultStore, ArchiveStore]
  select:
    description:
      - V(all) returns every matching point; V(latest) and V(earliest) return one point in RV(recovery_point)
        (and as the only element of RV(recovery_points)), and fail when no point matches.
      - When not set, V(latest) if O(before) is set, otherwise V(all).
    type: str
    choices: [all, latest, earliest]
  before:
    description:
      - Only points taken at or before this time (ISO 8601; no zone means UTC). With the default O(select) this
        returns the latest point at or before the time, for example the state just before an incident.
      - When no point is that old, the task fails and names the earliest point available.
      - With O(select=all) it only filters the list (an empty list is not an error).
    type: str
notes:
  - The module only reads; it never changes anything and runs normally in check mode.
  - Selection streams the pages, so listing thousands of points to pick the latest one holds one page in memory.
seealso:
  - module: azure_backup.dataprotection.pg_restore_validate
  - module: azure_backup.dataprotection.pg_restore
  - module: azure_backup.dataprotection.dataprotection_job_info
  - name: Recovery Points - List (REST API)
    description: The Microsoft.DataProtection call this module makes.
    link: https://learn.microsoft.com/rest/api/dataprotection/recovery-points/list
'''

EXAMPLES = r'''
- name: Latest recovery point of a single server database, found from the database id
  azure_backup.dataprotection.pg_recovery_point_info:
    vault_name: TestBkpVault
    resource_group: testBkpVaultRG
    datasource_id: "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/sourcerg/providers/Microsoft.DBforPostgreSQL/servers/\
      testpostgresql/databases/empdb11"
    select: latest
  register: latest

- name: Show it
  ansible.builtin.debug:
    msg: "{{ latest.recovery_point.recovery_point_id }} taken {{ latest.recovery_point.recovery_point_time }}"

- name: The state just before an incident, by backup instance name
  azure_backup.dataprotection.pg_recovery_point_info:
    vault_name: TestBkpVault
    resource_group: testBkpVaultRG
    backup_instance_name: testpostgresql-empdb11-957d23b1-c679-4c94-ade6-c4d34635e149
    before: "2024-05-01T09:30:00Z"
  register: before_incident

- name: Everything in the archive tier during April, with the auth options set once for the group
  module_defaults:
    group/azure_backup.dataprotection.dataprotection:
      subscription_id: "{{ azure_subscription_id }}"
      auth_source: env
  block:
    - name: List archived points of a flexible server
      azure_backup.dataprotection.pg_recovery_point_info:
        vault_name: TestBkpVault
        resource_group: testBkpVaultRG
        datasource_id: /subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/sourcerg/providers/Microsoft.DBforPostgreSQL/flexibleServers/pgflex01
        datastore: ArchiveStore
        start_time: "2024-04-01T00:00:00Z"
        end_time: "2024-04-30T23:59:59Z"
      register: archived

- name: One point by id
  azure_backup.dataprotection.pg_recovery_point_info:
    vault_name: TestBkpVault
    resource_group: testBkpVaultRG
    backup_instance_name: testpostgresql-empdb11-957d23b1-c679-4c94-ade6-c4d34635e149
    recovery_point_id: eb006fde78cb47198be5a320fbe45e9b
  register: one
'''

RETURN = r'''
cross_region:
  description: With O(use_secondary_region=true), the regions of the cross-region call.
  returned: when use_secondary_region is true
  type: dict
  contains:
    source_region:
      description: The vault's region (where the backups were taken).
      type: str
      sample: westeurope
    secondary_region:
      description: The secondary (paired) region the calls went to.
      type: str
      sample: northeurope
backup_instance:
  description: The backup instance the points belong to.
  returned: always
  type: dict
  contains:
    id:
      description: ARM id of the backup instance.
      type: str
      returned: always
      sample: "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/testBkpVaultRG/providers/Microsoft.DataProtection/backupVaults/\
        TestBkpVault/backupInstances/testpostgresql-empdb11-957d23b1-c679-4c94-ade6-c4d34635e149"
    name:
      description: Name of the backup instance.
      type: str
      returned: always
      sample: testpostgresql-empdb11-957d23b1-c679-4c94-ade6-c4d34635e149
    friendly_name:
      description: Friendly name of the backup instance.
      type: str
      returned: always
      sample: testpostgresql/empdb11
    datasource_id:
      description: ARM id of the protected database or flexible server.
      type: str
      returned: always
      sample: "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/sourcerg/providers/Microsoft.DBforPostgreSQL/servers/testpostgresql/\
        databases/empdb11"
    datasource_type:
      description: Datasource type.
      type: str
      returned: always
      sample: Microsoft.DBforPostgreSQL/servers/databases
    datasource_name:
      description: Name of the protected database or server.
      type: str
      returned: always
      sample: empdb11
    datasource_location:
      description: Region of the protected datasource.
      type: str
      returned: always
      sample: westus
    datasource_set_id:
      description: ARM id of the server of a single server database (null for a flexible server).
      type: str
      returned: always
      sample: /subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/sourcerg/providers/Microsoft.DBforPostgreSQL/servers/testpostgresql
    protection_status:
      description: Protection status.
      type: str
      returned: always
      sample: ProtectionConfigured
    current_protection_state:
      description: Current protection state.
      type: str
      returned: always
      sample: ProtectionConfigured
    provisioning_state:
      description: Provisioning state.
      type: str
      returned: always
      sample: Succeeded
    policy_id:
      description: ARM id of the backup policy.
      type: str
      returned: always
      sample: "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/testBkpVaultRG/providers/Microsoft.DataProtection/backupVaults/\
        TestBkpVault/backupPolicies/osspol3"
recovery_points:
  description:
    - The matching recovery points, in the order the service lists them; with O(select=latest) or
      O(select=earliest), or with O(recovery_point_id), only the one point.
  returned: always
  type: list
  elements: dict
  contains: &point
    id:
      description: ARM id of the recovery point.
      type: str
      returned: always
      sample: "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/testBkpVaultRG/providers/Microsoft.DataProtection/backupVaults/\
        TestBkpVault/backupInstances/testpostgresql-empdb11-957d23b1-c679-4c94-ade6-c4d34635e149/recoveryPoints/eb006fde78cb47198be5a320fbe45e9b"
    name:
      description: Resource name of the recovery point.
      type: str
      returned: always
      sample: eb006fde78cb47198be5a320fbe45e9b
    recovery_point_id:
      description: Id to give to O(azure_backup.dataprotection.pg_restore#module:recovery_point_id).
      type: str
      returned: always
      sample: eb006fde78cb47198be5a320fbe45e9b
    recovery_point_time:
      description: When the point was taken (UTC, as the service sends it).
      type: str
      returned: always
      sample: '2021-10-21T16:31:16.8316716Z'
    recovery_point_type:
      description: Type of the point.
      type: str
      returned: always
      sample: Full
    recovery_point_state:
      description: State of the point (C(Completed) or C(Partial)), when the service sends it.
      type: str
      returned: always
      sample: Completed
    friendly_name:
      description: Friendly name of the point.
      type: str
      returned: always
      sample: 794ead7c7661410da03997d210d469e7
    policy_name:
      description: Backup policy that made the point.
      type: str
      returned: always
      sample: osspol3
    policy_version:
      description: Version of that policy.
      type: str
      returned: always
      sample: null
    retention_tag_name:
      description: Retention rule of the point.
      type: str
      returned: always
      sample: Default
    retention_tag_version:
      description: Version of the retention rule.
      type: str
      returned: always
      sample: '637212748405148394'
    expiry_time:
      description: When the point expires, when the service sends it.
      type: str
      returned: always
      sample: null
    datastores:
      description: Datastores that hold the point.
      type: list
      elements: str
      returned: always
      sample: [VaultStore]
    datastore_details:
      description: One entry per datastore that holds the point.
      type: list
      elements: dict
      returned: always
      contains:
        id:
          description: Id of the copy in that datastore.
          type: str
          returned: always
          sample: 9ea7eaf4-eeb8-4c8f-90a7-7f04b60bf075
        type:
          description: Datastore type.
          type: str
          returned: always
          sample: VaultStore
        state:
          description: State of the copy.
          type: str
          returned: always
          sample: COMMITTED
        visible:
          description: Whether the copy is visible.
          type: bool
          returned: always
          sample: true
        creation_time:
          description: When the copy was made.
          type: str
          returned: always
          sample: '2021-10-21T16:31:16.8316716Z'
        expiry_time:
          description: When the copy expires.
          type: str
          returned: always
          sample: '2022-10-21T16:31:16.8316716Z'
        rehydration_status:
          description: Rehydration status of an archived copy (C(CREATE_IN_PROGRESS), C(COMPLETED), ...).
          type: str
          returned: always
          sample: null
        rehydration_expiry_time:
          description: When a rehydrated copy leaves the vault store.
          type: str
          returned: always
          sample: null
    in_vault_store:
      description: Whether the point is in the vault store (restorable without rehydration).
      type: bool
      returned: always
      sample: true
    archive_only:
      description: Whether the point is only in the archive tier; restoring it rehydrates it first (hours).
      type: bool
      returned: always
      sample: false
recovery_point:
  description: The selected point (same fields as an element of RV(recovery_points)).
  returned: when O(select) is V(latest) or V(earliest) (also implied by O(before)), or O(recovery_point_id) is set
  type: dict
  contains: *point
error:
  description:
    - The error, structured (same keys as RV(azure_backup.dataprotection.pg_restore_validate#module:error)), when the task
      failed because of the service or of an input the service rejected (code, message, recommended actions, HTTP status and
      request ids to give to Azure support).
  returned: on failure
  type: dict
  sample:
    what: "Get backup instance 'nope'"
    code: ResourceNotFound
    message: "no backup instance 'nope' in vault 'TestBkpVault' (resource group 'testBkpVaultRG')."
    recommended_actions: ['Check backup_instance_name (the name, not the friendly name), or give datasource_id instead.']
    status: 404
    request_id: 9f0a3c1e-2b4d-4c6e-8f10-123456789abc
    correlation_id: 0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0
earliest_recovery_point:
  description:
    - The earliest recovery point that matched the other filters, when none was at or before O(before) (pick a later
      time, or this point). Null when no point matched at all.
  returned: on failure, when O(select) or O(before) found no recovery point
  type: dict
  sample:
    recovery_point_id: 0d1e2f3a4b5c6d7e8f9a0b1c2d3e4f50
    recovery_point_time: '2024-03-01T01:00:00.0000000Z'
'''

from ansible_collections.azure_backup.dataprotection.plugins.module_utils import _cross_region
from ansible_collections.azure_backup.dataprotection.plugins.module_utils._module import DataProtectionModule
from ansible_collections.azure_backup.dataprotection.plugins.module_utils._recovery_points import (
    DATASTORES, SELECT_MODES, RecoveryPointNotFound, build_time_filter, format_time, iter_filtered,
    normalize_recovery_point, parse_time, point_time, select_recovery_point,
)
from ansible_collections.azure_backup.dataprotection.plugins.module_utils._restore_flow import (
    BACKUP_INSTANCE_ARGSPEC, BACKUP_INSTANCE_CONSTRAINTS, backup_instance_path, check_datasource_option,
    cross_region_result, get_backup_instance, get_recovery_point, merge_constraints, normalize_backup_instance,
    select_secondary_point,
)
from ansible_collections.azure_backup.dataprotection.plugins.module_utils._restore_request import (
    normalize_recovery_point_id,
)

ARGSPEC = dict(
    BACKUP_INSTANCE_ARGSPEC,
    recovery_point_id={'type': 'str'},
    start_time={'type': 'str'},
    end_time={'type': 'str'},
    datastore={'type': 'str', 'choices': list(DATASTORES)},
    select={'type': 'str', 'choices': list(SELECT_MODES)},
    before={'type': 'str'},
    **_cross_region.CROSS_REGION_ARGSPEC,
)
CONSTRAINTS = merge_constraints(BACKUP_INSTANCE_CONSTRAINTS, {
    'mutually_exclusive': [('recovery_point_id', 'start_time'), ('recovery_point_id', 'end_time'),
                           ('recovery_point_id', 'datastore'), ('recovery_point_id', 'before')],
})


def _time_option(params, name):
    return parse_time(params[name], name) if params.get(name) else None


def _filters_text(params):
    parts = ['%s=%s' % (name, params[name]) for name in ('datastore', 'start_time', 'end_time', 'before')
             if params.get(name)]
    return ' (filters: %s)' % ', '.join(parts) if parts else ''


def run(module):
    params = module.params
    # Local checks first: nothing is sent when an option is malformed.
    start, end, before = (_time_option(params, n) for n in ('start_time', 'end_time', 'before'))
    if start and end and start > end:
        raise ValueError('start_time (%s) is after end_time (%s): swap them.' % (format_time(start), format_time(end)))
    check_datasource_option(params['datasource_id'])
    rp_id = normalize_recovery_point_id(params['recovery_point_id']) if params['recovery_point_id'] else None
    mode = params['select'] or ('latest' if before else 'all')
    _cross_region.check_params(params)

    client = module.client
    # cross-region: the vault and instance from Resource Graph, the points of the secondary region
    crr = _cross_region.find_vault(client, params) if params['use_secondary_region'] else None
    bi_raw = _cross_region.find_backup_instance(client, params, crr) if crr else get_backup_instance(client, params)
    backup_instance = normalize_backup_instance(bi_raw)
    bi_path = backup_instance_path(client, params, bi_raw)
    result = {'changed': False, 'backup_instance': backup_instance}
    if crr:
        result['cross_region'] = cross_region_result(crr)

    if rp_id:
        point = (select_secondary_point(client, crr, bi_path, backup_instance['name'], recovery_point_id=rp_id) if crr
                 else normalize_recovery_point(get_recovery_point(client, bi_path, backup_instance['name'], rp_id)))
        return dict(result, recovery_points=[point], recovery_point=point)

    time_filter = build_time_filter(start, end)
    pages = (_cross_region.iter_secondary_points(client, crr, bi_path, time_filter) if crr else
             client.iter_pages(bi_path + '/recoveryPoints', params={'$filter': time_filter} if time_filter else None))
    points = iter_filtered(pages, datastore=params['datastore'], start=start, end=end)
    if mode == 'all':
        if before:
            points = (p for p in points if point_time(p) is not None and point_time(p) <= before)
        return dict(result, recovery_points=list(points))
    try:
        point = select_recovery_point(points, mode, before=before)
    except RecoveryPointNotFound as exc:
        module.fail_json(msg="Backup instance '%s': %s%s" % (backup_instance['name'], exc, _filters_text(params)),
                         changed=False, backup_instance=backup_instance, recovery_points=[],
                         earliest_recovery_point=exc.earliest)
    return dict(result, recovery_points=[point], recovery_point=point)


def main():
    module = DataProtectionModule(argument_spec=ARGSPEC, supports_check_mode=True, **CONSTRAINTS)
    module.exit_with(run)


if __name__ == '__main__':
    main()
