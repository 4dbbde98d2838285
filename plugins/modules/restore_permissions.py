#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2025, Azure Backup Data Protection collection contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r'''
---
module: restore_permissions
short_description: Grant a Backup vault's managed identity what a PostgreSQL restore needs, or revoke such grants
version_added: 1.0.0
description:
  - Works out which permissions the managed identity of an Azure Backup vault needs for one restore of an Azure
    Database for PostgreSQL backup, and grants the missing ones. Neither the Azure CLI nor Azure PowerShell does this
    for single server restores.
  - Restore as a new database (single server) needs C(Reader) on the target server and read access to the secret
    that holds the connection string, which is C(Key Vault Secrets User) on the key vault when the key vault uses the
    Azure RBAC permission model, or an access policy with secret permissions C(get) and C(list) when it uses access
    policies.
  - Restore as files (single and flexible servers) needs C(Storage Blob Data Contributor) on the target storage
    account.
  - Before granting anything, the module reads the secret of O(secret_uri) and the container of
    O(target_container_url) through ARM (metadata only, C(Reader) is enough) and fails at once when either does not
    exist (C(SecretNotFound), C(ContainerNotFound)) or the secret is disabled (C(SecretDisabled)), so a typo never costs
    a role assignment. When the identity that runs Ansible may not read them, it warns and goes on.
  - A permission counts as present when the identity already has that exact role at the resource or at any scope
    above it (resource group, subscription, management group). Other roles never count, in particular C(Owner) and
    C(Contributor) do not include the data-plane roles (C(Key Vault Secrets User), C(Storage Blob Data Contributor)).
  - It never changes firewalls or network rules. It reads them and warns when they would block the restore (target
    server without "Allow access to Azure services", key vault or storage account that denies public traffic without
    the trusted Microsoft services exception).
  - New role assignments can take several minutes to apply. Validate the restore with retries afterwards (the
    C(azure_backup.dataprotection.postgresql_restore) role retries the validation while the service reports missing
    permissions).
  - With O(state=absent) it deletes the role assignments of O(role_assignment_ids), and only those (the
    C(assignment_id) values of RV(granted) of an earlier run, for example a restore drill's own grants). Each is read
    first; one that does not exist any more is left out and reported in RV(already_absent). Nothing else is deleted,
    whatever it grants.
author:
  - Azure Backup Data Protection collection contributors (@azure-backup)
options:
  state:
    description:
      - V(present) grants what the restore needs (O(vault_name), O(resource_group) and a target are required).
      - V(absent) deletes the role assignments of O(role_assignment_ids) that exist.
    type: str
    choices: [present, absent]
    default: present
  role_assignment_ids:
    description:
      - With O(state=absent), the ARM ids of the role assignments to delete
        (C(<scope>/providers/Microsoft.Authorization/roleAssignments/<guid>), as C(assignment_id) of RV(granted) returns
        them). An empty list deletes nothing.
    type: list
    elements: str
  vault_name:
    description:
      - Name of the Backup vault whose managed identity performs the restore. Required with O(state=present).
    type: str
  resource_group:
    description:
      - Resource group of the Backup vault. Required with O(state=present).
    type: str
  user_assigned_identity_id:
    description:
      - ARM id of a user-assigned managed identity attached to the vault, when the restore uses it instead of the
        vault's system-assigned identity (the same value as the restore modules' O(user_assigned_identity_id)).
    type: str
  target_server_id:
    description:
      - Restore as database. ARM id of the target Azure Database for PostgreSQL single server (a database id under it
        is cut to the server).
      - Needs O(secret_uri) or O(key_vault_id).
    type: str
  secret_uri:
    description:
      - Restore as database. Key Vault secret URI of the connection string the restore uses
        (C(https://<vault>.vault.azure.net/secrets/<name>)). The key vault is found from it.
    type: str
  key_vault_id:
    description:
      - Restore as database. ARM id of the key vault that holds O(secret_uri).
      - When not set, the key vaults of the subscription are listed and the one whose C(vaultUri) matches
        O(secret_uri) is used; set it when the key vault is in another subscription.
    type: str
  target_storage_account_id:
    description:
      - Restore as files. ARM id of the target storage account (a container id under it is cut to the account).
    type: str
  target_container_url:
    description:
      - Restore as files. URL of the target blob container (C(https://<account>.blob.core.windows.net/<container>)).
        When O(target_storage_account_id) is not set, the storage accounts of the subscription are listed and the
        one whose blob endpoint matches is used.
    type: str
  scope:
    description:
      - Where new role assignments are created. V(resource) (the narrowest) assigns on the server, key vault or
        storage account itself; V(resource_group) on its resource group; V(subscription) on its subscription.
      - Key Vault access policies always belong to the key vault.
      - Existing assignments at the resource or above count whatever this option says.
    type: str
    choices: [resource, resource_group, subscription]
    default: resource
extends_documentation_fragment:
  - azure_backup.dataprotection.auth
  - azure_backup.dataprotection.attributes
  - azure_backup.dataprotection.attributes.ACTION_GROUP
attributes:
  check_mode:
    support: full
    details:
      - Reads the vault, the targets and the existing assignments and reports what it would grant; writes nothing.
      - With O(state=absent), reads the role assignments and reports which it would delete; deletes nothing.
  diff_mode:
    support: full
    details:
      - The diff lists the permissions present before and after (with O(state=absent), the role assignments
        deleted).
notes:
  - "The identity that runs Ansible needs to read the vault and the targets (C(Reader)), to create role assignments on
    the chosen scope (C(Owner), C(User Access Administrator) or C(Role Based Access Control Administrator)) and, for
    key vaults with access policies, C(Microsoft.KeyVault/vaults/accessPolicies/write) (C(Key Vault Contributor) or
    C(Contributor))."
  - Role assignments are created with a new random name (GUID) and C(principalType=ServicePrincipal). When Azure answers
    C(RoleAssignmentExists), the permission counts as already present.
  - O(api_version) applies to the Backup vault request only; the other providers are called with fixed versions
    (Microsoft.Authorization 2022-04-01, Microsoft.KeyVault 2023-07-01, Microsoft.Storage 2023-05-01,
    Microsoft.DBforPostgreSQL 2017-12-01).
  - "O(state=absent) needs C(Microsoft.Authorization/roleAssignments/read) and C(roleAssignments/delete) on the
    assignments' scopes (C(Owner), C(User Access Administrator) or C(Role Based Access Control Administrator))."
seealso:
  - module: azure_backup.dataprotection.pg_restore_validate
  - module: azure_backup.dataprotection.keyvault_secret
  - name: Azure Backup support matrix and prerequisites for PostgreSQL
    description: Permissions the vault identity needs.
    link: https://learn.microsoft.com/azure/backup/backup-azure-database-postgresql-overview
'''

EXAMPLES = r'''
- name: Grant the vault identity what a restore as database needs
  azure_backup.dataprotection.restore_permissions:
    vault_name: TestBkpVault
    resource_group: testBkpVaultRG
    target_server_id: /subscriptions/{{ sub }}/resourceGroups/targetrg/providers/Microsoft.DBforPostgreSQL/servers/targetossserver
    secret_uri: https://targetosskv.vault.azure.net/secrets/targetossserver-restore
  register: grants

- name: Show what was granted
  ansible.builtin.debug:
    msg: "{{ grants.granted | map(attribute='role') | list }}"

- name: Restore as files - grant Storage Blob Data Contributor on the storage account's resource group
  azure_backup.dataprotection.restore_permissions:
    vault_name: TestBkpVault
    resource_group: testBkpVaultRG
    target_container_url: https://targetossstorage.blob.core.windows.net/restored-files
    scope: resource_group

- name: Only report what is missing
  azure_backup.dataprotection.restore_permissions:
    vault_name: TestBkpVault
    resource_group: testBkpVaultRG
    target_server_id: /subscriptions/{{ sub }}/resourceGroups/targetrg/providers/Microsoft.DBforPostgreSQL/servers/targetossserver
    key_vault_id: /subscriptions/{{ sub }}/resourceGroups/targetrg/providers/Microsoft.KeyVault/vaults/targetosskv
  check_mode: true
  diff: true

- name: Revoke exactly what the first task granted (and nothing that was there before)
  azure_backup.dataprotection.restore_permissions:
    state: absent
    role_assignment_ids: "{{ grants.granted | map(attribute='assignment_id') | select | list }}"
'''

RETURN = r'''
principal_id:
  description: Object id of the managed identity the permissions are for.
  returned: success with O(state=present)
  type: str
  sample: c5e3d1a9-7b2f-4e8d-a6c4-0f1e2d3c4b10
required:
  description: Every permission the restore needs, with where a missing one is (or would be) granted.
  returned: success with O(state=present)
  type: list
  elements: dict
  contains:
    kind:
      description: V(role_assignment) or V(access_policy).
      type: str
      sample: role_assignment
    role:
      description: Role name, or a description of the access policy.
      type: str
      sample: Reader
    role_definition_id:
      description: ARM id of the role definition (null for an access policy).
      type: str
      sample: /subscriptions/5c0d5bfa-2a34-4b6e-9f4e-6a1a2f6c1c11/providers/Microsoft.Authorization/roleDefinitions/acdd72a7-3385-48ef-bd42-f606fba81ae7
    scope:
      description: Scope a missing grant is created at (see O(scope)).
      type: str
      sample: /subscriptions/5c0d5bfa-2a34-4b6e-9f4e-6a1a2f6c1c11/resourceGroups/targetrg/providers/Microsoft.DBforPostgreSQL/servers/targetossserver
    resource_id:
      description: The resource the restore uses the permission on.
      type: str
      sample: /subscriptions/5c0d5bfa-2a34-4b6e-9f4e-6a1a2f6c1c11/resourceGroups/targetrg/providers/Microsoft.DBforPostgreSQL/servers/targetossserver
    principal_id:
      description: The identity's object id.
      type: str
      sample: c5e3d1a9-7b2f-4e8d-a6c4-0f1e2d3c4b10
    permissions:
      description: Secret permissions of an access policy (access policies only).
      type: list
      elements: str
      sample: [get, list]
    reason:
      description: Why the restore needs it.
      type: str
      sample: The restore reads the target server's properties.
granted:
  description:
    - Permissions this task granted (in check mode, would grant). Same fields as RV(required), plus
      C(assignment_id), the ARM id of the new role assignment (null in check mode and for access policies).
  returned: success with O(state=present)
  type: list
  elements: dict
  sample:
    - kind: role_assignment
      role: Reader
      role_definition_id: /subscriptions/5c0d.../providers/Microsoft.Authorization/roleDefinitions/acdd72a7-3385-48ef-bd42-f606fba81ae7
      scope: /subscriptions/5c0d.../resourceGroups/targetrg/providers/Microsoft.DBforPostgreSQL/servers/targetossserver
      principal_id: c5e3d1a9-7b2f-4e8d-a6c4-0f1e2d3c4b10
      assignment_id: /subscriptions/5c0d.../providers/Microsoft.Authorization/roleAssignments/3f1c...
already_present:
  description:
    - Permissions the identity already had. Same fields as RV(required); C(scope) is where the existing assignment
      is (it can be above the resource), C(assignment_id) its ARM id when known.
  returned: success with O(state=present)
  type: list
  elements: dict
network_warnings:
  description:
    - Network settings that would block the restore (also emitted as warnings). The module never changes them.
  returned: success with O(state=present)
  type: list
  elements: str
  sample:
    - "Key vault targetosskv denies public network access and does not let trusted Microsoft services bypass its firewall..."
targets:
  description: The resources the permissions are for, as found.
  returned: success with O(state=present)
  type: dict
  contains:
    server_id:
      description: Target server (restore as database).
      type: str
    key_vault_id:
      description: Key vault that holds the secret (restore as database).
      type: str
    key_vault_rbac:
      description: Whether the key vault uses the Azure RBAC permission model.
      type: bool
    storage_account_id:
      description: Target storage account (restore as files).
      type: str
revoked:
  description: With O(state=absent), the role assignments this task deleted (in check mode, would delete).
  returned: success with O(state=absent)
  type: list
  elements: dict
  contains:
    assignment_id: {description: ARM id of the role assignment., type: str}
    role_definition_id: {description: ARM id of its role definition., type: str}
    principal_id: {description: The identity it was for., type: str}
    scope: {description: Its scope., type: str}
already_absent:
  description: With O(state=absent), the ids of O(role_assignment_ids) that did not exist (nothing to delete).
  returned: success with O(state=absent)
  type: list
  elements: str
  sample: []
msg:
  description: Summary.
  returned: always
  type: str
  sample: Granted 2 permission(s) to c5e3d1a9-...; new role assignments can take several minutes to apply.
error:
  description:
    - The error, structured (same keys as RV(azure_backup.dataprotection.pg_restore_validate#module:error)), when the task
      failed because of the service or of an input the service rejected (code, message, recommended actions, HTTP status and
      request ids to give to Azure support).
  returned: on failure
  type: dict
  sample:
    what: 'Could not find the identity of the Backup vault TestBkpVault'
    code: VaultMSIUnauthorized
    message: 'the vault has no system-assigned managed identity.'
    recommended_actions: ['Enable the system-assigned identity of the vault, or give user_assigned_identity_id.']
    status: null
'''

from ansible_collections.azure_backup.dataprotection.plugins.module_utils._module import DataProtectionModule
from ansible_collections.azure_backup.dataprotection.plugins.module_utils._permissions import (
    PERMISSIONS_ARGSPEC, grant_restore_permissions, revoke_role_assignments,
)

ARGSPEC = dict(PERMISSIONS_ARGSPEC, vault_name={'type': 'str'}, resource_group={'type': 'str'},
               state={'type': 'str', 'choices': ['present', 'absent'], 'default': 'present'},
               role_assignment_ids={'type': 'list', 'elements': 'str'})
_TARGETS = ('target_server_id', 'target_storage_account_id', 'target_container_url')
CONSTRAINTS = {
    'required_if': [('state', 'present', ('vault_name', 'resource_group')),
                    ('state', 'present', _TARGETS, True),
                    ('state', 'absent', ('role_assignment_ids',))],
    'mutually_exclusive': [('target_server_id', 'target_storage_account_id'),
                           ('target_server_id', 'target_container_url'),
                           *(('role_assignment_ids', target) for target in _TARGETS)],
}


def run(module):
    if module.params['state'] == 'absent':
        result = revoke_role_assignments(module, module.params['role_assignment_ids'])
    else:
        if module.params['role_assignment_ids']:
            raise ValueError('role_assignment_ids is only for state absent (it names what to delete).')
        result = grant_restore_permissions(module, module.params)
    if module._diff:
        result['diff'] = result.pop('_diff')
    else:
        result.pop('_diff')
    return result


def main():
    module = DataProtectionModule(argument_spec=ARGSPEC, supports_check_mode=True, **CONSTRAINTS)
    module.exit_with(run)


if __name__ == '__main__':
    main()
