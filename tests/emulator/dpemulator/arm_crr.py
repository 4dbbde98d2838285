"""Cross-region restore (reference §1, "Cross-region restore"): the location-scoped calls of a geo-redundant vault's
secondary region, the secondary copies of recovery points (which lag the primary ones), and the regional outage
knob that makes the primary region's endpoints fail while the secondary region answers.

Under {L} = /subscriptions/{s}/resourceGroups/{vault rg}/providers/Microsoft.DataProtection/locations/{secondary}:
fetchSecondaryRecoveryPoints, validateCrossRegionRestore, crossRegionRestore (202 LROs whose status URLs are in the
secondary region), fetchCrossRegionRestoreJob and fetchCrossRegionRestoreJobs. List answers page with a nextLink the
SDK follows with a GET (no body), so the nextLink's $skipToken carries the request body, and GET is served too.

Error codes the reference does not confirm are emulator-chosen (README, "Error codes").
"""
import base64
import json

from . import apiversions
from . import rules
from .arm_common import RG, authorize, check_rg
from .errors import ApiError, UserError, bad_request
from .server import ARM, DropConnection, json_response
from .util import micros, norm_id, now

L = RG + r"/providers/Microsoft\.DataProtection/locations/(?P<loc>[^/]+)"
A = "Microsoft.DataProtection/backupVaults"

CODE_CRR_NOT_ENABLED = "UserErrorCrossRegionRestoreNotEnabled"
CODE_WRONG_SECONDARY = "UserErrorInvalidSecondaryRegion"
CODE_TARGET_REGION = "UserErrorCrossRegionRestoreTargetNotInSecondaryRegion"
CODE_NOT_IN_SECONDARY = "UserErrorRecoveryPointNotInSecondaryRegion"


def _region(name):
    return str(name or "").replace(" ", "").lower()


def request_region(app, route, params):
    """The region an ARM call goes to: its vault's, server's, key vault's or account's, or the location in the
    path; None for global calls (authorization, Resource Graph, subscriptions)."""
    world = app.world
    if params.get("loc"):
        return _region(params["loc"])
    name = route.name
    if name.startswith("dataprotection.") and params.get("vault"):
        v = world.vaults.get(norm_id("/subscriptions/%s/resourceGroups/%s/providers/Microsoft.DataProtection/"
                                     "backupVaults/%s" % (params.get("sub"), params.get("rg"), params["vault"])))
        return _region(v["location"]) if v else None
    if params.get("stype") and params.get("name"):
        srv = world.servers.get(params["name"].lower())
        return _region(srv["location"]) if srv else None
    table = world.key_vaults if name.startswith("keyvault.") else (
        world.storage_accounts if name.startswith("storage.") else None)
    if table is not None and params.get("name"):
        res = table.get(params["name"].lower())
        return _region(res["location"]) if res else None
    return None


def _check_outage(app, route, params):
    outage = app.state.knobs["region_outage"]
    if not outage.get("region") or request_region(app, route, params) != _region(outage["region"]):
        return
    app.counters.inc("region_outage_failures")
    if outage.get("mode") == "reset":
        raise DropConnection()
    status = int(outage.get("status") or 503)
    raise ApiError(status, "ServiceUnavailable" if status == 503 else "InternalServerError",
                   "The service in region '%s' is not available (emulated regional outage)." % outage["region"],
                   headers={"Retry-After": "1"})


