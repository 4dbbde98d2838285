#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2025, Azure Backup Data Protection collection contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r'''
---
module: pg_restore_validate
short_description: Validate an Azure Database for PostgreSQL restore request with Azure Backup
version_added: 1.0.0
description:
  - Builds the restore request of a PostgreSQL backup (a new database on a single server, or dump files in a blob
    container) from plain options and asks the Backup vault to validate it (C(validateRestore)), without
    restoring anything.
  - The service checks what a restore needs, for example the vault identity's permissions on the target server,
    the key vault and the storage account, the target PostgreSQL version and that the target database does not
    exist. A failed validation fails the task with the service's error code, message and recommended action, and
    returns them structured in RV(error), so that an C(until) loop can retry while new role assignments
    propagate (that can take several minutes).
  - The source datastore is chosen from the recovery point (vault store first, else the archive tier with a
    rehydration request), and the restore location defaults to the vault's location.
  - Never reports a change.
author:
  - Azure Backup Data Protection collection contributors (@azure-backup)
extends_documentation_fragment:
  - azure_backup.dataprotection.auth
  - azure_backup.dataprotection.backup_instance
  - azure_backup.dataprotection.cross_region
  - azure_backup.dataprotection.restore_target
  - azure_backup.dataprotection.wait.OPERATION
  - azure_backup.dataprotection.attributes
  - azure_backup.dataprotection.attributes.ACTION_GROUP
  - azure_backup.dataprotection.attributes.INFO_MODULE
notes:
  - Validation is read-only for the service, so the module runs it in check mode too.
  - A flexible server backup can only be restored as files; asking for a database target fails before any call.
  - The request is built exactly as the 2024-04-01 API specifies it; M(azure_backup.dataprotection.pg_restore)
    builds the same request from the same options.
seealso:
  - module: azure_backup.dataprotection.pg_recovery_point_info
  - module: azure_backup.dataprotection.pg_restore
  - name: Backup Instances - Validate For Restore (REST API)
    description: The Microsoft.DataProtection call this module makes.
    link: https://learn.microsoft.com/rest/api/dataprotection/backup-instances/validate-for-restore
'''

EXAMPLES = r'''
- name: Validate a restore as a new database, retrying while role assignments propagate
  azure_backup.dataprotection.pg_restore_validate:
    vault_name: TestBkpVault
    resource_group: testBkpVaultRG
    backup_instance_name: testpostgresql-empdb11-957d23b1-c679-4c94-ade6-c4d34635e149
    recovery_point_id: eb006fde78cb47198be5a320fbe45e9b
    target_server_id: /subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/targetrg/providers/Microsoft.DBforPostgreSQL/servers/targetossserver
    target_database_name: emprestored21
    secret_uri: https://kv-restore.vault.azure.net/secrets/targetossserver-conn
  register: validation
  until: validation is succeeded or not (validation.error.is_retryable | default(false)
         or validation.error.code | default('') == 'UserErrorMSIMissingPermissions')
  retries: 10
  delay: 60

- name: Validate a restore of a flexible server as files into a blob container, with the auth options set once
  module_defaults:
    group/azure_backup.dataprotection.dataprotection:
      subscription_id: "{{ azure_subscription_id }}"
      cloud_environment: AzureCloud
  block:
    - name: Validate the files restore of the latest archived point (rehydrated for 20 days, high priority)
      azure_backup.dataprotection.pg_restore_validate:
        vault_name: TestBkpVault
        resource_group: testBkpVaultRG
        datasource_id: /subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/sourcerg/providers/Microsoft.DBforPostgreSQL/flexibleServers/pgflex01
        recovery_point_id: "{{ archived.recovery_point.recovery_point_id }}"
        target_container_url: https://testossstorageaccount.blob.core.windows.net/testcontainerrestore
        target_file_prefix: pgflex01-drill
        rehydration_priority: High
        rehydration_retention_days: 20
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
request:
  description:
    - The restore request that was validated, exactly as sent inside C(restoreRequestObject) (and as
      M(azure_backup.dataprotection.pg_restore) would send it). It holds the Key Vault secret URI, never a secret.
  returned: when the request could be built (also on a failed validation)
  type: dict
  sample:
    objectType: AzureBackupRecoveryPointBasedRestoreRequest
    recoveryPointId: eb006fde78cb47198be5a320fbe45e9b
    sourceDataStoreType: VaultStore
    sourceResourceId: "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/sourcerg/providers/\
      Microsoft.DBforPostgreSQL/servers/testpostgresql/databases/empdb11"
    restoreTargetInfo:
      objectType: RestoreTargetInfo
      recoveryOption: FailIfExists
      restoreLocation: westus
      datasourceInfo:
        objectType: Datasource
        resourceID: "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/targetrg/providers/\
          Microsoft.DBforPostgreSQL/servers/targetossserver/databases/emprestored21"
        resourceName: emprestored21
        resourceType: Microsoft.DBforPostgreSQL/servers/databases
        datasourceType: Microsoft.DBforPostgreSQL/servers/databases
        resourceUri: ''
        resourceLocation: westus
      datasourceSetInfo:
        objectType: DatasourceSet
        resourceID: "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/targetrg/providers/\
          Microsoft.DBforPostgreSQL/servers/targetossserver"
        resourceName: targetossserver
        resourceType: Microsoft.DBforPostgreSQL/servers
        datasourceType: Microsoft.DBforPostgreSQL/servers/databases
        resourceUri: ''
        resourceLocation: westus
      datasourceAuthCredentials:
        objectType: SecretStoreBasedAuthCredentials
        secretStoreResource:
          secretStoreType: AzureKeyVault
          uri: https://kv-restore.vault.azure.net/secrets/targetossserver-conn
