#!/usr/bin/env python3
# Copyright: (c) 2025, Azure Backup Data Protection collection contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""make bench, section "flexible server load": pg_restore_files_to_server (ours: one ansible-playbook task) against
what a user scripts by hand (tests/bench/flex_by_hand.py: azure-storage-blob's download_blob to a file, createdb,
pg_restore), on the emulator: a flexible server database of BENCH_FLEX_SIZES MB of dump (default 100; BENCH_LARGE=1
adds 1024), restored as files into Azurite, then downloaded and loaded into targetflexserver by each contender.

Figures per size: wall seconds (and our task's own seconds, from tests/bench/callback_plugins: the module's run
without ansible-playbook's start), controller CPU seconds, peak PSS of the client's process tree (pg_restore included) and
the largest single process (max RSS). Writes .bench/flexible.json and prints a table. Not a test: nothing is checked
against a threshold.

Both contenders read the blobs through the emulator's authorizing gate in front of Azurite (DPEMULATOR_BLOB_URL), as
clients of Azure pass its RBAC check. BENCH_FLEX_ROUTES=gate,azurite also measures each contender reading Azurite
directly (ours then names container_url and file_prefix, not the job), to show what the gate costs;
BENCH_FLEX_REPEAT=N measures each route N times on the same restored files (medians are the reader's to take).
"""

import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
import ssl

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "bench"))

import benchlib as bl  # noqa: E402  pylint: disable=wrong-import-position,import-error

WORLD = os.path.join(ROOT, "tests", "emulator", "dpemulator", "worlds", "granted.yml")
HEX_PER_ROW = 16 * 32           # 16 md5s per row: little for pg_dump -Z 1 to squeeze
DUMP_BYTES_PER_ROW = 300        # about what one row costs in the dump (measured; the report shows the real size)
FILL = ("CREATE TABLE IF NOT EXISTS payload (id int PRIMARY KEY, pad text); INSERT INTO payload SELECT g, "
        "(SELECT string_agg(md5(g::text || '-' || i), '') FROM generate_series(1, 16) i) "
        "FROM generate_series(%d, %d) g")


class Emu:
    def __init__(self, state):
        self.state = state
        with open(os.path.join(state, "env.json")) as fh:
            self.env = json.load(fh)
        self.ctx = ssl.create_default_context(cafile=self.env["REQUESTS_CA_BUNDLE"])

    def control(self, method, path, body=None):
        req = urllib.request.Request(self.env["DPEMULATOR_URL"] + "/_emulator/" + path, method=method,
                                     data=json.dumps(body).encode() if body is not None else None,
                                     headers={"Authorization": "Bearer " + self.env["DPEMULATOR_CONTROL_TOKEN"],
                                              "Content-Type": "application/json"})
        with urllib.request.urlopen(req, context=self.ctx, timeout=3600) as resp:
            return json.loads(resp.read())

    def pg(self, name):
        s = self.control("GET", "servers")[name]
        return {"host": s["host"], "port": s["port"], "user": s["admin_user"], "password": s["admin_password"]}

    def client_env(self):
        keep = {k: v for k, v in os.environ.items() if not k.startswith(("AZURE_", "PG"))}
        keep.update({k: str(v) for k, v in self.env.items() if k.startswith("AZURE_") or k == "REQUESTS_CA_BUNDLE"})
        return keep


def psql(server, sql, database="postgres"):
    env = dict(os.environ, PGHOST=server["host"], PGPORT=str(server["port"]), PGUSER=server["user"],
               PGPASSWORD=server["password"], PGSSLMODE="require")
    return subprocess.run(["psql", "-X", "-At", "-v", "ON_ERROR_STOP=1", "-d", database, "-c", sql], env=env,
                          check=True, capture_output=True, text=True).stdout.strip()


def playbook(tasks):
    lines = ["- name: bench", "  hosts: localhost", "  gather_facts: false", "  connection: local", "  tasks:"]
    for name, module, params in tasks:
        lines += ["    - name: %s" % name, "      %s: %s" % (module, json.dumps(params)), "      register: r",
                  "    - name: Result of %s" % name, "      ansible.builtin.debug:", "        var: r"]
    return "\n".join(lines) + "\n"


def run_playbook(emu, text, workdir, stem):
    path = os.path.join(workdir, stem + ".yml")
    with open(path, "w") as fh:
        fh.write(text)
    env = emu.client_env()
    events = os.path.join(workdir, stem + ".events")
    env.update(ANSIBLE_PYTHON_INTERPRETER=sys.executable, ANSIBLE_CALLBACKS_ENABLED="bench_events",
               ANSIBLE_CALLBACK_PLUGINS=os.path.join(ROOT, "tests", "bench", "callback_plugins"), BENCH_EVENTS=events)
    argv = ["ansible-playbook", "-i", "localhost,", path]
    run = bl.run_measured(argv, env, workdir, os.path.join(workdir, stem + ".out"))
    run.task_seconds = {}
    if os.path.exists(events):
        with open(events) as fh:
            for line in fh:
                event = json.loads(line)
                if event.get("event") == "task":
                    run.task_seconds[event["task"]] = event["seconds"]
    return run


def main():
    sizes = [int(s) for s in os.environ.get("BENCH_FLEX_SIZES", "100").split(",") if s]
    routes = [r for r in os.environ.get("BENCH_FLEX_ROUTES", "gate").split(",") if r]
    repeat = int(os.environ.get("BENCH_FLEX_REPEAT", "1"))
    if os.environ.get("BENCH_LARGE") == "1" and 1024 not in sizes:
        sizes.append(1024)
    out_dir = os.path.join(ROOT, os.environ.get("BENCH_OUT", ".bench"))
    os.makedirs(out_dir, exist_ok=True)
    work = tempfile.mkdtemp(prefix="bench-flex-")
    state = os.path.join(work, "emu")
    os.chmod(work, 0o755)
    subprocess.run(["dpemulator", "start", "--state", state, "--world", WORLD, "--knob", "job_duration=1",
                    "--knob", "operation_duration=0.5"], check=True)
    rows = []
    try:
        emu = Emu(state)
        source, target = emu.pg("sourceflexserver"), emu.pg("targetflexserver")
        container = emu.env["DPEMULATOR_BLOB_URL"] + "targetossstorage/restored-files"
        account_id = "/subscriptions/%s/resourceGroups/targetrg/providers/Microsoft.Storage/storageAccounts/" \
            "targetossstorage" % emu.env["AZURE_SUBSCRIPTION_ID"]
        bi = [b for b in emu.control("GET", "backup-instances")["value"] if b["server"] == "sourceflexserver"][0]
        for size in sizes:
            db = "flexbench%d" % size
            t0 = time.monotonic()
            psql(source, "DROP DATABASE IF EXISTS %s" % db)
            psql(source, "CREATE DATABASE %s" % db)
            total = int(size * 1024 * 1024 / DUMP_BYTES_PER_ROW)
            step = 500000
            for first in range(1, total + 1, step):
                psql(source, FILL % (first, min(total, first + step - 1)), database=db)
            point = emu.control("POST", "backup", {"backup_instance": bi["name"]})
            prefix = "bench-%d-%d" % (size, int(time.time()))
            restore = run_playbook(emu, playbook([("restore", "azure_backup.dataprotection.pg_restore", {
                "vault_name": "TestBkpVault", "resource_group": "testBkpVaultRG", "backup_instance_name": bi["name"],
                "recovery_point_id": point["name"], "target_container_url": container,
                "target_storage_account_id": account_id, "target_file_prefix": prefix, "wait": True,
                "poll_interval": 1})]), work, "restore-%d" % size)
            if restore.rc != 0:
                raise SystemExit("the restore as files failed: see %s/restore-%d.out" % (work, size))
            blob = "%s_%s.sql" % (prefix, db)
            with open(os.path.join(work, "restore-%d.out" % size)) as fh:
                job_id = json.loads(fh.read().split('"r": ', 1)[1].rsplit("}", 2)[0] + "}")["job_id"]
            print("flexible: %s ready in %.0f s (restore as files included)" % (db, time.monotonic() - t0),
                  flush=True)
            with open(os.path.join(state, "state.json")) as fh:
                direct = "https://127.0.0.1:%d/targetossstorage/restored-files" % json.load(fh)["meta"]["azurite_port"]
            for rep_no in range(repeat):
                for route in routes:
                    source_args = {"job_id": job_id} if route == "gate" else {"container_url": direct,
                                                                              "file_prefix": prefix}
                    route_container = container if route == "gate" else direct
                    module = "azure_backup.dataprotection.pg_restore_files_to_server"
                    ours = run_playbook(emu, playbook([("load", module, dict(source_args, **{
                        "vault_name": "TestBkpVault", "resource_group": "testBkpVaultRG",
                        "source_database": db, "target_database": "ours_%d" % size, "host": target["host"],
                        "port": int(target["port"]), "login_user": target["user"],
                        "login_password": target["password"], "ssl_root_cert": emu.env["REQUESTS_CA_BUNDLE"],
                        "download_dir": work}))]), work, "ours-%d" % size)
                    env = emu.client_env()
                    env.update(PGHOST=target["host"], PGPORT=str(target["port"]), PGUSER=target["user"],
                               PGPASSWORD=target["password"], PGSSLMODE="verify-full",
                               PGSSLROOTCERT=emu.env["REQUESTS_CA_BUNDLE"])
                    hand = bl.run_measured([sys.executable, os.path.join(ROOT, "tests", "bench", "flex_by_hand.py"),
                                            route_container, blob, os.path.join(work, "hand.dump"), "hand_%d" % size],
                                           env, work, os.path.join(work, "hand-%d.out" % size))
                    with open(os.path.join(work, "ours-%d.out" % size)) as fh:
                        text = fh.read()
                    dump_mb = json.loads(text.split('"r": ', 1)[1].rsplit("}", 2)[0] + "}")["files"]["size"] \
                        / 2 ** 20
                    counts = [psql(target, "SELECT count(*) FROM payload", database=d) for d in ("ours_%d" % size,
                                                                                                 "hand_%d" % size)]
                    row = {"size_mb": round(dump_mb), "route": route, "run": rep_no + 1, "rows": total,
                           "ok": [ours.rc == 0, hand.rc == 0], "counts_equal": counts[0] == counts[1] == str(total),
                           "wall": [round(ours.wall, 2), round(hand.wall, 2)],
                           "cpu": [round(ours.cpu, 2), round(hand.cpu, 2)],
                           "task_seconds_ours": round(ours.task_seconds.get("load", 0), 2),
                           "peak_pss_mb": [round(ours.peak_pss_mb), round(hand.peak_pss_mb)],
                           "max_rss_mb": [round(ours.max_rss_mb), round(hand.max_rss_mb)]}
                    rows.append(row)
                    print("flexible %4d MB  %-7s our task alone %6.1f s (%.2fx)" % (
                        row["size_mb"], route, row["task_seconds_ours"], row["task_seconds_ours"] / hand.wall),
                        flush=True)
                    print("flexible %4d MB  %-7s wall ours %6.1f s  by hand %6.1f s  (%.2fx)  peak PSS ours %4d MB  "
                          "by hand %4d MB  max RSS ours %4d MB  by hand %4d MB  rows equal %s" % (
                              row["size_mb"], route, ours.wall, hand.wall, ours.wall / hand.wall, ours.peak_pss_mb,
                              hand.peak_pss_mb, ours.max_rss_mb, hand.max_rss_mb, row["counts_equal"]), flush=True)
                    psql(target, "DROP DATABASE IF EXISTS ours_%d" % size)
                    psql(target, "DROP DATABASE IF EXISTS hand_%d" % size)
            psql(source, "DROP DATABASE IF EXISTS %s" % db)
    finally:
        subprocess.run(["dpemulator", "stop", "--state", state], check=False)
        if os.environ.get("BENCH_KEEP") != "1":
            subprocess.run(["rm", "-rf", work], check=False)
    with open(os.path.join(out_dir, "flexible.json"), "w") as fh:
        json.dump({"contenders": ["ours", "by hand"], "rows": rows, "machine": bl.machine_info()}, fh, indent=2)
    return 0 if all(all(r["ok"]) and r["counts_equal"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
