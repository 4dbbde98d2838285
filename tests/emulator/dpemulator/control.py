"""/_emulator/...: the control API for tests, the demo and benchmarks (knobs, faults, counters,
world actions).  Authenticated with the control token of env.json (Bearer or X-Emulator-Token)."""
import os
import random

from .errors import ApiError, user_facing_error
from .faults import validate_fault
from .server import CONTROL, META, json_response
from .state import merge_knobs
from .util import hex_id, iso, new_guid, norm_id, now
from .world import FLEXIBLE

SEED_JOBS_MAX = 1000000        # a typo in `count` must not fill the memory


class ControlApi:
    def __init__(self, app):
        self.app = app

    def register(self, r):
        C = r"/_emulator"
        r.add("GET", C + r"/health", self.health, META, "control.health")
        r.add("GET", C + r"/status", self.status, CONTROL, "control.status")
        r.add("GET", C + r"/knobs", self.get_knobs, CONTROL, "control.knobs")
        r.add("PATCH", C + r"/knobs", self.set_knobs, CONTROL, "control.knobs.set")
        r.add("PUT", C + r"/knobs", self.set_knobs, CONTROL, "control.knobs.set")
        r.add("GET", C + r"/faults", self.list_faults, CONTROL, "control.faults")
        r.add("POST", C + r"/faults", self.add_fault, CONTROL, "control.faults.add")
        r.add("DELETE", C + r"/faults", self.clear_faults, CONTROL, "control.faults.clear")
        r.add("DELETE", C + r"/faults/(?P<fid>[^/]+)", self.delete_fault, CONTROL, "control.faults.delete")
        r.add("GET", C + r"/counters", self.get_counters, CONTROL, "control.counters")
        r.add("DELETE", C + r"/counters", self.reset_counters, CONTROL, "control.counters.reset")
        r.add("GET", C + r"/servers", self.servers, CONTROL, "control.servers")
        r.add("GET", C + r"/backup-instances", self.list_bis, CONTROL, "control.backup_instances")
        r.add("POST", C + r"/backup", self.backup, CONTROL, "control.backup")
        r.add("POST", C + r"/archive", self.archive, CONTROL, "control.archive")
        r.add("POST", C + r"/seed-points", self.seed_points, CONTROL, "control.seed_points")
        r.add("POST", C + r"/seed-jobs", self.seed_jobs, CONTROL, "control.seed_jobs")
        r.add("POST", C + r"/jobs/(?P<guid>[^/]+)/cancel", self.cancel_job, CONTROL, "control.jobs.cancel")

    def health(self, req):
        return json_response({"status": "ok", "pid": os.getpid(), "url": self.app.base_url})

    def status(self, req):
        d = self.app.state.data
        with self.app.state.lock:
            jobs = list(d["jobs"].values())
            body = {"pid": os.getpid(), "url": self.app.base_url, "state_dir": self.app.state_dir,
                    "world": self.app.world.path, "backup_instances": len(d["backup_instances"]),
                    "recovery_points": sum(len(v) for v in d["recovery_points"].values()),
                    "jobs": len(jobs), "jobs_running": sum(1 for j in jobs if j["status"] in ("InProgress",
                                                                                         "Cancelling")),
                    "operations": len(d["operations"]), "role_assignments": len(d["role_assignments"]),
                    "knobs": self.app.state.knobs}
        return json_response(body)

    def get_knobs(self, req):
        return json_response(self.app.state.knobs)

    def set_knobs(self, req):
        try:
            with self.app.state.tx() as data:
                data["knobs"] = merge_knobs(data["knobs"], req.json())
        except (ValueError, TypeError) as exc:
            raise ApiError(400, "BadRequest", str(exc))
        self.app.throttle.reset()
        return json_response(self.app.state.knobs)

    def list_faults(self, req):
        return json_response({"value": self.app.state.data["faults"]})

    def add_fault(self, req):
        try:
            rule = validate_fault(req.json())
        except (ValueError, TypeError) as exc:
            raise ApiError(400, "BadRequest", str(exc))
        with self.app.state.tx() as data:
            data["faults"].append(rule)
        return json_response(rule, 201)

    def clear_faults(self, req):
        with self.app.state.tx() as data:
            data["faults"] = []
        return json_response({"value": []})

    def delete_fault(self, req, fid):
        with self.app.state.tx() as data:
            data["faults"] = [f for f in data["faults"] if f["id"] != fid]
        return json_response({"value": self.app.state.data["faults"]})

    def get_counters(self, req):
        return json_response(self.app.counters.snapshot())

    def reset_counters(self, req):
        self.app.counters.reset()
        return json_response(self.app.counters.snapshot())

    def servers(self, req):
        out = {}
        for key, srv in self.app.world.servers.items():
            s = self.app.clusters.server(key)
            out[srv["name"]] = {"host": s.host, "port": s.port, "admin_user": s.admin_user,
                                "admin_password": s.admin_password, "kind": srv["kind"], "version": srv["version"],
                                "real_version": s.version, "id": srv["id"],
                                "fqdn": "%s.postgres.database.azure.com" % srv["name"].lower()}
        return json_response(out)

    def list_bis(self, req):
        with self.app.state.lock:
            return json_response({"value": [{"name": b["name"], "id": b["id"], "server": b["server"],
                                             "database": b["database"]}
                                            for b in self.app.state.data["backup_instances"].values()]})

    def find_bi(self, ref):
        """A backup instance by name, ARM id, or datasource shorthand 'server/database' / 'server'."""
        if not ref:
            raise ApiError(400, "BadRequest", "backup_instance is required")
        ref_l = str(ref).lower()
        matches = []
        for b in self.app.state.data["backup_instances"].values():
            short = b["server"] + ("/" + b["database"].lower() if b["database"] else "")
            if ref_l in (b["name"].lower(), norm_id(b["id"]), short) or norm_id(ref_l) == norm_id(b["id"]):
                matches.append(b)
        if len(matches) != 1:
            raise ApiError(404, "NotFound", "No single backup instance matches %r." % ref)
        return matches[0]

    def _rp_json(self, bi, rp):
        return self.app.dataprotection.point_json(bi, rp)

    def backup(self, req):
        body = req.json()
        bi = self.find_bi(body.get("backup_instance"))
        # hours_ago: the point is stamped as taken that long ago (today's data), e.g. already copied to the secondary
        # region of cross-region restore (knob secondary_lag_hours)
        when = now() - float(body["hours_ago"]) * 3600 if body.get("hours_ago") else None
        rp = self.app.engine.take_backup(bi, when)
        return json_response(self._rp_json(bi, rp), 201)

    def archive(self, req):
        body = req.json()
        bi = self.find_bi(body.get("backup_instance"))
        rp_id = body.get("recovery_point") or "latest"
        points = self.app.state.data["recovery_points"].get(norm_id(bi["id"]), {})
        if rp_id == "latest":
            if not points:
                raise ApiError(404, "NotFound", "The backup instance has no recovery point.")
            rp_id = max(points.values(), key=lambda p: p["time"])["id"]
        try:
            rp = self.app.engine.archive_point(bi, rp_id.rstrip("/").split("/")[-1])
        except KeyError:
            raise ApiError(404, "NotFound", "No recovery point %s." % rp_id)
        return json_response(self._rp_json(bi, rp))

    def seed_points(self, req):
        body = req.json()
        bi = self.find_bi(body.get("backup_instance"))
        made = self.app.engine.seed_points(bi, int(body.get("count", 10)), float(body.get("interval_hours", 24)),
                                           bool(body.get("archive")))
        return json_response({"value": [{"id": rp["id"], "time": iso(rp["time"])} for rp in made]}, 201)

    def seed_jobs(self, req):
        """A vault's job history without running the jobs: `count` finished backup and restore jobs in ONE state
        write (B5), backdated one `interval_minutes` apart, so that the jobs list has pages to go through."""
        body = req.json()
        vault = self.find_vault(body.get("vault"))
        history = JobHistory(self.app, vault, self.vault_bis(vault, body.get("backup_instances")), body)
        with self.app.state.tx() as data:     # built under the lock: the points it names stay as they are
            jobs = history.build()
            data["jobs"].update((job["guid"], job) for job in jobs)
        return json_response(history.summary(jobs), 201)

    def find_vault(self, ref):
        """A vault by name or ARM id."""
        ref_l = str(ref or "").lower()
        for v in self.app.world.vaults.values():
            if ref_l in (v["name"].lower(), norm_id(v["id"])):
                return v
        raise ApiError(404, "NotFound", "No vault %r." % ref)

    def vault_bis(self, vault, refs=None):
        """The backup instances `refs` (default: all of the vault's); each must be one of the vault's."""
        key = norm_id(vault["id"])
        bis = [self.find_bi(ref) for ref in refs] if refs else [
            b for b in self.app.state.data["backup_instances"].values() if norm_id(b["vault_id"]) == key]
        if not bis or any(norm_id(b["vault_id"]) != key for b in bis):
            raise ApiError(400, "BadRequest", "No backup instance, or one of another vault than %s." % vault["name"])
        return bis

    def cancel_job(self, req, guid):
        try:
            job = self.app.engine.cancel(guid.lower())
        except KeyError:
            raise ApiError(404, "NotFound", "No job %s." % guid)
        return json_response({"id": job["guid"], "status": job["status"]})


