# Copyright: (c) 2025, Azure Backup Data Protection collection contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Helpers of scripts/bench.py (outside pytest): the emulator handle, world files, measured subprocesses.

Nothing here asserts a duration: it measures and returns figures.
"""

from __future__ import annotations

import copy
import dataclasses
import datetime as dt
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid

import requests
import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
WORLDS = os.path.join(HERE, "worlds")
TENANT_SCOPE = "https://management.azure.com/.default"
API_VERSION = "2024-04-01"
VAULT, VAULT_RG = "TestBkpVault", "testBkpVaultRG"
VAULT_PRINCIPAL = "c5e3d1a9-7b2f-4e8d-a6c4-0f1e2d3c4b10"
SOURCE_SERVER, TARGET_SERVER = "sourceossserver", "targetossserver"
KEY_VAULT, SECRET_NAME = "targetosskv", "targetossserver-conn"
CLK_TCK = os.sysconf("SC_CLK_TCK")


# ---------------------------------------------------------------------------------------------- worlds

def bench_world(backup_instances, source_databases):
    """The bench world: tests/bench/worlds/base.yml + a source server with `source_databases` ([{name,
    sample_rows}]) and `backup_instances` ([(name, database, initial backup?)]) in TestBkpVault, whose identity
    may already restore to targetossserver. Returns the YAML document (a dict)."""
    with open(os.path.join(WORLDS, "base.yml"), encoding="utf-8") as fh:
        doc = yaml.safe_load(fh)
    source = next(s for s in doc["postgres_servers"] if s["name"] == SOURCE_SERVER)
    source["databases"] = list(source_databases)
    doc["vaults"] = [{"name": VAULT, "resource_group": VAULT_RG, "principal_id": VAULT_PRINCIPAL}]
    doc["role_assignments"] = list(doc.get("role_assignments") or []) + [
        {"principal": "vault:" + VAULT, "role": "Reader", "scope": "server:" + SOURCE_SERVER},
        {"principal": "vault:" + VAULT, "role": "Reader", "scope": "server:" + TARGET_SERVER},
        {"principal": "vault:" + VAULT, "role": "Key Vault Secrets User", "scope": "key_vault:" + KEY_VAULT},
    ]
    doc["backup_instances"] = [
        {"vault": VAULT, "name": name, "server": SOURCE_SERVER, "database": database, "policy": "benchpol",
         "initial_backups": [{"days_ago": 1}] if initial else []}
        for name, database, initial in backup_instances]
    return doc


def write_world(doc, path):
    with open(path, "w", encoding="utf-8") as fh:
        yaml.safe_dump(doc, fh, sort_keys=False)
    return path


# ---------------------------------------------------------------------------------------------- emulator

class EmulatorError(RuntimeError):
    pass


class Emulator:
    """One emulator instance started by the bench (state dir under /tmp, stopped by its pid)."""

    def __init__(self, state_dir, world=None, log=print):
        self.state = state_dir
        self.world = world
        self.log = log
        self.env = {}
        self._token = None
        self._session = None

    # lifecycle -----------------------------------------------------------------------------------
    def _cli(self, *args, timeout=1200):
        argv = [sys.executable, "-m", "dpemulator.cli"] + list(args)
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
        if proc.returncode != 0:
            raise EmulatorError("dpemulator %s failed (%d): %s %s" % (
                " ".join(args[:1]), proc.returncode, proc.stdout[-2000:], proc.stderr[-2000:]))
        return proc

    def start(self, knobs=None, timeout=1200):
        args = ["start", "--state", self.state, "--timeout", str(timeout)]
        if self.world and not os.path.exists(os.path.join(self.state, "state.json")):
            args += ["--world", self.world]
        self._cli(*args, timeout=timeout + 60)
        with open(os.path.join(self.state, "env.json"), encoding="utf-8") as fh:
            self.env = json.load(fh)
        self._token = None
        # REQUESTS_CA_BUNDLE in the environment overrides Session.verify: verify= is passed on each call
        self._session = requests.Session()
        if knobs:
            self.set_knobs(knobs)
        return self

    def stop(self):
        if not os.path.exists(os.path.join(self.state, "emulator.pid")) and not self.env:
            return
        try:
            self._cli("stop", "--state", self.state, timeout=120)
        except (EmulatorError, subprocess.TimeoutExpired) as exc:
            self.log("warning: %s" % exc)
        pid = self.pid
        if pid:
            try:  # the emulator this bench started, by its pid, if `stop` left it running
                with open("/proc/%d/cmdline" % pid, "rb") as fh:
                    if b"dpemulator" in fh.read():
                        os.kill(pid, signal.SIGKILL)
            except (FileNotFoundError, ProcessLookupError):
                pass

    def snapshot(self, name):
        """Copy state.json (taken when no job runs) to restore it later with reset()."""
        shutil.copy2(os.path.join(self.state, "state.json"), os.path.join(self.state, name))

    def reset(self, name, knobs=None):
        """Stop, put the snapshot back, start: the world as it was (jobs, operations and knobs included)."""
        self._cli("stop", "--state", self.state, timeout=120)
        shutil.copy2(os.path.join(self.state, name), os.path.join(self.state, "state.json"))
        return self.start(knobs=knobs)

    # properties ----------------------------------------------------------------------------------
    @property
    def url(self):
        return self.env["DPEMULATOR_URL"]

    @property
    def ca(self):
        return self.env["REQUESTS_CA_BUNDLE"]

    @property
    def sub(self):
        return self.env["AZURE_SUBSCRIPTION_ID"]

    @property
    def pid(self):
        try:
            return int(self.env.get("DPEMULATOR_PID") or 0) or None
        except ValueError:
            return None

    def cpu_seconds(self):
        """CPU time the emulator process used so far (its PostgreSQL servers not included)."""
        try:
            with open("/proc/%d/stat" % self.pid, encoding="ascii") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / CLK_TCK
        except (OSError, TypeError, IndexError, ValueError):
            return None

    def client_env(self):
        """What a client of this emulator needs: env.sh's variables, REQUESTS_CA_BUNDLE on the emulator's CA."""
        keys = ("AZURE_CLOUD_ENVIRONMENT", "AZURE_SUBSCRIPTION_ID", "AZURE_CLIENT_ID", "AZURE_SECRET", "AZURE_TENANT",
                "REQUESTS_CA_BUNDLE")
        return {k: self.env[k] for k in keys}

    # control API ---------------------------------------------------------------------------------
    def control(self, method, path, body=None, timeout=600):
        r = self._session.request(method, self.url + "/_emulator" + path, json=body, timeout=timeout, verify=self.ca,
                                  headers={"Authorization": "Bearer " + self.env["DPEMULATOR_CONTROL_TOKEN"]})
        if r.status_code >= 300:
            raise EmulatorError("control %s %s: HTTP %d %s" % (method, path, r.status_code, r.text[:500]))
        return r.json() if r.content else {}

    def set_knobs(self, knobs):
        return self.control("PATCH", "/knobs", knobs)

    def knobs(self):
        return self.control("GET", "/knobs")

    def reset_counters(self):
        self.control("DELETE", "/counters")

    def counters(self):
        return self.control("GET", "/counters")

    def servers(self):
        return self.control("GET", "/servers")

    def seed_jobs(self, count, **mix):
        """`count` finished jobs in the bench vault's history, in one state write (dpemulator's seed-jobs)."""
        return self.control("POST", "/seed-jobs", dict(mix, vault=VAULT, count=count))

    # ARM (the bench's own reads: done after the counters of a run were taken) ----------------------
    def token(self):
        if self._token is None:
            r = self._session.post("%s/%s/oauth2/v2.0/token" % (self.url, self.env["AZURE_TENANT"]), timeout=60, verify=self.ca,
                                   data={"grant_type": "client_credentials", "client_id": self.env["AZURE_CLIENT_ID"],
                                         "client_secret": self.env["AZURE_SECRET"], "scope": TENANT_SCOPE})
            r.raise_for_status()
            self._token = r.json()["access_token"]
        return self._token

    def arm_get(self, path):
        url = path if path.startswith("https://") else self.url + path
        params = None if "api-version=" in url else {"api-version": API_VERSION}
        r = self._session.get(url, params=params, timeout=120, verify=self.ca, headers={"Authorization": "Bearer " + self.token()})
        if r.status_code != 200:
            raise EmulatorError("GET %s: HTTP %d %s" % (path, r.status_code, r.text[:300]))
        return r.json()

    def vault_path(self):
        return "/subscriptions/%s/resourceGroups/%s/providers/Microsoft.DataProtection/backupVaults/%s" % (
            self.sub, VAULT_RG, VAULT)

    def job(self, job_id):
        return self.arm_get("%s/backupJobs/%s" % (self.vault_path(), job_id.rstrip("/").split("/")[-1]))

    def target_server_id(self):
        return "/subscriptions/%s/resourceGroups/targetrg/providers/Microsoft.DBforPostgreSQL/servers/%s" % (
            self.sub, TARGET_SERVER)

    def secret_uri(self):
        return "%s/keyvaults/%s/secrets/%s" % (self.url, KEY_VAULT, SECRET_NAME)


# The emulator's route names (dpemulator/aad.py): every request of signing in, the cloud metadata included ...
AUTH_ROUTE_PREFIXES = ("aad.", "metadata.", "mi.")
# ... and of them what a sign-in reads and sends: the cloud metadata, the OpenID configuration, the token
SIGNIN_ROUTES = ("GET metadata.endpoints", "GET aad.openid", "GET aad.openid_v1", "POST aad.token",
                 "POST aad.token_v1", "GET mi.app_service", "GET mi.imds")
JOBS_LIST_ROUTE = "GET dataprotection.backupJobs.list"   # the earlier-restore lookup's listing of the vault's jobs


def summarize_counters(raw):
    """Requests a client sent, from the emulator's counters (control API calls left out)."""
    routes = {k: v for k, v in (raw.get("requests") or {}).items() if " control." not in k}
    auth = sum(v for k, v in routes.items() if k.split(" ", 1)[1].startswith(AUTH_ROUTE_PREFIXES))
    lro = sum(v for k, v in routes.items()
              if k in ("GET dataprotection.operationStatus", "GET dataprotection.operationResults"))
    return {
        "requests": sum(routes.values()),
        "auth_requests": auth,
        "signin_requests": sum(routes.get(k, 0) for k in SIGNIN_ROUTES),
        "arm_requests": sum(routes.values()) - auth,
        "lro_polls": lro,
        "job_polls": routes.get("GET dataprotection.backupJobs.get", 0),
        "job_lists": routes.get(JOBS_LIST_ROUTE, 0),
        "throttled_429": (raw.get("counters") or {}).get("throttled_429", 0),
        "restores_requested": (raw.get("counters") or {}).get("restores_requested", 0),
        "restore_jobs_created": (raw.get("counters") or {}).get("restore_jobs_created", 0),
        "routes": routes,
    }