def _token(offset, body):
    raw = json.dumps({"o": offset, "b": body}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _untoken(text):
    try:
        doc = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
        return int(doc["o"]), doc["b"]
    except (ValueError, KeyError, TypeError):
        raise ApiError(400, "InvalidSkipToken", "The $skipToken '%s' is invalid." % text)


class CrossRegionProvider:
    def __init__(self, app):
        self.app = app

    def check_outage(self, route, params):
        """Raise what a client sees of a region that is down, for calls to that region (server.Pipeline)."""
        _check_outage(self.app, route, params)

    @property
    def dp(self):
        return self.app.dataprotection

    def register(self, r):
        v = apiversions.DATAPROTECTION
        for method in ("POST", "GET"):   # GET: the nextLink of a page (the SDK follows it with a GET)
            r.add(method, L + r"/fetchSecondaryRecoveryPoints", self.fetch_points, ARM,
                  "dataprotection.crr.fetchSecondaryRecoveryPoints", v, write=False)
            r.add(method, L + r"/fetchCrossRegionRestoreJobs", self.fetch_jobs, ARM,
                  "dataprotection.crr.fetchCrossRegionRestoreJobs", v, write=False)
        r.add("POST", L + r"/fetchCrossRegionRestoreJob", self.fetch_job, ARM,
              "dataprotection.crr.fetchCrossRegionRestoreJob", v, write=False)
        r.add("POST", L + r"/validateCrossRegionRestore", self.validate, ARM,
              "dataprotection.crr.validateCrossRegionRestore", v)
        r.add("POST", L + r"/crossRegionRestore", self.restore, ARM, "dataprotection.crr.crossRegionRestore", v)

    # ------------------------------------------------------------------------------------ request checks
    def _body(self, req):
        token = req.q("$skipToken")
        if req.method == "GET":
            if not token:
                raise ApiError(405, "HttpMethodNotAllowed", "Use POST with a request body (GET serves nextLinks).")
            return _untoken(token)
        return (_untoken(token)[0] if token else 0), req.json()

    def _vault(self, sub, rg, loc, vault_id, source_region):
        """The source vault of a cross-region call made in `loc`, with the checks the service makes."""
        check_rg(self.app, sub, rg)
        v = self.app.world.vaults.get(norm_id(vault_id or ""))
        if v is None or v["subscription"] != sub.lower() or v["resource_group"].lower() != rg.lower():
            raise ApiError(404, "ResourceNotFound", "The Backup vault '%s' was not found in resource group '%s' "
                           "(the {resourceGroupName} of a cross-region call is the vault's)." % (vault_id, rg))
        if not v["cross_region_restore"]:
            raise ApiError(400, CODE_CRR_NOT_ENABLED, "Cross Region Restore is not enabled on Backup vault '%s' "
                           "(storage redundancy %s)." % (v["name"], v["redundancy"]),
                           user_facing=UserError(CODE_CRR_NOT_ENABLED, "Cross Region Restore is not enabled on the "
                                                 "vault.", "Enable Cross Region Restore on a geo-redundant vault "
                                                 "(featureSettings.crossRegionRestoreSettings), then wait for the "
                                                 "recovery points to be copied to the paired region.").user_facing())
        if _region(loc) != _region(v["secondary_location"]):
            raise ApiError(400, CODE_WRONG_SECONDARY, "Location '%s' is not the secondary region of Backup vault "
                           "'%s': its secondary region is '%s'." % (loc, v["name"], v["secondary_location"]))
        if source_region is not None and _region(source_region) != _region(v["location"]):
            raise bad_request("sourceRegion '%s' is not the region of Backup vault '%s' (%s)."
                              % (source_region, v["name"], v["location"]))
        return v

    def _bi(self, sub, rg, loc, bi_id, source_region):
        parts = str(bi_id or "").rstrip("/").split("/")
        if len(parts) < 11 or parts[-2].lower() != "backupinstances":
            raise bad_request("sourceBackupInstanceId '%s' is not the ARM id of a backup instance." % bi_id)
        v = self._vault(sub, rg, loc, "/".join(parts[:-2]), source_region)
        rec = self.app.state.data["backup_instances"].get(norm_id(bi_id))
        if rec is None:
            raise ApiError(404, "ResourceNotFound", "The backup instance '%s' was not found." % bi_id)
        return v, rec

    @staticmethod
    def _required(body, keys, where):
        if not isinstance(body, dict):
            raise bad_request("%s must be a JSON object." % where)
        for key in keys:
            if not body.get(key):
                raise bad_request("%s.%s is required." % (where, key), target="%s.%s" % (where, key))
        return body

    # ------------------------------------------------------------------------------------ points
    def secondary_points(self, bi):
        """The points already copied to the secondary region: taken at least secondary_lag_hours ago, and in the
        vault store (archive-tier points are not restored cross-region)."""
        lag = float(self.app.state.knobs["secondary_lag_hours"]) * 3600
        cutoff = now() - lag
        with self.app.state.lock:
            points = self.app.state.data["recovery_points"].get(norm_id(bi["id"]), {}).values()
            return [rp for rp in points if rp["time"] <= cutoff and any(s["type"] == "VaultStore" for s in rp["stores"])]

    def fetch_points(self, req, sub, rg, loc):
        offset, body = self._body(req)
        self._required(body, ("sourceRegion", "sourceBackupInstanceId"), "FetchSecondaryRPsRequestParameters")
        v, rec = self._bi(sub, rg, loc, body["sourceBackupInstanceId"], body["sourceRegion"])
        authorize(self.app, req, A + "/backupInstances/recoveryPoints/read", rec["id"])
        crit = self.dp._parse_filter(req.q("$filter"))
        start = micros(crit["startDate"]) if "startDate" in crit else None
        end = micros(crit["endDate"]) if "endDate" in crit else None
        points = [rp for rp in self.secondary_points(rec)
                  if (start is None or micros(rp["time"]) >= start) and (end is None or micros(rp["time"]) <= end)]
        points.sort(key=lambda p: p["time"], reverse=True)
        with self.app.state.lock:
            items = [self.dp.point_json(rec, rp) for rp in points]
        return json_response(self._page(req, items, offset, body))

    def _page(self, req, items, offset, body):
        size = int(self.app.state.knobs["page_size"])
        out = {"value": items[offset:offset + size]}
        if offset + size < len(items):
            query = "&".join("%s=%s" % (k, v) for k, v in req.query.items() if k.lower() != "$skiptoken")
            out["nextLink"] = "%s%s?%s&$skipToken=%s" % (self.app.base_url, req.path, query,
                                                         _token(offset + size, body))
        return out

    # ------------------------------------------------------------------------------------ validate / restore
    def _parse(self, req, sub, rg, loc):
        body = self._required(req.json(), ("restoreRequestObject", "crossRegionRestoreDetails"),
                              "CrossRegionRestoreRequestObject")
        rules._unknown(body, {"restoreRequestObject", "crossRegionRestoreDetails"}, "CrossRegionRestoreRequestObject")
        details = self._required(body["crossRegionRestoreDetails"], ("sourceRegion", "sourceBackupInstanceId"),
                                 "crossRegionRestoreDetails")
        v, rec = self._bi(sub, rg, loc, details["sourceBackupInstanceId"], details["sourceRegion"])
        spec = rules.parse_restore_request(body["restoreRequestObject"], "restoreRequestObject")
        rules.check_sync(self.app, rec, spec)
        return v, rec, spec

    def _evaluate(self, v, rec, spec):
        """The ordinary world rules, then what cross-region restore adds: the point must be in the secondary region,
        the target too."""
        try:
            if spec["recoveryPointId"] not in {rp["id"] for rp in self.secondary_points(rec)}:
                raise UserError(CODE_NOT_IN_SECONDARY, "Recovery point '%s' is not available in the secondary region "
                                "'%s' yet (points are copied there some hours after they are taken)."
                                % (spec["recoveryPointId"], v["secondary_location"]),
                                "List the secondary recovery points (fetchSecondaryRecoveryPoints) and pick one.")
            self._check_target_region(v, spec["target"])
            return rules.evaluate(self.app, rec, spec), None
        except UserError as exc:
            return None, exc

    def _check_target_region(self, v, target):
        world = self.app.world
        if target["objectType"] == "RestoreTargetInfo":
            parsed = rules.parse_server_db_id(target["resource_id"])
            res = world.servers.get(parsed[3].lower()) if parsed else None
            what = "target server"
        else:
            acct = rules.parse_container_url(target["url"])
            res = world.storage_accounts.get(acct[0]) if acct else None
            what = "target storage account"
        if res is None:
            return  # the ordinary rules name a missing target
        secondary = v["secondary_location"]
        if _region(res["location"]) != _region(secondary):
            raise UserError(CODE_TARGET_REGION, "The %s '%s' is in '%s'; a cross-region restore of vault '%s' "
                            "restores into its secondary region '%s'." % (what, res["name"], res["location"],
                                                                          v["name"], secondary),
                            "Restore into a server or storage account in '%s'." % secondary)
        loc = target.get("restoreLocation")
        if loc and _region(loc) != _region(secondary):
            raise UserError(CODE_TARGET_REGION, "restoreTargetInfo.restoreLocation '%s' is not the secondary region "
                            "'%s'." % (loc, secondary), "Set restoreLocation to '%s'." % secondary)

    def validate(self, req, sub, rg, loc):
        v, rec, spec = self._parse(req, sub, rg, loc)
        authorize(self.app, req, A + "/backupInstances/validateRestore/action", rec["id"])
        self.app.counters.inc("crr_validations_requested")
        dummy_plan, err = self._evaluate(v, rec, spec)
        return self.dp._start_operation(req, v, rec, "validate", error=err.as_error() if err else None,
                                        location=v["secondary_location"])

    def restore(self, req, sub, rg, loc):
        v, rec, spec = self._parse(req, sub, rg, loc)
        authorize(self.app, req, A + "/backupInstances/restore/action", rec["id"])
        self.app.counters.inc("crr_restores_requested")
        where = v["secondary_location"]
        plan, err = self._evaluate(v, rec, spec)
        if err:
            return self.dp._start_operation(req, v, rec, "restore", error=err.as_error(), location=where)
        engine = self.app.engine
        with engine.admission:      # busy check + job creation are one step, as for an ordinary restore
            if engine.busy(rec["id"]):
                return self.dp._start_operation(req, v, rec, "restore", error=self.dp._busy(rec).as_error(),
                                                location=where)
            job = engine.new_job(rec, "Restore", plan=dict(plan, crr_region=where),
                                 failure=req.ctx.get("job_failure"))
        return self.dp._start_operation(req, v, rec, "restore", job_id=self.dp.job_arm_id(job), location=where)

    # ------------------------------------------------------------------------------------ jobs
    @staticmethod
    def is_crr_job(job):
        return bool((job.get("plan") or {}).get("crr_region"))

    def fetch_jobs(self, req, sub, rg, loc):
        offset, body = self._body(req)
        self._required(body, ("sourceRegion", "sourceBackupVaultId"), "CrossRegionRestoreJobsRequest")
        v = self._vault(sub, rg, loc, body["sourceBackupVaultId"], body["sourceRegion"])
        authorize(self.app, req, A + "/backupJobs/read", v["id"])
        with self.app.state.lock:
            jobs = [j for j in self.app.state.data["jobs"].values()
                    if norm_id(j["vault_id"]) == norm_id(v["id"]) and self.is_crr_job(j)]
            jobs.sort(key=lambda j: j["start"], reverse=True)
            items = [self.dp.job_json(j) for j in jobs]
        return json_response(self._page(req, items, offset, body))

    def fetch_job(self, req, sub, rg, loc):
        body = self._required(req.json(), ("sourceRegion", "sourceBackupVaultId", "jobId"),
                              "CrossRegionRestoreJobRequest")
        v = self._vault(sub, rg, loc, body["sourceBackupVaultId"], body["sourceRegion"])
        authorize(self.app, req, A + "/backupJobs/read", v["id"])
        guid = str(body["jobId"]).rstrip("/").rsplit("/", 1)[-1].lower()
        with self.app.state.lock:
            rec = self.app.state.data["jobs"].get(guid)
            if rec is None or norm_id(rec["vault_id"]) != norm_id(v["id"]) or not self.is_crr_job(rec):
                raise ApiError(404, "ResourceNotFound", "The cross-region restore job '%s' was not found for vault "
                               "'%s' in '%s'." % (body["jobId"], v["name"], loc))
            return json_response(self.dp.job_json(rec))
