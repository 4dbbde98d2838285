"""The backup/restore worker: jobs that do real pg_dump / pg_restore work and take at least the
configured durations, recovery points in a vault store on disk, the archive tier and rehydration.

Every job phase is persisted before it starts, so a restarted emulator resumes in-flight jobs
(`resume()`): a half-done database restore is dropped and done again, rehydration waits out its
remaining time.  A job never holds a secret: it re-reads the connection string from the key vault
state when it needs it, as the service does.
"""
import logging
import os
import shutil
import threading
import time

from . import postgres as pg
from . import rules
from .errors import UserError, user_facing_error
from .util import hex_id, new_guid, norm_id, now

log = logging.getLogger("dpemulator.engine")

TERMINAL = ("Completed", "Failed", "Cancelled")
# The server-wide files of a flexible server's backup: (pg_dumpall part, the file's name in a restore as files).
SERVER_FILES = (("roles", "roles"), ("tablespaces", "tablespace"), ("schema", "schema"))


class Cancelled(Exception):
    pass


class Engine:
    def __init__(self, app):
        self.app = app
        self.state = app.state
        self.store_root = os.path.join(app.state_dir, "vaultstore")
        self.stopping = threading.Event()
        self.threads = {}
        self.admission = threading.Lock()   # the handlers hold it around busy() + new_job()

    # ------------------------------------------------------------------------------------ points
    def take_backup(self, bi, when=None):
        """pg_dump the protected database(s) into the vault store; returns the new recovery point."""
        rp_id, files, size = self.dump_backup(bi)
        return self.add_point(bi, when or now(), rp_id, files, size)

    def dump_backup(self, bi):
        """pg_dump the protected database(s) into a new vault store folder (no state change, no lock held):
        returns (rp_id, files, size) for `new_point`."""
        world = self.app.world
        srv = world.servers[bi["server"]]
        server = self.app.clusters.server(srv["name"])
        rp_id = hex_id()
        folder = os.path.join(self.store_root, rp_id)
        os.makedirs(folder, exist_ok=True)
        dbs = [bi["database"]] if bi["database"] else [d for d in pg.list_databases(server)
                                                        if d not in ("postgres", "azure_maintenance", "azure_sys")]
        files, size = {}, 0
        try:
            for db in dbs:
                size += pg.dump_database(server, db, os.path.join(folder, db + ".dump"))
                files[db] = db + ".dump"
            if not bi["database"]:
                # A flexible server's backup is the whole server: its roles, tablespaces and schema too.
                for what, _name in SERVER_FILES:
                    size += pg.dump_globals(server, os.path.join(folder, "_%s.sql" % what), what)
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        return rp_id, files, size

    @staticmethod
    def new_point(bi, when, rp_id, files, size, folder_of=None, created=None):
        """A recovery point record (not stored yet)."""
        created = created or now()
        return {"id": rp_id, "time": when, "created": created, "policy": bi["policy"], "folder": folder_of or rp_id,
                "files": files, "size": size,
                "stores": [{"id": new_guid(), "type": "VaultStore", "creation": created,
                            "expiry": when + 90 * 86400, "rehydration_status": None, "rehydration_expiry": None}]}

    @staticmethod
    def to_archive(rp):
        """Move a point record to the archive tier: its only datastore becomes ArchiveStore."""
        rp["stores"] = [{"id": new_guid(), "type": "ArchiveStore", "creation": now(),
                         "expiry": rp["time"] + 3650 * 86400, "rehydration_status": None,
                         "rehydration_expiry": None}]
        return rp

    def add_points(self, bi, points):
        """Store point records of one backup instance in ONE state write (B5: not one write per point)."""
        with self.state.tx() as data:
            stored = data["recovery_points"].setdefault(norm_id(bi["id"]), {})
            for rp in points:
                stored[rp["id"]] = rp
        return points

    def add_point(self, bi, when, rp_id, files, size, folder_of=None):
        return self.add_points(bi, [self.new_point(bi, when, rp_id, files, size, folder_of)])[0]

    def dump_paths(self, rp):
        folder = os.path.join(self.store_root, rp["folder"])
        return {db: os.path.join(folder, name) for db, name in rp["files"].items()}

    def archive_point(self, bi, rp_id):
        """Move a point to the archive tier: its only datastore becomes ArchiveStore."""
        with self.state.tx() as data:
            rp = data["recovery_points"].get(norm_id(bi["id"]), {}).get(rp_id)
            if rp is None:
                raise KeyError(rp_id)
            return dict(self.to_archive(rp))

    def seed_points(self, bi, count, interval_hours=24.0, archive=False):
        """Add `count` points (backdated) sharing the dump of a fresh backup: cheap paging fixtures.
        One pg_dump, then all points (archived or not) in one state write."""
        rp_id, files, size = self.dump_backup(bi)
        base_time = created = now()
        made = [self.new_point(bi, base_time, rp_id, files, size, created=created)]
        for i in range(1, int(count)):
            made.append(self.new_point(bi, base_time - i * interval_hours * 3600, hex_id(), files, size,
                                       folder_of=rp_id, created=created))
        if archive:
            for rp in made:
                self.to_archive(rp)
        return self.add_points(bi, made)

    # ------------------------------------------------------------------------------------ jobs
    def busy(self, bi_id):
        """A restore or backup job still running on this backup instance?"""
        key = norm_id(bi_id)
        with self.state.lock:
            return any(norm_id(j["bi_id"]) == key and j["status"] not in TERMINAL
                       for j in self.state.data["jobs"].values())

    def new_job(self, bi, operation, plan=None, failure=None):
        start = now()
        knobs = self.state.knobs
        sub_tasks = []
        if operation == "Restore":
            if plan.get("rehydration"):
                sub_tasks.append({"taskId": len(sub_tasks) + 1, "taskName": "Rehydrate Recovery Point",
                                  "taskStatus": "NotStarted", "taskProgress": None, "additionalDetails": None})
            sub_tasks.append({"taskId": len(sub_tasks) + 1, "taskName": "Trigger Restore", "taskStatus": "NotStarted",
                              "taskProgress": None, "additionalDetails": None})
        else:
            sub_tasks.append({"taskId": 1, "taskName": "Take Backup", "taskStatus": "NotStarted",
                              "taskProgress": None, "additionalDetails": None})
        rehydration = (plan or {}).get("rehydration")
        job = {"guid": new_guid(), "vault_id": bi["vault_id"], "bi_id": bi["id"], "operation": operation,
               "status": "InProgress", "start": start, "end": None,
               "min_end": start + float(knobs["job_duration"]) + (float(knobs["rehydration_duration"])
                                                                 if rehydration else 0.0),
               "rehydration_end": start + float(knobs["rehydration_duration"]) if rehydration else None,
               "phase": "queued", "plan": plan, "sub_tasks": sub_tasks, "bytes": 0, "cancel": False,
               "failure": failure, "error": None, "activity": new_guid(), "restore_started": False,
               "result_point": None}
        with self.state.tx() as data:
            data["jobs"][job["guid"]] = job
        self.app.counters.inc("restore_jobs_created" if operation == "Restore" else "backup_jobs_created")
        self._spawn(job["guid"])
        return job

    def _spawn(self, guid):
        t = threading.Thread(target=self._run, args=(guid,), name="job-%s" % guid[:8], daemon=True)
        self.threads[guid] = t
        t.start()

    def resume(self):
        with self.state.lock:
            pending = [g for g, j in self.state.data["jobs"].items() if j["status"] not in TERMINAL]
        for guid in pending:
            log.info("resuming job %s", guid)
            self._spawn(guid)
        return len(pending)

    def cancel(self, guid):
        with self.state.tx() as data:
            job = data["jobs"].get(guid)
            if job is None:
                raise KeyError(guid)
            if job["status"] in TERMINAL:
                return dict(job)
            job["cancel"] = True
            job["status"] = "Cancelling"
            return dict(job)

    def _job(self, guid):
        return self.state.data["jobs"][guid]

    def _update(self, guid, **changes):
        with self.state.tx() as data:
            data["jobs"][guid].update(changes)

    def _task(self, guid, name, status):
        with self.state.tx() as data:
            for t in data["jobs"][guid]["sub_tasks"]:
                if t["taskName"] == name:
                    t["taskStatus"] = status

    def _wait_until(self, guid, deadline):
        while True:
            if self._job(guid)["cancel"]:
                raise Cancelled()
            left = deadline - now()
            if left <= 0:
                return
            if self.stopping.wait(min(left, 0.1)):
                raise SystemExit()      # the emulator is stopping; the job resumes after a restart

    def _run(self, guid):
        try:
            job = self._job(guid)
            if job["operation"] == "Restore":
                self._restore(guid)
            else:
                self._backup(guid)
            self._wait_until(guid, self._job(guid)["min_end"])
            self._finish(guid, "Completed")
        except SystemExit:
            return
        except Cancelled:
            self._cleanup(guid)
            self._finish(guid, "Cancelled")
        except UserError as exc:
            self._cleanup(guid)
            self._finish(guid, "Failed", exc.user_facing())
        except Exception as exc:     # a bug or an environment problem: fail the job, keep the emulator up
            log.exception("job %s failed", guid)
            self._cleanup(guid)
            self._finish(guid, "Failed", user_facing_error(rules.CODE_RESTORE_FAILED, "The job failed: %s" % exc,
                                                           is_user_error=False))
        finally:
            self.threads.pop(guid, None)

    def _finish(self, guid, status, error=None):
        with self.state.tx() as data:
            job = data["jobs"][guid]
            job["status"] = status
            job["end"] = now()
            job["phase"] = "done"
            if error:
                job["error"] = error
            for t in job["sub_tasks"]:
                if t["taskStatus"] in ("NotStarted", "InProgress"):
                    t["taskStatus"] = {"Completed": "Completed", "Failed": "Failed"}.get(status, "Cancelled")
        log.info("job %s %s", guid, status)

    def _fail_injected(self, guid):
        job = self._job(guid)
        if job["failure"]:
            self._wait_until(guid, job["min_end"])
            f = job["failure"]
            raise UserError(f["code"], f["message"], "This failure was injected by the emulator.")

    # ------------------------------------------------------------------------------------ backup
    def _backup(self, guid):
        job = self._job(guid)
        self._task(guid, "Take Backup", "InProgress")
        self._fail_injected(guid)
        bi = self.state.data["backup_instances"][norm_id(job["bi_id"])]
        if not job["result_point"]:
            rp = self.take_backup(bi)
            self._update(guid, result_point={"id": rp["id"], "time": rp["time"]}, bytes=rp["size"])
        self._task(guid, "Take Backup", "Completed")

    # ------------------------------------------------------------------------------------ restore
    def _restore(self, guid):
        job = self._job(guid)
        plan = job["plan"]
        if plan.get("rehydration") and job["phase"] in ("queued", "rehydrating"):
            self._update(guid, phase="rehydrating")
            self._task(guid, "Rehydrate Recovery Point", "InProgress")
            self._mark_rehydration(job, "CREATE_IN_PROGRESS")
            self._wait_until(guid, job["rehydration_end"])
            self._mark_rehydration(job, "COMPLETED")
            self._task(guid, "Rehydrate Recovery Point", "Completed")
        self._update(guid, phase="restoring")
        self._task(guid, "Trigger Restore", "InProgress")
        self._fail_injected(guid)
        bi = self.state.data["backup_instances"][norm_id(job["bi_id"])]
        rp = self.state.data["recovery_points"][norm_id(bi["id"])][plan["rp_id"]]
        paths = self.dump_paths(rp)
        if plan["kind"] == "database":
            self._restore_database(guid, plan, paths)
        else:
            self._restore_files(guid, plan, paths)
        self._task(guid, "Trigger Restore", "Completed")

    def _mark_rehydration(self, job, status):
        days = job["plan"]["rehydration"]["retention_days"]
        with self.state.tx() as data:
            rp = data["recovery_points"].get(norm_id(job["bi_id"]), {}).get(job["plan"]["rp_id"])
            if rp is None:
                return
            copy = next((s for s in rp["stores"] if s["type"] == "VaultStore"), None)
            if copy is None:
                copy = {"id": new_guid(), "type": "VaultStore", "creation": now(), "expiry": None}
                rp["stores"].append(copy)
            copy["rehydration_status"] = status
            copy["rehydration_expiry"] = now() + days * 86400 if status == "COMPLETED" else None
            copy["expiry"] = copy["rehydration_expiry"]

    def _restore_database(self, guid, plan, paths):
        app = self.app
        target = app.world.servers[plan["server"]]
        db = plan["database"]
        admin = app.clusters.server(target["name"])
        if self._job(guid)["restore_started"]:
            # Resumed after a restart in the middle of pg_restore: the half-restored database is ours.
            pg.drop_database(admin, db)
        value = app.keyvault.secret_value(plan["secret"]["kv"], plan["secret"]["name"], plan["secret"]["version"])
        if value is None:
            raise UserError("UserErrorInvalidSecret", "The secret '%s' was not found." % plan["secret"]["name"],
                            "Create the secret or fix the secret identifier.")
        conn = rules.resolve_connection(app, value, target)
        dump = next(iter(paths.values()))
        self._update(guid, restore_started=True)
        try:
            pg.restore_database(conn["host"], conn["port"], conn["user"], conn["password"], db, dump,
                                sslmode=conn["ssl_mode"])
        except pg.LoginFailed:
            raise UserError("UserErrorDBUserAuthFailed", "The database user in the secret could not log in to the "
                            "target server '%s'." % target["name"], "Update the credentials in the secret.")
        except pg.DatabaseExists:
            self._update(guid, restore_started=False)    # not ours: never drop it
            raise UserError("UserErrorDatabaseNameAlreadyInUse", "A database named '%s' already exists on the "
                            "target server." % db, "Give a new database name.")
        except pg.PermissionDenied:
            raise UserError("UserErrorMissingDBPermissions", "The database user lacks privileges to restore.",
                            "Grant CREATEDB and azure_pg_admin to the user of the secret.")
        except pg.ConnectFailed as exc:
            raise UserError("UserErrorServerConnectionClosed", "The target server closed the connection: %s" % exc,
                            "Retry the restore.", is_retryable=True)
        except pg.PgError as exc:
            raise UserError(rules.CODE_RESTORE_FAILED, "pg_restore failed: %s" % exc, "Retry the restore.")
        self._update(guid, bytes=os.path.getsize(dump))

    def _restore_files(self, guid, plan, paths):
        total = 0
        names = []
        for blob, path in self._file_blobs(plan, paths):
            self._store_blob(plan, blob, path)
            names.append(blob)
            total += os.path.getsize(path)
        self._update(guid, bytes=total, blobs=names)

    @staticmethod
    def _file_blobs(plan, paths):
        """(blob name, local file) of a restore as files. Single server: '<prefix>.dump' (emulator-chosen). Flexible
        server, as Microsoft documents its vaulted backups restored as files: a '<database>.sql' per database (a
        pg_dump custom-format archive, for pg_restore), 'roles.sql', 'tablespace.sql' and 'schema.sql' (plain SQL of
        the whole server), each name after '<prefix>_' (how the prefix is joined is emulator-chosen)."""
        prefix = plan["prefix"]
        if not plan.get("per_database"):
            return [(prefix + ".dump", path) for _db, path in sorted(paths.items())]
        out = [("%s_%s.sql" % (prefix, db), path) for db, path in sorted(paths.items())]
        folder = os.path.dirname(next(iter(paths.values()))) if paths else None
        for what, name in SERVER_FILES:
            path = os.path.join(folder, "_%s.sql" % what) if folder else ""
            if os.path.isfile(path):
                out.append(("%s_%s.sql" % (prefix, name), path))
        return out

    def _store_blob(self, plan, blob, path):
        if self.app.azurite.serves(plan.get("destination")):
            self.app.azurite.upload_file(plan["account"], plan["container"], blob, path)
        else:
            self.app.storage.store_file(plan["account"], plan["container"], blob, path)

    def _remove_blob(self, plan, blob):
        if self.app.azurite.serves(plan.get("destination")):
            self.app.azurite.delete_blob(plan["account"], plan["container"], blob)
        else:
            self.app.storage.remove_blob(plan["account"], plan["container"], blob)

    def _cleanup(self, guid):
        """Undo a restore's partial effects after a failure or cancellation (not a database we did not make)."""
        job = self._job(guid)
        plan = job.get("plan") or {}
        try:
            if plan.get("kind") == "database" and job.get("restore_started"):
                pg.drop_database(self.app.clusters.server(self.app.world.servers[plan["server"]]["name"]),
                                 plan["database"])
            elif plan.get("kind") == "files":
                for blob in job.get("blobs") or []:
                    self._remove_blob(plan, blob)
        except Exception:
            log.exception("cleanup of job %s failed", guid)

    def stop(self):
        self.stopping.set()
        deadline = time.time() + 5
        for t in list(self.threads.values()):
            t.join(max(0.0, deadline - time.time()))