def parse_time(text):
    """ISO 8601 as the service writes it ('2026-01-02T03:04:05.1234567Z') -> epoch seconds."""
    if not text or text.startswith("0001-"):
        return None
    text = text.strip().replace("Z", "+00:00")
    if "." in text:
        head, rest = text.split(".", 1)
        digits = "".join(c for c in rest if c.isdigit())
        tz = rest[len(digits):]
        text = "%s.%s%s" % (head, digits[:6].ljust(6, "0"), tz)
    value = dt.datetime.fromisoformat(text)
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.timezone.utc)
    return value.timestamp()


# ---------------------------------------------------------------------------------------------- sign-in cache

CACHE_DIR_ENV = "AZURE_BACKUP_CACHE_DIR"   # the collection's token + metadata cache folder (MSAL's cache inside)


def default_cache_dir(environ=None):
    """Where the collection caches without AZURE_BACKUP_CACHE_DIR: $XDG_CACHE_HOME or ~/.cache, then
    azure_backup.dataprotection (plugins/module_utils/_cache.py)."""
    env = os.environ if environ is None else environ
    base = env.get("XDG_CACHE_HOME") or os.path.join(env.get("HOME") or os.path.expanduser("~"), ".cache")
    return os.path.join(base, "azure_backup.dataprotection")


