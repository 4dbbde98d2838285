#!/usr/bin/env python3
# Copyright: (c) 2025, Azure Backup Data Protection collection contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""make bench: our restore side by side with the alternatives, on the emulator, in one run.

Contenders: `ours` (the collection: playbooks and modules run by ansible-playbook), `curl` (the how-to article's
REST calls made with curl, one at a time, polling as the headers say: tests/bench/curl_restore.sh) and `sdk` (the
official azure-mgmt-dataprotection SDK: tests/bench/sdk_restore.py). Sections:

  single    one whole restore (latest recovery point, validate, restore, wait for the job), BENCH_REPEAT times each:
            overhead = wall time - the server-side time on the critical path (validateRestore operation + restore
            job), HTTP requests sent (emulator counters, reset between runs), controller CPU seconds
            (getrusage(RUSAGE_CHILDREN) deltas around each client), detection lag (job end in the emulator ->
            the client reports it) and the requests spent polling
  defaults  ours once more with the playbook's defaults (poll_interval 30 s, permission check)
  long      the single restore with a BENCH_LONG_JOB_SECONDS (120) s job, BENCH_LONG_REPEAT (1) times each: what
            grows with the job (wall, CPU, requests, job polls) against the single section's job
  scale     N restores of N backup instances into N new databases, N in BENCH_SCALE, throttling on (ARM's
            token buckets); every run starts from the same world (the emulator restarts on a snapshot of its state)
  stress    the same with BENCH_STRESS_N (20) restores and buckets a fifth of ARM's: every client meets 429s
  data      a BENCH_SIZES MB database (default 100; BENCH_LARGE=1 adds 1024) restored by ours versus a direct
            pg_restore of the same dump
  list      the latest of BENCH_POINTS (10,000) recovery points, 100 per page
  history   the single restore (3 s job) in a vault with BENCH_HISTORY_JOBS (100 and 10,000) finished jobs in its
            history (dpemulator seed-jobs), ours and the SDK as a control (it lists no job): the cost of our
            earlier-restore lookup, which lists every job of the vault
  drill     a restore drill over BENCH_DRILL (30 and 100) backup instances, each of its own database: ours is
            playbooks/restore_drill.yml over the backup_instances inventory (restore, verify, clean up, report),
            the SDK is tests/bench/sdk_drill.py (the same restores + row-count check + drop on a thread pool)

Every run of ours starts with a cold sign-in cache: AZURE_BACKUP_CACHE_DIR (the collection's token cache, MSAL's
inside, and its metadata cache) is a new empty folder per run; HOME is left alone.

Prints a table of figures and ratios (ours / alternative) and writes .bench/results.json (+ results.md);
BENCH_PUBLISH=1 also copies them to docs/benchmarks.json and the table in docs/benchmarks.md. No figure is
checked against a threshold: this is not a test.

