"""/_emulator/...: the control API for tests, the demo and benchmarks (knobs, faults, counters,
world actions).  Authenticated with the control token of env.json (Bearer or X-Emulator-Token)."""
import os

from .errors import ApiError
from .faults import validate_fault
from .server import CONTROL, META, json_response
from .state import merge_knobs
from .util import iso, norm_id


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
        rp = self.app.engine.take_backup(bi)
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

    def cancel_job(self, req, guid):
        try:
            job = self.app.engine.cancel(guid.lower())
        except KeyError:
            raise ApiError(404, "NotFound", "No job %s." % guid)
        return json_response({"id": job["guid"], "status": job["status"]})