def cache_listing(folder):
    """{file name: mtime} of a cache folder (empty when it does not exist)."""
    try:
        return {name: os.stat(os.path.join(folder, name)).st_mtime for name in os.listdir(folder)}
    except OSError:
        return {}


def changed_files_naming(folder, before, text):
    """The files of `folder` written since the listing `before` (cache_listing) whose content has `text`."""
    found = []
    for name, mtime in sorted(cache_listing(folder).items()):
        if before.get(name) == mtime:
            continue
        try:
            with open(os.path.join(folder, name), encoding="utf-8", errors="replace") as fh:
                if text in fh.read():
                    found.append(name)
        except OSError:
            continue
    return found


# ---------------------------------------------------------------------------------------------- PostgreSQL

def psql(server, sql, database="postgres", check=True):
    """Run SQL (one statement at a time, from stdin) as the world server's admin; returns stdout."""
    env = dict(os.environ, PGHOST=server["host"], PGPORT=str(server["port"]), PGUSER=server["admin_user"],
               PGPASSWORD=server["admin_password"], PGSSLMODE="require", PGCONNECT_TIMEOUT="20")
    proc = subprocess.run(["psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d", database], input=sql,
                          env=env, capture_output=True, text=True, check=False)
    if check and proc.returncode != 0:
        raise RuntimeError("psql on %s:%s failed: %s" % (server["host"], server["port"], proc.stderr.strip()[-500:]))
    return proc.stdout


