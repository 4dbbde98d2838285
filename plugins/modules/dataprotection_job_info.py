#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2025, Azure Backup Data Protection collection contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r'''
---
module: dataprotection_job_info
short_description: Get or list the jobs of an Azure Backup vault
version_added: 1.0.0
description:
  - Gets one job of a Backup vault (Microsoft.DataProtection) by id, or lists the vault's jobs, following every
    page of the answer (C(nextLink)), filtered by operation, status, backup instance, datasource and start time.
  - The service's job list has no server-side filter, so the filters are applied on the answer as it streams in.
  - Returns normalised, documented fields, with the progress of the sub-tasks and the error details of a failed
    job (code, message, recommended action). With O(job_id), it is the polling primitive to follow a restore
    started with O(azure_backup.dataprotection.pg_restore#module:wait=false).
author:
  - Azure Backup Data Protection collection contributors (@azure-backup)
extends_documentation_fragment:
  - azure_backup.dataprotection.auth
  - azure_backup.dataprotection.cross_region
  - azure_backup.dataprotection.attributes
  - azure_backup.dataprotection.attributes.ACTION_GROUP
  - azure_backup.dataprotection.attributes.INFO_MODULE
options:
  vault_name:
    description:
      - Name of the Backup vault.
    type: str
    required: true
  resource_group:
    description:
      - Resource group of the Backup vault.
    type: str
    required: true
  job_id:
    description:
      - Get this job, by its GUID (C(c4bd49a1-0645-4eec-b207-feb818962852)) or its ARM id
        (C(/subscriptions/<guid>/resourceGroups/<rg>/providers/Microsoft.DataProtection/backupVaults/<vault>/backupJobs/<guid>)),
        as returned by M(azure_backup.dataprotection.pg_restore).
      - Mutually exclusive with the filters.
    type: str
  operation:
    description:
      - Only jobs of this operation, compared case-insensitively with the job's operation and operation
        category, for example V(Restore) or V(Backup).
    type: str
  status:
    description:
      - Only jobs in one of these statuses (case-insensitive), for example V(InProgress), V(Completed),
        V(Failed), V(Cancelled), V(CompletedWithWarnings).
    type: list
    elements: str
  backup_instance_name:
    description:
      - Only jobs of this backup instance (its name).
    type: str
  datasource_id:
    description:
      - Only jobs of this protected datasource (ARM id, compared case-insensitively).
    type: str
  start_time:
    description:
      - Only jobs that started at or after this time (ISO 8601; no zone means UTC).
    type: str
  end_time:
    description:
      - Only jobs that started at or before this time (ISO 8601; no zone means UTC).
    type: str
notes:
  - The module only reads; it never changes anything and runs normally in check mode.
  - The jobs are returned newest first (by start time).
seealso:
  - module: azure_backup.dataprotection.pg_restore
  - name: Jobs - List (REST API)
    description: The Microsoft.DataProtection call this module makes.
    link: https://learn.microsoft.com/rest/api/dataprotection/jobs/list
'''

EXAMPLES = r'''
- name: Follow a restore job until it ends
  azure_backup.dataprotection.dataprotection_job_info:
    vault_name: TestBkpVault
    resource_group: testBkpVaultRG
    job_id: "{{ restore.job_id }}"
  register: job
  until: job.job.is_terminal
  retries: 120
  delay: 30

- name: Fail when it did not succeed, with the service's explanation
  ansible.builtin.assert:
    that: job.job.succeeded
    fail_msg: "{{ job.job.errors | map(attribute='message') | join('; ') }}"

- name: Failed restores of the last week, with the auth options set once for the group
  module_defaults:
    group/azure_backup.dataprotection.dataprotection:
      subscription_id: "{{ azure_subscription_id }}"
  block:
    - name: List them
      azure_backup.dataprotection.dataprotection_job_info:
        vault_name: TestBkpVault
        resource_group: testBkpVaultRG
        operation: Restore
        status: [Failed, Cancelled]
        start_time: "{{ '%Y-%m-%dT%H:%M:%SZ' | strftime(ansible_date_time.epoch | int - 7 * 86400, utc=true) }}"
      register: failed_restores

- name: Running jobs of one database
  azure_backup.dataprotection.dataprotection_job_info:
    vault_name: TestBkpVault
    resource_group: testBkpVaultRG
    datasource_id: "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/sourcerg/providers/Microsoft.DBforPostgreSQL/servers/\
      testpostgresql/databases/empdb11"
    status: [InProgress]
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
jobs:
  description: The matching jobs, newest first (with O(job_id), the one job).
  returned: always
  type: list
  elements: dict
  contains: &job
    job_id:
      description: GUID of the job.
      type: str
      returned: always
      sample: c4bd49a1-0645-4eec-b207-feb818962852
    id:
      description: ARM id of the job.
      type: str
      returned: always
      sample: "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/testBkpVaultRG/providers/Microsoft.DataProtection/backupVaults/\
        TestBkpVault/backupJobs/c4bd49a1-0645-4eec-b207-feb818962852"
    operation:
      description: Operation of the job.
      type: str
      returned: always
      sample: Restore
    operation_category:
      description: Operation category of the job.
      type: str
      returned: always
      sample: Restore
    status:
      description: Status as the service sends it (C(InProgress), C(Completed), C(Failed), C(Cancelled), ...).
      type: str
      returned: always
      sample: Completed
    is_terminal:
      description: Whether the job has ended (any status the module does not know counts as running).
      type: bool
      returned: always
      sample: true
    succeeded:
      description: Whether the job ended successfully (C(Completed), C(Succeeded) or C(CompletedWithWarnings)).
      type: bool
      returned: always
      sample: true
    start_time:
      description: When the job started.
      type: str
      returned: always
      sample: '2021-07-08T20:46:56.6521127Z'
    end_time:
      description: When the job ended (null while it runs).
      type: str
      returned: always
      sample: '2021-07-08T20:52:39.7709734Z'
    duration:
      description: How long the job ran, as the service gives it (ISO 8601 duration).
      type: str
      returned: always
      sample: PT5M43.1188607S
    backup_instance_id:
      description: ARM id of the backup instance.
      type: str
      returned: always
      sample: "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/testBkpVaultRG/providers/Microsoft.DataProtection/backupVaults/\
        TestBkpVault/backupInstances/testpostgresql-empdb11-957d23b1-c679-4c94-ade6-c4d34635e149"
    backup_instance_name:
      description: Name of the backup instance.
      type: str
      returned: always
      sample: testpostgresql-empdb11-957d23b1-c679-4c94-ade6-c4d34635e149
    backup_instance_friendly_name:
      description: Friendly name of the backup instance.
      type: str
      returned: always
      sample: testpostgresql/empdb11
    datasource_id:
      description: ARM id of the protected datasource.
      type: str
      returned: always
      sample: "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/sourcerg/providers/Microsoft.DBforPostgreSQL/servers/testpostgresql/\
        databases/empdb11"
    datasource_name:
      description: Name of the protected datasource.
      type: str
      returned: always
      sample: empdb11
    datasource_type:
      description: Type of the protected datasource.
      type: str
      returned: always
      sample: Microsoft.DBforPostgreSQL/servers/databases
    vault_name:
      description: Name of the vault.
      type: str
      returned: always
      sample: TestBkpVault
    restore_type:
      description: Restore type of a restore job, when the service sends it.
      type: str
      returned: always
      sample: AlternateLocation
    rehydration_priority:
      description: Rehydration priority of a restore from the archive tier.
      type: str
      returned: always
      sample: null
    source_recovery_point:
      description: The recovery point a restore job reads.
      type: dict
      returned: always
      contains:
        id:
          description: Recovery point id.
          type: str
          returned: always
          sample: eb006fde78cb47198be5a320fbe45e9b
        time:
          description: Recovery point time.
          type: str
          returned: always
          sample: '2021-10-21T16:31:16.8316716Z'
    recovery_destination:
      description: Where a restore job restores to (the new database's ARM id, or the container URL and prefix).
      type: str
      returned: always
      sample: "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/targetrg/providers/Microsoft.DBforPostgreSQL/servers/targetossserver/\
        databases/emprestored21"
    data_transferred_bytes:
      description: Bytes transferred, when the service reports it (read from either spelling of the field).
      type: int
      returned: always
      sample: 52428800
    sub_tasks:
      description: Progress of the job's steps.
      type: list
      elements: dict
      returned: always
      contains:
        id:
          description: Step number.
          type: int
          returned: always
          sample: 1
        name:
          description: Step name.
          type: str
          returned: always
          sample: Trigger Restore
        status:
          description: Step status.
          type: str
          returned: always
          sample: Completed
        progress:
          description: Step progress, when the service reports it.
          type: raw
          returned: always
          sample: null
    errors:
      description: Error details of a failed job.
      type: list
      elements: dict
      returned: always
      contains:
        code:
          description: Error code.
          type: str
          returned: always
          sample: UserErrorDBUserAuthFailed
        message:
          description: Error message.
          type: str
          returned: always
          sample: The user could not be authenticated on the target server.
        recommended_actions:
          description: What to do about it.
          type: list
          elements: str
          returned: always
          sample: [Check the user name and password in the Key Vault secret.]
        is_retryable:
          description: Whether retrying can help.
          type: bool
          returned: always
          sample: false
        is_user_error:
          description: Whether the error is the user's to fix.
          type: bool
          returned: always
          sample: true
    warnings:
      description: Warnings of the job.
      type: list
      elements: dict
      returned: always
      contains:
        resource_name:
          description: Resource the warning is about.
          type: str
          returned: always
          sample: emprestored21
        code:
          description: Warning code.
          type: str
          returned: always
          sample: null
        message:
          description: Warning message.
          type: str
          returned: always
          sample: Database grants were not restored.
job:
  description: The job asked for with O(job_id) (same fields as an element of RV(jobs)).
  returned: when O(job_id) is set
  type: dict
  contains: *job
error:
  description:
    - The error, structured (same keys as RV(azure_backup.dataprotection.pg_restore_validate#module:error)), when the task
      failed because of the service or of an input the service rejected (code, message, recommended actions, HTTP status and
      request ids to give to Azure support).
  returned: on failure
  type: dict
  sample:
    what: 'Get job 0d6f3a8e-7a43-4c9b-9d8c-9b3d1a4c2e11'
    code: ResourceNotFound
    message: "no job '0d6f3a8e-7a43-4c9b-9d8c-9b3d1a4c2e11' in vault 'TestBkpVault' (resource group 'testBkpVaultRG')."
    recommended_actions: ['Check job_id, vault_name and resource_group; list the jobs by leaving job_id out.']
    status: 404
    request_id: 9f0a3c1e-2b4d-4c6e-8f10-123456789abc
    correlation_id: 0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0
'''

from ansible_collections.azure_backup.dataprotection.plugins.module_utils import _cross_region
from ansible_collections.azure_backup.dataprotection.plugins.module_utils._errors import (
    DataProtectionError, error_from_response,
)
from ansible_collections.azure_backup.dataprotection.plugins.module_utils._ids import job_guid, vault_id
from ansible_collections.azure_backup.dataprotection.plugins.module_utils._jobs import iter_jobs, normalize_job
from ansible_collections.azure_backup.dataprotection.plugins.module_utils._module import DataProtectionModule
from ansible_collections.azure_backup.dataprotection.plugins.module_utils._recovery_points import (
    format_time, parse_service_time, parse_time,
)
from ansible_collections.azure_backup.dataprotection.plugins.module_utils._restore_flow import (
    check_generic_resource_id,
)

FILTERS = ('operation', 'status', 'backup_instance_name', 'datasource_id', 'start_time', 'end_time')
ARGSPEC = {
    'vault_name': {'type': 'str', 'required': True},
    'resource_group': {'type': 'str', 'required': True},
    'job_id': {'type': 'str'},
    'operation': {'type': 'str'},
    'status': {'type': 'list', 'elements': 'str'},
    'backup_instance_name': {'type': 'str'},
    'datasource_id': {'type': 'str'},
    'start_time': {'type': 'str'},
    'end_time': {'type': 'str'},
    **_cross_region.CROSS_REGION_ARGSPEC,
}
MUTUALLY_EXCLUSIVE = [('job_id', name) for name in FILTERS]


def _check_job_vault(params):
    """A job ARM id must name the vault of vault_name (a GUID names no vault)."""
    value = params['job_id'].strip().rstrip('/')
    if '/' not in value:
        return
    parts = value.split('/')
    lowered = [p.lower() for p in parts]
    if 'backupvaults' in lowered:
        vault = parts[lowered.index('backupvaults') + 1] if lowered.index('backupvaults') + 1 < len(parts) else ''
        if vault.lower() != params['vault_name'].lower():
            raise ValueError("job_id '%s' is a job of vault '%s', not of vault_name '%s': give the vault of the job."
                             % (params['job_id'], vault, params['vault_name']))


def _newest_first(jobs):
    def key(job):
        started = parse_service_time(job.get('start_time'))
        return (started is not None, started.timestamp() if started else 0)
    return sorted(jobs, key=key, reverse=True)


CONSTRAINTS = {'mutually_exclusive': MUTUALLY_EXCLUSIVE}


def run(module):
    params = module.params
    guid = None
    if params['job_id']:
        guid = job_guid(params['job_id'])  # ValueError before any call
        _check_job_vault(params)
    start = parse_time(params['start_time'], 'start_time') if params['start_time'] else None
    end = parse_time(params['end_time'], 'end_time') if params['end_time'] else None
    if start and end and start > end:
        raise ValueError('start_time (%s) is after end_time (%s): swap them.' % (format_time(start), format_time(end)))
    datasource_id = check_generic_resource_id(params['datasource_id'], 'datasource_id') if params['datasource_id'] else None
    _cross_region.check_params(params)

    client = module.client
    vault = vault_id(client.subscription_id, params['resource_group'], params['vault_name'])
    filters = dict(operation=params['operation'], statuses=params['status'],
                   backup_instance=params['backup_instance_name'], datasource_id=datasource_id, start_time=start,
                   end_time=end)
    if params['use_secondary_region']:  # cross-region restore jobs: listed by the secondary region only
        crr = _cross_region.find_vault(client, params)
        regions = {'source_region': crr.source_region, 'secondary_region': crr.secondary_region}
        if guid:
            job = normalize_job(_cross_region.get_job(client, crr, guid))
            return {'changed': False, 'jobs': [job], 'job': job, 'cross_region': regions}
        jobs = iter_jobs(_cross_region.iter_jobs(client, crr), **filters)
        return {'changed': False, 'jobs': _newest_first(jobs), 'cross_region': regions}
    if guid:
        what = 'Get job %s' % guid
        response = client.get('%s/backupJobs/%s' % (vault, guid))
        if response.status_code == 404:
            error = error_from_response(what, response)
            raise DataProtectionError(
                what, "no job '%s' in vault '%s' (resource group '%s')." % (guid, params['vault_name'],
                                                                            params['resource_group']),
                code=error.code, status=404, request_id=error.request_id, correlation_id=error.correlation_id,
                recommended_actions=['Check job_id, vault_name and resource_group; list the jobs by leaving '
                                     'job_id out.'])
        job = normalize_job(client.json_or_raise(response, what))
        return {'changed': False, 'jobs': [job], 'job': job}
    jobs = iter_jobs(client.iter_pages(vault + '/backupJobs'), **filters)
    return {'changed': False, 'jobs': _newest_first(jobs)}


def main():
    module = DataProtectionModule(argument_spec=ARGSPEC, supports_check_mode=True, **CONSTRAINTS)
    module.exit_with(run)


if __name__ == '__main__':
    main()