source_datastore:
  description: The datastore the restore reads (chosen from the recovery point when O(source_datastore=auto)).
  returned: when the request could be built
  type: str
  sample: VaultStore
backup_instance:
  description: The backup instance (name, id, datasource id and type; see M(azure_backup.dataprotection.pg_recovery_point_info)).
  returned: when the backup instance was found
  type: dict
  sample:
    name: testpostgresql-empdb11-957d23b1-c679-4c94-ade6-c4d34635e149
    datasource_id: "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/sourcerg/providers/\
      Microsoft.DBforPostgreSQL/servers/testpostgresql/databases/empdb11"
    datasource_type: Microsoft.DBforPostgreSQL/servers/databases
recovery_point:
  description: The recovery point (normalised as by M(azure_backup.dataprotection.pg_recovery_point_info)).
  returned: when the request could be built
  type: dict
  sample:
    recovery_point_id: eb006fde78cb47198be5a320fbe45e9b
    recovery_point_time: '2021-10-21T16:31:16.8316716Z'
    datastores: [VaultStore]
    archive_only: false
msg:
  description: "What was validated, or why the validation failed (C(<what>: <code>: <message>) and the recommended action)."
  returned: always
  type: str
  sample: "The restore request is valid: recovery point eb006fde78cb47198be5a320fbe45e9b (VaultStore) to
    /subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/targetrg/providers/\
    Microsoft.DBforPostgreSQL/servers/targetossserver/databases/emprestored21."
error:
  description: The service's error, structured, when the validation (or a call before it) failed.
  returned: on failure
  type: dict
  contains:
    what:
      description: What failed.
      type: str
      returned: always
      sample: Validate restore
    code:
      description: Error code of the service (or of the module for local conditions).
      type: str
      returned: always
      sample: UserErrorRestoreToLowerVersion
    message:
      description: Error message.
      type: str
      returned: always
      sample: Restoring backups of a higher PostgreSQL version to a lower version is not supported.
    recommended_actions:
      description: What to do about it, from the service's C(UserFacingError) (or a hint of the module).
      type: list
      elements: str
      returned: always
      sample: [Restore to the same or a higher PostgreSQL version from which the backup was taken.]
    is_retryable:
      description: Whether the service says that retrying can help.
      type: bool
      returned: always
      sample: false
    is_user_error:
      description: Whether the service says that the error is the user's to fix.
      type: bool
      returned: always
      sample: true
    target:
      description: Target of the error, when the service gives one.
      type: str
      returned: always
      sample: ''
    status:
      description: HTTP status of the failing call, when there was one.
      type: int
      returned: always
      sample: null
    request_id:
      description: C(x-ms-request-id) of the failing call.
      type: str
      returned: always
      sample: null
    correlation_id:
      description: C(x-ms-correlation-request-id) of the failing call.
      type: str
      returned: always
      sample: null
    operation_id:
      description: Id of the long-running operation, when the failure came from it.
      type: str
      returned: always
      sample: YWJjMGRmMzQtNTY1NS00MGMyLTg4YmUtMTUyZDE3ZjdiNzMyOzY4NDNmZWZkLWU4ZTMtNDM4MC04ZTJhLWUzMTNjMmNhNjI1NA==
    job_id:
      description: Job id, when one is involved.
      type: str
      returned: always
      sample: null
    details:
      description: Further details (inner error codes and messages).
      type: list
      elements: dict
      returned: always
      sample: [{code: InnerErrorCodeUnavailable, message: Restoring backup from version 10 to 9.5 is not supported., target: null}]
'''

from ansible_collections.azure_backup.dataprotection.plugins.module_utils._cross_region import (
    CROSS_REGION_ARGSPEC, check_params as check_cross_region_params,
)
from ansible_collections.azure_backup.dataprotection.plugins.module_utils._errors import DataProtectionError
from ansible_collections.azure_backup.dataprotection.plugins.module_utils._module import DataProtectionModule
from ansible_collections.azure_backup.dataprotection.plugins.module_utils._restore_flow import (
    BACKUP_INSTANCE_ARGSPEC, BACKUP_INSTANCE_CONSTRAINTS, RESTORE_ARGSPEC, RESTORE_CONSTRAINTS,
    check_restore_params, merge_constraints, plan_result, prepare_restore, validate_restore,
)

ARGSPEC = dict(BACKUP_INSTANCE_ARGSPEC, **RESTORE_ARGSPEC, wait_timeout={'type': 'int', 'default': 600},
               **CROSS_REGION_ARGSPEC)
CONSTRAINTS = merge_constraints(BACKUP_INSTANCE_CONSTRAINTS, RESTORE_CONSTRAINTS)


def run(module):
    params = module.params
    inputs = check_restore_params(params)  # before any call
    check_cross_region_params(params)
    if params['wait_timeout'] <= 0:
        raise ValueError('wait_timeout must be a positive number of seconds, not %d.' % params['wait_timeout'])
    client = module.client
    deadline = client.deadline = module.deadline(params['wait_timeout'])  # throttled requests stop at it too
    plan = prepare_restore(client, params, inputs)
    result = plan_result(plan)
    try:
        validate_restore(client, plan, deadline)
    except DataProtectionError as err:
        module.fail_from_error(err, **result)
    result['msg'] = 'The restore request is valid: recovery point %s (%s) to %s%s.' % (
        plan.request['recoveryPointId'], plan.source_datastore, plan.destination,
        ' (cross-region, from the secondary region %s)' % plan.cross_region.secondary_region if plan.cross_region
        else '')
    return result


def main():
    module = DataProtectionModule(argument_spec=ARGSPEC, supports_check_mode=True, **CONSTRAINTS)
    module.exit_with(run)


if __name__ == '__main__':
    main()
