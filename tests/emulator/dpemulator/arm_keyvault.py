"""Microsoft.KeyVault: the vault resource (with access policies) and the secrets data plane
(path style: https://127.0.0.1:PORT/keyvaults/<vault>/secrets/<name>[/<version>])."""
import re
import time

from . import apiversions
from .arm_common import RG, SUB, authorize, check_rg
from .errors import ApiError, not_found
from .roles import has_permission
from .server import ARM, KV, json_response
from .util import hex_id

_SECRET_NAME = re.compile(r"^[0-9a-zA-Z-]{1,127}$")
_PERMS = {"get": "Microsoft.KeyVault/vaults/secrets/getSecret/action",
          "list": "Microsoft.KeyVault/vaults/secrets/readMetadata/action",
          "set": "Microsoft.KeyVault/vaults/secrets/setSecret/action",
          "delete": "Microsoft.KeyVault/vaults/secrets/delete"}


class KeyVaultProvider:
    def __init__(self, app):
        self.app = app

    def seed(self, data):
        """First start: world access policies and secrets into the state."""
        for kv in self.app.world.key_vaults.values():
            data["access_policies"][kv["name"].lower()] = [dict(p) for p in kv["access_policies"]]
            for sec in kv["secrets"]:
                value = sec.get("value")
                if value is None and sec.get("connection") is not None:
                    value = self.app.connection_string(sec["connection"])
                self._put(data, kv["name"], sec["name"], str(value), sec.get("content_type"))

    def register(self, r):
        v = apiversions.KEYVAULT
        kv = RG + r"/providers/Microsoft\.KeyVault/vaults/(?P<name>[^/]+)"
        r.add("GET", kv, self.get_vault, ARM, "keyvault.vaults.get", v)
        r.add("GET", kv + r"/secrets/(?P<secret>[^/]+)", self.get_secret_arm, ARM, "keyvault.secrets.get", v)
        r.add("GET", RG + r"/providers/Microsoft\.KeyVault/vaults", self.list_vaults, ARM, "keyvault.vaults.list", v)
        r.add("GET", SUB + r"/providers/Microsoft\.KeyVault/vaults", self.list_vaults, ARM, "keyvault.vaults.list", v)
        for method in ("PUT", "PATCH"):
            r.add(method, kv + r"/accessPolicies/(?P<op>add|replace|remove)", self.update_policies, ARM,
                  "keyvault.accessPolicies", v)
        base = r"/keyvaults/(?P<kv>[^/]+)/secrets"
        r.add("GET", base + "/?", self.list_secrets, KV, "kv.secrets.list")
        r.add("GET", base + r"/(?P<name>[^/]+)/versions/?", self.list_versions, KV, "kv.secrets.versions")
        r.add("GET", base + r"/(?P<name>[^/]+)(?:/(?P<version>[^/]*))?/?", self.get_secret, KV, "kv.secrets.get")
        r.add("PUT", base + r"/(?P<name>[^/]+)/?", self.set_secret, KV, "kv.secrets.set")
        r.add("DELETE", base + r"/(?P<name>[^/]+)/?", self.delete_secret, KV, "kv.secrets.delete")

    # ------------------------------------------------------------------------ shared with the rules
    def policies(self, kv_name):
        return self.app.state.data["access_policies"].get(kv_name.lower(), [])

    def _policy_allows(self, kv_name, principal, perm):
        for p in self.policies(kv_name):
            if p["objectId"].lower() == str(principal).lower():
                perms = [x.lower() for x in p["permissions"].get("secrets", [])]
                if perm in perms or "all" in perms:
                    return True
        return False

    def allowed(self, kv, principal, perm, secret_name=None):
        if kv["rbac"]:
            scope = kv["id"] + ("/secrets/%s" % secret_name if secret_name else "")
            with self.app.state.lock:
                assignments = list(self.app.state.data["role_assignments"].values())
            return has_permission(assignments, principal, _PERMS[perm], scope, data=True)
        return self._policy_allows(kv["name"], principal, perm)

    def identity_can_read(self, kv, principal, secret_name):
        return self.allowed(kv, principal, "get", secret_name)

    def secret_value(self, kv_name, name, version=None):
        with self.app.state.lock:
            entry = self.app.state.data["secrets"].get(kv_name.lower(), {}).get(name.lower())
            if not entry:
                return None
            versions = entry["versions"]
            if version:
                found = [v for v in versions if v["version"] == version.lower()]
                return found[0]["value"] if found and found[0]["enabled"] else None
            live = [v for v in versions if v["enabled"]]
            return live[-1]["value"] if live else None

    def _put(self, data, kv_name, name, value, content_type=None, tags=None):
        entry = data["secrets"].setdefault(kv_name.lower(), {}).setdefault(name.lower(), {"name": name,
                                                                                          "versions": []})
        stamp = int(time.time())
        version = {"version": hex_id(), "value": value, "enabled": True, "created": stamp, "updated": stamp,
                   "content_type": content_type, "tags": tags or {}}
        entry["versions"].append(version)
        self.app.register_secret(value)
        return entry, version

    # ------------------------------------------------------------------------ resource plane
    def _kv(self, sub, rg, name):
        check_rg(self.app, sub, rg)
        kv = self.app.world.key_vaults.get(name.lower())
        if kv is None or kv["subscription"] != sub.lower() or kv["resource_group"].lower() != rg.lower():
            raise not_found("Microsoft.KeyVault/vaults", name, rg)
        return kv

    def vault_json(self, kv):
        return {
            "id": kv["id"], "name": kv["name"], "type": "Microsoft.KeyVault/vaults", "location": kv["location"],
            "tags": {},
            "properties": {
                "sku": {"family": "A", "name": "standard"}, "tenantId": self.app.world.tenant_id,
                "accessPolicies": self.policies(kv["name"]),
                "enabledForDeployment": False, "enabledForDiskEncryption": False,
                "enabledForTemplateDeployment": False, "enableSoftDelete": True, "softDeleteRetentionInDays": 90,
                "enableRbacAuthorization": kv["rbac"],
                "vaultUri": "%s/keyvaults/%s/" % (self.app.base_url, kv["name"]),
                "provisioningState": "Succeeded", "publicNetworkAccess": kv["public_network_access"],
                "networkAcls": {"bypass": kv["network_bypass"], "defaultAction": "Allow", "ipRules": [],
                                "virtualNetworkRules": []},
            },
        }

    def get_vault(self, req, sub, rg, name):
        kv = self._kv(sub, rg, name)
        authorize(self.app, req, "Microsoft.KeyVault/vaults/read", kv["id"])
        return json_response(self.vault_json(kv))

    def get_secret_arm(self, req, sub, rg, name, secret):
        """The management plane's view of a secret (Microsoft.KeyVault/vaults/secrets): its attributes and URIs,
        never its value; Reader may read it."""
        kv = self._kv(sub, rg, name)
        secret_id = "%s/secrets/%s" % (kv["id"], secret)
        authorize(self.app, req, "Microsoft.KeyVault/vaults/secrets/read", secret_id)
        with self.app.state.lock:
            entry = self.app.state.data["secrets"].get(kv["name"].lower(), {}).get(secret.lower())
            if not entry:
                raise not_found("Microsoft.KeyVault/vaults/secrets", "%s/%s" % (kv["name"], secret), rg)
            bundle = self._bundle(kv, entry, entry["versions"][-1], with_value=False)
        attributes = bundle["attributes"]
        return json_response({
            "id": secret_id, "name": entry["name"], "type": "Microsoft.KeyVault/vaults/secrets",
            "location": kv["location"], "tags": bundle["tags"],
            "properties": {"attributes": {"enabled": attributes["enabled"], "created": attributes["created"],
                                          "updated": attributes["updated"]},
                           "secretUri": bundle["id"].rsplit("/", 1)[0], "secretUriWithVersion": bundle["id"]}})

    def list_vaults(self, req, sub, rg=None):
        if rg:
            check_rg(self.app, sub, rg)
        scope = "/subscriptions/%s" % sub + ("/resourceGroups/%s" % rg if rg else "")
        authorize(self.app, req, "Microsoft.KeyVault/vaults/read", scope)
        items = [self.vault_json(kv) for kv in self.app.world.key_vaults.values()
                 if kv["subscription"] == sub.lower() and (rg is None or kv["resource_group"].lower() == rg.lower())]
        return json_response({"value": items})

    def update_policies(self, req, sub, rg, name, op):
        kv = self._kv(sub, rg, name)
        authorize(self.app, req, "Microsoft.KeyVault/vaults/accessPolicies/write", kv["id"])
        body = req.json()
        incoming = ((body or {}).get("properties") or {}).get("accessPolicies")
        if not isinstance(incoming, list):
            raise ApiError(400, "BadRequest", "properties.accessPolicies must be a list.")
        with self.app.state.tx() as data:
            current = data["access_policies"].setdefault(kv["name"].lower(), [])
            for pol in incoming:
                oid = str(pol.get("objectId") or "").lower()
                if not oid:
                    raise ApiError(400, "BadRequest", "An access policy needs objectId.")
                perms = {k: [p.lower() for p in (pol.get("permissions") or {}).get(k) or []]
                         for k in ("secrets", "keys", "certificates", "storage")}
                existing = next((p for p in current if p["objectId"].lower() == oid), None)
                if op == "replace" or (op == "add" and existing is None):
                    if existing is not None:
                        current.remove(existing)
                    current.append({"tenantId": pol.get("tenantId") or self.app.world.tenant_id, "objectId": oid,
                                    "permissions": perms})
                elif op == "add":
                    for k, vals in perms.items():
                        have = existing["permissions"].setdefault(k, [])
                        have.extend(v for v in vals if v not in have)
                elif existing is not None:   # remove: take the listed permissions away
                    for k, vals in perms.items():
                        existing["permissions"][k] = [v for v in existing["permissions"].get(k, []) if v not in vals]
                    if not any(existing["permissions"].values()):
                        current.remove(existing)
            result = list(current)
        return json_response({"id": kv["id"] + "/accessPolicies/" + op, "name": op,
                              "type": "Microsoft.KeyVault/vaults/accessPolicies", "location": kv["location"],
                              "properties": {"accessPolicies": result}})

    # ------------------------------------------------------------------------ data plane
    def _data_kv(self, req, kv_name):
        version = req.q("api-version")
        if not version:
            raise ApiError(400, "BadParameter", "The 'api-version' query parameter is required.")
        if version not in apiversions.KEYVAULT_DATA:
            raise ApiError(400, "BadParameter", "The specified version (%s) is not recognized. Consider using the "
                           "latest supported version (7.4)." % version)
        kv = self.app.world.key_vaults.get(kv_name.lower())
        if kv is None:
            # A vault that does not exist has no DNS name in Azure; path style can only say 404.
            raise ApiError(404, "VaultNotFound", "The key vault '%s' does not exist." % kv_name)
        return kv

    def _require(self, req, kv, perm, name=None):
        if self.allowed(kv, req.principal, perm, name):
            return
        caller = "appid=%s;oid=%s;iss=https://sts.windows.net/%s/" % (req.claims.get("appid"), req.principal,
                                                                       self.app.world.tenant_id)
        if kv["rbac"]:
            raise ApiError(403, "Forbidden", "Caller is not authorized to perform action on resource.\r\nIf role "
                           "assignments, deny assignments or role definitions were changed recently, please observe "
                           "propagation time.\r\nCaller: %s\r\nAction: '%s'\r\nResource: '%s'\r\nAssignment: (not "
                           "found)\r\nVault: %s;location=%s\r\n" % (caller, _PERMS[perm], kv["id"].lower() +
                                                                     ("/secrets/%s" % name if name else ""),
                                                                     kv["name"], kv["location"]),
                           inner="ForbiddenByRbac")
        raise ApiError(403, "Forbidden", "The user, group or application '%s' does not have secrets %s permission "
                       "on key vault '%s;location=%s'. For help resolving this issue, please see "
                       "https://go.microsoft.com/fwlink/?linkid=2125287" % (caller, perm, kv["name"], kv["location"]),
                       inner="AccessDenied")

    def _bundle(self, kv, entry, version, with_value=True):
        out = {"id": "%s/keyvaults/%s/secrets/%s/%s" % (self.app.base_url, kv["name"], entry["name"],
                                                       version["version"]),
               "attributes": {"enabled": version["enabled"], "created": version["created"],
                              "updated": version["updated"], "recoveryLevel": "Recoverable+Purgeable",
                              "recoverableDays": 90},
               "tags": version.get("tags") or {}}
        if version.get("content_type"):
            out["contentType"] = version["content_type"]
        if with_value:
            out["value"] = version["value"]
        return out

    def _not_found(self, kv, name, version=None):
        what = "%s/%s" % (name, version) if version else name
        return ApiError(404, "SecretNotFound", "A secret with (name/id) %s was not found in this key vault. If you "
                        "recently deleted this secret you may be able to recover it using the correct recovery "
                        "command. For help resolving this issue, please see "
                        "https://go.microsoft.com/fwlink/?linkid=2125182" % what)

    def get_secret(self, req, kv, name, version=None):
        vault = self._data_kv(req, kv)
        self._require(req, vault, "get", name)
        with self.app.state.lock:
            entry = self.app.state.data["secrets"].get(vault["name"].lower(), {}).get(name.lower())
            if not entry:
                raise self._not_found(vault, name)
            if version:
                found = [v for v in entry["versions"] if v["version"] == version.lower()]
                if not found:
                    raise self._not_found(vault, name, version)
                chosen = found[0]
            else:
                chosen = entry["versions"][-1]
            if not chosen["enabled"]:
                raise ApiError(403, "Forbidden", "Operation get is not allowed on a disabled secret.",
                               inner="SecretDisabled")
            return json_response(self._bundle(vault, entry, chosen))

    def set_secret(self, req, kv, name):
        vault = self._data_kv(req, kv)
        if not _SECRET_NAME.match(name):
            raise ApiError(400, "BadParameter", "The request URI contains an invalid name: %s" % name)
        self._require(req, vault, "set", name)
        body = req.json()
        if not isinstance(body, dict) or not isinstance(body.get("value"), str):
            raise ApiError(400, "BadParameter", "Property 'value' is required and must be a string.")
        attrs = body.get("attributes") or {}
        with self.app.state.tx() as data:
            entry, version = self._put(data, vault["name"], name, body["value"], body.get("contentType"),
                                       body.get("tags"))
            if attrs.get("enabled") is False:
                version["enabled"] = False
            return json_response(self._bundle(vault, entry, version))

    def delete_secret(self, req, kv, name):
        vault = self._data_kv(req, kv)
        self._require(req, vault, "delete", name)
        with self.app.state.tx() as data:
            entry = data["secrets"].get(vault["name"].lower(), {}).pop(name.lower(), None)
            if not entry:
                raise self._not_found(vault, name)
            stamp = int(time.time())
            out = self._bundle(vault, entry, entry["versions"][-1], with_value=False)
            out.update({"recoveryId": "%s/keyvaults/%s/deletedsecrets/%s" % (self.app.base_url, vault["name"],
                                                                             entry["name"]),
                        "deletedDate": stamp, "scheduledPurgeDate": stamp + 90 * 86400})
            return json_response(out)

    def list_secrets(self, req, kv):
        vault = self._data_kv(req, kv)
        self._require(req, vault, "list")
        with self.app.state.lock:
            items = []
            for entry in self.app.state.data["secrets"].get(vault["name"].lower(), {}).values():
                b = self._bundle(vault, entry, entry["versions"][-1], with_value=False)
                b["id"] = b["id"].rsplit("/", 1)[0]
                items.append(b)
        return json_response({"value": items, "nextLink": None})

    def list_versions(self, req, kv, name):
        vault = self._data_kv(req, kv)
        self._require(req, vault, "list", name)
        with self.app.state.lock:
            entry = self.app.state.data["secrets"].get(vault["name"].lower(), {}).get(name.lower())
            if not entry:
                raise self._not_found(vault, name)
            items = [self._bundle(vault, entry, v, with_value=False) for v in entry["versions"]]
        return json_response({"value": items, "nextLink": None})
