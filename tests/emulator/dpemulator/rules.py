"""What the service checks on validateRestore and restore (reference §2, §5, §6, §7).

Two layers, as the service has them:
- parse_*: the request body against the spec schema.  Violations are synchronous 400s; the emulator is
  deliberately strict (unknown fields, wrong casing, missing discriminators) so that client bugs show.
- evaluate(): the rules about the world (versions, existing database, the vault identity's permissions,
  the secret, the credentials, the archive tier).  Violations are UserError -> a Failed operation with a
  UserFacingError, exactly like the service's asynchronous validation.
"""
import re
from urllib.parse import urlsplit

from . import postgres as pg
from .errors import UserError, bad_request
from .roles import has_permission
from .util import norm_id, now, version_key
from .world import DB_TYPE, FLEXIBLE

POINT_BASED = "AzureBackupRecoveryPointBasedRestoreRequest"
REHYDRATION = "AzureBackupRestoreWithRehydrationRequest"
TIME_BASED = "AzureBackupRecoveryTimeBasedRestoreRequest"
DATASTORES = ("ArchiveStore", "SnapshotStore", "OperationalStore", "VaultStore")

# Codes the reference does not confirm (emulator-chosen; README "Error codes").
CODE_ARCHIVE_NEEDS_REHYDRATION = "UserErrorRecoveryPointNotInVaultStore"
CODE_NOT_IN_DATASTORE = "UserErrorRecoveryPointNotInDataStore"
CODE_RP_NOT_FOUND = "UserErrorRecoveryPointNotFound"
CODE_FLEX_FILES_ONLY = "UserErrorRestoreAsDatabaseNotSupported"
CODE_RESTORE_FAILED = "UserErrorRestoreFailed"

_REQUEST_KEYS = {"objectType", "recoveryPointId", "sourceDataStoreType", "restoreTargetInfo", "sourceResourceId",
                 "resourceGuardOperationRequests", "identityDetails", "rehydrationPriority",
                 "rehydrationRetentionDuration"}
_TARGET_KEYS = {"RestoreTargetInfo": {"objectType", "recoveryOption", "restoreLocation", "datasourceInfo",
                                      "datasourceSetInfo", "datasourceAuthCredentials"},
                "RestoreFilesTargetInfo": {"objectType", "recoveryOption", "restoreLocation", "targetDetails"}}
_DATASOURCE_KEYS = {"datasourceType", "objectType", "resourceID", "resourceLocation", "resourceName", "resourceType",
                    "resourceUri", "resourceProperties"}


def _obj(value, where):
    if not isinstance(value, dict):
        raise bad_request("%s must be a JSON object." % where, target=where)
    return value


def _str(d, key, where, required=True):
    value = d.get(key)
    if value is None or value == "":
        if required:
            raise bad_request("%s.%s is required." % (where, key), target="%s.%s" % (where, key))
        return None
    if not isinstance(value, str):
        raise bad_request("%s.%s must be a string." % (where, key), target="%s.%s" % (where, key))
    return value


def _unknown(d, allowed, where):
    extra = sorted(k for k in d if k not in allowed)
    if extra:
        hint = ""
        lower = {a.lower(): a for a in allowed}
        for k in extra:
            if k.lower() in lower:
                hint = " Did you mean '%s' (property names are case-sensitive here)?" % lower[k.lower()]
            elif k.replace("_", "").lower() in lower:
                hint = " Did you mean '%s' (camelCase)?" % lower[k.replace("_", "").lower()]
        raise bad_request("%s has unknown properties %s.%s Allowed: %s." % (where, extra, hint, sorted(allowed)),
                          target=where)


def parse_validate_body(body):
    _obj(body, "ValidateRestoreRequestObject")
    _unknown(body, {"restoreRequestObject"}, "ValidateRestoreRequestObject")
    if "restoreRequestObject" not in body:
        raise bad_request("ValidateRestoreRequestObject.restoreRequestObject is required.")
    return parse_restore_request(body["restoreRequestObject"], "restoreRequestObject")


