"""Azure Resource Graph (Microsoft.ResourceGraph/resources), the global index the az CLI reads a vault and its backup
instances from for cross-region restore: it answers while the vault's own region is down.

Only the query shape clients of this emulator send is understood: `<Table> | where <clause> and <clause> ...`,
each clause `<field> =~ '<value>'` (case-insensitive) or `<field> == '<value>'`, fields as dotted paths into a row
(`type`, `name`, `resourceGroup`, `subscriptionId`, `id`, `properties.dataSourceInfo.resourceID`, ...). Tables:
`Resources` (backup vaults) and `RecoveryServicesResources` (backup instances). Anything else is a 400 that says so.
Rows are those the caller may read (its RBAC read permission on each).
"""
import re

from .errors import ApiError
from .roles import has_permission
from .server import ARM, json_response
from .util import norm_id

API_VERSIONS = frozenset("2019-04-01 2020-04-01-preview 2021-03-01 2022-10-01 2024-04-01".split())
_CLAUSE = re.compile(r"\s*([A-Za-z_][\w.]*)\s*(=~|==)\s*'([^']*)'\s*$")


def parse_query(text):
    """(table, [(path, op, value)]) or ApiError 400."""
    parts = [p.strip() for p in str(text or "").split("|")]
    if len(parts) > 2 or not parts[0] or (len(parts) == 2 and not parts[1].lower().startswith("where ")):
        raise ApiError(400, "BadRequest", "The emulator's Resource Graph understands `<Table> | where <field> =~ "
                       "'<value>' and ...` only; got: %s" % text)
    clauses = []
    if len(parts) == 2:
        for clause in re.split(r"\s+and\s+", parts[1][6:], flags=re.I):
            m = _CLAUSE.match(clause)
            if not m:
                raise ApiError(400, "BadRequest", "Unsupported where clause '%s' (expected <field> =~ '<value>')."
                               % clause.strip())
            clauses.append(m.groups())
    return parts[0], clauses


def _field(row, path):
    value = row
    for key in path.split("."):
        if not isinstance(value, dict):
            return None
        value = next((v for k, v in value.items() if k.lower() == key.lower()), None)
    return value


def _matches(row, clauses):
    for path, op, wanted in clauses:
        value = _field(row, path)
        if value is None:
            return False
        if (str(value).lower() != wanted.lower()) if op == "=~" else (str(value) != wanted):
            return False
    return True


class ResourceGraphProvider:
    def __init__(self, app):
        self.app = app

    def register(self, r):
        r.add("POST", r"/providers/Microsoft\.ResourceGraph/resources", self.query, ARM, "resourcegraph.resources",
              API_VERSIONS, write=False)

    def _vault_row(self, v):
        body = self.app.dataprotection.vault_json(v)
        return dict(body, type=body["type"].lower(), resourceGroup=v["resource_group"],
                    subscriptionId=v["subscription"], tenantId=self.app.world.tenant_id, kind="", tags={})

    def _bi_row(self, bi):
        vault = self.app.world.vaults[norm_id(bi["vault_id"])]
        body = self.app.dataprotection.bi_json(bi)
        props = dict(body["properties"], backupInstanceExtendedProperties={
            "protectedPrimaryRegion": vault["location"], "protectedSecondaryRegion": vault["secondary_location"]})
        return dict(body, type=body["type"].lower(), properties=props, resourceGroup=vault["resource_group"],
                    subscriptionId=vault["subscription"], location=vault["location"],
                    tenantId=self.app.world.tenant_id)

    def query(self, req):
        body = req.json()
        if not isinstance(body, dict) or not body.get("query"):
            raise ApiError(400, "BadRequest", "The request body needs 'query' (and 'subscriptions').")
        table, clauses = parse_query(body["query"])
        subs = {str(s).lower() for s in body.get("subscriptions") or self.app.world.subscriptions}
        with self.app.state.lock:
            assignments = list(self.app.state.data["role_assignments"].values())
            if table.lower() == "resources":
                rows = [self._vault_row(v) for v in self.app.world.vaults.values()]
                action = "Microsoft.DataProtection/backupVaults/read"
            elif table.lower() == "recoveryservicesresources":
                rows = [self._bi_row(b) for b in self.app.state.data["backup_instances"].values()]
                action = "Microsoft.DataProtection/backupVaults/backupInstances/read"
            else:
                raise ApiError(400, "BadRequest", "Unknown table '%s' (the emulator has Resources and "
                               "RecoveryServicesResources)." % table)
        rows = [r for r in rows if r["subscriptionId"] in subs and _matches(r, clauses)
                and has_permission(assignments, req.principal, action, r["id"])]
        return json_response({"totalRecords": len(rows), "count": len(rows), "data": rows, "facets": [],
                              "resultTruncated": "false"})
