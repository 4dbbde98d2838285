"""Microsoft.DBforPostgreSQL: single servers and flexible servers as declared in the world, with
their databases read from the REAL cluster behind each (so a restore shows up here)."""
from . import apiversions
from . import postgres as pg
from .arm_common import RG, SUB, authorize, check_rg
from .errors import ApiError, not_found
from .server import ARM, json_response
from .util import iso, now
from .world import FLEXIBLE, SINGLE

_KIND = {"servers": SINGLE, "flexibleservers": FLEXIBLE}


class PostgresProvider:
    def __init__(self, app):
        self.app = app

    def register(self, r):
        for seg, versions in (("servers", apiversions.POSTGRES_SINGLE), ("flexibleServers", apiversions.POSTGRES_FLEX)):
            base = RG + r"/providers/Microsoft\.DBforPostgreSQL/(?P<stype>%s)" % seg
            name = "postgresql.%s" % seg
            r.add("GET", SUB + r"/providers/Microsoft\.DBforPostgreSQL/(?P<stype>%s)" % seg, self.list_servers, ARM,
                  name + ".list", versions)
            r.add("GET", base, self.list_servers, ARM, name + ".list", versions)
            r.add("GET", base + r"/(?P<name>[^/]+)", self.get_server, ARM, name + ".get", versions)
            r.add("GET", base + r"/(?P<name>[^/]+)/databases", self.list_databases, ARM, name + ".databases.list",
                  versions)
            r.add("GET", base + r"/(?P<name>[^/]+)/databases/(?P<db>[^/]+)", self.get_database, ARM,
                  name + ".databases.get", versions)
            r.add("GET", base + r"/(?P<name>[^/]+)/firewallRules", self.list_firewall, ARM, name + ".firewallRules",
                  versions)

    def _server(self, sub, rg, stype, name):
        check_rg(self.app, sub, rg)
        srv = self.app.world.servers.get(name.lower())
        if srv is None or srv["kind"] != _KIND[stype.lower()] or srv["subscription"] != sub.lower() or \
                srv["resource_group"].lower() != rg.lower():
            raise not_found("Microsoft.DBforPostgreSQL/%s" % stype, name, rg)
        return srv

    def server_json(self, srv):
        fqdn = "%s.postgres.database.azure.com" % srv["name"].lower()
        created = self.app.state.meta.get("created", now())
        if srv["kind"] == SINGLE:
            props = {"administratorLogin": srv["admin_user"], "version": srv["version"], "sslEnforcement": "Enabled",
                     "minimalTlsVersion": "TLSEnforcementDisabled", "userVisibleState": "Ready",
                     "fullyQualifiedDomainName": fqdn, "earliestRestoreDate": iso(created),
                     "storageProfile": {"storageMB": 51200, "backupRetentionDays": 7, "geoRedundantBackup": "Disabled",
                                        "storageAutogrow": "Enabled"},
                     "replicationRole": "None", "masterServerId": "", "replicaCapacity": 5,
                     "publicNetworkAccess": "Enabled", "infrastructureEncryption": "Disabled",
                     "privateEndpointConnections": [], "byokEnforcement": "Disabled"}
            sku = {"name": "GP_Gen5_2", "tier": "GeneralPurpose", "family": "Gen5", "capacity": 2}
        else:
            props = {"administratorLogin": srv["admin_user"], "version": srv["version"], "state": "Ready",
                     "fullyQualifiedDomainName": fqdn, "storage": {"storageSizeGB": 128, "autoGrow": "Disabled"},
                     "authConfig": {"activeDirectoryAuth": "Disabled", "passwordAuth": "Enabled"},
                     "backup": {"backupRetentionDays": 7, "geoRedundantBackup": "Disabled",
                                "earliestRestoreDate": iso(created)},
                     "network": {"publicNetworkAccess": "Enabled"},
                     "highAvailability": {"mode": "Disabled", "state": "NotEnabled"},
                     "replicationRole": "Primary", "replicaCapacity": 5, "availabilityZone": "1"}
            sku = {"name": "Standard_D2ds_v4", "tier": "GeneralPurpose"}
        return {"id": srv["id"], "name": srv["name"], "type": srv["type"], "location": srv["location"], "tags": {},
                "sku": sku, "properties": props}

    def list_servers(self, req, sub, stype, rg=None):
        if rg:
            check_rg(self.app, sub, rg)
        scope = "/subscriptions/%s" % sub + ("/resourceGroups/%s" % rg if rg else "")
        authorize(self.app, req, "Microsoft.DBforPostgreSQL/%s/read" % stype, scope)
        items = [self.server_json(s) for s in self.app.world.servers.values()
                 if s["kind"] == _KIND[stype.lower()] and s["subscription"] == sub.lower()
                 and (rg is None or s["resource_group"].lower() == rg.lower())]
        return json_response({"value": items})

    def get_server(self, req, sub, rg, stype, name):
        srv = self._server(sub, rg, stype, name)
        authorize(self.app, req, "Microsoft.DBforPostgreSQL/%s/read" % stype, srv["id"])
        return json_response(self.server_json(srv))

    def _db_json(self, srv, db):
        return {"id": "%s/databases/%s" % (srv["id"], db), "name": db, "type": srv["type"] + "/databases",
                "properties": {"charset": "UTF8", "collation": "English_United States.1252"
                               if srv["kind"] == SINGLE else "en_US.utf8"}}

    def _real_databases(self, srv):
        try:
            return pg.list_databases(self.app.clusters.server(srv["name"]))
        except pg.PgError as exc:
            raise ApiError(503, "ServerUnavailable", "The server '%s' is not reachable: %s" % (srv["name"], exc))

    def list_databases(self, req, sub, rg, stype, name):
        srv = self._server(sub, rg, stype, name)
        authorize(self.app, req, "Microsoft.DBforPostgreSQL/%s/databases/read" % stype, srv["id"])
        return json_response({"value": [self._db_json(srv, db) for db in self._real_databases(srv)]})

    def get_database(self, req, sub, rg, stype, name, db):
        srv = self._server(sub, rg, stype, name)
        authorize(self.app, req, "Microsoft.DBforPostgreSQL/%s/databases/read" % stype, srv["id"])
        if db not in self._real_databases(srv):
            raise not_found("Microsoft.DBforPostgreSQL/%s/%s/databases" % (stype, name), db, rg)
        return json_response(self._db_json(srv, db))

    def list_firewall(self, req, sub, rg, stype, name):
        srv = self._server(sub, rg, stype, name)
        authorize(self.app, req, "Microsoft.DBforPostgreSQL/%s/firewallRules/read" % stype, srv["id"])
        rules = []
        if srv["allow_azure_services"]:
            rule = "AllowAllWindowsAzureIps" if srv["kind"] == SINGLE else \
                "AllowAllAzureServicesAndResourcesWithinAzureIps_2024-1-1_0-0-0"
            rules.append({"id": "%s/firewallRules/%s" % (srv["id"], rule), "name": rule,
                          "type": srv["type"] + "/firewallRules",
                          "properties": {"startIpAddress": "0.0.0.0", "endIpAddress": "0.0.0.0"}})
        return json_response({"value": rules})