class JobHistory:
    """Finished jobs for seed-jobs, in the records the engine keeps (engine.Engine.new_job + _finish), newest first.

    Body: count (10), restore_share (0.25: the share of restores, the rest are backups), failed_share (0: the
    share of Failed jobs, the rest Completed), interval_minutes (60) between two starts, duration_seconds (600)
    of each job, target_server (the instance's own server) of the restores as a database, seed (0). Which job is
    a restore or failed, and on which backup instance, is drawn from a generator seeded with `seed`, so that no
    pattern lines up with the instances. A restore reads the instance's points in turn (newest first) into a new
    database `seeded_<n>`, or, from a flexible server, as files `seeded-<n>` into the world's first container (a
    backup instead when the world has none); a backup made a point that has expired since. None of the
    databases, blobs or points a seeded job names as its result exists."""

    def __init__(self, app, vault, bis, body):
        self.app, self.vault, self.bis = app, vault, bis
        try:
            self.count = int(body.get("count", 10))
            self.restore_share = float(body.get("restore_share", 0.25))
            self.failed_share = float(body.get("failed_share", 0.0))
            self.interval = float(body.get("interval_minutes", 60)) * 60
            self.duration = float(body.get("duration_seconds", 600))
            self.rng = random.Random(body.get("seed", 0))
        except (TypeError, ValueError) as exc:
            raise ApiError(400, "BadRequest", "seed-jobs: %s" % exc)
        if not 0 <= self.count <= SEED_JOBS_MAX:
            raise ApiError(400, "BadRequest", "seed-jobs: count must be 0..%d." % SEED_JOBS_MAX)
        if not (0 <= self.restore_share <= 1 and 0 <= self.failed_share <= 1):
            raise ApiError(400, "BadRequest", "seed-jobs: restore_share and failed_share are shares (0..1).")
        if not 0 < self.duration <= self.interval:
            # one job after the other: the service runs one operation at a time per backup instance
            raise ApiError(400, "BadRequest", "seed-jobs: duration_seconds must be > 0 and <= interval_minutes * 60.")
        self.target = self._target_server(body.get("target_server"))
        self.container = next(((a["name"], c) for a in app.world.storage_accounts.values() for c in a["containers"]),
                              None)
        self.points = {}        # backup instance id -> its points, newest first
        self.turn = {}          # backup instance id -> how many restores of its points the history has

    def _target_server(self, name):
        if not name:
            return None
        srv = self.app.world.servers.get(str(name).lower())
        if srv is None or srv["kind"] == FLEXIBLE:
            raise ApiError(400, "BadRequest", "seed-jobs: target_server must be a single server of the world.")
        return srv

    def build(self):
        restores = set(self.rng.sample(range(self.count), round(self.count * self.restore_share)))
        failed = set(self.rng.sample(range(self.count), round(self.count * self.failed_share)))
        newest = now()
        jobs = []
        for i in range(self.count):
            bi = self.rng.choice(self.bis)
            plan = self._restore_plan(bi, i) if i in restores else None
            jobs.append(self._job(bi, newest - (i + 1) * self.interval, plan, i in failed))
        return jobs

    def _points(self, bi):
        key = norm_id(bi["id"])
        if key not in self.points:
            stored = self.app.state.data["recovery_points"].get(key, {}).values()
            self.points[key] = sorted(stored, key=lambda rp: -rp["time"])
        return self.points[key]

    def _next_point(self, bi):
        """The instance's points in turn, newest first; a made-up one when it has none."""
        points = self._points(bi)
        key = norm_id(bi["id"])
        self.turn[key] = self.turn.get(key, 0) + 1
        if not points:
            return {"id": hex_id(), "time": now() - 86400, "size": 0}
        return points[(self.turn[key] - 1) % len(points)]

    def _restore_plan(self, bi, i):
        """The plan fields job_json shows (no secret: a finished job never reads one); None: a backup instead."""
        flexible = self.app.world.servers[bi["server"]]["kind"] == FLEXIBLE
        if flexible and self.container is None:
            return None
        point = self._next_point(bi)
        plan = {"rp_id": point["id"], "rp_time": point["time"], "source_store": "VaultStore", "rehydration": None}
        if flexible:
            account, container = self.container
            prefix = "seeded-%06d" % i
            plan.update(kind="files", account=account.lower(), container=container, prefix=prefix,
                        per_database=True,
                        destination="%s/blob/%s/%s/%s" % (self.app.base_url, account, container, prefix))
        else:
            server = self.target or self.app.world.servers[bi["server"]]
            database = "seeded_%06d" % i
            plan.update(kind="database", server=server["name"].lower(), database=database,
                        destination="%s/databases/%s" % (server["id"], database))
        return plan

    def _job(self, bi, start, plan, failed):
        end = start + self.duration
        status = "Failed" if failed else "Completed"
        points = self._points(bi)
        size = 0 if failed or not points else points[0].get("size") or 0
        error = None
        if failed:
            error = user_facing_error("UserErrorRestoreFailed" if plan else "UserErrorBackupFailed",
                                      "The job failed (a seeded job).", "Retry the operation.")
        return {"guid": new_guid(), "vault_id": self.vault["id"], "bi_id": bi["id"],
                "operation": "Restore" if plan else "Backup", "status": status, "start": start, "end": end,
                "min_end": end, "rehydration_end": None, "phase": "done", "plan": plan,
                "sub_tasks": [{"taskId": 1, "taskName": "Trigger Restore" if plan else "Take Backup",
                               "taskStatus": status, "taskProgress": None, "additionalDetails": None}],
                "bytes": size, "cancel": False, "failure": None, "error": error, "activity": new_guid(),
                "restore_started": False,
                "result_point": None if plan or failed else {"id": hex_id(), "time": end}}

    def summary(self, jobs):
        restores = sum(1 for j in jobs if j["operation"] == "Restore")
        return {"vault": self.vault["name"], "count": len(jobs), "restore": restores, "backup": len(jobs) - restores,
                "failed": sum(1 for j in jobs if j["status"] == "Failed"), "backup_instances": len(self.bis),
                "newest": iso(jobs[0]["start"]) if jobs else None, "oldest": iso(jobs[-1]["start"]) if jobs else None}
