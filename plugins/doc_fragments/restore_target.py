# -*- coding: utf-8 -*-
# Copyright: (c) 2025, Azure Backup Data Protection collection contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The restore request options (argspec: module_utils/_restore_flow.py RESTORE_ARGSPEC)."""

from __future__ import annotations


class ModuleDocFragment:

    DOCUMENTATION = r'''
options:
  recovery_point_id:
    description:
      - Id of the recovery point to restore (the C(recovery_point_id) returned by
        M(azure_backup.dataprotection.pg_recovery_point_info)), or the ARM id of the recovery point.
      - The recovery point is read first; an unknown id fails before anything is sent.
    type: str
    required: true
  target_server_id:
    description:
      - Restore as a new database. ARM id of the single server that receives it,
        C(/subscriptions/<guid>/resourceGroups/<rg>/providers/Microsoft.DBforPostgreSQL/servers/<server>).
      - Only for single server databases; a flexible server backup is always restored as files.
      - Requires O(target_database_name) and O(secret_uri). Mutually exclusive with O(target_container_url).
    type: str
  target_database_name:
    description:
      - Name of the new database on O(target_server_id). It must not exist (the restore never overwrites a database).
    type: str
  secret_uri:
    description:
      - URI of the Key Vault secret that holds the connection string the vault's identity uses to reach
        O(target_server_id), for example C(https://kv-restore.vault.azure.net/secrets/targetossserver-conn).
      - Only the URI is sent; the service reads the value itself. The URI is not secret and is returned in
        RV(request).
      - The vault's managed identity needs C(Key Vault Secrets User) on the key vault (or a get/list access policy).
    type: str
  target_container_url:
    description:
      - Restore as files (backup dump files). URL of the blob container that receives them, for example
        C(https://testossstorageaccount.blob.core.windows.net/testcontainerrestore).
      - Requires O(target_file_prefix). Mutually exclusive with O(target_server_id).
      - The vault's managed identity needs C(Storage Blob Data Contributor) on the storage account or container.
    type: str
  target_file_prefix:
    description:
      - Prefix of the blob names the restore writes into O(target_container_url).
    type: str
  target_container_id:
    description:
      - ARM id of the target container,
        C(/subscriptions/<guid>/resourceGroups/<rg>/providers/Microsoft.Storage/storageAccounts/<account>/blobServices/default/containers/<container>).
      - Needed for a cross-subscription restore as files when the vault's cross-subscription restore setting is
        off (sent as C(targetResourceArmId)).
    type: str
  source_datastore:
    description:
      - Datastore to restore from.
      - V(auto) reads the recovery point and uses V(VaultStore) when the point is there, else V(ArchiveStore).
      - V(ArchiveStore) always sends a rehydration request (C(AzureBackupRestoreWithRehydrationRequest)) using
        O(rehydration_priority) and O(rehydration_retention_days); rehydration from the archive tier adds hours
        to the restore.
    type: str
    choices: [auto, VaultStore, ArchiveStore]
    default: auto
  rehydration_priority:
    description:
      - Priority of the rehydration of an archived recovery point. Only used when the source datastore is
        V(ArchiveStore).
    type: str
    choices: [Standard, High]
    default: Standard
  rehydration_retention_days:
    description:
      - How many days the rehydrated recovery point stays in the vault store, from 10 to 30 (sent as C(P<n>D)).
        Only used when the source datastore is V(ArchiveStore). A value outside the range fails before any call.
    type: int
    default: 15
  restore_location:
    description:
      - Region of the restore target. Defaults to the vault's location (read from the vault), which is where
        the target must be for a restore that is not cross-region.
    type: str
  user_assigned_identity_id:
    description:
      - ARM id of a user-assigned managed identity of the vault to restore with
        (C(/subscriptions/<guid>/resourceGroups/<rg>/providers/Microsoft.ManagedIdentity/userAssignedIdentities/<name>)).
      - When not set, the vault's system-assigned identity is used (no C(identityDetails) is sent).
    type: str
'''