def parse_restore_request(r, where="AzureBackupRestoreRequest"):
    _obj(r, where)
    otype = _str(r, "objectType", where)
    if otype == TIME_BASED:
        raise bad_request("%s is not supported for Azure Database for PostgreSQL: use %s." % (TIME_BASED, POINT_BASED))
    if otype not in (POINT_BASED, REHYDRATION):
        raise bad_request("%s.objectType '%s' is not one of %s." % (where, otype, [POINT_BASED, REHYDRATION, TIME_BASED]))
    _unknown(r, _REQUEST_KEYS, where)
    spec = {"objectType": otype, "recoveryPointId": _str(r, "recoveryPointId", where),
            "sourceDataStoreType": _str(r, "sourceDataStoreType", where),
            "sourceResourceId": _str(r, "sourceResourceId", where, required=False), "rehydration": None}
    if spec["sourceDataStoreType"] not in DATASTORES:
        raise bad_request("%s.sourceDataStoreType '%s' is not one of %s." % (where, spec["sourceDataStoreType"],
                                                                            list(DATASTORES)))
    if otype == REHYDRATION:
        prio = _str(r, "rehydrationPriority", where)
        if prio not in ("High", "Standard"):
            raise bad_request("%s.rehydrationPriority must be 'High' or 'Standard'." % where)
        dur = _str(r, "rehydrationRetentionDuration", where)
        m = re.fullmatch(r"P(\d+)D", dur)
        if not m:
            raise bad_request("%s.rehydrationRetentionDuration must be an ISO 8601 duration in days like 'P15D'."
                              % where)
        days = int(m.group(1))
        if not 10 <= days <= 30:
            raise bad_request("%s.rehydrationRetentionDuration must be between P10D and P30D (got %s)." % (where, dur))
        spec["rehydration"] = {"priority": prio, "retention_days": days}
    else:
        for k in ("rehydrationPriority", "rehydrationRetentionDuration"):
            if k in r:
                raise bad_request("%s.%s is only valid with objectType %s." % (where, k, REHYDRATION))
    ident = r.get("identityDetails")
    spec["identity"] = None
    if ident is not None:
        _obj(ident, where + ".identityDetails")
        _unknown(ident, {"useSystemAssignedIdentity", "userAssignedIdentityArmUrl"}, where + ".identityDetails")
        if ident.get("useSystemAssignedIdentity") is False or ident.get("userAssignedIdentityArmUrl"):
            spec["identity"] = _str(ident, "userAssignedIdentityArmUrl", where + ".identityDetails")
    spec["target"] = _parse_target(r.get("restoreTargetInfo"), where + ".restoreTargetInfo")
    return spec


