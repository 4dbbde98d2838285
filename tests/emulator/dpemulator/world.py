"""The world file: the Azure estate the emulator pretends to host (see README.md, "World file").

The world is static configuration (subscriptions, servers, principals, key vaults, storage accounts);
what changes at run time (secrets, role assignments, access policies, backup instances, points, jobs)
is seeded from it into the state once, on the first start, and lives in state.json afterwards.
"""
import os
import uuid

import yaml

from .util import norm_id

NS = uuid.UUID("5d1c7c55-8a0e-4a8e-9b61-3d7f0f3f6c10")   # deterministic GUIDs for generated names

SINGLE = "single"
FLEXIBLE = "flexible"
SINGLE_TYPE = "Microsoft.DBforPostgreSQL/servers"
FLEX_TYPE = "Microsoft.DBforPostgreSQL/flexibleServers"
DB_TYPE = "Microsoft.DBforPostgreSQL/servers/databases"

# Azure's paired regions (a few): a geo-redundant vault replicates to its pair, the secondary region of
# cross-region restore. The world file can name another one (secondary_location).
PAIRED_REGIONS = {"westeurope": "northeurope", "northeurope": "westeurope", "eastus": "westus", "westus": "eastus",
                  "eastus2": "centralus", "centralus": "eastus2", "uksouth": "ukwest", "ukwest": "uksouth"}


class WorldError(ValueError):
    pass


def _req(obj, key, where):
    if key not in obj or obj[key] in (None, ""):
        raise WorldError("world: %s needs %r" % (where, key))
    return obj[key]


def rg_id(sub, rg):
    return "/subscriptions/%s/resourceGroups/%s" % (sub, rg)