def drop_databases(server, prefix):
    names = [n for n in psql(server, "SELECT datname FROM pg_database WHERE datname LIKE '%s%%';" % prefix).split()
             if n.startswith(prefix)]
    if names:
        psql(server, "".join('DROP DATABASE IF EXISTS "%s" WITH (FORCE);\n' % n for n in names))
    return len(names)


def count_databases(server, prefix):
    return int(psql(server, "SELECT count(*) FROM pg_database WHERE datname LIKE '%s%%';" % prefix).strip() or 0)


def database_size(server, database):
    return int(psql(server, "SELECT pg_database_size('%s');" % database).strip())


def employees(server, database):
    return int(psql(server, "SELECT count(*) FROM employees;", database=database).strip())


# ---------------------------------------------------------------------------------------------- processes

def _children_map():
    children = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % entry, encoding="ascii", errors="replace") as fh:
                ppid = int(fh.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    return children


def tree_pids(root):
    children = _children_map()
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, ()))
    return out


def _pss_kb(pid):
    try:
        with open("/proc/%d/smaps_rollup" % pid, encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def tree_pss_kb(root):
    """Proportional set size of a process and all its descendants (shared pages counted once)."""
    return sum(_pss_kb(pid) for pid in tree_pids(root))


@dataclasses.dataclass
class Measured:
    """Result of run_measured: wall, CPU (user+sys of the process tree), peak memory, return code."""
    argv: list
    rc: int
    started: float
    wall: float
    cpu_user: float
    cpu_sys: float
    cpu: float
    peak_pss_mb: float
    max_rss_mb: float
    stdout: str
    stderr: str


def run_measured(argv, env, cwd, stdout_path, stderr_path=None, sample_interval=0.25, timeout=3600):
    """Run a client as a child process and measure it.

    wall: monotonic seconds from spawn to exit. cpu_*: resource.getrusage(RUSAGE_CHILDREN) deltas around the
    child (its whole tree of waited-for processes: Ansible forks and modules, curl and jq, the SDK's Python).
    peak_pss_mb: highest sum of PSS over the child's process tree, sampled every `sample_interval` s.
    max_rss_mb: the largest single process of the tree (ru_maxrss from wait4).
    """
    stderr_path = stderr_path or stdout_path + ".err"
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    peak = [0]
    done = threading.Event()
    with open(stdout_path, "wb") as out, open(stderr_path, "wb") as err:
        started_epoch = time.time()
        t0 = time.monotonic()
        proc = subprocess.Popen(argv, env=env, cwd=cwd, stdout=out, stderr=err,  # pylint: disable=consider-using-with
                                start_new_session=True)

        def sample():
            while not done.is_set():
                peak[0] = max(peak[0], tree_pss_kb(proc.pid))
                done.wait(sample_interval)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()

        def watchdog():
            if not done.wait(timeout):
                try:  # our own child's process group (start_new_session), by its id
                    os.killpg(proc.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass

        threading.Thread(target=watchdog, daemon=True).start()
        dummy, status, usage = os.wait4(proc.pid, 0)
        t1 = time.monotonic()
        done.set()
        proc.returncode = os.waitstatus_to_exitcode(status)
        sampler.join()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return Measured(
        argv=[os.path.basename(argv[0])] + list(argv[1:]), rc=proc.returncode, started=started_epoch,
        wall=t1 - t0, cpu_user=after.ru_utime - before.ru_utime, cpu_sys=after.ru_stime - before.ru_stime,
        cpu=(after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime),
        peak_pss_mb=peak[0] / 1024.0, max_rss_mb=usage.ru_maxrss / 1024.0,
        stdout=stdout_path, stderr=stderr_path)


def json_lines(path):
    out = []
    if not os.path.exists(path):
        return out
    with open(path, encoding="utf-8", errors="replace") as fh:
        for line in fh:
            line = line.strip()
            if line.startswith("{"):
                try:
                    out.append(json.loads(line))
                except ValueError:
                    continue
    return out


# ---------------------------------------------------------------------------------------------- state file

def inject_recovery_points(state_dir, backup_instance_name, count, interval_hours=24.0):
    """Add `count` backdated copies of the backup instance's newest recovery point to state.json, sharing its
    dump, exactly as `dpemulator seed-points` would, in ONE write (seed-points writes the whole state once per
    point, which takes hours for 10,000). The emulator must be stopped. Returns the number of points after."""
    path = os.path.join(state_dir, "state.json")
    with open(path, encoding="utf-8") as fh:
        data = json.load(fh)
    bi_key = next(k for k, bi in data["backup_instances"].items() if bi["name"] == backup_instance_name)
    points = data["recovery_points"][bi_key]
    base = max(points.values(), key=lambda p: p["time"])
    for i in range(1, int(count) + 1):
        rp = copy.deepcopy(base)
        rp["id"] = uuid.uuid4().hex
        rp["time"] = base["time"] - i * interval_hours * 3600
        for store in rp.get("stores") or []:
            store["id"] = str(uuid.uuid4())
            if store.get("expiry"):
                store["expiry"] = rp["time"] + 90 * 86400
        points[rp["id"]] = rp
    tmp = path + ".bench.tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(data, fh, separators=(",", ":"))
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)
    return len(points), base["id"], base["time"]


# ---------------------------------------------------------------------------------------------- machine

def machine_info(pg_server=None):
    info = {}
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as fh:
            models = [line.split(":", 1)[1].strip() for line in fh if line.startswith("model name")]
        info["cpu_model"] = models[0] if models else None
    except OSError:
        info["cpu_model"] = None
    info["cores"] = os.cpu_count()
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            mem = dict(line.split(":", 1) for line in fh)
        info["memory_gb"] = round(int(mem["MemTotal"].split()[0]) / 1024.0 / 1024.0, 1)
    except (OSError, KeyError, ValueError):
        info["memory_gb"] = None
    info["kernel"] = os.uname().release
    info["python"] = sys.version.split()[0]
    info["load_average_at_start"] = [round(x, 2) for x in os.getloadavg()]
    versions = {}
    try:
        from importlib.metadata import version, PackageNotFoundError  # pylint: disable=import-outside-toplevel
        for dist in ("ansible-core", "azure-mgmt-dataprotection", "azure-identity", "azure-core", "requests"):
            try:
                versions[dist] = version(dist)
            except PackageNotFoundError:
                versions[dist] = None
    except ImportError:
        pass
    info["packages"] = versions
    for tool, args in (("curl", ["curl", "--version"]), ("jq", ["jq", "--version"]), ("pg_restore", ["pg_restore", "--version"])):
        try:
            out = subprocess.run(args, capture_output=True, text=True, check=False).stdout.splitlines()
            info[tool] = out[0].strip() if out else None
        except OSError:
            info[tool] = None
    if pg_server:
        try:
            info["postgres_server"] = psql(pg_server, "SHOW server_version;").strip()
        except RuntimeError:
            info["postgres_server"] = None
    return info
