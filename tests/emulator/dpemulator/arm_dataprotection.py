"""Microsoft.DataProtection: backup vaults, backup instances, ad hoc backup, recovery points,
validateRestore / restore (202 + Azure-AsyncOperation/Location/Retry-After), operationStatus,
operationResults and backupJobs, in the shapes of reference §1-§4."""
import os
import re
import shutil

from . import apiversions
from . import rules
from .arm_common import RG, SUB, authorize, check_rg, page, system_data
from .errors import ApiError, UserError, bad_request, not_found
from .server import ARM, empty_response, json_response
from .util import ZERO_TIME, iso, iso_duration, micros, norm_id, now, operation_id, parse_time
from .world import DB_TYPE, FLEX_TYPE, SINGLE, SINGLE_TYPE

NS = "Microsoft.DataProtection"
BV = RG + r"/providers/Microsoft\.DataProtection/backupVaults/(?P<vault>[^/]+)"
BI = BV + r"/backupInstances/(?P<bi>[^/]+)"
LOC = SUB + r"/providers/Microsoft\.DataProtection/locations/(?P<loc>[^/]+)"
A = "Microsoft.DataProtection/backupVaults"


class DataProtectionProvider:
    def __init__(self, app):
        self.app = app

    # ------------------------------------------------------------------------------------ seeding
    def seed(self, data):
        world = self.app.world
        for b in world.backup_instances:
            vault = world.vaults[norm_id(b["vault_id"])]
            srv = world.servers[b["server"]]
            bi_id = "%s/backupInstances/%s" % (vault["id"], b["name"])
            ds_id = "%s/databases/%s" % (srv["id"], b["database"]) if b["database"] else srv["id"]
            data["backup_instances"][norm_id(bi_id)] = {
                "id": bi_id, "name": b["name"], "vault_id": vault["id"], "server": b["server"],
                "database": b["database"], "policy": b["policy"], "datasource_id": ds_id,
                "datasource_type": DB_TYPE if srv["kind"] == SINGLE else FLEX_TYPE, "created": now(),
                "secret_uri": b.get("secret_uri"), "initial_backups": b["initial_backups"]}

    def initial_backups(self):
        """Take the world's initial backups (first start only, after the clusters are up): all the dumps
        first, then every point in ONE state write (B5)."""
        engine = self.app.engine
        made = []          # (bi, point record)
        try:
            for bi in list(self.app.state.data["backup_instances"].values()):
                for spec in bi.get("initial_backups") or []:
                    when = now() - float(spec.get("days_ago", 0)) * 86400
                    rp = engine.new_point(bi, when, *engine.dump_backup(bi))
                    made.append((bi, engine.to_archive(rp) if spec.get("archive") else rp))
        except BaseException:
            for _, rp in made:
                shutil.rmtree(os.path.join(engine.store_root, rp["folder"]), ignore_errors=True)
            raise
        with self.app.state.tx() as data:
            for bi, rp in made:
                data["recovery_points"].setdefault(norm_id(bi["id"]), {})[rp["id"]] = rp
            for bi in data["backup_instances"].values():
                bi.pop("initial_backups", None)

    def register(self, r):
        v = apiversions.DATAPROTECTION
        r.add("GET", SUB + r"/providers/Microsoft\.DataProtection/backupVaults", self.list_vaults, ARM,
              "dataprotection.vaults.list", v)
        r.add("GET", RG + r"/providers/Microsoft\.DataProtection/backupVaults", self.list_vaults, ARM,
              "dataprotection.vaults.list", v)
        r.add("GET", BV, self.get_vault, ARM, "dataprotection.vaults.get", v)
        r.add("GET", BV + r"/backupInstances", self.list_bis, ARM, "dataprotection.backupInstances.list", v)
        r.add("GET", BI, self.get_bi, ARM, "dataprotection.backupInstances.get", v)
        r.add("GET", BV + r"/backupPolicies", self.list_policies, ARM, "dataprotection.backupPolicies.list", v)
        r.add("GET", BV + r"/backupPolicies/(?P<policy>[^/]+)", self.get_policy, ARM,
              "dataprotection.backupPolicies.get", v)
        r.add("POST", BI + r"/backup", self.adhoc_backup, ARM, "dataprotection.backup", v)
        r.add("GET", BI + r"/recoveryPoints", self.list_points, ARM, "dataprotection.recoveryPoints.list", v)
        r.add("GET", BI + r"/recoveryPoints/(?P<rp>[^/]+)", self.get_point, ARM, "dataprotection.recoveryPoints.get", v)
        r.add("POST", BI + r"/findRestorableTimeRanges", self.find_ranges, ARM,
              "dataprotection.findRestorableTimeRanges", v)
        r.add("POST", BI + r"/validateRestore", self.validate_restore, ARM, "dataprotection.validateRestore", v)
        r.add("POST", BI + r"/restore", self.restore, ARM, "dataprotection.restore", v)
        r.add("GET", LOC + r"/operationStatus/(?P<op>[^/]+)", self.operation_status, ARM,
              "dataprotection.operationStatus", v)
        r.add("GET", LOC + r"/operationResults/(?P<op>[^/]+)", self.operation_result, ARM,
              "dataprotection.operationResults", v)
        r.add("GET", BV + r"/operationStatus/(?P<op>[^/]+)", self.operation_status, ARM,
              "dataprotection.operationStatus", v)
        r.add("GET", BV + r"/backupJobs", self.list_jobs, ARM, "dataprotection.backupJobs.list", v)
        r.add("GET", BV + r"/backupJobs/(?P<job>[^/]+)", self.get_job, ARM, "dataprotection.backupJobs.get", v)

    # ------------------------------------------------------------------------------------ lookups
    def _vault(self, sub, rg, vault):
        check_rg(self.app, sub, rg)
        v = self.app.world.vaults.get(norm_id("/subscriptions/%s/resourceGroups/%s/providers/%s/backupVaults/%s"
                                              % (sub, rg, NS, vault)))
        if v is None:
            raise not_found("Microsoft.DataProtection/backupVaults", vault, rg)
        return v

    def _bi(self, sub, rg, vault, bi):
        v = self._vault(sub, rg, vault)
        rec = self.app.state.data["backup_instances"].get(norm_id("%s/backupInstances/%s" % (v["id"], bi)))
        if rec is None:
            raise not_found("Microsoft.DataProtection/backupVaults/%s/backupInstances" % vault, bi, rg)
        return v, rec

    # ------------------------------------------------------------------------------------ vaults
    def vault_json(self, v):
        return {"id": v["id"], "name": v["name"], "type": "Microsoft.DataProtection/backupVaults",
                "location": v["location"], "tags": {}, "etag": None,
                "identity": {"type": "SystemAssigned", "principalId": v["principal_id"],
                             "tenantId": self.app.world.tenant_id},
                "systemData": system_data(self.app.state.meta["created"]),
                "properties": {"provisioningState": "Succeeded", "resourceMoveState": "Unknown",
                               "storageSettings": [{"datastoreType": "VaultStore", "type": v["redundancy"]}],
                               "monitoringSettings": {"azureMonitorAlertSettings": {"alertsForAllJobFailures":
                                                                                    "Enabled"}},
                               "securitySettings": {"softDeleteSettings": {"state": "On",
                                                                           "retentionDurationInDays": 14.0},
                                                    "immutabilitySettings": {"state": "Disabled"}},
                               "featureSettings": {"crossSubscriptionRestoreSettings": {"state": "Enabled"},
                                                   "crossRegionRestoreSettings": {
                                                       "state": "Enabled" if v["cross_region_restore"] else "Disabled"}},
                               "isVaultProtectedByResourceGuard": False, "secureScore": "None",
                               "bcdrSecurityLevel": "Poor",
                               # the paired region a geo-redundant vault copies to (what the CLI reads for CRR)
                               "replicatedRegions": [v["secondary_location"]] if v["secondary_location"] else []}}

    def list_vaults(self, req, sub, rg=None):
        if rg:
            check_rg(self.app, sub, rg)
        scope = "/subscriptions/%s" % sub + ("/resourceGroups/%s" % rg if rg else "")
        authorize(self.app, req, A + "/read", scope)
        items = [self.vault_json(v) for v in self.app.world.vaults.values()
                 if v["subscription"] == sub.lower() and (rg is None or v["resource_group"].lower() == rg.lower())]
        return json_response(page(self.app, req, items))

    def get_vault(self, req, sub, rg, vault):
        v = self._vault(sub, rg, vault)
        authorize(self.app, req, A + "/read", v["id"])
        return json_response(self.vault_json(v))

    # ------------------------------------------------------------------------------------ backup instances
    def _datasource(self, bi):
        srv = self.app.world.servers[bi["server"]]
        if bi["database"]:
            ds = {"datasourceType": DB_TYPE, "objectType": "Datasource", "resourceID": bi["datasource_id"],
                  "resourceLocation": srv["location"], "resourceName": bi["database"], "resourceType": DB_TYPE,
                  "resourceUri": ""}
            dss = {"datasourceType": DB_TYPE, "objectType": "DatasourceSet", "resourceID": srv["id"],
                   "resourceLocation": srv["location"], "resourceName": srv["name"], "resourceType": SINGLE_TYPE,
                   "resourceUri": ""}
            return ds, dss
        ds = {"datasourceType": FLEX_TYPE, "objectType": "Datasource", "resourceID": srv["id"],
              "resourceLocation": srv["location"], "resourceName": srv["name"], "resourceType": FLEX_TYPE,
              "resourceUri": ""}
        return ds, None

    def bi_json(self, bi):
        srv = self.app.world.servers[bi["server"]]
        ds, dss = self._datasource(bi)
        props = {"friendlyName": "%s\\%s" % (srv["name"], bi["database"]) if bi["database"] else srv["name"],
                 "dataSourceInfo": ds, "dataSourceSetInfo": dss,
                 "policyInfo": {"policyId": "%s/backupPolicies/%s" % (bi["vault_id"], bi["policy"]),
                                "policyVersion": "", "policyParameters": None},
                 "protectionStatus": {"status": "ProtectionConfigured", "errorDetails": None},
                 "currentProtectionState": "ProtectionConfigured", "protectionErrorDetails": None,
                 "provisioningState": "Succeeded", "objectType": "BackupInstance", "validationType": None,
                 "identityDetails": None}
        if bi.get("secret_uri"):
            props["datasourceAuthCredentials"] = {"objectType": "SecretStoreBasedAuthCredentials",
                                                  "secretStoreResource": {"secretStoreType": "AzureKeyVault",
                                                                          "uri": bi["secret_uri"], "value": None}}
        return {"id": bi["id"], "name": bi["name"], "type": "Microsoft.DataProtection/backupVaults/backupInstances",
                "tags": None, "systemData": system_data(bi["created"]), "properties": props}

    def list_bis(self, req, sub, rg, vault):
        v = self._vault(sub, rg, vault)
        authorize(self.app, req, A + "/backupInstances/read", v["id"])
        with self.app.state.lock:
            items = [self.bi_json(b) for b in self.app.state.data["backup_instances"].values()
                     if norm_id(b["vault_id"]) == norm_id(v["id"])]
        items.sort(key=lambda x: x["name"].lower())
        return json_response(page(self.app, req, items))

    def get_bi(self, req, sub, rg, vault, bi):
        v, rec = self._bi(sub, rg, vault, bi)
        authorize(self.app, req, A + "/backupInstances/read", rec["id"])
        return json_response(self.bi_json(rec))

    def _policy_json(self, v, name, dstype):
        return {"id": "%s/backupPolicies/%s" % (v["id"], name), "name": name,
                "type": "Microsoft.DataProtection/backupVaults/backupPolicies",
                "properties": {"objectType": "BackupPolicy", "datasourceTypes": [dstype], "policyRules": [
                    {"name": "BackupWeekly", "objectType": "AzureBackupRule",
                     "backupParameters": {"objectType": "AzureBackupParams", "backupType": "Full"},
                     "dataStore": {"dataStoreType": "VaultStore", "objectType": "DataStoreInfoBase"},
                     "trigger": {"objectType": "ScheduleBasedTriggerContext",
                                 "schedule": {"repeatingTimeIntervals": ["R/2021-01-03T10:00:00+00:00/P1W"]},
                                 "taggingCriteria": [{"isDefault": True, "taggingPriority": 99,
                                                      "tagInfo": {"tagName": "Default"}}]}},
                    {"name": "Default", "objectType": "AzureRetentionRule", "isDefault": True,
                     "lifecycles": [{"deleteAfter": {"objectType": "AbsoluteDeleteOption", "duration": "P3M"},
                                     "sourceDataStore": {"dataStoreType": "VaultStore",
                                                         "objectType": "DataStoreInfoBase"},
                                     "targetDataStoreCopySettings": []}]}]}}

    def _policies(self, v):
        out = {}
        for b in self.app.state.data["backup_instances"].values():
            if norm_id(b["vault_id"]) == norm_id(v["id"]):
                out[b["policy"]] = b["datasource_type"]
        return out

    def list_policies(self, req, sub, rg, vault):
        v = self._vault(sub, rg, vault)
        authorize(self.app, req, A + "/backupPolicies/read", v["id"])
        return json_response({"value": [self._policy_json(v, n, t) for n, t in sorted(self._policies(v).items())]})

    def get_policy(self, req, sub, rg, vault, policy):
        v = self._vault(sub, rg, vault)
        authorize(self.app, req, A + "/backupPolicies/read", v["id"])
        pols = {k.lower(): (k, t) for k, t in self._policies(v).items()}
        if policy.lower() not in pols:
            raise ApiError(404, "ResourceNotFound", "The backup policy '%s' was not found." % policy)
        return json_response(self._policy_json(v, *pols[policy.lower()]))

    # ------------------------------------------------------------------------------------ recovery points
    def point_json(self, bi, rp):
        stores = [{"id": s["id"], "type": s["type"], "creationTime": iso(s["creation"]), "expiryTime": iso(s["expiry"]),
                   "metaData": None, "visible": True, "state": "COMMITTED",
                   "rehydrationExpiryTime": iso(s.get("rehydration_expiry")),
                   "rehydrationStatus": s.get("rehydration_status")} for s in rp["stores"]]
        return {"id": "%s/recoveryPoints/%s" % (bi["id"], rp["id"]), "name": rp["id"],
                "type": "Microsoft.DataProtection/backupVaults/backupInstances/recoveryPoints",
                "properties": {"objectType": "AzureBackupDiscreteRecoveryPoint", "friendlyName": rp["id"],
                               "recoveryPointDataStoresDetails": stores, "recoveryPointTime": iso(rp["time"]),
                               "policyName": rp["policy"], "policyVersion": None, "recoveryPointId": rp["id"],
                               "recoveryPointType": "Full", "retentionTagName": "Default",
                               "retentionTagVersion": "637925418411235687", "expiryTime": None,
                               "recoveryPointState": "Completed"}}

    @staticmethod
    def _parse_filter(text):
        """$filter as the CLI sends it: "startDate eq '<t>' and endDate eq '<t>'", plus the other
        RecoveryPointsFilters properties of the spec."""
        crit = {}
        if not text:
            return crit
        for clause in re.split(r"\s+and\s+", text.strip(), flags=re.I):
            m = re.fullmatch(r"\s*(\w+)\s+eq\s+(?:'([^']*)'|(\w+))\s*", clause)
            if not m:
                raise bad_request("Invalid $filter clause '%s': expected \"<property> eq '<value>'\"." % clause,
                                  code="BadRequest")
            name, value = m.group(1), m.group(2) if m.group(2) is not None else m.group(3)
            if name in ("startDate", "endDate"):
                try:
                    crit[name] = parse_time(value)
                except ValueError:
                    raise bad_request("Invalid %s '%s' in $filter." % (name, value), code="BadRequest")
            elif name in ("restorePointDataStoreId", "isVisible", "extendedInfo", "restorePointState"):
                crit[name] = value
            else:
                raise bad_request("Unsupported $filter property '%s'. Supported: startDate, endDate, "
                                  "restorePointDataStoreId, isVisible, extendedInfo, restorePointState." % name,
                                  code="BadRequest")
        return crit

    def list_points(self, req, sub, rg, vault, bi):
        v, rec = self._bi(sub, rg, vault, bi)
        authorize(self.app, req, A + "/backupInstances/recoveryPoints/read", rec["id"])
        crit = self._parse_filter(req.q("$filter"))
        us = micros  # compare at the microsecond the API shows
        ds = crit.get("restorePointDataStoreId")
        ds = ds.lower() if ds else None
        start = us(crit["startDate"]) if "startDate" in crit else None
        end = us(crit["endDate"]) if "endDate" in crit else None
        with self.app.state.lock:
            points = [rp for rp in self.app.state.data["recovery_points"].get(norm_id(rec["id"]), {}).values()
                      if (start is None or us(rp["time"]) >= start) and (end is None or us(rp["time"]) <= end)
                      and (not ds or any(ds in (s["id"].lower(), s["type"].lower()) for s in rp["stores"]))]
            points.sort(key=lambda p: p["time"], reverse=True)
            # Only the page's points are rendered (B7), under the lock: the engine mutates their stores.
            body = page(self.app, req, points, render=lambda rp: self.point_json(rec, rp))
        return json_response(body)

    def get_point(self, req, sub, rg, vault, bi, rp):
        v, rec = self._bi(sub, rg, vault, bi)
        authorize(self.app, req, A + "/backupInstances/recoveryPoints/read", rec["id"])
        point = self.app.state.data["recovery_points"].get(norm_id(rec["id"]), {}).get(rp)
        if point is None:
            raise ApiError(404, "RecoveryPointNotFound", "The recovery point '%s' was not found." % rp)
        return json_response(self.point_json(rec, point))

    def find_ranges(self, req, sub, rg, vault, bi):
        v, rec = self._bi(sub, rg, vault, bi)
        authorize(self.app, req, A + "/backupInstances/findRestorableTimeRanges/action", rec["id"])
        body = req.json()
        store = (body or {}).get("sourceDataStoreType")
        if store not in rules.DATASTORES:
            raise bad_request("sourceDataStoreType is required (OperationalStore, VaultStore or ArchiveStore).")
        with self.app.state.lock:
            points = list(self.app.state.data["recovery_points"].get(norm_id(rec["id"]), {}).values())
        ranges = [{"startTime": iso(p["time"]), "endTime": iso(p["time"]), "objectType": "RestorableTimeRange"}
                  for p in sorted(points, key=lambda p: p["time"]) if any(s["type"] == store for s in p["stores"])]
        return json_response({"id": rec["id"], "type": "Microsoft.DataProtection/backupVaults/backupInstances/"
                              "findRestorableTimeRanges",
                              "properties": {"objectType": "AzureBackupFindRestorableTimeRangesResponse",
                                             "restorableTimeRanges": ranges}})

    # ------------------------------------------------------------------------------------ LROs
    def _start_operation(self, req, v, rec, kind, job_id=None, error=None, location=None):
        """`location`: the region whose operationStatus URLs answer (a cross-region call's: the secondary)."""
        op = operation_id()
        start = now()
        sub = v["subscription"]
        location = location or v["location"]
        with self.app.state.tx() as data:
            # Operations are only polled for minutes; keep a day so that state.json stays small.
            for old in [k for k, o in data["operations"].items() if o["end"] < start - 86400]:
                del data["operations"][old]
            data["operations"][op] = {"id": op, "kind": kind, "sub": sub, "location": location, "start": start,
                                      "end": start + float(self.app.state.knobs["operation_duration"]),
                                      "job_id": job_id, "error": error, "bi_id": rec["id"]}
        return empty_response(202, self._lro_headers(sub, location, op, req.q("api-version")))

    def _lro_headers(self, sub, location, op, version):
        base = "%s/subscriptions/%s/providers/Microsoft.DataProtection/locations/%s" % (self.app.base_url, sub,
                                                                                         location)
        return {"Azure-AsyncOperation": "%s/operationStatus/%s?api-version=%s" % (base, op, version),
                "Location": "%s/operationResults/%s?api-version=%s" % (base, op, version),
                "Retry-After": str(int(self.app.state.knobs["retry_after"]))}

    def adhoc_backup(self, req, sub, rg, vault, bi):
        v, rec = self._bi(sub, rg, vault, bi)
        authorize(self.app, req, A + "/backupInstances/backup/action", rec["id"])
        body = req.json()
        opts = body.get("backupRuleOptions") if isinstance(body, dict) else None
        if not isinstance(opts, dict) or not opts.get("ruleName"):
            raise bad_request("backupRuleOptions.ruleName is required (TriggerBackupRequest).")
        self.app.counters.inc("backups_requested")
        with self.app.engine.admission:
            if self.app.engine.busy(rec["id"]):
                return self._start_operation(req, v, rec, "backup", error=self._busy(rec).as_error())
            job = self.app.engine.new_job(rec, "Backup", failure=req.ctx.get("job_failure"))
        return self._start_operation(req, v, rec, "backup", job_id=self.job_arm_id(job))

    @staticmethod
    def _busy(rec):
        return UserError("UserErrorMaxConcurrentOperationLimitReached", "Another operation is already in progress "
                         "on backup instance '%s'." % rec["name"],
                         "Wait for the running operation to finish, then retry.", is_retryable=True)

    def _parse_and_check(self, rec, spec):
        """Synchronous body checks; then the world rules, whose failure fails the operation."""
        rules.check_sync(self.app, rec, spec)
        try:
            return rules.evaluate(self.app, rec, spec), None
        except UserError as exc:
            return None, exc

    def validate_restore(self, req, sub, rg, vault, bi):
        v, rec = self._bi(sub, rg, vault, bi)
        authorize(self.app, req, A + "/backupInstances/validateRestore/action", rec["id"])
        spec = rules.parse_validate_body(req.json())
        self.app.counters.inc("validations_requested")
        plan, err = self._parse_and_check(rec, spec)
        return self._start_operation(req, v, rec, "validate", error=err.as_error() if err else None)

    def restore(self, req, sub, rg, vault, bi):
        v, rec = self._bi(sub, rg, vault, bi)
        authorize(self.app, req, A + "/backupInstances/restore/action", rec["id"])
        spec = rules.parse_restore_request(req.json())
        self.app.counters.inc("restores_requested")
        if self.app.engine.busy(rec["id"]):     # cheap early answer; checked again under the lock below
            return self._start_operation(req, v, rec, "restore", error=self._busy(rec).as_error())
        plan, err = self._parse_and_check(rec, spec)
        if err:
            return self._start_operation(req, v, rec, "restore", error=err.as_error())
        with self.app.engine.admission:      # busy check + job creation are one step: no two restores slip in
            if self.app.engine.busy(rec["id"]):
                return self._start_operation(req, v, rec, "restore", error=self._busy(rec).as_error())
            job = self.app.engine.new_job(rec, "Restore", plan=plan, failure=req.ctx.get("job_failure"))
        return self._start_operation(req, v, rec, "restore", job_id=self.job_arm_id(job))

    def _operation(self, sub, op):
        rec = self.app.state.data["operations"].get(op)
        if rec is None or rec["sub"] != sub.lower():
            raise ApiError(404, "ResourceNotFound", "The operation '%s' was not found." % op)
        return rec

    def operation_status(self, req, sub, op, loc=None, rg=None, vault=None):
        authorize(self.app, req, NS + "/locations/operationStatus/read", "/subscriptions/%s" % sub)
        rec = self._operation(sub, op)
        body = {"id": "/subscriptions/%s/providers/Microsoft.DataProtection/locations/%s/operationStatus/%s"
                      % (rec["sub"], rec["location"], op),
                "name": op, "startTime": iso(rec["start"])}
        headers = {}
        if now() < rec["end"]:
            body.update(status="Inprogress", endTime=ZERO_TIME)
            headers["Retry-After"] = str(int(self.app.state.knobs["retry_after"]))
        elif rec["error"]:
            body.update(status="Failed", endTime=iso(rec["end"]), error=rec["error"])
        else:
            body.update(status="Succeeded", endTime=iso(rec["end"]))
            if rec["job_id"]:
                body["properties"] = {"objectType": "OperationJobExtendedInfo", "jobId": rec["job_id"]}
        return json_response(body, headers=headers)

    def operation_result(self, req, sub, loc, op):
        authorize(self.app, req, NS + "/locations/operationResults/read", "/subscriptions/%s" % sub)
        rec = self._operation(sub, op)
        if now() < rec["end"]:
            return empty_response(202, self._lro_headers(rec["sub"], rec["location"], op, req.q("api-version")))
        if rec["error"]:
            # What the service answers here after a failure is UNCONFIRMED (reference §4); a 400 CloudError.
            raise ApiError(400, rec["error"]["code"], rec["error"]["message"],
                           user_facing=rec["error"]["additionalInfo"][0]["info"])
        body = {"objectType": "OperationJobExtendedInfo"}
        if rec["job_id"]:
            body["jobId"] = rec["job_id"]
        return json_response(body)

    # ------------------------------------------------------------------------------------ jobs
    def job_arm_id(self, job):
        return "%s/backupJobs/%s" % (job["vault_id"], job["guid"])

    def job_json(self, job):
        world = self.app.world
        vault = world.vaults[norm_id(job["vault_id"])]
        bi = self.app.state.data["backup_instances"].get(norm_id(job["bi_id"])) or {}
        srv = world.servers.get(bi.get("server", ""), {})
        plan = job.get("plan") or {}
        restore = job["operation"] == "Restore"
        end = job["end"]
        duration = (end or now()) - job["start"]
        ext = {"additionalDetails": {}, "backupInstanceState": "ProtectionConfigured",
               "dataTransferedInBytes": float(job.get("bytes") or 0),
               "recoveryDestination": plan.get("destination") if restore else None,
               "sourceRecoverPoint": {"recoveryPointID": plan["rp_id"], "recoveryPointTime": iso(plan["rp_time"])}
               if restore else None,
               "subTasks": job["sub_tasks"],
               "targetRecoverPoint": ({"recoveryPointID": job["result_point"]["id"],
                                       "recoveryPointTime": iso(job["result_point"]["time"])}
                                      if job.get("result_point") else None),
               "warningDetails": None}
        if job.get("blobs"):
            ext["additionalDetails"]["RestoredFiles"] = ",".join(job["blobs"])
        props = {
            "activityID": job["activity"], "backupInstanceFriendlyName":
                ("%s\\%s" % (srv.get("name"), bi.get("database")) if bi.get("database") else srv.get("name")),
            "backupInstanceId": job["bi_id"], "dataSourceId": bi.get("datasource_id"),
            "dataSourceLocation": srv.get("location"),
            "dataSourceName": bi.get("database") or srv.get("name"),
            "dataSourceSetName": srv.get("name") if bi.get("database") else None,
            "dataSourceType": bi.get("datasource_type"), "duration": iso_duration(duration),
            "startTime": iso(job["start"]), "endTime": iso(end), "errorDetails": [job["error"]] if job["error"] else None,
            "extendedInfo": ext, "isUserTriggered": True, "operation": job["operation"],
            "operationCategory": job["operation"], "policyId": "%s/backupPolicies/%s" % (job["vault_id"],
                                                                                         bi.get("policy")),
            "policyName": bi.get("policy"), "progressEnabled": False, "progressUrl": None,
            "rehydrationPriority": (plan.get("rehydration") or {}).get("priority") if restore else None,
            "restoreType": ("AlternateLocationRestore" if plan.get("kind") == "database" else "RestoreAsFiles")
            if restore else None,
            "sourceResourceGroup": srv.get("resource_group"), "sourceSubscriptionID": srv.get("subscription"),
            "status": job["status"], "subscriptionId": vault["subscription"],
            "supportedActions": ["Cancel"] if job["status"] == "InProgress" else [""],
            "vaultName": vault["name"], "etag": None,
            "sourceDataStoreName": plan.get("source_store") if restore else None,
            "destinationDataStoreName": None if restore else "VaultStore",
        }
        return {"id": self.job_arm_id(job), "name": job["guid"], "type": "Microsoft.DataProtection/Backupvaults/"
                "backupJobs", "properties": props}

    def list_jobs(self, req, sub, rg, vault):
        v = self._vault(sub, rg, vault)
        authorize(self.app, req, A + "/backupJobs/read", v["id"])
        with self.app.state.lock:
            # Cross-region restore jobs live in the secondary region: fetchCrossRegionRestoreJobs lists them.
            jobs = [j for j in self.app.state.data["jobs"].values() if norm_id(j["vault_id"]) == norm_id(v["id"])
                    and not (j.get("plan") or {}).get("crr_region")]
            jobs.sort(key=lambda j: j["start"], reverse=True)
            body = page(self.app, req, jobs, render=self.job_json)      # only the page's jobs are rendered (B7)
        return json_response(body)

    def get_job(self, req, sub, rg, vault, job):
        v = self._vault(sub, rg, vault)
        authorize(self.app, req, A + "/backupJobs/read", v["id"])
        with self.app.state.lock:
            rec = self.app.state.data["jobs"].get(job.lower())
            if rec is None or norm_id(rec["vault_id"]) != norm_id(v["id"]) or (rec.get("plan") or {}).get("crr_region"):
                raise ApiError(404, "ResourceNotFound", "The job '%s' was not found in vault '%s'." % (job, vault))
            return json_response(self.job_json(rec))