Environment (defaults in brackets): BENCH_FULL [0] (1: BENCH_SCALE=1,10,50,200 and BENCH_LARGE=1, ~40 min),
BENCH_SECTIONS [single,defaults,long,scale,stress,data,list,history], BENCH_SCALE [1,10,50], BENCH_REPEAT [3],
BENCH_LIST_REPEAT [1], BENCH_THROTTLE [ARM's buckets; e.g. read_capacity=50,read_refill=5],
BENCH_STRESS_N [20], BENCH_STRESS_THROTTLE [a fifth of ARM's], BENCH_CONCURRENCY [50: Ansible forks, SDK
threads, curl background processes], BENCH_POLL [1 s: how often every contender reads the job],
BENCH_JOB_SECONDS [10: job length in single/defaults], BENCH_LONG_JOB_SECONDS [120], BENCH_LONG_REPEAT [1],
BENCH_PROGRESS [1: the playbook's progress lines in every run of the restore_database playbook; 0: pg_restore waits
in one process], BENCH_CLOUD [file: ours reads the emulator's cloud metadata from its cloud.json, as the SDK
script is given the endpoints; url: from its /metadata/endpoints, one request more], BENCH_ANSIBLE_CFG [readme:
the [defaults] settings the README's install block writes to a project's ansible.cfg, collections_path left out;
defaults: none, ansible-core's defaults], BENCH_HISTORY_JOBS [100,10000: finished jobs in the vault, one history run per value],
BENCH_LARGE [0: 1 adds the 1 GB database], BENCH_SIZES [100 (MB)], BENCH_POINTS [10000], BENCH_DRILL [30,100],
BENCH_KEEP [0: 1 keeps the run dir under /tmp], BENCH_OUT [.bench],
BENCH_PUBLISH [0: 1 writes docs/benchmarks.json and the table in docs/benchmarks.md].
`python scripts/bench.py --from .bench/results.json` prints (and with BENCH_PUBLISH=1 publishes) the table again
from saved runs, without running anything.
Exit status: 0, or 1 when the bench could not run or one of OUR restores failed outside the stress run (the
figures are written anyway; failures under the stress buckets are reported as warnings).
"""

import datetime as dt
import json
import re
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from urllib.parse import urlsplit

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCH_DIR = os.path.join(ROOT, "tests", "bench")
sys.path.insert(0, BENCH_DIR)

import benchlib as bl  # noqa: E402  pylint: disable=wrong-import-position

CONTENDERS = ("ours", "curl", "sdk")
SAMPLE_ROWS = 20            # rows of the tiny source database (the data path is not what sections 1-3 measure)
BYTES_PER_ROW = 195         # on-disk bytes per sample row, indexes included (measured on PostgreSQL 15)
MAIN_KNOBS = {"operation_duration": 1.0, "job_duration": 3.0, "rehydration_duration": 3.0, "retry_after": 1,
              "page_size": 100, "throttle": {"enabled": False}}
THROTTLED = dict(MAIN_KNOBS, throttle={"enabled": True, "read_capacity": 250, "read_refill": 25.0,
                                       "write_capacity": 200, "write_refill": 10.0})
# the scale runs use ARM's 2024 buckets (above); the stress run a fifth of them
STRESS_THROTTLE = "read_capacity=50,read_refill=5,write_capacity=40,write_refill=2"
DEFAULT_SECTIONS = "single,defaults,long,scale,stress,data,list,history,drill"
MAIN_SECTIONS = {"single", "defaults", "long", "scale", "stress", "history"}   # run on the main world
# A vault's history as drills leave it: mostly backups, a fifth restores (to other databases on the target server,
# some of the very point we restore), a few failures; spread over every backup instance, ours included.
HISTORY_MIX = {"restore_share": 0.2, "failed_share": 0.05, "target_server": bl.TARGET_SERVER}
FILL_SQL = """
INSERT INTO employees (first_name, last_name, email, dept_id, salary, hired_on, notes)
SELECT (ARRAY['Ada','Grace','Alan','Edsger','Barbara','Donald','Frances','Ken'])[1 + g %% 8],
       (ARRAY['Lovelace','Hopper','Turing','Dijkstra','Liskov','Knuth','Allen','Thompson'])[1 + (g / 8) %% 8],
       'employee' || g || '@example.com', 1 + g %% 6, 30000 + (g::bigint * 7919) %% 90000,
       date '2000-01-01' + (g %% 8000)::int, md5(g::text)
FROM generate_series(%(first)d, %(last)d) AS g;
ANALYZE;
"""


def throttle_knob(text):
    """'read_capacity=50,read_refill=5' -> the emulator's throttle knob (enabled), over ARM's defaults."""
    knob = dict(THROTTLED["throttle"])
    for item in [x for x in text.split(",") if x.strip()]:
        key, value = item.split("=", 1)
        knob[key.strip()] = float(value)
    return knob


def env_int(name, default):
    return int(os.environ.get(name, default))


def env_list(name, default):
    return [x.strip() for x in os.environ.get(name, default).split(",") if x.strip()]


def readme_ansible_settings():
    """The [defaults] lines the README's install block writes to a new project's ansible.cfg, but collections_path
    (the bench gives the collections path itself): what a user who follows the README runs with."""
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as fh:
        found = re.search(r"printf '\[defaults\]\\n((?:[^'\\]|\\n)*)' > ansible\.cfg", fh.read())
    if found is None:
        raise SystemExit("README.md: no printf '[defaults]...' > ansible.cfg line in the install block")
    lines = [line.strip() for line in found.group(1).split("\\n") if line.strip()]
    return [line for line in lines if not line.startswith("collections_path")]


class Bench:
    def __init__(self):
        self.t_start = time.time()
        full = os.environ.get("BENCH_FULL", "0") not in ("", "0", "false", "no")
        self.sections = env_list("BENCH_SECTIONS", DEFAULT_SECTIONS)
        self.scale = [int(x) for x in env_list("BENCH_SCALE", "1,10,50,200" if full else "1,10,50")]
        self.repeat = env_int("BENCH_REPEAT", 3)
        self.list_repeat = env_int("BENCH_LIST_REPEAT", 1)
        self.throttle = throttle_knob(os.environ.get("BENCH_THROTTLE", ""))
        self.stress_n = env_int("BENCH_STRESS_N", 20)
        self.stress_throttle = throttle_knob(os.environ.get("BENCH_STRESS_THROTTLE", STRESS_THROTTLE))
        self.concurrency = env_int("BENCH_CONCURRENCY", 50)
        self.poll = env_int("BENCH_POLL", 1)
        self.job_seconds = float(os.environ.get("BENCH_JOB_SECONDS", "10"))
        self.long_seconds = float(os.environ.get("BENCH_LONG_JOB_SECONDS", "120"))
        self.long_repeat = env_int("BENCH_LONG_REPEAT", 1)
        self.history = [int(x) for x in env_list("BENCH_HISTORY_JOBS", "100,10000")]
        self.progress = os.environ.get("BENCH_PROGRESS", "1") not in ("", "0", "false", "no")
        self.cloud = os.environ.get("BENCH_CLOUD", "file")
        if self.cloud not in ("file", "url"):
            raise SystemExit("BENCH_CLOUD is file or url, not %r" % self.cloud)
        self.ansible_cfg = os.environ.get("BENCH_ANSIBLE_CFG", "readme")
        if self.ansible_cfg not in ("readme", "defaults"):
            raise SystemExit("BENCH_ANSIBLE_CFG is readme or defaults, not %r" % self.ansible_cfg)
        self.large = full or os.environ.get("BENCH_LARGE", "0") not in ("", "0", "false", "no")
        sizes = env_list("BENCH_SIZES", "100")
        self.sizes = [int(s) for s in sizes] + ([1024] if self.large and "1024" not in sizes else [])
        self.points = env_int("BENCH_POINTS", 10000)
        self.drill = [int(x) for x in env_list("BENCH_DRILL", "30,100")]
        self.keep = os.environ.get("BENCH_KEEP", "0") not in ("", "0")
        self.publish = os.environ.get("BENCH_PUBLISH", "0") not in ("", "0")
        self.out = os.path.join(ROOT, os.environ.get("BENCH_OUT", ".bench"))
        self.run_dir = tempfile.mkdtemp(prefix="dpbench-", dir="/tmp")
        os.chmod(self.run_dir, 0o755)  # the postgres OS user traverses it to the emulator's clusters
        self.runs = []              # every measured client run (raw figures)
        self.notes = []
        self.emulators = []
        self.collections = None
        self.collection_version = None
        self.machine = {}
        self.saved_git = self.saved_generated = None  # set when the table is rendered again from saved runs
        self.seq = 0
        self.next_bi = 0            # the next unused backup instance of the main world (see take_bi)

    # ------------------------------------------------------------------------------------------ output
    def log(self, msg):
        print("[bench %6.0fs] %s" % (time.time() - self.t_start, msg), flush=True)

    def path(self, *parts):
        p = os.path.join(self.run_dir, *parts)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        return p

    # ------------------------------------------------------------------------------------------ setup
    def copy_collection(self):
        """A private copy of the installed collection: `make install` elsewhere swaps .cache/collections under a
        running playbook (a role path that moves mid-run breaks ansible-core), this copy does not move."""
        candidates = [p for p in os.environ.get("ANSIBLE_COLLECTIONS_PATH", "").split(os.pathsep) if p]
        candidates.append(os.path.join(ROOT, ".cache", "collections"))
        for base in candidates:
            src = os.path.join(os.path.realpath(base), "ansible_collections", "azure_backup")
            if os.path.isfile(os.path.join(src, "dataprotection", "MANIFEST.json")):
                dest = os.path.join(self.run_dir, "collections", "ansible_collections", "azure_backup")
                shutil.copytree(src, dest, symlinks=True)
                self.collections = os.path.join(self.run_dir, "collections")
                with open(os.path.join(src, "dataprotection", "MANIFEST.json"), encoding="utf-8") as fh:
                    self.collection_version = json.load(fh)["collection_info"]["version"]
                return
        raise SystemExit("bench: the collection is not installed (run `make install`)")

    def copy_contenders(self):
        """The contenders run from a copy: editing tests/bench during a run must not change (or break: bash reads a
        script as it goes) the scripts that are running."""
        shutil.copytree(BENCH_DIR, os.path.join(self.run_dir, "bench"),
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))

    def bench_file(self, name):
        return os.path.join(self.run_dir, "bench", name)

    def start_emulator(self, name, world_doc, knobs):
        state = os.path.join(self.run_dir, name)
        world = bl.write_world(world_doc, os.path.join(self.run_dir, name + "-world.yml"))
        emu = bl.Emulator(state, world, log=self.log)
        self.emulators.append(emu)
        t0 = time.monotonic()
        emu.start(knobs=knobs)
        self.log("emulator %s up in %.0f s (%s)" % (name, time.monotonic() - t0, emu.url))
        return emu

    # ------------------------------------------------------------------------------------------ clients
    def base_env(self, emu):
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("AZURE_", "ANSIBLE_", "DPEMULATOR_", "BENCH_", "PG", "CURL_CA", "SSL_CERT"))}
        env.update(emu.client_env())
        env.update(BENCH_VAULT=bl.VAULT, BENCH_VAULT_RG=bl.VAULT_RG, BENCH_TARGET_SERVER_ID=emu.target_server_id(),
                   BENCH_SECRET_URI=emu.secret_uri(), BENCH_LOCATION="westeurope", BENCH_CA=emu.ca,
                   BENCH_POLL=str(self.poll), BENCH_API_VERSION=bl.API_VERSION, PYTHONDONTWRITEBYTECODE="1")
        env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
        return env

    def ansible_env(self, emu, events):
        env = self.base_env(emu)
        env.update(ANSIBLE_COLLECTIONS_PATH=self.collections, ANSIBLE_HOME=os.path.join(self.run_dir, "ansible-home"),
                   ANSIBLE_LOCAL_TEMP=os.path.join(self.run_dir, "ansible-tmp"), ANSIBLE_NOCOLOR="1",
                   ANSIBLE_RETRY_FILES_ENABLED="0", ANSIBLE_CALLBACK_PLUGINS=self.bench_file("callback_plugins"),
                   ANSIBLE_CALLBACKS_ENABLED="bench_events", BENCH_EVENTS=events, ANSIBLE_LOCALHOST_WARNING="0",
                   ANSIBLE_CONFIG=os.path.join(self.run_dir, "ansible.cfg"))
        env[bl.CACHE_DIR_ENV] = self.cold_cache_dir()
        if self.cloud == "file":
            env["AZURE_CLOUD_ENVIRONMENT"] = emu.env["DPEMULATOR_CLOUD_FILE"]
        return env

    def cold_cache_dir(self):
        """A new empty cache folder (mode 0700, as the collection wants it): a token or a metadata document left by
        an earlier run would hide what signing in costs."""
        parent = os.path.join(self.run_dir, "caches")
        os.makedirs(parent, exist_ok=True)
        return tempfile.mkdtemp(prefix="%03d-" % (self.seq + 1), dir=parent)

    def cache_check(self, emu, env, default_before):
        """What a run of ours left in its own cache folder, with a note when it cached in the default folder too.

        Other sessions of the collection write the default folder at any time, so a change there proves nothing;
        a cloud metadata or OpenID document naming this bench's emulator (host:port) does. (The token cache names
        no host: a token written there cannot be told from another session's.)"""
        own = sorted(bl.cache_listing(env[bl.CACHE_DIR_ENV]))
        default = bl.default_cache_dir(env)
        leaked = bl.changed_files_naming(default, default_before, urlsplit(emu.url).netloc)
        if leaked:
            self.notes.append("run %03d also cached in the default folder %s (%s): its sign-in may not have been "
                              "cold" % (self.seq, default, ", ".join(leaked)))
        if not own:
            self.add_note("ours left nothing in %s: this collection does not cache there (yet)" % bl.CACHE_DIR_ENV)
        return {"cache_files": own, "cache_leaked": leaked}

    def add_note(self, note):
        if note not in self.notes:
            self.notes.append(note)

    def localhost_inventory(self):
        path = os.path.join(self.run_dir, "localhost.yml")
        if not os.path.exists(path):
            with open(path, "w", encoding="utf-8") as fh:
                json.dump({"all": {"hosts": {"localhost": {"ansible_connection": "local",
                                                           "ansible_python_interpreter": sys.executable}}}}, fh)
            with open(os.path.join(self.run_dir, "ansible.cfg"), "w", encoding="utf-8") as fh:
                if self.ansible_cfg == "readme":
                    fh.write("# bench: the README's project settings\n[defaults]\n%s" % "".join(
                        line + "\n" for line in readme_ansible_settings()))
                else:
                    fh.write("# bench: ansible-core defaults\n[defaults]\n")
        return path

    def measure(self, emu, kind, contender, tag, argv, env, expected, events=None, **extra):
        """Run one client with fresh counters; returns the run record."""
        self.seq += 1
        stem = self.path("logs", "%03d-%s-%s" % (self.seq, tag, contender))
        emu.reset_counters()
        default_cache = bl.cache_listing(bl.default_cache_dir(env)) if bl.CACHE_DIR_ENV in env else None
        emu_cpu0 = emu.cpu_seconds()
        m = bl.run_measured(argv, env, self.run_dir, stem + ".out", stem + ".err",
                            sample_interval=0.25 if expected <= 10 else 0.5)
        emu_cpu1 = emu.cpu_seconds()
        counters = bl.summarize_counters(emu.counters())
        lines = bl.json_lines(events if events else stem + ".out")
        done = {}
        for e in lines:
            if e.get("event") == "done":
                done.setdefault(e.get("job_id") or e.get("host") or e.get("target_database"), e)
        ok = sum(1 for e in done.values() if e.get("ok"))
        failed_tasks = [e for e in lines if e.get("event") == "failed" and not e.get("ignored")]
        errors = [e.get("error") or e.get("msg") for e in list(done.values()) + failed_tasks
                  if e.get("error") or e.get("msg")]
        run = dict(kind=kind, contender=contender, tag=tag, expected=expected, ok=ok,
                   failures=max(expected - ok, len({e.get("host") for e in failed_tasks})) if expected else 0,
                   errors=errors[:5], rc=m.rc, wall=m.wall, cpu=m.cpu, cpu_user=m.cpu_user, cpu_sys=m.cpu_sys,
                   peak_pss_mb=m.peak_pss_mb, max_rss_mb=m.max_rss_mb, started=m.started,
                   emulator_cpu=(emu_cpu1 - emu_cpu0) if emu_cpu0 is not None and emu_cpu1 is not None else None,
                   done=list(done.values()), lines=lines, log=stem + ".out", **counters)
        run.update(extra)
        if default_cache is not None:
            run.update(self.cache_check(emu, env, default_cache))
        self.runs.append(run)
        status = "ok" if (not expected or run["failures"] == 0) and m.rc == 0 else "FAILED rc=%d %s" % (m.rc, errors[:2])
        self.log("  %-5s %-18s wall %6.1f s  cpu %6.1f s  requests %5d  429s %4d  peak %6.0f MB  %s" % (
            contender, tag, m.wall, m.cpu, run["requests"], run["throttled_429"], m.peak_pss_mb, status))
        return run

    def run_ours_playbook(self, emu, tag, bi, database, poll=None, extra_vars=None, kind="single"):
        events = self.path("logs", "events-%03d.jsonl" % (self.seq + 1))
        variables = {"vault_name": bl.VAULT, "vault_resource_group": bl.VAULT_RG, "backup_instance_name": bi,
                     "target_server_id": emu.target_server_id(), "target_database_name": database,
                     "secret_uri": emu.secret_uri()}
        if poll is not None:
            variables.update(poll_interval=poll, grant_permissions=False)
        if not self.progress:
            variables.update(progress=False)
        variables.update(extra_vars or {})
        vars_file = self.path("vars", "%s-%s.json" % (tag, database))
        with open(vars_file, "w", encoding="utf-8") as fh:
            json.dump(variables, fh)
        argv = ["ansible-playbook", "-i", self.localhost_inventory(), "azure_backup.dataprotection.restore_database",
                "-e", "@" + vars_file]
        return self.measure(emu, kind, "ours", tag, argv, self.ansible_env(emu, events), 1, events=events,
                            target_database=database, backup_instance=bi)

    def run_sdk(self, emu, tag, plan, kind):
        plan_file = self.path("plans", "%s-sdk.json" % tag)
        with open(plan_file, "w", encoding="utf-8") as fh:
            json.dump([{"backup_instance": bi, "target_database": db} for bi, db in plan], fh)
        argv = [sys.executable, self.bench_file("sdk_restore.py"), "restore", plan_file,
                "--workers", str(max(1, min(len(plan), self.concurrency))), "--poll", str(self.poll)]
        return self.measure(emu, kind, "sdk", tag, argv, self.base_env(emu), len(plan),
                            target_database=plan[0][1] if len(plan) == 1 else None,
                            backup_instance=plan[0][0] if len(plan) == 1 else None)

    def run_curl(self, emu, tag, plan, kind):
        script = self.bench_file("curl_restore.sh")
        if len(plan) == 1:
            argv = ["bash", script, "restore", plan[0][0], plan[0][1]]
        else:
            plan_file = self.path("plans", "%s-curl.txt" % tag)
            with open(plan_file, "w", encoding="utf-8") as fh:
                fh.write("".join("%s %s\n" % item for item in plan))
            argv = ["bash", script, "scale", plan_file, str(max(1, min(len(plan), self.concurrency)))]
        return self.measure(emu, kind, "curl", tag, argv, self.base_env(emu), len(plan),
                            target_database=plan[0][1] if len(plan) == 1 else None,
                            backup_instance=plan[0][0] if len(plan) == 1 else None)

    def run_ours_scale(self, emu, tag, plan, kind="scale"):
        events = self.path("logs", "events-%03d.jsonl" % (self.seq + 1))
        inventory = self.path("plans", "%s-ours.json" % tag)
        hosts = {"r%04d" % i: {"backup_instance_name": bi, "target_database_name": db} for i, (bi, db) in enumerate(plan)}
        with open(inventory, "w", encoding="utf-8") as fh:
            json.dump({"restores": {"hosts": hosts, "vars": {"ansible_connection": "local",
                                                             "ansible_python_interpreter": sys.executable}}}, fh)
        variables = self.path("vars", "%s-ours.json" % tag)
        with open(variables, "w", encoding="utf-8") as fh:
            json.dump({"vault_name": bl.VAULT, "vault_resource_group": bl.VAULT_RG,
                       "target_server_id": emu.target_server_id(), "secret_uri": emu.secret_uri(),
                       "poll_interval": self.poll}, fh)
        self.localhost_inventory()  # writes the empty ansible.cfg
        argv = ["ansible-playbook", "-i", inventory, "-f", str(max(1, min(len(plan), self.concurrency))),
                self.bench_file("scale_restore.yml"), "-e", "@" + variables]
        return self.measure(emu, kind, "ours", tag, argv, self.ansible_env(emu, events), len(plan), events=events)

    # ------------------------------------------------------------------------------------------ per-run analysis
    def job_timing(self, emu, run, op_duration):
        """Server-side time on the critical path and detection lag of a one-restore run."""
        done = [e for e in run["done"] if e.get("job_id")]
        if not done:
            return
        event = done[0]
        try:
            job = emu.job(event["job_id"])
        except bl.EmulatorError as exc:
            self.notes.append("job %s of %s: %s" % (event["job_id"], run["tag"], exc))
            return
        props = job.get("properties") or {}
        start, end = bl.parse_time(props.get("startTime")), bl.parse_time(props.get("endTime"))
        if start is None or end is None:
            return
        run["job_id"] = event["job_id"]
        run["job_seconds"] = end - start
        run["server_seconds"] = op_duration + (end - start)
        run["overhead"] = run["wall"] - run["server_seconds"]
        run["detection_lag"] = event["seen"] - end

    def verify_database(self, emu, run):
        database = run.get("target_database")
        if not database or not run.get("ok"):
            return
        try:
            run["restored_rows"] = bl.employees(emu.servers()[bl.TARGET_SERVER], database)
        except RuntimeError as exc:
            run["restored_rows"] = None
            self.notes.append("%s: %s" % (database, exc))

    # ------------------------------------------------------------------------------------------ sections
    def backup_instances(self):
        """The main world's size: every scale or stress restore needs its own instance, and so does every restore of
        the single, defaults and long sections (they run on one world, one after the other; see take_bi)."""
        one_by_one = len(CONTENDERS) * (self.repeat + self.long_repeat) + 1
        return max(self.scale + [self.stress_n, one_by_one])

    def take_bi(self):
        """A backup instance of the main world that no earlier restore of this world used."""
        self.next_bi += 1
        return "bi-%03d" % (self.next_bi - 1)

    def main_world(self):
        count = self.backup_instances()
        bis = [("bi-%03d" % i, "empdb11", True) for i in range(count)]
        return bl.bench_world(bis, [{"name": "empdb11", "sample_rows": SAMPLE_ROWS}])

    def restore_once(self, emu, kind, tag, contender, bi, database):
        """One whole restore by `contender`, with its job timing and the restored database checked."""
        if contender == "ours":
            run = self.run_ours_playbook(emu, tag, bi, database, poll=self.poll, kind=kind)
        elif contender == "sdk":
            run = self.run_sdk(emu, tag, [(bi, database)], kind)
        else:
            run = self.run_curl(emu, tag, [(bi, database)], kind)
        self.job_timing(emu, run, MAIN_KNOBS["operation_duration"])
        self.verify_database(emu, run)
        return run

    def rotating_restores(self, emu, kind, repeat, job_seconds):
        """`repeat` whole restores per contender with jobs of `job_seconds`, in rotating order: no contender always
        runs first (on a machine that has just been busy, or not)."""
        self.log("%s: whole restore x%d per contender (jobs of %.0f s, poll every %d s)" % (
            kind, repeat, job_seconds, self.poll))
        emu.set_knobs({"job_duration": job_seconds})
        for rep in range(repeat):
            for contender in CONTENDERS[rep % 3:] + CONTENDERS[:rep % 3]:
                self.restore_once(emu, kind, kind, contender, self.take_bi(), "b_%s_%s_%d" % (kind, contender, rep))
        emu.set_knobs(MAIN_KNOBS)

    def section_defaults(self, emu):
        self.log("ours with the playbook's defaults (poll_interval 30 s, grant_permissions true)")
        emu.set_knobs({"job_duration": self.job_seconds})
        run = self.run_ours_playbook(emu, "defaults", self.take_bi(), "b_defaults_ours", kind="defaults")
        self.job_timing(emu, run, MAIN_KNOBS["operation_duration"])
        self.verify_database(emu, run)
        emu.set_knobs(MAIN_KNOBS)

    def section_history(self, emu):
        """Per history size: the world as built plus that many finished jobs, then one restore each by ours (whose
        earlier-restore lookup lists every job of the vault) and by the SDK (which lists none: what changes for it
        is the emulator's own cost of a bigger state)."""
        target = emu.servers()[bl.TARGET_SERVER]
        for n in self.history:
            emu.reset("pristine.json", knobs=MAIN_KNOBS)
            t0 = time.monotonic()
            seeded = emu.seed_jobs(n, **HISTORY_MIX)
            self.log("history: %d jobs in the vault (%d restores, %d failed) seeded in %.1f s" % (
                seeded["count"], seeded["restore"], seeded["failed"], time.monotonic() - t0))
            for i, contender in enumerate(("ours", "sdk")):
                run = self.restore_once(emu, "history", "history-%d" % n, contender, "bi-%03d" % i,
                                        "b_history_%s_%d" % (contender, n))
                run["history_jobs"] = seeded["count"]
        bl.drop_databases(target, "b_history_")

    def section_scale(self, emu, tiers=None, throttle=None, label="scale"):
        target = emu.servers()[bl.TARGET_SERVER]
        throttle = throttle or self.throttle
        for n in tiers or self.scale:
            buckets = ", ".join("%s=%g" % kv for kv in sorted(throttle.items()) if kv[0] != "enabled")
            self.log("%s: %d restores, concurrency %d, throttling on (%s)" % (
                label, n, min(n, self.concurrency), buckets))
            for contender in CONTENDERS:
                bl.drop_databases(target, "b_")
                emu.reset("pristine.json", knobs=dict(THROTTLED, throttle=throttle))
                prefix = "b_%s_%s%d_" % (contender, label[0], n)
                plan = [("bi-%03d" % i, "%s%03d" % (prefix, i)) for i in range(n)]
                tag = "%s-%d" % (label, n)
                if contender == "ours":
                    run = self.run_ours_scale(emu, tag, plan, kind=label)
                elif contender == "sdk":
                    run = self.run_sdk(emu, tag, plan, label)
                else:
                    run = self.run_curl(emu, tag, plan, label)
                run["n"] = n
                run["throttle"] = dict(throttle)
                run["databases_created"] = bl.count_databases(emu.servers()[bl.TARGET_SERVER], prefix)
                run["jobs_seen_done"] = len(run["done"])
        bl.drop_databases(emu.servers()[bl.TARGET_SERVER], "b_")

    def drill_world(self):
        """Backup instances of databases of their own: the drill names its scratch database after the source."""
        n = max(self.drill)
        doc = bl.bench_world([("bi-%03d" % i, "drill%03d" % i, True) for i in range(n)],
                             [{"name": "drill%03d" % i, "sample_rows": SAMPLE_ROWS} for i in range(n)])
        return doc

    def section_drill(self, emu):
        target = emu.servers()[bl.TARGET_SERVER]
        for n in self.drill:
            workers = max(1, min(n, self.concurrency))
            self.log("drill: %d backup instances, forks / threads %d" % (n, workers))
            for contender in ("ours", "sdk"):
                emu.reset("pristine.json", knobs=MAIN_KNOBS)
                tag = "drill-%d" % n
                if contender == "ours":
                    run = self.run_ours_drill(emu, tag, n, workers, target)
                else:
                    plan = [("bi-%03d" % i, "d_sdk%d_%03d" % (n, i)) for i in range(n)]
                    plan_file = self.path("plans", "%s-sdk.json" % tag)
                    with open(plan_file, "w", encoding="utf-8") as fh:
                        json.dump([{"backup_instance": bi, "target_database": db} for bi, db in plan], fh)
                    env = dict(self.base_env(emu), BENCH_PG_HOST=target["host"], BENCH_PG_PORT=str(target["port"]),
                               BENCH_PG_USER=target["admin_user"], BENCH_PG_PASSWORD=target["admin_password"])
                    argv = [sys.executable, self.bench_file("sdk_drill.py"), plan_file, "--workers", str(workers),
                            "--poll", str(self.poll)]
                    run = self.measure(emu, "drill", "sdk", tag, argv, env, n)
                run["n"] = n
                run["left_over"] = bl.count_databases(emu.servers()[bl.TARGET_SERVER], "d")

    def run_ours_drill(self, emu, tag, n, workers, target):
        events = self.path("logs", "events-%03d.jsonl" % (self.seq + 1))
        inventory = self.path("plans", "%s.backup_instances.yml" % tag)
        with open(inventory, "w", encoding="utf-8") as fh:
            json.dump({"plugin": "azure_backup.dataprotection.backup_instances",
                       "vaults": [{"name": bl.VAULT, "resource_group": bl.VAULT_RG}]}, fh)
        variables = self.path("vars", "%s-ours.json" % tag)
        with open(variables, "w", encoding="utf-8") as fh:
            json.dump({"drill_id": "d%d" % n, "target_server_id": emu.target_server_id(), "pg_host": target["host"],
                       "pg_port": target["port"], "pg_user": target["admin_user"],
                       "pg_password": target["admin_password"],
                       "key_vault_uri": emu.secret_uri().split("/secrets/")[0] + "/", "rpo_hours": 48,
                       "poll_interval": self.poll, "max_concurrent": workers, "busy_delay": 1, "validate_delay": 1,
                       "state_dir": self.path("drill", tag, "ledger"), "report_dir": self.path("drill", tag, "report"),
                       "drill_hosts": "all[0:%d]" % (n - 1)}, fh)
        self.localhost_inventory()  # writes the empty ansible.cfg
        playbook = os.path.join(self.collections, "ansible_collections", "azure_backup", "dataprotection",
                                "playbooks", "restore_drill.yml")
        argv = ["ansible-playbook", "-i", inventory, "-f", str(workers), playbook, "-e", "@" + variables]
        return self.measure(emu, "drill", "ours", tag, argv, self.ansible_env(emu, events), n, events=events)

    def data_world(self):
        dbs = [{"name": "listdb", "sample_rows": SAMPLE_ROWS}]
        bis = [("bi-list", "listdb", True)]
        for size in self.sizes:
            dbs.append({"name": "big%d" % size, "sample_rows": SAMPLE_ROWS})
            bis.append(("bi-big%d" % size, "big%d" % size, False))
        return bl.bench_world(bis, dbs)

    def section_data(self, emu):
        servers = emu.servers()
        source, target = servers[bl.SOURCE_SERVER], servers[bl.TARGET_SERVER]
        for size in self.sizes:
            db = "big%d" % size
            rows = int(size * 1024 * 1024 / BYTES_PER_ROW)
            t0 = time.monotonic()
            bl.psql(source, FILL_SQL % {"first": SAMPLE_ROWS + 1, "last": rows}, database=db)
            db_bytes = bl.database_size(source, db)
            point = emu.control("POST", "/backup", {"backup_instance": "bi-" + db})
            dump = os.path.join(emu.state, "vaultstore", point["name"], db + ".dump")
            self.log("data: %s is %.0f MB on disk, its dump %.0f MB (made in %.0f s)" % (
                db, db_bytes / 2 ** 20, os.path.getsize(dump) / 2 ** 20, time.monotonic() - t0))
            ours = self.run_ours_playbook(emu, "data-%d" % size, "bi-" + db, "b_data_ours_%d" % size, poll=self.poll,
                                          kind="data")
            self.job_timing(emu, ours, MAIN_KNOBS["operation_duration"])
            self.verify_database(emu, ours)
            env = dict(os.environ, PGHOST=target["host"], PGPORT=str(target["port"]), PGUSER=target["admin_user"],
                       PGPASSWORD=target["admin_password"], PGSSLMODE="require")
            direct_db = "b_data_direct_%d" % size
            # what the service (and the emulator) runs: createdb, then pg_restore --no-owner --no-acl, one job
            argv = ["bash", "-c", 'createdb -w -T template0 -- "$1" && pg_restore -w --no-owner --no-acl '
                    '--exit-on-error -d "$1" "$2"', "direct", direct_db, dump]
            self.seq += 1
            stem = self.path("logs", "%03d-data-%d-direct" % (self.seq, size))
            m = bl.run_measured(argv, env, self.run_dir, stem + ".out", stem + ".err")
            direct = dict(kind="data", contender="direct", tag="data-%d" % size, expected=1, ok=int(m.rc == 0),
                          failures=int(m.rc != 0), rc=m.rc, wall=m.wall, cpu=m.cpu, peak_pss_mb=m.peak_pss_mb,
                          max_rss_mb=m.max_rss_mb, target_database=direct_db, log=stem + ".err")
            self.verify_database(emu, direct)
            self.runs.append(direct)
            self.log("  %-5s %-18s wall %6.1f s  cpu %6.1f s" % ("pg", "data-%d direct" % size, m.wall, m.cpu))
            for run in (ours, direct):
                run.update(size_mb=size, database_bytes=db_bytes, dump_bytes=os.path.getsize(dump))
            bl.drop_databases(target, "b_data_")

    def section_list(self, emu):
        t0 = time.monotonic()
        emu.stop()
        total, newest, dummy = bl.inject_recovery_points(emu.state, "bi-list", self.points - 1)
        emu.start(knobs=MAIN_KNOBS)
        self.log("list: %d recovery points on bi-list (%.0f s to add them); page size %d" % (
            total, time.monotonic() - t0, MAIN_KNOBS["page_size"]))
        truth = (newest,)
        for rep in range(self.list_repeat):
            order = CONTENDERS[rep % 3:] + CONTENDERS[:rep % 3]
            for contender in order:
                if contender == "ours":
                    events = self.path("logs", "events-%03d.jsonl" % (self.seq + 1))
                    vars_file = self.path("vars", "list.json")
                    with open(vars_file, "w", encoding="utf-8") as fh:
                        json.dump({"vault_name": bl.VAULT, "vault_resource_group": bl.VAULT_RG,
                                   "backup_instance_name": "bi-list", "select": "latest"}, fh)
                    argv = ["ansible-playbook", "-i", self.localhost_inventory(),
                            "azure_backup.dataprotection.list_recovery_points", "-e", "@" + vars_file]
                    run = self.measure(emu, "list", "ours", "list", argv, self.ansible_env(emu, events), 0,
                                       events=events)
                    found = [e.get("recovery_point_id") for e in run["lines"] if e.get("event") == "point"]
                elif contender == "sdk":
                    argv = [sys.executable, self.bench_file("sdk_restore.py"), "latest", "bi-list"]
                    run = self.measure(emu, "list", "sdk", "list", argv, self.base_env(emu), 0)
                    found = [e.get("recovery_point_id") for e in run["lines"] if e.get("event") == "latest"]
                else:
                    argv = ["bash", self.bench_file("curl_restore.sh"), "latest", "bi-list"]
                    run = self.measure(emu, "list", "curl", "list", argv, self.base_env(emu), 0)
                    found = [e.get("recovery_point_id") for e in run["lines"] if e.get("event") == "latest"]
                run["points"] = total
                run["pages"] = run["routes"].get("GET dataprotection.recoveryPoints.list", 0)
                run["found"] = found[-1] if found else None
                run["correct"] = bool(truth and run["found"] == truth[0])
                if not run["correct"]:
                    self.notes.append("list: %s selected %s, the latest is %s" % (contender, run["found"], truth))

    # ------------------------------------------------------------------------------------------ main
    def run(self):
        self.log("run dir %s; sections %s" % (self.run_dir, ",".join(self.sections)))
        self.copy_collection()
        self.copy_contenders()
        main_emu = None
        try:
            if MAIN_SECTIONS & set(self.sections):
                self.log("building the main world (%d backup instances of a %d-row database)" % (
                    self.backup_instances(), SAMPLE_ROWS))
                main_emu = self.start_emulator("main", self.main_world(), MAIN_KNOBS)
                main_emu.snapshot("pristine.json")  # every scale run starts from this world: no job history
                self.machine = bl.machine_info(main_emu.servers()[bl.TARGET_SERVER])
                if "single" in self.sections:
                    self.rotating_restores(main_emu, "single", self.repeat, self.job_seconds)
                if "defaults" in self.sections:
                    self.section_defaults(main_emu)
                if "long" in self.sections:
                    self.rotating_restores(main_emu, "long", self.long_repeat, self.long_seconds)
                if "scale" in self.sections:
                    self.section_scale(main_emu)
                if "stress" in self.sections:
                    self.section_scale(main_emu, [self.stress_n], self.stress_throttle, "stress")
                if "history" in self.sections:   # last: it leaves thousands of jobs in the state
                    self.section_history(main_emu)
                main_emu.stop()
            if {"data", "list"} & set(self.sections):
                self.log("building the data/list world (databases of %s MB)" % ",".join(map(str, self.sizes)))
                data = self.start_emulator("data", self.data_world(), MAIN_KNOBS)
                if main_emu is None:
                    self.machine = bl.machine_info(data.servers()[bl.TARGET_SERVER])
                if "data" in self.sections:
                    self.section_data(data)
                if "list" in self.sections:
                    self.section_list(data)
                data.stop()
            if "drill" in self.sections:
                self.log("building the drill world (%d backup instances, one database each)" % max(self.drill))
                drill = self.start_emulator("drill", self.drill_world(), MAIN_KNOBS)
                if not self.machine:
                    self.machine = bl.machine_info(drill.servers()[bl.TARGET_SERVER])
                drill.snapshot("pristine.json")
                self.section_drill(drill)
                drill.stop()
        finally:
            for emu in self.emulators:
                emu.stop()
        self.machine["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
        return self.report()

    # ------------------------------------------------------------------------------------------ report
    def runs_of(self, kind, contender, tag=None):
        return [r for r in self.runs if r["kind"] == kind and r["contender"] == contender
                and (tag is None or r["tag"] == tag)]

    @staticmethod
    def median(runs, key):
        values = [r[key] for r in runs if r.get(key) is not None]
        return statistics.median(values) if values else None

    def per_contender(self, kind, key, tag=None, contenders=CONTENDERS):
        """{contender: the median of `key` over its runs of `kind` (and `tag`)}."""
        return {c: self.median(self.runs_of(kind, c, tag), key) for c in contenders}

    def progress_label(self):
        return "progress lines on" if self.progress else "progress lines off"

    def table(self):
        rows = Rows()
        for part in (self.table_single, self.table_long, self.table_scale, self.table_stress, self.table_list,
                     self.table_data, self.table_history, self.table_drill):
            part(rows)
        return rows

    def table_single(self, rows):
        if not self.runs_of("single", "ours"):
            return
        sec = "1 whole restore, %.0f s job, %s (median of %d)" % (self.job_seconds, self.progress_label(), self.repeat)
        for key, metric, unit in (("wall", "wall time", "s"), ("overhead", "overhead (wall - server-side time)", "s"),
                                  ("requests", "HTTP requests", ""), ("auth_requests", "  of which token/metadata", ""),
                                  ("job_lists", "  of which jobs list (earlier-restore lookup)", ""),
                                  ("signin_requests", "sign-in/metadata requests (metadata + openid + token)", ""),
                                  ("cpu", "controller CPU", "s"),
                                  ("peak_pss_mb", "controller peak memory (PSS)", "MB")):
            rows.add(sec, metric, unit, self.per_contender("single", key))
        sec2 = "2 job end detection (same runs; poll %d s)" % self.poll
        for key, metric, unit in (("detection_lag", "detection lag", "s"), ("job_polls", "job polls", ""),
                                  ("lro_polls", "operation polls (validate + restore)", "")):
            rows.add(sec2, metric, unit, self.per_contender("single", key))
        defaults = self.runs_of("defaults", "ours")
        if defaults:
            for key, metric, unit in (("detection_lag", "detection lag", "s"), ("job_polls", "job polls", ""),
                                      ("wall", "wall time", "s"), ("requests", "HTTP requests", "")):
                rows.add(sec2, "%s, ours with playbook defaults" % metric, unit,
                         dict(self.per_contender("single", key), ours=defaults[0].get(key)),
                         note="poll_interval 30, permission check on" if key == "detection_lag" else "")

    def table_long(self, rows):
        """The long job's figures beside the single section's, and what grew: the polls, and what else."""
        if not self.runs_of("long", "ours"):
            return
        short, long_ = self.job_seconds, self.long_seconds
        with_short = bool(self.runs_of("single", "ours"))
        sec = "2b long job: %.0f s%s, %s (%.0f s job: median of %d)" % (
            long_, " against %.0f s" % short if with_short else "", self.progress_label(), long_, self.long_repeat)
        growth = {}
        for key, metric, unit in (("wall", "wall time", "s"), ("cpu", "controller CPU", "s"),
                                  ("requests", "HTTP requests", ""),
                                  ("signin_requests", "sign-in/metadata requests", ""), ("job_polls", "job polls", "")):
            at_long = self.per_contender("long", key)
            if not with_short:
                rows.add(sec, "%s, %.0f s job" % (metric, long_), unit, at_long)
                continue
            at_short = self.per_contender("single", key)
            growth[key] = {c: difference(at_long[c], at_short[c]) for c in CONTENDERS}
            rows.add(sec, "%s, %.0f s job" % (metric, short), unit, at_short)
            rows.add(sec, "%s, %.0f s job" % (metric, long_), unit, at_long)
            rows.add(sec, "%s growth (%.0f s - %.0f s job)" % (metric, long_, short), unit, growth[key])
        if growth:
            polls = growth["job_polls"]
            rows.add(sec, "requests growth per extra job poll (1: the polls only)", "",
                     {c: quotient(growth["requests"][c], polls[c]) for c in CONTENDERS})
            rows.add(sec, "controller CPU growth per extra job poll", "s",
                     {c: quotient(growth["cpu"][c], polls[c]) for c in CONTENDERS})
        rows.add(sec, "detection lag, %.0f s job" % long_, "s", self.per_contender("long", "detection_lag"))

    def table_scale(self, rows):
        for n in self.scale:
            tag = "scale-%d" % n
            runs = {c: (self.runs_of("scale", c, tag) or [{}])[0] for c in CONTENDERS}
            if not any(runs.values()):
                continue
            in_flight = min(n, self.concurrency)
            sec = "3 scale: %d restores (concurrency %d, throttling on)" % (n, in_flight)
            for key, metric, unit in (("wall", "wall time", "s"), ("requests", "HTTP requests", ""),
                                      ("throttled_429", "429s met", ""), ("failures", "failures", ""),
                                      ("peak_pss_mb", "controller peak memory (PSS)", "MB"),
                                      ("cpu", "controller CPU", "s"), ("emulator_cpu", "emulator CPU", "s")):
                rows.add(sec, metric, unit, {c: r.get(key) for c, r in runs.items()})
                if key == "peak_pss_mb":
                    rows.add(sec, "peak memory per restore in flight", "MB",
                             {c: quotient(r.get(key), in_flight) for c, r in runs.items()},
                             note="peak PSS / %d restores at once" % in_flight)

    def table_stress(self, rows):
        for run_ours in self.runs_of("stress", "ours"):
            n, tag = run_ours["n"], run_ours["tag"]
            runs = {c: (self.runs_of("stress", c, tag) or [{}])[0] for c in CONTENDERS}
            t = run_ours["throttle"]
            sec = "3b throttle stress: %d restores (reads %g + %g/s, writes %g + %g/s)" % (
                n, t["read_capacity"], t["read_refill"], t["write_capacity"], t["write_refill"])
            for key, metric, unit in (("wall", "wall time", "s"), ("requests", "HTTP requests", ""),
                                      ("throttled_429", "429s met", ""), ("failures", "failures", ""),
                                      ("cpu", "controller CPU", "s")):
                rows.add(sec, metric, unit, {c: r.get(key) for c, r in runs.items()})

    def table_drill(self, rows):
        for n in self.drill:
            tag = "drill-%d" % n
            runs = {c: (self.runs_of("drill", c, tag) or [{}])[0] for c in CONTENDERS}
            if not any(runs.values()):
                continue
            sec = "7 drill: %d backup instances (forks / threads %d)" % (n, min(n, self.concurrency))
            for key, metric, unit in (("wall", "wall time", "s"), ("cpu", "controller CPU", "s"),
                                      ("peak_pss_mb", "controller peak memory (PSS)", "MB"),
                                      ("requests", "HTTP requests", ""), ("failures", "failures", ""),
                                      ("left_over", "scratch databases left", "")):
                rows.add(sec, metric, unit, {c: r.get(key) for c, r in runs.items()},
                         note="ours also writes and deletes a secret per instance, and the report" if key == "requests"
                         else "")

    def table_list(self, rows):
        if not self.runs_of("list", "ours"):
            return
        sec = "4 latest of %d recovery points (median of %d)" % (self.points, self.list_repeat)
        for key, metric, unit in (("wall", "wall time", "s"), ("requests", "HTTP requests", ""),
                                  ("peak_pss_mb", "controller peak memory (PSS)", "MB"),
                                  ("max_rss_mb", "largest process (RSS)", "MB"), ("cpu", "controller CPU", "s")):
            rows.add(sec, metric, unit, self.per_contender("list", key))

    def table_data(self, rows):
        for size in self.sizes:
            tag = "data-%d" % size
            ours, direct = self.runs_of("data", "ours", tag), self.runs_of("data", "direct", tag)
            if ours and direct:
                sec = "5 data path: %d MB database" % size
                rows.add(sec, "wall time", "s", {"ours": ours[0]["wall"], "direct": direct[0]["wall"]},
                         note="direct = createdb + pg_restore of the same dump")
                rows.add(sec, "restore itself (emulator job / pg_restore)", "s",
                         {"ours": ours[0].get("job_seconds"), "direct": direct[0]["wall"]})
                rows.add(sec, "controller CPU", "s", {"ours": ours[0]["cpu"], "direct": direct[0]["cpu"]})

    def table_history(self, rows):
        """Per history size ours and the SDK (the control); then what grew from the smallest to the largest."""
        sizes = sorted(n for n in self.history if self.runs_of("history", "ours", "history-%d" % n))
        metrics = (("wall", "wall time", "s"), ("requests", "HTTP requests", ""),
                   ("job_lists", "  of which jobs list (earlier-restore lookup)", ""), ("cpu", "controller CPU", "s"),
                   ("peak_pss_mb", "controller peak memory (PSS)", "MB"), ("emulator_cpu", "emulator CPU", "s"))
        figures = {n: {key: self.per_contender("history", key, "history-%d" % n, ("ours", "sdk"))
                       for key, _, _ in metrics} for n in sizes}
        for n in sizes:
            sec = "6 job history: %d jobs in the vault, %.0f s job (sdk: the control, lists no job)" % (
                n, MAIN_KNOBS["job_duration"])
            for key, metric, unit in metrics:
                rows.add(sec, metric, unit, figures[n][key])
        if len(sizes) > 1:
            lo, hi = figures[sizes[0]], figures[sizes[-1]]
            sec = "6 job history: growth from %d to %d jobs" % (sizes[0], sizes[-1])
            for key, metric, unit in metrics:
                # no ratio: the control's growth is about zero, the point is ours against that zero
                rows.add(sec, "%s growth" % metric.strip(), unit,
                         {c: difference(hi[key][c], lo[key][c]) for c in ("ours", "sdk")}, ratios=False)

    def report(self):
        rows = self.table()
        finished = time.time()
        result = {
            "generated": self.saved_generated or dt.datetime.fromtimestamp(
                finished, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "duration_s": round(finished - self.t_start, 1),
            "machine": self.machine,
            "collection_version": self.collection_version,
            "git": self.saved_git or git_describe(),
            "config": {"sections": self.sections, "scale": self.scale, "repeat": self.repeat,
                       "concurrency": self.concurrency, "poll_interval": self.poll, "sizes_mb": self.sizes,
                       "points": self.points, "list_repeat": self.list_repeat, "stress_n": self.stress_n,
                       "stress_knobs": dict(THROTTLED, throttle=self.stress_throttle),
                       "job_seconds_single": self.job_seconds, "long_job_seconds": self.long_seconds,
                       "long_repeat": self.long_repeat, "progress": self.progress, "cloud": self.cloud,
                       "ansible_cfg": self.ansible_cfg,
                       "history_jobs": self.history,
                       "history_mix": HISTORY_MIX, "emulator_knobs": MAIN_KNOBS,
                       "scale_knobs": dict(THROTTLED, throttle=self.throttle), "sample_rows": SAMPLE_ROWS,
                       "sign_in_cache": "%s: a new empty folder per run of ours" % bl.CACHE_DIR_ENV},
            "table": rows,
            "notes": self.notes,
            "runs": [{k: v for k, v in r.items() if k not in ("lines", "log")} for r in self.runs],
        }
        text = render_table(rows, result)
        print()
        print(text)
        os.makedirs(self.out, exist_ok=True)
        with open(os.path.join(self.out, "results.json"), "w", encoding="utf-8") as fh:
            json.dump(result, fh, indent=1, default=str)
        with open(os.path.join(self.out, "results.md"), "w", encoding="utf-8") as fh:
            fh.write(render_markdown(rows, result))
        print("\nwritten: %s/results.json, results.md (run dir %s%s)" % (
            os.path.relpath(self.out, ROOT), self.run_dir, "" if self.keep else ", removed"))
        if self.publish:
            publish(result, rows)
        # Our failures fail the bench, except in the stress run, whose buckets are a fifth of ARM's (reported).
        failed = [r for r in self.runs if r.get("expected") and r.get("failures")]
        for r in failed:
            print("%s: %s %s: %d of %d restores failed, e.g. %s" % (
                "OUR RESTORES FAILED" if r["contender"] == "ours" and r["kind"] != "stress" else "warning",
                r["contender"], r["tag"], r["failures"], r["expected"], (r.get("errors") or ["?"])[0]))
        return 1 if any(r["contender"] == "ours" and r["kind"] != "stress" for r in failed) else 0

    def cleanup(self):
        if not self.keep:
            shutil.rmtree(self.run_dir, ignore_errors=True)


# ---------------------------------------------------------------------------------------------- rendering

class Rows(list):
    """The report's rows: one metric of one section, its value per contender and ours / each alternative."""

    def add(self, section, metric, unit, values, note="", ratios=True):
        row = {"section": section, "metric": metric, "unit": unit, "note": note}
        row.update((name, values[name]) for name in ("ours", "curl", "sdk", "direct") if name in values)
        if ratios:
            row.update(("ours_vs_" + alt, ratio(values.get("ours"), values[alt]))
                       for alt in ("curl", "sdk", "direct") if alt in values)
        self.append(row)


def difference(a, b):
    return None if a is None or b is None else a - b


def quotient(a, b):
    """a / b, or None (no figure, or nothing to divide by): a per-unit figure, not a ratio of two contenders."""
    return None if a is None or not b else a / b


def ratio(ours, alt):
    if ours is None or alt is None:
        return None
    if alt == 0:
        return None if ours == 0 else float("inf")
    return ours / alt


def fmt(value, unit=""):
    if value is None:
        return "-"
    if isinstance(value, float):
        if value == float("inf"):
            return "inf"
        if unit in ("s",) or abs(value) < 100:
            return "%.2f" % value if abs(value) < 10 else "%.1f" % value
        return "%.0f" % value
    return str(value)


def fmt_ratio(value):
    if value is None:
        return "-"
    if value == float("inf"):
        return "inf"
    return "%.2fx" % value


def render_table(rows, result):
    m = result["machine"]
    head = ("%s, %s cores, %s GB; Python %s, ansible-core %s, %s; %s" % (
        m.get("cpu_model"), m.get("cores"), m.get("memory_gb"), m.get("python"),
        m["packages"].get("ansible-core"), m.get("postgres_server") and "PostgreSQL " + m["postgres_server"],
        "load %s -> %s" % (m.get("load_average_at_start"), m.get("load_average_at_end"))))
    lines = ["make bench: ours / alternative (ratio > 1: we take more)", head, ""]
    cols = ("section", "metric", "ours", "curl", "sdk", "direct", "ours/curl", "ours/sdk", "ours/direct")
    table = []
    for r in rows:
        table.append([r["section"], r["metric"] + (" (%s)" % r["unit"] if r["unit"] else ""),
                      fmt(r.get("ours"), r["unit"]), fmt(r.get("curl"), r["unit"]) if "curl" in r else "",
                      fmt(r.get("sdk"), r["unit"]) if "sdk" in r else "",
                      fmt(r.get("direct"), r["unit"]) if "direct" in r else "",
                      fmt_ratio(r.get("ours_vs_curl")) if "curl" in r else "",
                      fmt_ratio(r.get("ours_vs_sdk")) if "sdk" in r else "",
                      fmt_ratio(r.get("ours_vs_direct")) if "direct" in r else ""])
    widths = [max(len(c), *(len(t[i]) for t in table)) if table else len(c) for i, c in enumerate(cols)]
    lines.append("  ".join(c.ljust(widths[i]) for i, c in enumerate(cols)))
    lines.append("  ".join("-" * w for w in widths))
    previous = None
    for t in table:
        shown = list(t)
        if t[0] == previous:
            shown[0] = ""
        previous = t[0]
        lines.append("  ".join(v.ljust(widths[i]) if i < 2 else v.rjust(widths[i]) for i, v in enumerate(shown)))
    for note in result["notes"]:
        lines.append("note: %s" % note)
    return "\n".join(lines)


def render_markdown(rows, result):
    m = result["machine"]
    out = ["Generated %s in %.0f s by `make bench` (collection %s, %s)." % (
        result["generated"], result["duration_s"], result["collection_version"], result["git"]), "",
        "Machine: %s, %s cores, %s GB RAM, kernel %s; Python %s, ansible-core %s, azure-mgmt-dataprotection %s, "
        "azure-identity %s; %s; %s; PostgreSQL %s. Load average %s at the start, %s at the end." % (
            m.get("cpu_model"), m.get("cores"), m.get("memory_gb"), m.get("kernel"), m.get("python"),
            m["packages"].get("ansible-core"), m["packages"].get("azure-mgmt-dataprotection"),
            m["packages"].get("azure-identity"), m.get("curl"), m.get("jq"), m.get("postgres_server"),
            m.get("load_average_at_start"), m.get("load_average_at_end")), "",
        "| section | metric | ours | curl | sdk | direct | ours/curl | ours/sdk | ours/direct |",
        "|---|---|--:|--:|--:|--:|--:|--:|--:|"]
    previous = None
    for r in rows:
        unit = r["unit"]
        out.append("| %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
            "" if r["section"] == previous else r["section"], r["metric"] + (" (%s)" % unit if unit else ""),
            fmt(r.get("ours"), unit), fmt(r.get("curl"), unit) if "curl" in r else "",
            fmt(r.get("sdk"), unit) if "sdk" in r else "", fmt(r.get("direct"), unit) if "direct" in r else "",
            fmt_ratio(r.get("ours_vs_curl")) if "curl" in r else "",
            fmt_ratio(r.get("ours_vs_sdk")) if "sdk" in r else "",
            fmt_ratio(r.get("ours_vs_direct")) if "direct" in r else ""))
        previous = r["section"]
    for note in result["notes"]:
        out.append("")
        out.append("Note: %s" % note)
    return "\n".join(out) + "\n"


def git_describe():
    try:
        head = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                              check=False).stdout.strip()
        dirty = subprocess.run(["git", "-C", ROOT, "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, check=False).stdout.strip()
        return "git %s%s" % (head or "?", " + local changes" if dirty else "")
    except OSError:
        return "git ?"


START, END = "<!-- bench:table:start -->", "<!-- bench:table:end -->"


def publish(result, rows):
    with open(os.path.join(ROOT, "docs", "benchmarks.json"), "w", encoding="utf-8") as fh:
        json.dump({k: v for k, v in result.items() if k != "runs"}, fh, indent=1, default=str)
        fh.write("\n")
    md_path = os.path.join(ROOT, "docs", "benchmarks.md")
    with open(md_path, encoding="utf-8") as fh:
        text = fh.read()
    if START in text and END in text:
        before, rest = text.split(START, 1)
        after = rest.split(END, 1)[1]
        with open(md_path, "w", encoding="utf-8") as fh:
            fh.write(before + START + "\n" + render_markdown(rows, result) + END + after)
    print("published: docs/benchmarks.json and the table in docs/benchmarks.md")


def rerender(path):
    """`bench.py --from RESULTS.json`: the table again from saved runs (after a change of the report only)."""
    with open(path, encoding="utf-8") as fh:
        saved = json.load(fh)
    bench = Bench()
    shutil.rmtree(bench.run_dir, ignore_errors=True)
    cfg = saved["config"]
    bench.sections, bench.scale, bench.repeat = cfg["sections"], cfg["scale"], cfg["repeat"]
    bench.concurrency, bench.poll, bench.sizes, bench.points = (cfg["concurrency"], cfg["poll_interval"],
                                                                cfg["sizes_mb"], cfg["points"])
    bench.list_repeat, bench.stress_n = cfg.get("list_repeat", 1), cfg.get("stress_n", 20)
    bench.job_seconds = cfg.get("job_seconds_single", 10)
    bench.long_seconds, bench.long_repeat = cfg.get("long_job_seconds", 120), cfg.get("long_repeat", 1)
    bench.progress, bench.history = cfg.get("progress", True), cfg.get("history_jobs", [])
    bench.throttle = cfg["scale_knobs"]["throttle"]
    bench.stress_throttle = (cfg.get("stress_knobs") or {}).get("throttle", bench.stress_throttle)
    bench.machine, bench.collection_version, bench.notes = saved["machine"], saved["collection_version"], saved["notes"]
    bench.runs = saved["runs"]
    bench.t_start = time.time() - saved["duration_s"]
    bench.saved_git, bench.saved_generated = saved.get("git"), saved.get("generated")
    return bench.report()


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--from":
        return rerender(sys.argv[2])
    bench = Bench()
    try:
        return bench.run()
    except KeyboardInterrupt:
        print("bench: interrupted", file=sys.stderr)
        return 130
    except Exception:  # pylint: disable=broad-exception-caught  # print it, stop the emulators, keep the run dir
        traceback.print_exc()
        bench.keep = True
        print("bench: failed; run dir kept: %s" % bench.run_dir, file=sys.stderr)
        return 1
    finally:
        bench.cleanup()


if __name__ == "__main__":
    sys.exit(main())