def _parse_target(t, where):
    if t is None:
        raise bad_request("%s is required." % where)
    _obj(t, where)
    otype = _str(t, "objectType", where)
    if otype == "ItemLevelRestoreTargetInfo":
        raise bad_request("ItemLevelRestoreTargetInfo is not supported for Azure Database for PostgreSQL.")
    if otype not in _TARGET_KEYS:
        raise bad_request("%s.objectType '%s' is not one of ['RestoreTargetInfo', 'RestoreFilesTargetInfo', "
                          "'ItemLevelRestoreTargetInfo'] (discriminators are case-sensitive)." % (where, otype))
    for wrong, right in (("dataSourceInfo", "datasourceInfo"), ("dataSourceSetInfo", "datasourceSetInfo")):
        if wrong in t:
            raise bad_request("%s.%s: inside restoreTargetInfo the property is '%s' (lower-case 's'); '%s' is the "
                              "BackupInstance spelling." % (where, wrong, right, wrong))
    _unknown(t, _TARGET_KEYS[otype], where)
    if t.get("recoveryOption") != "FailIfExists":
        raise bad_request("%s.recoveryOption must be 'FailIfExists'." % where)
    target = {"objectType": otype, "restoreLocation": _str(t, "restoreLocation", where, required=False)}
    if otype == "RestoreTargetInfo":
        ds = _obj(t.get("datasourceInfo"), where + ".datasourceInfo") if "datasourceInfo" in t else None
        if ds is None:
            raise bad_request("%s.datasourceInfo is required." % where)
        _unknown(ds, _DATASOURCE_KEYS, where + ".datasourceInfo")
        target["resource_id"] = _str(ds, "resourceID", where + ".datasourceInfo")
        for key in ("datasourceType", "resourceType"):
            if ds.get(key) not in (None, DB_TYPE):
                raise bad_request("%s.datasourceInfo.%s must be '%s'." % (where, key, DB_TYPE))
        target["resource_name"] = ds.get("resourceName")
        dss = t.get("datasourceSetInfo")
        target["set_id"] = None
        if dss is not None:
            _obj(dss, where + ".datasourceSetInfo")
            _unknown(dss, _DATASOURCE_KEYS, where + ".datasourceSetInfo")
            target["set_id"] = _str(dss, "resourceID", where + ".datasourceSetInfo")
        cred = t.get("datasourceAuthCredentials")
        target["secret_uri"] = None
        if cred is not None:
            w = where + ".datasourceAuthCredentials"
            _obj(cred, w)
            _unknown(cred, {"objectType", "secretStoreResource"}, w)
            if cred.get("objectType") != "SecretStoreBasedAuthCredentials":
                raise bad_request("%s.objectType must be 'SecretStoreBasedAuthCredentials'." % w)
            store = _obj(cred.get("secretStoreResource"), w + ".secretStoreResource")
            _unknown(store, {"secretStoreType", "uri", "value"}, w + ".secretStoreResource")
            if store.get("secretStoreType") != "AzureKeyVault":
                raise bad_request("%s.secretStoreResource.secretStoreType must be 'AzureKeyVault'." % w)
            if store.get("value") is not None:
                # The spec allows it; the emulator refuses it so that a client leaking secrets is caught.
                raise bad_request("%s.secretStoreResource.value must not be sent: give the secret uri only." % w)
            target["secret_uri"] = _str(store, "uri", w + ".secretStoreResource")
    else:
        td = _obj(t.get("targetDetails"), where + ".targetDetails") if "targetDetails" in t else None
        if td is None:
            raise bad_request("%s.targetDetails is required." % where)
        w = where + ".targetDetails"
        _unknown(td, {"url", "filePrefix", "restoreTargetLocationType", "targetResourceArmId"}, w)
        target["url"] = _str(td, "url", w)
        target["prefix"] = _str(td, "filePrefix", w)
        loc_type = _str(td, "restoreTargetLocationType", w)
        if loc_type not in ("AzureBlobs", "AzureFiles", "Invalid"):
            raise bad_request("%s.restoreTargetLocationType must be 'AzureBlobs'." % w)
        if loc_type != "AzureBlobs":
            raise bad_request("%s.restoreTargetLocationType '%s' is not supported for PostgreSQL: use 'AzureBlobs'."
                              % (w, loc_type))
        target["container_arm_id"] = _str(td, "targetResourceArmId", w, required=False)
        if re.search(r"[\\\x00-\x1f]", target["prefix"]) or target["prefix"].endswith((".", "/")):
            raise bad_request("%s.filePrefix '%s' is not a valid blob name prefix." % (w, target["prefix"]))
    return target


# ------------------------------------------------------------------------------------------- helpers

def parse_server_db_id(resource_id):
    """'/subscriptions/s/resourceGroups/rg/providers/Microsoft.DBforPostgreSQL/<servers|flexibleServers>/x
    /databases/db' -> (sub, rg, server type, server, db)."""
    m = re.fullmatch(r"/subscriptions/([^/]+)/resourceGroups/([^/]+)/providers/Microsoft\.DBforPostgreSQL/"
                     r"(servers|flexibleServers)/([^/]+)/databases/([^/]+)/?", resource_id or "", re.I)
    if not m:
        return None
    return m.group(1), m.group(2), m.group(3), m.group(4), m.group(5)


def parse_secret_uri(uri):
    """https://<kv>.vault.azure.net/secrets/<name>[/<ver>] or the emulator's path style
    https://127.0.0.1:PORT/keyvaults/<kv>/secrets/<name>[/<ver>] -> (kv, name, version) or None."""
    parts = urlsplit(uri or "")
    if parts.scheme != "https":
        return None
    host = (parts.hostname or "").lower()
    m = re.fullmatch(r"/keyvaults/([^/]+)/secrets/([^/]+)(?:/([^/]+))?/?", parts.path)
    if m:
        return m.group(1).lower(), m.group(2), m.group(3)
    m = re.fullmatch(r"/secrets/([^/]+)(?:/([^/]+))?/?", parts.path)
    if m and host.endswith(".vault.azure.net"):
        return host[: -len(".vault.azure.net")], m.group(1), m.group(2)
    return None


def parse_container_url(url):
    """https://127.0.0.1:P/blob/<acct>/<c> (path style) or https://<acct>.blob.core.windows.net/<c>."""
    parts = urlsplit(url or "")
    if parts.scheme != "https":
        return None
    segs = [s for s in parts.path.split("/") if s]
    host = (parts.hostname or "").lower()
    if host.endswith(".blob.core.windows.net") and len(segs) == 1:
        return host.split(".")[0], segs[0]
    if len(segs) == 2 and segs[0] == "blob":
        return None
    if len(segs) == 3 and segs[0] == "blob":
        return segs[1].lower(), segs[2]
    return None


