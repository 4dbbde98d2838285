#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2025, Azure Backup Data Protection collection contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r'''
---
module: pg_restore
short_description: Restore an Azure Database for PostgreSQL backup from an Azure Backup vault
version_added: 1.0.0
description:
  - Restores a recovery point of a PostgreSQL backup instance held in an Azure Backup vault
    (Microsoft.DataProtection) as a new database on a single server, or as dump files in a blob container
    (the only way for a flexible server). The original database is never overwritten.
  - Builds the restore request from plain options, exactly as M(azure_backup.dataprotection.pg_restore_validate)
    does, triggers the restore and returns the job id; with O(wait=true) it also waits for the job to end.
  - Idempotent. Before sending anything, it looks through the vault's restore jobs for one that restores the same
    recovery point of the same backup instance to the same target and is running or completed; when there is one
    (started by an earlier run, or by a run that was interrupted), it is returned with C(changed=false) and no
    second restore is started.
  - It refuses a target database that already exists, before sending anything. A completed restore job whose
    target database has since been dropped (a repeated drill with the same names) does not count as an existing
    restore; a new one is started.
  - When the restore request gets no usable answer (a dropped connection or a 5xx, so the request may or may not
    have been processed), it does not send it again; instead it looks for the job the request created, a few times,
    and fails asking to re-run the task if the job does not show up (a re-run finds it).
  - "Re-runs and relaunches (an AWX relaunch, a scheduled runbook, a repeated drill): when the target database
    exists and a completed restore job of this backup instance created it, the task is C(ok) and changes nothing,
    whatever recovery point that restore used; with O(select=latest) and a newer point, it warns that the database
    holds an older point (RV(newer_recovery_point)). A database that no restore of this backup instance created
    fails the task. A database is never overwritten."
  - It can do the steps before the restore too, each fact read once in the same task, as the
    C(azure_backup.dataprotection.postgresql_restore) role does. It can select the recovery point (O(select),
    O(before)), grant the vault identity what the restore needs
    (O(grant_permissions)), validate with the service while new permissions propagate (O(validate)), retry while
    another operation runs on the backup instance (O(busy_retries)), and wait with a progress line at every poll
    (O(wait), O(progress)).
options:
  recovery_point_id:
    description:
      - Id of the recovery point to restore (the C(recovery_point_id) returned by
        M(azure_backup.dataprotection.pg_recovery_point_info)), or the ARM id of the recovery point.
      - The recovery point is read first; an unknown id fails before anything is sent.
      - Exactly one of O(recovery_point_id), O(select) or O(before) is needed.
    type: str
    required: false
  select:
    description:
      - Restore the V(latest) or V(earliest) recovery point (of O(source_datastore) when it names a datastore),
        chosen from the list in the same task.
    type: str
    choices: [latest, earliest]
  before:
    description:
      - Restore the latest recovery point taken at or before this time (ISO 8601, for example
        C(2024-04-01T00:00:00Z)).
    type: str
  secret_connection:
    description:
      - Store the login of O(target_server_id) in O(secret_uri) first, as the ADO.NET connection string the service
        reads (what M(azure_backup.dataprotection.keyvault_secret) does with its O(azure_backup.dataprotection.keyvault_secret#module:connection)
        option). It is written only once every input, the recovery point, the earlier restores and the target were
        checked, so bad input never leaves a secret behind. An unchanged secret is not written again.
      - In check mode nothing is written, and the service validation (which reads the secret) is left for the real run
        when the secret would change.
    type: dict
    suboptions:
      host:
        description: Host name of the target server, for example C(targetossserver.postgres.database.azure.com).
        type: str
        required: true
      port:
        description: Port of the server.
        type: int
        default: 5432
      database:
        description: Database the service connects to first.
        type: str
        default: postgres
      user:
        description: Admin user, for single servers C(<user>@<server>).
        type: str
        required: true
      password:
        description: Its password. Never returned or logged.
        type: str
        required: true
      ssl_mode:
        description: C(Ssl Mode) of the connection string.
        type: str
        default: Require
        choices: [Disable, Allow, Prefer, Require, VerifyCA, VerifyFull]
  grant_permissions:
    description:
      - Before validating, grant the vault's managed identity what this restore needs, as
        M(azure_backup.dataprotection.restore_permissions) does (only when no earlier restore is found and the
        target is free). The result is in RV(permissions); a grant counts as a change.
      - A secret or container that does not exist fails the task before anything is granted (see
        M(azure_backup.dataprotection.restore_permissions)).
    type: bool
    default: false
  permissions_scope:
    description:
      - Scope of the grants with O(grant_permissions); see M(azure_backup.dataprotection.restore_permissions).
    type: str
    choices: [resource, resource_group, subscription]
    default: resource
  key_vault_id:
    description:
      - ARM id of the key vault of O(secret_uri), for O(grant_permissions) when the key vault is in another
        subscription or resource group than the one its name suggests.
    type: str
  target_storage_account_id:
    description:
      - ARM id of the storage account of O(target_container_url), for O(grant_permissions) (the grant goes on the
        account instead of the container).
    type: str
  validate:
    description:
      - Run the service's restore validation before triggering the restore. While it reports that the vault
        identity lacks permissions (new role assignments take minutes to apply) or that the backup instance is busy,
        it is retried O(validate_retries) times, O(validate_delay) seconds apart (once without O(grant_permissions)
        unless O(validate=true)).
      - Default is to validate in check mode only; V(false) skips it in check mode too (for a secret a real run
        would create first).
    type: bool
  validate_retries:
    description: Retries of the validation (see O(validate)).
    type: int
    default: 20
  validate_delay:
    description: Seconds between two validations.
    type: int
    default: 30
  busy_retries:
    description:
      - Retries of the restore request while the service refuses it because another operation runs on the backup
        instance (C(UserErrorMaxConcurrentOperationLimitReached), for a scheduled backup or another restore). The request
        was refused, so it is safe to send again.
    type: int
    default: 0
  busy_delay:
    description: Seconds between two tries of a refused restore request.
    type: int
    default: 60
  progress:
    description:
      - While waiting, print a line at every poll with the job's status, its current sub-task (and its progress when
        the job reports it), the time waited and the time left before O(wait_timeout).
      - At the end, print a summary of the recovery point, the target, the region, the job and its status, and the
        role assignments granted.
      - The lines appear while the task runs because the module runs in the controller's worker process (its action
        plugin); a module run on another host (a connection other than local) prints nothing until it ends.
    type: bool
    default: true