class World:
    def __init__(self, doc, path=None):
        if not isinstance(doc, dict):
            raise WorldError("world: the file must be a YAML mapping")
        self.path = path
        self.tenant_id = _req(doc, "tenant_id", "the top level")
        self.location = doc.get("location", "westeurope")
        self.cloud_name = doc.get("cloud_name", "AzureEmulator")
        subs = doc.get("subscriptions") or []
        if not subs:
            raise WorldError("world: at least one subscription is needed")
        self.subscriptions = {}
        for s in subs:
            sid = _req(s, "id", "a subscription").lower()
            self.subscriptions[sid] = {"id": sid, "name": s.get("name", sid)}
        self.default_subscription = subs[0]["id"].lower()
        self.resource_groups = {}
        for rg in doc.get("resource_groups") or []:
            sub = (rg.get("subscription") or self.default_subscription).lower()
            name = _req(rg, "name", "a resource group")
            self.resource_groups[(sub, name.lower())] = {"name": name, "subscription": sub,
                                                          "location": rg.get("location", self.location)}
        self._load_principals(doc)
        self._load_resources(doc)
        for ap in doc.get("access_policies") or []:
            kv = self.key_vaults.get(str(_req(ap, "key_vault", "an access policy")).lower())
            if kv is None:
                raise WorldError("world: access policy for unknown key vault %r" % ap["key_vault"])
            kv["access_policies"].append(self._policy(ap))
        for sec in doc.get("key_vault_secrets") or []:
            kv = self.key_vaults.get(str(_req(sec, "key_vault", "a secret")).lower())
            if kv is None:
                raise WorldError("world: secret for unknown key vault %r" % sec["key_vault"])
            kv["secrets"].append(sec)
        self.initial_role_assignments = [self._role_assignment(r) for r in doc.get("role_assignments") or []]
        self._load_backup_instances(doc)

    # ---------------------------------------------------------------- helpers
    def _rg(self, obj, where):
        sub = (obj.get("subscription") or self.default_subscription).lower()
        name = _req(obj, "resource_group", where)
        if (sub, name.lower()) not in self.resource_groups:
            self.resource_groups[(sub, name.lower())] = {"name": name, "subscription": sub, "location": self.location}
        return sub, self.resource_groups[(sub, name.lower())]["name"]

    def _load_principals(self, doc):
        self.principals = {}      # object id -> principal
        self.by_client_id = {}
        self.default_principal = None
        for p in doc.get("principals") or []:
            name = _req(p, "name", "a principal")
            pr = {"name": name, "object_id": _req(p, "object_id", "principal %s" % name).lower(),
                  "client_id": str(p.get("client_id") or p["object_id"]).lower(),
                  "client_secret": p.get("client_secret"),
                  "type": p.get("type", "ServicePrincipal"),
                  "managed_identity": bool(p.get("managed_identity")),
                  "resource_id": p.get("resource_id")}
            self.principals[pr["object_id"]] = pr
            self.by_client_id[pr["client_id"]] = pr
            if p.get("default") or self.default_principal is None and pr["client_secret"]:
                self.default_principal = pr
        self._load_users(doc)
        mi = doc.get("managed_identity") or {}
        self.mi_principal = None
        if mi.get("principal"):
            self.mi_principal = self.principal_by_name(mi["principal"])
            if self.mi_principal is None:
                raise WorldError("world: managed_identity.principal %r is not a declared principal" % mi["principal"])

    def _load_users(self, doc):
        """Users sign in with the password grant; like principals, they hold role assignments and access policies
        (by name). The first one, or the one marked `default`, is the one env.json names."""
        self.users = {}           # user principal name (lower case) -> user
        self.default_user = None
        for u in doc.get("users") or []:
            name = _req(u, "name", "a user")
            user = {"name": name, "object_id": _req(u, "object_id", "user %s" % name).lower(),
                    "user_principal_name": _req(u, "user_principal_name", "user %s" % name),
                    "password": str(_req(u, "password", "user %s" % name)), "client_id": None,
                    "client_secret": None, "type": "User", "managed_identity": False, "resource_id": None}
            self.principals[user["object_id"]] = user
            self.users[user["user_principal_name"].lower()] = user
            if u.get("default") or self.default_user is None:
                self.default_user = user

    def principal_by_name(self, name):
        for p in self.principals.values():
            if p["name"] == name:
                return p
        return None

    def _load_resources(self, doc):
        self.vaults = {}
        for v in doc.get("vaults") or []:
            sub, rg = self._rg(v, "a vault")
            name = _req(v, "name", "a vault")
            vid = "%s/providers/Microsoft.DataProtection/backupVaults/%s" % (rg_id(sub, rg), name)
            pid = str(_req(v, "principal_id", "vault %s" % name)).lower()
            location = v.get("location", self.location)
            crr = bool(v.get("cross_region_restore", False))
            redundancy = v.get("redundancy", "GeoRedundant" if crr else "LocallyRedundant")
            if redundancy not in ("LocallyRedundant", "GeoRedundant", "ZoneRedundant"):
                raise WorldError("world: vault %s redundancy must be LocallyRedundant, GeoRedundant or ZoneRedundant"
                                 % name)
            if crr and redundancy != "GeoRedundant":
                raise WorldError("world: vault %s: cross_region_restore needs redundancy GeoRedundant" % name)
            secondary = v.get("secondary_location") or PAIRED_REGIONS.get(location.lower())
            if redundancy == "GeoRedundant" and not secondary:
                raise WorldError("world: vault %s: no paired region known for %s: set secondary_location"
                                 % (name, location))
            self.vaults[norm_id(vid)] = {"name": name, "id": vid, "subscription": sub, "resource_group": rg,
                                         "location": location, "principal_id": pid, "redundancy": redundancy,
                                         "cross_region_restore": crr,
                                         "secondary_location": secondary if redundancy == "GeoRedundant" else None}
            self.principals.setdefault(pid, {"name": "vault:%s" % name, "object_id": pid, "client_id": pid,
                                             "client_secret": None, "type": "ServicePrincipal",
                                             "managed_identity": True, "resource_id": None})
        self.servers = {}
        for s in doc.get("postgres_servers") or []:
            sub, rg = self._rg(s, "a PostgreSQL server")
            name = _req(s, "name", "a PostgreSQL server")
            kind = s.get("kind", SINGLE)
            if kind not in (SINGLE, FLEXIBLE):
                raise WorldError("world: server %s kind must be single or flexible" % name)
            rtype = SINGLE_TYPE if kind == SINGLE else FLEX_TYPE
            self.servers[name.lower()] = {
                "name": name, "kind": kind, "type": rtype, "subscription": sub, "resource_group": rg,
                "id": "%s/providers/%s/%s" % (rg_id(sub, rg), rtype, name),
                "version": str(_req(s, "version", "server %s" % name)),
                "admin_user": _req(s, "admin_user", "server %s" % name),
                "admin_password": str(_req(s, "admin_password", "server %s" % name)),
                "location": s.get("location", self.location),
                "allow_azure_services": s.get("allow_azure_services", True),
                "databases": [{"name": _req(d, "name", "a database of %s" % name),
                               "sample_rows": int(d.get("sample_rows") or 0)} for d in s.get("databases") or []],
                "roles": s.get("roles") or [],      # extra login roles: {name, password, createdb}
                "attach": s.get("attach"),
            }
        self.key_vaults = {}
        for k in doc.get("key_vaults") or []:
            sub, rg = self._rg(k, "a key vault")
            name = _req(k, "name", "a key vault")
            self.key_vaults[name.lower()] = {
                "name": name, "subscription": sub, "resource_group": rg,
                "id": "%s/providers/Microsoft.KeyVault/vaults/%s" % (rg_id(sub, rg), name),
                "location": k.get("location", self.location),
                "rbac": bool(k.get("rbac", True)),
                "network_bypass": k.get("network_bypass", "AzureServices"),
                "public_network_access": k.get("public_network_access", "Enabled"),
                "access_policies": [self._policy(p) for p in k.get("access_policies") or []],
                "secrets": k.get("secrets") or [],
            }
        self.storage_accounts = {}
        for a in doc.get("storage_accounts") or []:
            sub, rg = self._rg(a, "a storage account")
            name = _req(a, "name", "a storage account")
            self.storage_accounts[name.lower()] = {
                "name": name, "subscription": sub, "resource_group": rg,
                "id": "%s/providers/Microsoft.Storage/storageAccounts/%s" % (rg_id(sub, rg), name),
                "location": a.get("location", self.location), "containers": list(a.get("containers") or [])}

    def _policy(self, p):
        oid = p.get("object_id")
        if p.get("principal"):
            oid = self.resolve_principal(p["principal"])
        return {"tenantId": self.tenant_id, "objectId": str(oid).lower(),
                "permissions": {"secrets": list(p.get("secrets") or []), "keys": list(p.get("keys") or []),
                                "certificates": list(p.get("certificates") or [])}}

    def resolve_principal(self, ref):
        """'name', 'vault:<vault name>' or an object id -> object id."""
        ref = str(ref)
        if ref.startswith("vault:"):
            for v in self.vaults.values():
                if v["name"].lower() == ref[6:].lower():
                    return v["principal_id"]
            raise WorldError("world: no vault %r" % ref[6:])
        p = self.principal_by_name(ref)
        if p:
            return p["object_id"]
        if ref.lower() in self.principals:
            return ref.lower()
        raise WorldError("world: unknown principal %r" % ref)

    def resolve_scope(self, ref):
        """'subscription', 'resource_group:<rg>', 'server:<n>', 'key_vault:<n>', 'storage_account:<n>',
        'container:<account>/<container>' or a literal ARM id."""
        ref = str(ref)
        if ref.startswith("/"):
            return ref
        kind, _, name = ref.partition(":")
        if kind == "subscription":
            return "/subscriptions/%s" % (name or self.default_subscription)
        if kind == "resource_group":
            for (sub, key), rg in self.resource_groups.items():
                if key == name.lower():
                    return rg_id(sub, rg["name"])
        if kind == "server" and name.lower() in self.servers:
            return self.servers[name.lower()]["id"]
        if kind == "key_vault" and name.lower() in self.key_vaults:
            return self.key_vaults[name.lower()]["id"]
        if kind == "storage_account" and name.lower() in self.storage_accounts:
            return self.storage_accounts[name.lower()]["id"]
        if kind == "container":
            acct, _, cont = name.partition("/")
            if acct.lower() in self.storage_accounts:
                return "%s/blobServices/default/containers/%s" % (self.storage_accounts[acct.lower()]["id"], cont)
        raise WorldError("world: cannot resolve scope %r" % ref)

    def _role_assignment(self, r):
        return {"principal_id": self.resolve_principal(_req(r, "principal", "a role assignment")),
                "role": _req(r, "role", "a role assignment"),
                "scope": self.resolve_scope(r.get("scope", "subscription"))}

    def _load_backup_instances(self, doc):
        self.backup_instances = []
        for b in doc.get("backup_instances") or []:
            vault = self.vault_by_name(_req(b, "vault", "a backup instance"))
            if vault is None:
                raise WorldError("world: backup instance vault %r not declared" % b["vault"])
            srv = self.servers.get(str(_req(b, "server", "a backup instance")).lower())
            if srv is None:
                raise WorldError("world: backup instance server %r not declared" % b["server"])
            db = b.get("database")
            if srv["kind"] == SINGLE and not db:
                raise WorldError("world: a single-server backup instance protects one database: set 'database'")
            if srv["kind"] == FLEXIBLE and db:
                raise WorldError("world: a flexible-server backup instance protects the whole server: no 'database'")
            guid = str(uuid.uuid5(NS, "%s|%s|%s" % (vault["id"], srv["id"], db or ""))).lower()
            name = b.get("name") or ("%s-%s-%s" % (srv["name"], db, guid) if db else "%s-%s" % (srv["name"], guid))
            self.backup_instances.append({
                "vault_id": vault["id"], "name": name, "server": srv["name"].lower(), "database": db,
                "policy": b.get("policy", "osspol"), "secret_uri": b.get("secret_uri"),
                "initial_backups": b.get("initial_backups") or [],
            })

    def vault_by_name(self, name):
        for v in self.vaults.values():
            if v["name"].lower() == str(name).lower():
                return v
        return None

    def server_by_host(self, host):
        """'<srv>.postgres.database.azure.com' (or a bare '<srv>') -> the world server."""
        host = str(host).lower().strip()
        for suffix in (".postgres.database.azure.com", ".postgres.database.windows.net"):
            if host.endswith(suffix):
                host = host[: -len(suffix)]
        return self.servers.get(host)

    def principal_type(self, oid):
        p = self.principals.get(str(oid).lower())
        return p["type"] if p else "ServicePrincipal"


def _merge(base, overlay):
    """Overlay keys win; lists are appended (so an overlay adds assignments, servers, ...)."""
    out = dict(base)
    for key, value in overlay.items():
        if key == "extends":
            continue
        if isinstance(value, list) and isinstance(out.get(key), list):
            out[key] = out[key] + value
        else:
            out[key] = value
    return out


def read_world_doc(path, depth=0):
    with open(path) as fh:
        doc = yaml.safe_load(fh) or {}
    if not isinstance(doc, dict):
        raise WorldError("world: %s must be a YAML mapping" % path)
    if doc.get("extends"):
        if depth > 5:
            raise WorldError("world: 'extends' nests too deep")
        base_path = os.path.join(os.path.dirname(os.path.abspath(path)), doc["extends"])
        doc = _merge(read_world_doc(base_path, depth + 1), doc)
    return doc


def load_world(path):
    return World(read_world_doc(path), path=os.path.abspath(path))
