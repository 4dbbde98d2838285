"""Built-in role definitions (real names and GUIDs) and RBAC evaluation with scope inheritance.

Permission lists are the real ones for the roles the restore path touches, shortened where the real
list only names providers the emulator does not serve.  As in Azure, Owner/Contributor have no
dataActions: reading a Key Vault secret (RBAC model) or a blob needs a data role.
"""
import re

from .util import scope_covers

_BLOB = "Microsoft.Storage/storageAccounts/blobServices/containers/blobs"
BUILTIN_ROLES = [
    ("8e3af657-a8ff-443c-a75c-2fe8c4bcb635", "Owner", "Grants full access to manage all resources, including the "
     "ability to assign roles in Azure RBAC.", ["*"], [], [], []),
    ("b24988ac-6180-42a0-ab88-20f7382dd24c", "Contributor", "Grants full access to manage all resources, but does "
     "not allow you to assign roles in Azure RBAC.", ["*"],
     ["Microsoft.Authorization/*/Delete", "Microsoft.Authorization/*/Write", "Microsoft.Authorization/elevateAccess/Action",
      "Microsoft.Blueprint/blueprintAssignments/write", "Microsoft.Blueprint/blueprintAssignments/delete",
      "Microsoft.Compute/galleries/share/action", "Microsoft.Purview/consents/write", "Microsoft.Purview/consents/delete",
      "Microsoft.Resources/deploymentStacks/manageDenySetting/action", "Microsoft.Subscription/cancel/action",
      "Microsoft.Subscription/enable/action"], [], []),
    ("acdd72a7-3385-48ef-bd42-f606fba81ae7", "Reader", "View all resources, but does not allow you to make any "
     "changes.", ["*/read"], [], [], []),
    ("18d7d88d-d35e-4fb5-a5c3-7773c20a72d9", "User Access Administrator", "Lets you manage user access to Azure "
     "resources.", ["*/read", "Microsoft.Authorization/*", "Microsoft.Support/*"], [], [], []),
    ("00c29273-979b-4161-815c-10b084fb9324", "Backup Operator", "Lets you manage backup services, except removal "
     "of backup, vault creation and giving access to others",
     ["Microsoft.Authorization/*/read", "Microsoft.DataProtection/backupVaults/read",
      "Microsoft.DataProtection/backupVaults/*/read", "Microsoft.DataProtection/locations/*/read",
      "Microsoft.DataProtection/backupVaults/backupInstances/backup/action",
      "Microsoft.DataProtection/backupVaults/backupInstances/validateRestore/action",
      "Microsoft.DataProtection/backupVaults/backupInstances/restore/action",
      "Microsoft.DataProtection/backupVaults/backupInstances/findRestorableTimeRanges/action",
      "Microsoft.Resources/subscriptions/resourceGroups/read", "Microsoft.Support/*"], [], [], []),
    ("5e467623-bb1f-42f4-a55d-6e525e11384b", "Backup Contributor", "Lets you manage backup service, but can't "
     "create vaults and give access to others",
     ["Microsoft.Authorization/*/read", "Microsoft.DataProtection/*", "Microsoft.Resources/subscriptions/resourceGroups/read",
      "Microsoft.Support/*"], [], [], []),
    ("4633458b-17de-408a-b874-0445c86b69e6", "Key Vault Secrets User", "Read secret contents. Only works for key "
     "vaults that use the 'Azure role-based access control' permission model.", [], [],
     ["Microsoft.KeyVault/vaults/secrets/getSecret/action", "Microsoft.KeyVault/vaults/secrets/readMetadata/action"], []),
    ("b86a8fe4-44ce-4948-aee5-eccb2c155cd7", "Key Vault Secrets Officer", "Perform any action on the secrets of a "
     "key vault, except manage permissions.",
     ["Microsoft.Authorization/*/read", "Microsoft.Resources/deployments/*",
      "Microsoft.Resources/subscriptions/resourceGroups/read", "Microsoft.Support/*",
      "Microsoft.KeyVault/checkNameAvailability/read", "Microsoft.KeyVault/deletedVaults/read",
      "Microsoft.KeyVault/locations/*/read", "Microsoft.KeyVault/vaults/*/read", "Microsoft.KeyVault/operations/read"],
     [], ["Microsoft.KeyVault/vaults/secrets/*"], []),
    ("00482a5a-887f-4fb3-b363-3b7fe8e74483", "Key Vault Administrator", "Perform all data plane operations on a key "
     "vault and all objects in it.", ["Microsoft.Authorization/*/read", "Microsoft.KeyVault/checkNameAvailability/read",
                                      "Microsoft.KeyVault/vaults/*/read", "Microsoft.KeyVault/operations/read"],
     [], ["Microsoft.KeyVault/vaults/*"], []),
    ("21090545-7ca7-4776-b22c-e363652d74d2", "Key Vault Reader", "Read metadata of key vaults and its "
     "certificates, keys, and secrets.", ["Microsoft.Authorization/*/read", "Microsoft.KeyVault/vaults/*/read",
                                          "Microsoft.KeyVault/operations/read"],
     [], ["Microsoft.KeyVault/vaults/*/read", "Microsoft.KeyVault/vaults/secrets/readMetadata/action"], []),
    ("ba92f5b4-2d11-453d-a403-e96b0029c9fe", "Storage Blob Data Contributor", "Allows for read, write and delete "
     "access to Azure Storage blob containers and data",
     ["Microsoft.Storage/storageAccounts/blobServices/containers/delete",
      "Microsoft.Storage/storageAccounts/blobServices/containers/read",
      "Microsoft.Storage/storageAccounts/blobServices/containers/write",
      "Microsoft.Storage/storageAccounts/blobServices/generateUserDelegationKey/action"], [],
     [_BLOB + "/delete", _BLOB + "/read", _BLOB + "/write", _BLOB + "/move/action", _BLOB + "/add/action"], []),
    ("2a2b9908-6ea1-4ae2-8e65-a410df84e7d1", "Storage Blob Data Reader", "Allows for read access to Azure Storage "
     "blob containers and data", ["Microsoft.Storage/storageAccounts/blobServices/containers/read",
                                  "Microsoft.Storage/storageAccounts/blobServices/generateUserDelegationKey/action"],
     [], [_BLOB + "/read"], []),
    ("b7e6dc6d-f1e8-4753-8033-0f276bb0955b", "Storage Blob Data Owner", "Allows for full access to Azure Storage "
     "blob containers and data, including assigning POSIX access control.",
     ["Microsoft.Storage/storageAccounts/blobServices/containers/*",
      "Microsoft.Storage/storageAccounts/blobServices/generateUserDelegationKey/action"], [], [_BLOB + "/*"], []),
    ("c088a766-074b-43ba-90d4-1fb21feae531", "PostgreSQL Flexible Server Long Term Retention Backup Role",
     "Role to allow backup vault to access PostgreSQL Flexible Server Resource APIs for Long Term Retention Backup.",
     ["Microsoft.DBforPostgreSQL/flexibleServers/ltrBackupOperations/read",
      "Microsoft.DBforPostgreSQL/flexibleServers/ltrPreBackup/action",
      "Microsoft.DBforPostgreSQL/flexibleServers/startLtrBackup/action",
      "Microsoft.DBforPostgreSQL/flexibleServers/read"], [], [], []),
]