author:
  - Azure Backup Data Protection collection contributors (@azure-backup)
extends_documentation_fragment:
  - azure_backup.dataprotection.auth
  - azure_backup.dataprotection.backup_instance
  - azure_backup.dataprotection.cross_region
  - azure_backup.dataprotection.restore_target
  - azure_backup.dataprotection.wait
  - azure_backup.dataprotection.attributes
  - azure_backup.dataprotection.attributes.ACTION_GROUP
attributes:
  check_mode:
    support: full
    details:
      - In check mode the module looks for an existing restore job, checks that the target database does not
        exist, and runs the service's restore validation (read-only); it returns the RV(request) it would send with
        C(changed=true), and never triggers the restore.
  diff_mode:
    support: none
notes:
  - A restore from the archive tier (O(source_datastore=ArchiveStore), or V(auto) with an archive-only point)
    rehydrates the point first, which takes hours; use O(wait=false) and follow the job with
    M(azure_backup.dataprotection.dataprotection_job_info).
  - For a files target the module cannot check beforehand that the blobs do not exist; the service refuses to
    overwrite them (C(FailIfExists)).
  - The vault's managed identity needs permissions on the target (see
    M(azure_backup.dataprotection.restore_permissions)); validate first with
    M(azure_backup.dataprotection.pg_restore_validate) to get a clear error while they propagate.
seealso:
  - module: azure_backup.dataprotection.pg_recovery_point_info
  - module: azure_backup.dataprotection.pg_restore_validate
  - module: azure_backup.dataprotection.dataprotection_job_info
  - module: azure_backup.dataprotection.restore_permissions
  - name: Backup Instances - Trigger Restore (REST API)
    description: The Microsoft.DataProtection call this module makes.
    link: https://learn.microsoft.com/rest/api/dataprotection/backup-instances/trigger-restore
'''

EXAMPLES = r'''
- name: Restore the latest recovery point as a new database and wait for it
  azure_backup.dataprotection.pg_restore:
    vault_name: TestBkpVault
    resource_group: testBkpVaultRG
    backup_instance_name: testpostgresql-empdb11-957d23b1-c679-4c94-ade6-c4d34635e149
    recovery_point_id: "{{ latest.recovery_point.recovery_point_id }}"
    target_server_id: /subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/targetrg/providers/Microsoft.DBforPostgreSQL/servers/targetossserver
    target_database_name: emprestored21
    secret_uri: https://kv-restore.vault.azure.net/secrets/targetossserver-conn
    wait: true
    wait_timeout: 7200
  register: restore

- name: Show the job
  ansible.builtin.debug:
    msg: "Job {{ restore.job_id }}: {{ restore.job.status }} ({{ restore.job.duration }})"

- name: Start a restore of a flexible server as files and return at once, with the auth options set once
  module_defaults:
    group/azure_backup.dataprotection.dataprotection:
      subscription_id: "{{ azure_subscription_id }}"
      auth_source: msi
  block:
    - name: Restore as files
      azure_backup.dataprotection.pg_restore:
        vault_name: TestBkpVault
        resource_group: testBkpVaultRG
        datasource_id: /subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/sourcerg/providers/Microsoft.DBforPostgreSQL/flexibleServers/pgflex01
        recovery_point_id: 9a3f51d2c0e84b7f8e1d6c5b4a392817
        target_container_url: https://testossstorageaccount.blob.core.windows.net/testcontainerrestore
        target_file_prefix: pgflex01-drill
      register: files_restore

    - name: Wait for the job with the job info module
      azure_backup.dataprotection.dataprotection_job_info:
        vault_name: TestBkpVault
        resource_group: testBkpVaultRG
        job_id: "{{ files_restore.job_id }}"
      register: job
      until: job.job.is_terminal
      retries: 120
      delay: 60