def container_of(app, url):
    """(account, container) of a container URL of the emulator's /blob/ plane, of Azure's form, or of Azurite's
    (path style https://127.0.0.1:<azurite port>/<account>/<container>)."""
    if app.azurite.serves(url):
        segs = [s for s in urlsplit(url).path.split("/") if s]
        return (segs[0].lower(), segs[1]) if len(segs) == 2 else None
    return parse_container_url(url)


def _identity_principal(app, bi, spec):
    vault = app.world.vaults[norm_id(bi["vault_id"])]
    if not spec.get("identity"):
        return vault["principal_id"]
    for p in app.world.principals.values():
        if p.get("resource_id") and norm_id(p["resource_id"]) == norm_id(spec["identity"]):
            return p["object_id"]
    raise bad_request("identityDetails.userAssignedIdentityArmUrl '%s' is not an identity of this vault."
                      % spec["identity"])


def check_sync(app, bi, spec):
    """Body rules that need the backup instance; still synchronous 400s."""
    if spec["sourceResourceId"] and norm_id(spec["sourceResourceId"]) != norm_id(bi["datasource_id"]):
        raise bad_request("sourceResourceId '%s' is not the datasource of backup instance '%s' (%s)."
                          % (spec["sourceResourceId"], bi["name"], bi["datasource_id"]))
    t = spec["target"]
    if t["objectType"] == "RestoreTargetInfo":
        parsed = parse_server_db_id(t["resource_id"])
        if parsed is None:
            raise bad_request("restoreTargetInfo.datasourceInfo.resourceID must be the ARM id of the new database: "
                              "/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.DBforPostgreSQL/servers/"
                              "{server}/databases/{database}.")
        if t.get("resource_name") and t["resource_name"] != parsed[4]:
            raise bad_request("restoreTargetInfo.datasourceInfo.resourceName '%s' differs from the database in its "
                              "resourceID ('%s')." % (t["resource_name"], parsed[4]))
        server_id = t["resource_id"].rsplit("/databases/", 1)[0]
        if t["set_id"] and norm_id(t["set_id"]) != norm_id(server_id):
            raise bad_request("restoreTargetInfo.datasourceSetInfo.resourceID must be the target server (%s)."
                              % server_id)
        if t["secret_uri"] and parse_secret_uri(t["secret_uri"]) is None:
            raise bad_request("datasourceAuthCredentials.secretStoreResource.uri '%s' is not a Key Vault secret "
                              "identifier (https://<vault>.vault.azure.net/secrets/<name>[/<version>])."
                              % t["secret_uri"])
    else:
        if container_of(app, t["url"]) is None:
            raise bad_request("restoreTargetInfo.targetDetails.url '%s' is not a blob container URL." % t["url"])
    _identity_principal(app, bi, spec)


# ------------------------------------------------------------------------------------------- evaluation

def point_availability(rp, when=None):
    """(vault_ok, archive_ok): is the point readable from VaultStore (incl. a live rehydrated copy)?"""
    when = when or now()
    vault_ok = archive_ok = False
    for store in rp["stores"]:
        if store["type"] == "VaultStore":
            status, exp = store.get("rehydration_status"), store.get("rehydration_expiry")
            live = status is None or (status == "COMPLETED" and (exp is None or exp > when))
            vault_ok = vault_ok or live
        elif store["type"] == "ArchiveStore":
            archive_ok = True
    return vault_ok, archive_ok