ROLES_BY_GUID = {}
ROLES_BY_NAME = {}
for _guid, _name, _desc, _a, _na, _da, _nda in BUILTIN_ROLES:
    ROLES_BY_GUID[_guid] = {"guid": _guid, "name": _name, "description": _desc, "actions": _a, "notActions": _na,
                            "dataActions": _da, "notDataActions": _nda}
    ROLES_BY_NAME[_name.lower()] = ROLES_BY_GUID[_guid]

_pattern_cache = {}


def _matches(patterns, action):
    for pat in patterns:
        rx = _pattern_cache.get(pat)
        if rx is None:
            rx = _pattern_cache[pat] = re.compile("^" + ".*".join(re.escape(p) for p in pat.split("*")) + "$", re.I)
        if rx.match(action):
            return True
    return False


def role_allows(role, action, data=False):
    allow, deny = (role["dataActions"], role["notDataActions"]) if data else (role["actions"], role["notActions"])
    return _matches(allow, action) and not _matches(deny, action)


def role_guid_from_id(role_definition_id):
    return str(role_definition_id).rstrip("/").split("/")[-1].lower()


def has_permission(assignments, principal_id, action, scope, data=False):
    """True when one of `principal_id`'s assignments at `scope` or above allows `action`."""
    pid = str(principal_id).lower()
    for ra in assignments:
        if ra["principalId"].lower() != pid or not scope_covers(ra["scope"], scope):
            continue
        role = ROLES_BY_GUID.get(role_guid_from_id(ra["roleDefinitionId"]))
        if role and role_allows(role, action, data):
            return True
    return False