- name: The vault's region is down - restore the newest point of its secondary region into a server there
  azure_backup.dataprotection.pg_restore:
    vault_name: TestBkpVault
    resource_group: testBkpVaultRG
    backup_instance_name: testpostgresql-empdb11-957d23b1-c679-4c94-ade6-c4d34635e149
    select: latest
    target_server_id: /subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/drtargetrg/providers/Microsoft.DBforPostgreSQL/servers/drtargetserver
    target_database_name: emprestored21
    secret_uri: https://kv-dr.vault.azure.net/secrets/drtargetserver-conn
    use_secondary_region: true
    wait: true

- name: Show what would be sent, without restoring
  azure_backup.dataprotection.pg_restore:
    vault_name: TestBkpVault
    resource_group: testBkpVaultRG
    backup_instance_name: testpostgresql-empdb11-957d23b1-c679-4c94-ade6-c4d34635e149
    recovery_point_id: eb006fde78cb47198be5a320fbe45e9b
    target_server_id: /subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/targetrg/providers/Microsoft.DBforPostgreSQL/servers/targetossserver
    target_database_name: emprestored21
    secret_uri: https://kv-restore.vault.azure.net/secrets/targetossserver-conn
  check_mode: true
  register: planned
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
job_id:
  description:
    - GUID of the restore job (started now, or found from an earlier run). Give it to
      M(azure_backup.dataprotection.dataprotection_job_info).
    - Also returned when waiting for the job failed or timed out.
  returned: when a job was started or found
  type: str
  sample: c4bd49a1-0645-4eec-b207-feb818962852
job:
  description: The restore job, normalised as by M(azure_backup.dataprotection.dataprotection_job_info).
  returned: when O(wait=true), or when an existing job was found
  type: dict
  sample:
    job_id: c4bd49a1-0645-4eec-b207-feb818962852
    operation: Restore
    status: Completed
    is_terminal: true
    succeeded: true
    start_time: '2021-07-08T20:46:56.6521127Z'
    end_time: '2021-07-08T20:52:39.7709734Z'
    duration: PT5M43.1188607S
    source_recovery_point:
      id: eb006fde78cb47198be5a320fbe45e9b
      time: '2021-10-21T16:31:16.8316716Z'
    recovery_destination: "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/targetrg/providers/Microsoft.DBforPostgreSQL/servers/\
      targetossserver/databases/emprestored21"
    errors: []
request:
  description:
    - The restore request sent (or, in check mode or when an existing job was found, the one that would be sent).
      It holds the Key Vault secret URI, never a secret. Same shape as RV(azure_backup.dataprotection.pg_restore_validate#module:request).
  returned: when the request could be built
  type: dict
  sample:
    objectType: AzureBackupRecoveryPointBasedRestoreRequest
    recoveryPointId: eb006fde78cb47198be5a320fbe45e9b
    sourceDataStoreType: VaultStore
    sourceResourceId: /subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/sourcerg/providers/Microsoft.DBforPostgreSQL/flexibleServers/pgflex01
    restoreTargetInfo:
      objectType: RestoreFilesTargetInfo
      recoveryOption: FailIfExists
      restoreLocation: westus
      targetDetails:
        url: https://testossstorageaccount.blob.core.windows.net/testcontainerrestore
        filePrefix: pgflex01-drill
        restoreTargetLocationType: AzureBlobs
source_datastore:
  description: The datastore the restore reads (chosen from the recovery point when O(source_datastore=auto)).
  returned: when the request could be built
  type: str
  sample: ArchiveStore
backup_instance:
  description: The backup instance (name, id, datasource id and type; see M(azure_backup.dataprotection.pg_recovery_point_info)).
  returned: when the backup instance was found
  type: dict
  sample:
    name: pgflex01-8a7c2e51-40f1-4a33-9c1b-2f0e9d6b5c77
    datasource_id: /subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/sourcerg/providers/Microsoft.DBforPostgreSQL/flexibleServers/pgflex01
    datasource_type: Microsoft.DBforPostgreSQL/flexibleServers
recovery_point:
  description: The recovery point (normalised as by M(azure_backup.dataprotection.pg_recovery_point_info)).
  returned: when the request could be built
  type: dict
  sample:
    recovery_point_id: 9a3f51d2c0e84b7f8e1d6c5b4a392817
    recovery_point_time: '2024-04-02T01:00:12.1234567Z'
    datastores: [ArchiveStore]
    archive_only: true
target_exists:
  description:
    - Whether the target database existed when the module looked (database targets only).
    - With a completed restore job of the same point to the same target, V(true) means that restore is still in place
      (the job is returned in RV(job) and nothing is started); V(false) means its database was dropped since, so a new
      restore is started (in check mode, validated).
    - Also returned when the task failed after the look, so that a caller can tell a dropped target from another failure.
  returned: for a database target, when the database could be read (not when only a running restore job was found)
  type: bool
  sample: false
secret:
  description: With O(secret_connection), the secret written (or that would be written), never its value.
  returned: when secret_connection was given and the secret was reached
  type: dict
  sample:
    uri: https://targetosskv.vault.azure.net/secrets/targetossserver-restore
    name: targetossserver-restore
    changed: true
    msg: Secret targetossserver-restore created.
destination:
  description: The restore target, as the service's jobs name it (the new database's ARM id, or the container URL and file prefix).
  returned: when the request could be built
  type: str
  sample: "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/targetrg/providers/Microsoft.DBforPostgreSQL/\
    servers/targetossserver/databases/emprestored21"