def evaluate(app, bi, spec):
    """All world rules; returns the restore plan or raises UserError."""
    world = app.world
    principal = _identity_principal(app, bi, spec)
    src_server = world.servers[bi["server"]]
    t = spec["target"]
    if t["objectType"] == "RestoreTargetInfo" and src_server["kind"] == FLEXIBLE:
        raise UserError(CODE_FLEX_FILES_ONLY, "Azure Database for PostgreSQL flexible server backups can only be "
                        "restored as files.", "Restore as files (RestoreFilesTargetInfo) to a blob container and "
                        "rebuild the databases with pg_restore.")
    rp = app.state.data["recovery_points"].get(norm_id(bi["id"]), {}).get(spec["recoveryPointId"])
    if rp is None:
        raise UserError(CODE_RP_NOT_FOUND, "Recovery point '%s' was not found in backup instance '%s'."
                        % (spec["recoveryPointId"], bi["name"]), "List the recovery points and pick an existing one.")
    vault_ok, archive_ok = point_availability(rp)
    store = spec["sourceDataStoreType"]
    if store == "VaultStore" and not vault_ok:
        if archive_ok:
            raise UserError(CODE_ARCHIVE_NEEDS_REHYDRATION, "The recovery point '%s' is in the archive tier only and "
                            "must be rehydrated before it can be restored." % rp["id"],
                            "Restore from ArchiveStore with an AzureBackupRestoreWithRehydrationRequest "
                            "(rehydrationPriority and rehydrationRetentionDuration).")
        raise UserError(CODE_NOT_IN_DATASTORE, "The recovery point is not available in VaultStore.")
    if store == "ArchiveStore":
        if not archive_ok:
            raise UserError(CODE_NOT_IN_DATASTORE, "The recovery point '%s' is not in the archive tier." % rp["id"],
                            "Restore it from VaultStore.")
        if spec["rehydration"] is None:
            raise UserError(CODE_ARCHIVE_NEEDS_REHYDRATION, "Restoring from ArchiveStore needs rehydration.",
                            "Use objectType AzureBackupRestoreWithRehydrationRequest with rehydrationPriority "
                            "and rehydrationRetentionDuration.")
    if store in ("OperationalStore", "SnapshotStore"):
        raise UserError(CODE_NOT_IN_DATASTORE, "Azure Database for PostgreSQL points are not in %s." % store)
    plan = {"rp_id": rp["id"], "rp_time": rp["time"], "source_store": store, "rehydration": spec["rehydration"]
            if store == "ArchiveStore" else None, "principal": principal}
    if t["objectType"] == "RestoreTargetInfo":
        plan.update(_evaluate_database(app, bi, t, principal, src_server))
    else:
        plan.update(_evaluate_files(app, t, principal))
        plan["per_database"] = src_server["kind"] == FLEXIBLE
    return plan


def _evaluate_database(app, bi, t, principal, src_server):
    world = app.world
    sub, rg, stype, sname, db = parse_server_db_id(t["resource_id"])
    target = world.servers.get(sname.lower())
    if target is None or target["subscription"] != sub.lower() or target["resource_group"].lower() != rg.lower():
        raise UserError("UserErrorDBNotFound", "The target server '%s' was not found." % sname,
                        "Check the target server's ARM id.")
    if stype.lower() == "flexibleservers" or target["kind"] == FLEXIBLE:
        raise UserError(CODE_FLEX_FILES_ONLY, "Restoring as a database onto a flexible server is not supported; "
                        "restore as files.", "Restore as files and use pg_restore against the flexible server.")
    assignments = list(app.state.data["role_assignments"].values())
    if not has_permission(assignments, principal, "Microsoft.DBforPostgreSQL/servers/read", target["id"]):
        raise UserError("UserErrorMSIMissingPermissions", "The Backup vault's managed identity is missing "
                        "permissions on the target server '%s'." % target["name"],
                        "Assign the Reader role on the target PostgreSQL server to the Backup vault's managed "
                        "identity, then retry. Role assignments can take a few minutes to take effect.",
                        is_retryable=True)
    if not t["secret_uri"]:
        raise bad_request("restoreTargetInfo.datasourceAuthCredentials is required to restore as a database.")
    kv_name, secret_name, version = parse_secret_uri(t["secret_uri"])
    kv = world.key_vaults.get(kv_name)
    if kv is None:
        raise UserError("UserErrorInvalidSecretStore", "The key vault '%s' does not exist or cannot be reached."
                        % kv_name, "Give the secret identifier of an existing key vault that allows trusted Microsoft "
                        "services.")
    if not app.keyvault.identity_can_read(kv, principal, secret_name):
        raise UserError("UserErrorMissingPermissionsOnSecretStore", "The Backup vault's managed identity has no "
                        "access to the secrets of key vault '%s'." % kv["name"],
                        "Assign 'Key Vault Secrets User' (RBAC key vault) or an access policy with secret Get and "
                        "List permissions (access-policy key vault) to the Backup vault's managed identity.",
                        is_retryable=True)
    value = app.keyvault.secret_value(kv["name"], secret_name, version)
    if value is None:
        raise UserError("UserErrorInvalidSecret", "The secret '%s' was not found in key vault '%s'."
                        % (secret_name, kv["name"]), "Create the secret or fix the secret identifier.")
    conn = resolve_connection(app, value, target)
    if version_key(target["version"]) < version_key(src_server["version"]):
        raise UserError("UserErrorRestoreToLowerVersion", "The target server version (%s) is lower than the "
                        "source server version (%s)." % (target["version"], src_server["version"]),
                        "Restore to a server with the same or a higher PostgreSQL version.")
    server = app.clusters.server(target["name"])
    try:
        exists = pg.database_exists(server, db)
    except pg.PgError as exc:
        raise UserError("UserErrorServerConnectionClosed", "Could not reach the target server: %s" % exc,
                        is_retryable=True)
    if exists:
        raise UserError("UserErrorDatabaseNameAlreadyInUse", "A database named '%s' already exists on the target "
                        "server '%s'." % (db, target["name"]), "Give a new database name or drop the existing one.")
    try:
        pg.check_login(conn["host"], conn["port"], conn["user"], conn["password"], "postgres", conn["ssl_mode"])
        can_create = pg.user_can_create_db(conn["host"], conn["port"], conn["user"], conn["password"])
    except pg.LoginFailed:
        raise UserError("UserErrorDBUserAuthFailed", "The database user in the secret could not log in to the "
                        "target server '%s'." % target["name"], "Update the user name and password in the key "
                        "vault secret.")
    except pg.PgError as exc:
        raise UserError("UserErrorServerConnectionClosed", "The target server closed the connection: %s"
                        % exc, "Retry the operation.", is_retryable=True)
    if not can_create:
        raise UserError("UserErrorMissingDBPermissions", "The database user in the secret lacks the CREATEDB "
                        "privilege on server '%s'." % target["name"],
                        "Grant CREATEDB (and azure_pg_admin) to the user of the secret.")
    return {"kind": "database", "server": target["name"].lower(), "database": db,
            "secret": {"kv": kv["name"].lower(), "name": secret_name, "version": version},
            "destination": "%s/databases/%s" % (target["id"], db)}