newer_recovery_point:
  description:
    - When the target database exists and an earlier restore of this backup instance created it from another recovery
      point, the point this run selected (newer with O(select=latest)); the database was left as it is.
  returned: when the target holds an earlier restore of another point
  type: dict
  sample:
    recovery_point_id: 2f7c01b3a4d54e1e9c3b0a8d7e6f5a41
    recovery_point_time: '2024-04-03T01:00:12.1234567Z'
permissions:
  description:
    - With O(grant_permissions), what the vault identity needed, had and was granted (in check mode, would be granted),
      as M(azure_backup.dataprotection.restore_permissions) returns it.
  returned: when permissions were checked
  type: dict
  contains:
    principal_id:
      description: Principal id of the vault's identity.
      type: str
    required:
      description: Every permission the restore needs.
      type: list
      elements: dict
    granted:
      description: The permissions granted now (in check mode, that would be granted).
      type: list
      elements: dict
    already_present:
      description: The permissions the identity already had.
      type: list
      elements: dict
    targets:
      description: The target resources read.
      type: dict
    network_warnings:
      description: Firewall and network settings that may block the restore (never changed).
      type: list
      elements: str
    changed:
      description: Whether something was (or would be) granted.
      type: bool
    msg:
      description: What was granted.
      type: str
msg:
  description: What happened.
  returned: always
  type: str
  sample: 'Restore started: job c4bd49a1-0645-4eec-b207-feb818962852 restores recovery point eb006fde78cb47198be5a320fbe45e9b (VaultStore).'