def resolve_connection(app, value, target):
    """Parse the ADO.NET secret and map the Azure host name to the target's local cluster."""
    try:
        conn = pg.parse_ado_connection_string(value)
    except ValueError as exc:
        raise UserError("UserErrorSecretValueInUnsupportedFormat", "The secret value is not a supported connection "
                        "string: %s" % exc, "Store the server's ADO.NET connection string with the user id and "
                        "password filled in.")
    named = app.world.server_by_host(conn["host"])
    local = app.clusters.server(target["name"])
    is_local = conn["host"] in ("127.0.0.1", "localhost") and int(conn["port"]) == local.port
    if not is_local and (named is None or named["name"].lower() != target["name"].lower()):
        raise UserError("UserErrorSecretValueInUnsupportedFormat", "The connection string names server '%s', but "
                        "the restore target is '%s'." % (conn["host"], target["name"]),
                        "Store the connection string of the target server (%s.postgres.database.azure.com)."
                        % target["name"])
    conn["host"], conn["port"] = local.host, local.port
    return conn


def _evaluate_files(app, t, principal):
    acct_name, container = container_of(app, t["url"])
    acct = app.world.storage_accounts.get(acct_name)
    if acct is None or container not in app.storage.containers(acct["name"]):
        raise UserError("UserErrorContainerNotAccessible", "The container '%s' of storage account '%s' was not found "
                        "or is not accessible." % (container, acct_name), "Check the container URL.")
    container_id = "%s/blobServices/default/containers/%s" % (acct["id"], container)
    if t.get("container_arm_id") and norm_id(t["container_arm_id"]) != norm_id(container_id):
        raise bad_request("targetDetails.targetResourceArmId '%s' is not the container of url '%s'."
                          % (t["container_arm_id"], t["url"]))
    assignments = list(app.state.data["role_assignments"].values())
    if not has_permission(assignments, principal,
                          "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/write", container_id,
                          data=True):
        raise UserError("UserErrorContainerNotAccessible", "The Backup vault's managed identity cannot write to "
                        "container '%s' of storage account '%s'." % (container, acct["name"]),
                        "Assign 'Storage Blob Data Contributor' on the storage account (or container) to the "
                        "Backup vault's managed identity.", is_retryable=True)
    return {"kind": "files", "account": acct["name"].lower(), "container": container, "prefix": t["prefix"],
            "destination": "%s/%s" % (t["url"].rstrip("/"), t["prefix"])}