error:
  description:
    - The error, structured (same keys as RV(azure_backup.dataprotection.pg_restore_validate#module:error)), when the task
      failed because of the service or the job; for a failed job it is the job's first error.
  returned: on failure
  type: dict
  sample:
    code: UserErrorDBUserAuthFailed
    message: The user could not be authenticated on the target server.
    recommended_actions: [Check the user name and password in the Key Vault secret.]
    is_retryable: false
    is_user_error: true
    job_id: c4bd49a1-0645-4eec-b207-feb818962852
'''

from ansible_collections.azure_backup.dataprotection.plugins.module_utils._errors import DataProtectionError
from ansible_collections.azure_backup.dataprotection.plugins.module_utils import _arm_client, _cross_region
from ansible_collections.azure_backup.dataprotection.plugins.module_utils._ids import parse_secret_uri
from ansible_collections.azure_backup.dataprotection.plugins.module_utils._jobs import normalize_job
from ansible_collections.azure_backup.dataprotection.plugins.module_utils._keyvault import (
    CONNECTION_SPEC, SecretStore, build_connection_string, ensure_secret, keyvault_scope, secret_metadata,
)
from ansible_collections.azure_backup.dataprotection.plugins.module_utils._lro import wait_for_job, wait_for_operation
from ansible_collections.azure_backup.dataprotection.plugins.module_utils._module import DataProtectionModule
from ansible_collections.azure_backup.dataprotection.plugins.module_utils._permissions import (
    PERMISSIONS_ARGSPEC, check_permission_params, grant_restore_permissions,
)
from ansible_collections.azure_backup.dataprotection.plugins.module_utils._recovery_points import (
    SELECT_MODES, parse_time,
)
from ansible_collections.azure_backup.dataprotection.plugins.module_utils._restore_flow import (
    BACKUP_INSTANCE_ARGSPEC, BACKUP_INSTANCE_CONSTRAINTS, RESTORE_ARGSPEC, RESTORE_CONSTRAINTS,
    check_restore_params, get_vault, job_failure, job_path, merge_constraints, plan_result, prepare_restore,
    recheck_after_unknown_outcome, scan_existing_restores, target_database_exists, validate_restore, vault_path,
)
from ansible_collections.azure_backup.dataprotection.plugins.module_utils._restore_request import DatabaseTarget

ARGSPEC = dict(
    BACKUP_INSTANCE_ARGSPEC,
    # recovery_point_id, or select/before: the point is then chosen from the list
    **dict(RESTORE_ARGSPEC, recovery_point_id=dict(RESTORE_ARGSPEC['recovery_point_id'], required=False)),
    select={'type': 'str', 'choices': [m for m in SELECT_MODES if m != 'all']},
    before={'type': 'str'},
    # the login, its password a no_log suboption (the dict itself is not secret)
    secret_connection={'type': 'dict', 'options': CONNECTION_SPEC, 'no_log': False},
    grant_permissions={'type': 'bool', 'default': False},
    permissions_scope=PERMISSIONS_ARGSPEC['scope'],
    key_vault_id=PERMISSIONS_ARGSPEC['key_vault_id'],
    target_storage_account_id=PERMISSIONS_ARGSPEC['target_storage_account_id'],
    validate={'type': 'bool'},
    validate_retries={'type': 'int', 'default': 20},
    validate_delay={'type': 'int', 'default': 30},
    busy_retries={'type': 'int', 'default': 0},
    busy_delay={'type': 'int', 'default': 60},
    wait={'type': 'bool', 'default': False},
    wait_timeout={'type': 'int', 'default': 3600},
    poll_interval={'type': 'int', 'default': 15},
    progress={'type': 'bool', 'default': True},
    **_cross_region.CROSS_REGION_ARGSPEC,
)
CONSTRAINTS = merge_constraints(BACKUP_INSTANCE_CONSTRAINTS, RESTORE_CONSTRAINTS, {
    'required_one_of': [('recovery_point_id', 'select', 'before')],
    'required_by': {'secret_connection': 'secret_uri'},
    'mutually_exclusive': [('recovery_point_id', 'select'), ('recovery_point_id', 'before'),
                           ('key_vault_id', 'target_container_url'), ('target_storage_account_id', 'target_server_id')],
})

# Validation codes that mean "the vault identity lacks a permission": new role assignments take minutes to apply.
PERMISSION_CODES = ('UserErrorMSIMissingPermissions', 'UserErrorMissingPermissionsOnSecretStore',
                    'UserErrorContainerNotAccessible')
BUSY_CODE = 'UserErrorMaxConcurrentOperationLimitReached'

EXISTS_MSG = ("Target database '%s' already exists on server '%s' and no restore of this backup instance by this "
              "collection created it. Choose another target_database_name or drop it first; pg_restore never "
              "overwrites a database.")
HOLDS_OLDER_MSG = ("Target database %s exists: restore job %s created it from recovery point %s (%s), and a newer "
                   "recovery point %s (%s) exists now. The database was left as it is (a restore never overwrites a "
                   "database); to restore the newer point, drop the database or give another target_database_name.")
SECRET_MISSING_CODE = 'UserErrorInvalidSecret'
NAME_IN_USE_CODE = 'UserErrorDatabaseNameAlreadyInUse'
FOUND_MSG = ('The restore request got no usable answer (%s); its job %s was found in the vault, so the restore '
             'was not requested again.')
UNKNOWN_MSG = ('Trigger restore: the restore request got no usable answer (%s), so the restore may or may not have '
               'started, and its job did not show up in the vault. Run the task again: it looks for the restore job '
               'first and never starts a second restore of the same point to the same target.')
STILL_MISSING_MSG = (' The vault identity still lacked permissions after %d attempts %d s apart; role assignments can '
                     'take up to 30 minutes to apply: run again later or raise validate_retries. Check the '
                     'permissions with azure_backup.dataprotection.restore_permissions (check mode).')


def _describe(plan):
    text = 'recovery point %s (%s) to %s' % (plan.request['recoveryPointId'], plan.source_datastore, plan.destination)
    if plan.cross_region:
        text += ' cross-region, from the secondary region %s (the vault is in %s)' % (
            plan.cross_region.secondary_region, plan.cross_region.source_region)
    if plan.source_datastore == 'ArchiveStore':
        text += (' (the point is in the archive tier only: it is rehydrated into the vault store first, priority %s, '
                 'kept %s, which takes hours)' % (plan.request.get('rehydrationPriority'),
                                                  plan.request.get('rehydrationRetentionDuration')))
    return text


def _duration(seconds):
    seconds = max(0, int(round(seconds)))
    hours, rest = divmod(seconds, 3600)
    return ('%dh%02dm%02ds' % (hours, rest // 60, rest % 60) if hours else
            '%dm%02ds' % divmod(rest, 60) if rest >= 60 else '%ds' % rest)


def progress_line(progress, elapsed, remaining):
    """One line per poll: the job's state and sub-task (with its own progress when it reports one), the time
    waited and the time left before wait_timeout."""
    line = 'restore job %s: %s' % (progress['job_id'], progress['status'] or 'not visible yet')
    if progress.get('sub_task'):
        line += ', %s %s' % (progress['sub_task'], progress.get('sub_task_status') or '')
        if progress.get('sub_task_progress') not in (None, ''):
            line += ' (%s)' % progress['sub_task_progress']
    return '%s; %s elapsed, %s left before wait_timeout' % (line.rstrip(), _duration(elapsed), _duration(remaining))


def summary_lines(result, check_mode):
    """What happened, in the lines a person reads at the end of the task (printed when O(progress) is on)."""
    point, job = result['recovery_point'], result.get('job') or {}
    target_type = 'files' if result['request']['restoreTargetInfo']['objectType'] == 'RestoreFilesTargetInfo' else 'database'
    crr = result.get('cross_region')
    granted = (result.get('permissions') or {}).get('granted') or []
    status = job.get('status') or ('NotStarted (check mode)' if check_mode else 'Started')
    earlier = 'job_id' in result and not result['changed']
    return [
        result.get("msg", ""),
        'Recovery point: %s taken %s (%s), backup instance %s' % (
            point['recovery_point_id'], point['recovery_point_time'], result['source_datastore'],
            result['backup_instance']['name']),
        'Target (%s): %s' % (target_type, result['destination']),
        'Region: ' + ('cross-region restore from the secondary region %s (the vault is in %s)' % (
            crr['secondary_region'], crr['source_region']) if crr else "the vault's own region"),
        'Job: %s%s' % (result.get('job_id') or 'none', ' (started by an earlier run)' if earlier else ''),
        'Status: %s%s' % (status, ', duration ' + job['duration'] if job.get('duration') else ''),
        '%s: %s' % ('Would grant' if check_mode else 'Granted',
                    '; '.join('%s on %s' % (g['role'], g['scope']) for g in granted) or 'nothing'),
    ]


class _Restore:
    """One run of the module: every fact is read once and kept here."""

    def __init__(self, module):
        self.module = module
        self.params = module.params
        self.client = module.client
        self.deadline = self.client.deadline = module.deadline(self.params['wait_timeout'])
        self.plan = None
        self.result = {}
        self._target_state = None

    # ---------------------------------------------------------------- facts read once

    def target_state(self):
        """(exists, why) of a database target, read at most once; (None, None) for a files target."""
        if not isinstance(self.plan.target, DatabaseTarget):
            return None, None
        if self._target_state is None:
            self._target_state = target_database_exists(self.client, self.plan.target)
            if self._target_state[0] is not None:
                self.result['target_exists'] = self._target_state[0]
        return self._target_state

    # ---------------------------------------------------------------- steps

    def run(self, inputs):
        params = self.params
        # cross-region: the vault's region may be down; the vault comes from Resource Graph with the plan
        vault = (get_vault(self.client, vault_path(self.client, params))
                 if params['grant_permissions'] and not params['use_secondary_region'] else None)
        before = parse_time(params['before'], 'before') if params.get('before') else None
        select = params.get('select') or ('latest' if before else None)
        self.plan = prepare_restore(self.client, params, inputs, vault=vault, select=select, before=before)
        if self.plan.cross_region:
            vault = self.plan.cross_region.vault
        self.result = dict(plan_result(self.plan), destination=self.plan.destination)
        try:
            self._restore(vault, latest_wanted=select == 'latest' and before is None)
        except DataProtectionError as err:
            if err.code == NAME_IN_USE_CODE and isinstance(self.plan.target, DatabaseTarget):
                self.result['target_exists'] = True  # taken since we read it (or we could not read it)
                self.module.fail_json(msg=EXISTS_MSG % (self.plan.target.database_name, self._server_name()),
                                      error=err.as_dict(), **self.result)
            self.module.fail_from_error(err, **self.result)  # `changed`: was a restore accepted before the failure
        return self.result

    def _server_name(self):
        return self.plan.target.server_id.rstrip('/').rsplit('/', 1)[-1]

    def _restore(self, vault, latest_wanted):
        module, plan, result = self.module, self.plan, self.result
        earlier = scan_existing_restores(self.client, plan)
        existing = self._reusable(earlier.same_point)
        if existing is not None:
            result.update(job_id=existing['job_id'], job=existing)
            if self.params['wait'] and not existing['is_terminal'] and not module.check_mode:
                self._wait()
            result['msg'] = 'A restore of %s already exists: job %s is %s; nothing was started.' % (
                _describe(plan), existing['job_id'], result['job']['status'])
            return
        exists, why = self.target_state()
        if exists:
            self._existing_target(earlier.same_target, latest_wanted)
            return
        if exists is None and why:
            module.warn('Could not check whether the target database %s exists (%s); the service refuses an existing '
                        'database (UserErrorDatabaseNameAlreadyInUse).' % (plan.destination, why))
        secret_pending = self._store_secret()
        grants_pending = self._grant(vault)
        validated = None
        if self.params['validate'] if self.params['validate'] is not None else module.check_mode:
            validated = self._validate(secret_pending, grants_pending)
        if module.check_mode:
            result.update(changed=True, msg='Check mode: the restore of %s %s and would be started; nothing was '
                                            'sent.' % (_describe(plan), validated or 'was not validated'))
            return
        result['job_id'], job = self._trigger()
        result['changed'] = True
        if job is not None:
            result['job'] = job
        if self.params['wait']:
            self._wait()
            result['msg'] = 'Restore of %s finished: job %s is %s.' % (
                _describe(plan), result['job_id'], result['job']['status'])
        else:
            result['msg'] = 'Restore started: job %s restores %s.' % (result['job_id'], _describe(plan))

    def _reusable(self, existing):
        """An earlier restore to a database that has since been dropped (a repeated drill) does not count."""
        if existing is None or not existing['succeeded'] or not isinstance(self.plan.target, DatabaseTarget):
            return existing
        if self.target_state()[0] is False:
            self.module.warn('Restore job %s already restored this recovery point to %s, but that database no longer '
                             'exists; %s a new restore.' % (
                                 existing['job_id'], self.plan.destination,
                                 'would start' if self.module.check_mode else 'starting'))
            return None
        return existing

    def _existing_target(self, ours, latest_wanted):
        """The target database exists and this recovery point was never restored there: ours with an older
        point (a relaunch after a new backup) is fine and left alone; anyone else's is an error."""
        plan, result = self.plan, self.result
        if ours is None:
            self.module.fail_json(msg=EXISTS_MSG % (plan.target.database_name, self._server_name()), **result)
        held = ours['source_recovery_point']
        result.update(job_id=ours['job_id'], job=ours, newer_recovery_point={
            'recovery_point_id': plan.recovery_point['recovery_point_id'],
            'recovery_point_time': plan.recovery_point['recovery_point_time']})
        text = HOLDS_OLDER_MSG % (plan.destination, ours['job_id'], held.get('id'), held.get('time'),
                                  plan.recovery_point['recovery_point_id'], plan.recovery_point['recovery_point_time'])
        if latest_wanted:
            self.module.warn(text)
        result['msg'] = text

    def _store_secret(self):
        """Write the server login to the secret_uri as the connection string the service reads, once every input
        and the target were checked. In check mode: 'create' or 'update' when a write is pending, else None."""
        connection = self.params.get('secret_connection')
        if not connection:
            return None
        module = self.module
        value = build_connection_string(connection)
        module.no_log_values.add(value)
        base, name = parse_secret_uri(self.plan.target.secret_uri)[:2]
        client = _arm_client.ArmClient(module.credential, module.cloud, module.subscription_id, verify=module.verify,
                                       warn=module.warn, session=module.session)
        changed, dummy_value_changed, bundle, diff, msg = ensure_secret(
            SecretStore(client, base, name, keyvault_scope(module.cloud, base)), 'present', value, None, None,
            module.check_mode)
        self.result['secret'] = dict(secret_metadata(bundle, base, name), changed=changed, msg=msg)
        if changed and not module.check_mode:
            self.result['changed'] = True
        module.progress(msg)
        if not (changed and module.check_mode):
            return None
        return 'update' if diff['before'] else 'create'

    def _grant(self, vault):
        """Grant the vault identity what the restore needs; True when a grant is pending (check mode)."""
        if not self.params['grant_permissions']:
            return False
        params, target = self.params, self.plan.target
        database = isinstance(target, DatabaseTarget)
        grant_params = {
            'vault_name': params['vault_name'], 'resource_group': params['resource_group'],
            'user_assigned_identity_id': params.get('user_assigned_identity_id'), 'scope': params['permissions_scope'],
            'target_server_id': target.server_id if database else None,
            'secret_uri': target.secret_uri if database else None,
            'secret_written': bool(params.get('secret_connection')),  # by this task, even when check mode did not
            'key_vault_id': params.get('key_vault_id') if database else None,
            'target_storage_account_id': None if database else params.get('target_storage_account_id'),
            'target_container_url': None if database else target.container_url,
        }
        permissions = grant_restore_permissions(self.module, grant_params, vault=vault)
        permissions.pop('_diff')
        self.result['permissions'] = permissions
        if permissions['changed'] and not self.module.check_mode:
            self.result['changed'] = True  # a grant is a change even when the restore fails later
        self.module.progress(permissions['msg'])
        return permissions['changed'] and self.module.check_mode

    def _validate(self, secret_pending, grants_pending):
        """validateRestore, retried while the service reports missing permissions (new grants propagate) or a busy
        backup instance; returns what the check-mode message says of it.

        Check mode with writes pending: with grants pending the validation would fail for that reason only, and with
        the secret's value to change it would read the old one: both skipped. With the secret to create, it runs:
        the service checks the server, the permissions and the key vault before it reads the secret, and its
        UserErrorInvalidSecret then only says that the secret is not there yet."""
        if grants_pending:
            return 'would be validated once the permissions are granted'
        if secret_pending == 'update':
            return 'would be validated once the secret is updated (the service would read its old value now)'
        if secret_pending == 'create':
            try:
                validate_restore(self.client, self.plan, self.deadline)
            except DataProtectionError as err:
                if err.code != SECRET_MISSING_CODE:
                    raise
            return ('was validated up to the secret, which the service could not read yet (%s: it would be created); '
                    'the checks that need it (the login, CREATEDB) are left for the real run' % SECRET_MISSING_CODE)
        retries, delay = max(0, self.params['validate_retries']), max(0, self.params['validate_delay'])
        if not (self.params['validate'] or self.params['grant_permissions']):
            retries = 0  # a plain check-mode run validates once, as before
        for attempt in range(retries + 1):
            try:
                validate_restore(self.client, self.plan, self.deadline)
                return 'is valid'
            except DataProtectionError as err:
                if err.code not in PERMISSION_CODES + (BUSY_CODE,) or attempt == retries or self.deadline.expired():
                    if err.code in PERMISSION_CODES and retries:
                        err.message += STILL_MISSING_MSG % (attempt + 1, delay)
                    raise
                self.module.progress('validation: %s; attempt %d of %d, next in %d s' % (
                    err.code, attempt + 1, retries + 1, delay))
                self.deadline.sleep(delay)

    def _trigger(self):
        """POST the restore, retried while another operation runs on the backup instance; returns the job id
        (and the job when it had to be looked up)."""
        retries, delay = max(0, self.params['busy_retries']), max(0, self.params['busy_delay'])
        attempt = 0
        while True:
            try:
                return self._post_restore()
            except DataProtectionError as err:
                attempt += 1
                if err.code != BUSY_CODE or attempt > retries or self.deadline.expired():
                    raise
                self.module.progress('restore refused for now (%s: another operation runs on the backup instance); '
                                     'attempt %d of %d, next in %d s' % (err.code, attempt, retries + 1, delay))
                self.deadline.sleep(delay)

    def _post_restore(self):
        module, plan, result = self.module, self.plan, self.result
        try:
            response = (_cross_region.post_restore(self.client, plan.cross_region, plan.backup_instance_path,
                                                   plan.request) if plan.cross_region
                        else self.client.post(plan.backup_instance_path + '/restore', plan.request))
        except DataProtectionError as err:
            if not err.outcome_unknown:
                raise
            job = recheck_after_unknown_outcome(self.client, plan, self.deadline)
            if job is None:
                module.fail_json(**dict(result, changed=True, error=err.as_dict(), msg=UNKNOWN_MSG % err.message))
            module.warn(FOUND_MSG % (err.message.split('; the request may', 1)[0].rstrip('.'), job['job_id']))
            return job['job_id'], job
        if response.status_code >= 300:
            self.client.json_or_raise(response, 'Trigger restore')  # raises, with the service's code (busy, ...)
        result['changed'] = True  # accepted: from now on a failure still leaves a restore started
        operation = wait_for_operation(self.client, response, self.deadline, 'Trigger restore',
                                       poll_interval=self.params['poll_interval'])
        if operation.get('job_id'):
            return operation['job_id'], None
        job = scan_existing_restores(self.client, plan).same_point  # the spec allows an answer without jobId
        if job is None:
            module.fail_json(**dict(result, msg='Trigger restore: the service accepted the restore but returned no '
                                    'job id, and no matching restore job is listed. Look for it with '
                                    'azure_backup.dataprotection.dataprotection_job_info (operation: Restore).'))
        return job['job_id'], job

    def _wait(self):
        module, params, result = self.module, self.params, self.result
        timeout = params['wait_timeout']

        def show(progress):
            remaining = self.deadline.remaining()
            module.progress(progress_line(progress, timeout - remaining, remaining))

        try:
            crr = self.plan.cross_region
            raw = wait_for_job(self.client, job_path(self.plan.vault_path, result['job_id']), self.deadline,
                               poll_interval=params['poll_interval'], on_progress=show if params['progress'] else None,
                               every_poll=True,
                               fetch=_cross_region.job_fetcher(self.client, crr, result['job_id']) if crr else None)
        except DataProtectionError as err:
            module.fail_from_error(err, **result)
        result['job'] = normalize_job(raw)
        failure = job_failure(raw)
        if failure is not None:
            module.fail_from_error(failure, **result)


def run(module):
    params = module.params
    inputs = check_restore_params(params)  # before any call
    _cross_region.check_params(params)
    for name in ('wait_timeout', 'poll_interval'):
        if params[name] <= 0:
            raise ValueError('%s must be a positive number of seconds, not %d.' % (name, params[name]))
    if params['grant_permissions']:
        check_permission_params({'target_server_id': params.get('target_server_id'),
                                 'secret_uri': params.get('secret_uri'), 'key_vault_id': params.get('key_vault_id')})
    result = _Restore(module).run(inputs)
    if params['progress']:
        for line in summary_lines(result, module.check_mode):
            module.progress(line)
    return result


def main():
    module = DataProtectionModule(argument_spec=ARGSPEC, supports_check_mode=True, **CONSTRAINTS)
    module.exit_with(run)


if __name__ == '__main__':
    main()
