"""`dpemulator` command: start (detached, returns when ready), stop, run (foreground), status, and
world actions through the control API (backup, archive, seed-points, seed-jobs, knobs, fault, cancel-job)."""
import argparse
import json
import os
import signal
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request

from .emulator import LOG_FILE, PID_FILE
from .faults import FAULT_KINDS
from .postgres import pid_alive

DEFAULT_WORLD = os.path.join(os.path.dirname(os.path.abspath(__file__)), "worlds", "demo.yml")


def default_state():
    return os.environ.get("DPEMULATOR_STATE") or os.path.abspath(".emulator")


def _read_pid(state):
    try:
        with open(os.path.join(state, PID_FILE)) as fh:
            return int(fh.read().strip())
    except (OSError, ValueError):
        return None


def _env(state):
    with open(os.path.join(state, "env.json")) as fh:
        return json.load(fh)


def _call(state, method, path, body=None, auth=True, timeout=30):
    env = _env(state)
    ctx = ssl.create_default_context(cafile=os.path.join(state, "ca.pem"))
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(env["DPEMULATOR_URL"] + path, data=data, method=method)
    req.add_header("Content-Type", "application/json")
    if auth:
        req.add_header("Authorization", "Bearer " + env["DPEMULATOR_CONTROL_TOKEN"])
    try:
        with urllib.request.urlopen(req, context=ctx, timeout=timeout) as resp:
            return resp.status, json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


def _healthy(state, pid):
    try:
        env = _env(state)
        if int(env.get("DPEMULATOR_PID", -1)) != pid:
            return False
        status, body = _call(state, "GET", "/_emulator/health", auth=False, timeout=5)
        return status == 200 and body.get("pid") == pid
    except (OSError, ValueError, KeyError):
        return False


def cmd_start(args):
    state = os.path.abspath(args.state)
    os.makedirs(state, exist_ok=True)
    pid = _read_pid(state)
    if pid and pid_alive(pid) and _healthy(state, pid):
        print("dpemulator already running (pid %d): %s" % (pid, _env(state)["DPEMULATOR_URL"]))
        print("env: %s/env.sh" % state)
        return 0
    if pid and pid_alive(pid):
        print("dpemulator pid %d is alive but not healthy; stop it first" % pid, file=sys.stderr)
        return 1
    argv = [sys.executable, "-m", "dpemulator.cli", "run", "--state", state, "--pg-mode", args.pg_mode]
    if args.world:
        argv += ["--world", os.path.abspath(args.world)]
    elif not os.path.exists(os.path.join(state, "state.json")):
        argv += ["--world", DEFAULT_WORLD]
    if args.port:
        argv += ["--port", str(args.port)]
    for knob in args.knob or []:
        argv += ["--knob", knob]
    log = open(os.path.join(state, LOG_FILE), "ab")
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True,
                            close_fds=True)
    log.close()
    deadline = time.time() + args.timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            print("dpemulator exited (rc %s) during start; see %s:" % (proc.returncode,
                                                                      os.path.join(state, LOG_FILE)), file=sys.stderr)
            with open(os.path.join(state, LOG_FILE), errors="replace") as fh:
                print("".join(fh.readlines()[-20:]), file=sys.stderr)
            return 1
        if _healthy(state, proc.pid):
            print("dpemulator started (pid %d): %s" % (proc.pid, _env(state)["DPEMULATOR_URL"]))
            print("env: . %s/env.sh" % state)
            return 0
        time.sleep(0.2)
    print("dpemulator did not become ready in %ss; stopping it" % args.timeout, file=sys.stderr)
    _terminate(proc.pid, 20)
    return 1


def _terminate(pid, timeout):
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return True
    deadline = time.time() + timeout
    while time.time() < deadline:
        if not pid_alive(pid):
            return True
        time.sleep(0.1)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    return False


def cmd_stop(args):
    state = os.path.abspath(args.state)
    pid = _read_pid(state)
    if pid and pid_alive(pid):
        clean = _terminate(pid, args.timeout)
        print("dpemulator (pid %d) stopped%s" % (pid, "" if clean else " (killed)"))
    else:
        print("dpemulator is not running")
    # The emulator stops its clusters itself; after a kill (or a crash) do it here, by their pid files.
    pg_dir = os.path.join(state, "pg")
    if os.path.isdir(pg_dir):
        from . import postgres as pg
        try:
            pg.ClusterManager(pg_dir).stop_all()
        except Exception as exc:       # report, but a stop must not fail on a cleanup problem
            print("stopping clusters: %s" % exc, file=sys.stderr)
    from .azurite import stop_pid_file
    if stop_pid_file(state):
        print("stopped a leftover Azurite")
    try:
        os.unlink(os.path.join(state, PID_FILE))
    except FileNotFoundError:
        pass
    return 0


def cmd_run(args):
    from .emulator import run_foreground
    knobs = _parse_knobs(args.knob)
    run_foreground(args.state, args.world, args.port, args.pg_mode, knobs)
    return 0


def cmd_status(args):
    state = os.path.abspath(args.state)
    pid = _read_pid(state)
    if not (pid and pid_alive(pid)):
        print(json.dumps({"running": False, "state": state}))
        return 3
    status, body = _call(state, "GET", "/_emulator/status")
    print(json.dumps(dict(body or {}, running=status == 200), indent=2))
    return 0 if status == 200 else 1


def _parse_knobs(items):
    knobs = {}
    for item in items or []:
        key, _, value = item.partition("=")
        try:
            parsed = json.loads(value)
        except ValueError:
            parsed = value
        if "." in key:
            outer, inner = key.split(".", 1)
            knobs.setdefault(outer, {})[inner] = parsed
        else:
            knobs[key] = parsed
    return knobs


def _print_call(state, method, path, body=None):
    status, out = _call(state, method, path, body, timeout=600)
    print(json.dumps(out, indent=2))
    return 0 if status < 300 else 1


def cmd_knobs(args):
    if args.set:
        return _print_call(args.state, "PATCH", "/_emulator/knobs", _parse_knobs(args.set))
    return _print_call(args.state, "GET", "/_emulator/knobs")


def cmd_backup(args):
    return _print_call(args.state, "POST", "/_emulator/backup", {"backup_instance": args.backup_instance})


def cmd_archive(args):
    return _print_call(args.state, "POST", "/_emulator/archive", {"backup_instance": args.backup_instance,
                                                                  "recovery_point": args.recovery_point})


def cmd_seed_points(args):
    return _print_call(args.state, "POST", "/_emulator/seed-points",
                       {"backup_instance": args.backup_instance, "count": args.count,
                        "interval_hours": args.interval_hours, "archive": args.archive})


def cmd_seed_jobs(args):
    body = {"vault": args.vault, "count": args.count, "restore_share": args.restore_share,
            "failed_share": args.failed_share, "interval_minutes": args.interval_minutes,
            "duration_seconds": args.duration_seconds, "target_server": args.target_server, "seed": args.seed,
            "backup_instances": args.backup_instance}
    return _print_call(args.state, "POST", "/_emulator/seed-jobs", {k: v for k, v in body.items() if v is not None})


def cmd_fault(args):
    if args.action == "list":
        return _print_call(args.state, "GET", "/_emulator/faults")
    if args.action == "clear":
        return _print_call(args.state, "DELETE", "/_emulator/faults")
    spec = {"kind": args.kind, "method": args.method, "path": args.path, "count": args.count,
            "status": args.status, "retry_after": args.retry_after, "latency": args.latency, "code": args.code}
    return _print_call(args.state, "POST", "/_emulator/faults", {k: v for k, v in spec.items() if v is not None})


def cmd_cancel_job(args):
    return _print_call(args.state, "POST", "/_emulator/jobs/%s/cancel" % args.job)


# The README's first restore: the restore_database playbook's extra vars for the demo world. The server login is
# the emulator's own fake one; on Azure it comes from Ansible Vault or an AWX survey's password field.
EXAMPLE_VARS = """---
# Written by dpemulator example-vars: the demo world of the emulator at {url}
vault_name: TestBkpVault
vault_resource_group: testBkpVaultRG
datasource_id: {source}/databases/empdb11
target_server_id: {target}
target_database_name: emprestored21
key_vault_uri: {url}/keyvaults/targetosskv/
secret_name: targetossserver-restore
admin_user: {admin_user}
admin_password: {admin_password}
# The emulator applies role assignments at once and its jobs take seconds: poll often.
validate_delay: 2
poll_interval: 2
"""


def cmd_example_vars(args):
    status, servers = _call(args.state, "GET", "/_emulator/servers")
    if status != 200 or "targetossserver" not in servers or "sourceossserver" not in servers:
        print("example-vars needs the demo world (servers sourceossserver and targetossserver)", file=sys.stderr)
        return 1
    target = servers["targetossserver"]
    sys.stdout.write(EXAMPLE_VARS.format(
        url=_env(args.state)["DPEMULATOR_URL"], source=servers["sourceossserver"]["id"], target=target["id"],
        admin_user=target["admin_user"], admin_password=json.dumps(target["admin_password"])))
    return 0


def build_parser():
    p = argparse.ArgumentParser(prog="dpemulator", description="Local emulator of the Azure services an Azure "
                                "Database for PostgreSQL restore touches.")
    sub = p.add_subparsers(dest="cmd", required=True)

    def add(name, func, help_text):
        sp = sub.add_parser(name, help=help_text)
        sp.add_argument("--state", default=default_state(), help="state dir (default $DPEMULATOR_STATE or ./.emulator)")
        sp.set_defaults(func=func)
        return sp

    for name, func, text in (("start", cmd_start, "start detached; returns when ready"),
                             ("run", cmd_run, "run in the foreground")):
        sp = add(name, func, text)
        sp.add_argument("--world", help="world YAML (default: the demo world on a new state dir)")
        sp.add_argument("--port", type=int, help="HTTPS port on 127.0.0.1 (default: kept from the state, else free)")
        sp.add_argument("--pg-mode", choices=("managed", "attach"), default="managed")
        sp.add_argument("--knob", action="append", metavar="NAME=VALUE",
                        help="set a knob, e.g. job_duration=1 or throttle.enabled=true")
        if name == "start":
            sp.add_argument("--timeout", type=float, default=180)
    sp = add("stop", cmd_stop, "stop the emulator and its clusters")
    sp.add_argument("--timeout", type=float, default=30)
    add("status", cmd_status, "print the running emulator's status")
    add("example-vars", cmd_example_vars, "print the restore playbooks' extra vars for the demo world (YAML)")
    sp = add("knobs", cmd_knobs, "show or set knobs")
    sp.add_argument("set", nargs="*", metavar="NAME=VALUE")
    sp = add("backup", cmd_backup, "take a backup now (real pg_dump) -> a new recovery point")
    sp.add_argument("backup_instance", help="name, ARM id, or 'server/database' ('server' for flexible)")
    sp = add("archive", cmd_archive, "move a recovery point to the archive tier")
    sp.add_argument("backup_instance")
    sp.add_argument("recovery_point", nargs="?", default="latest")
    sp = add("seed-points", cmd_seed_points, "add N backdated recovery points (one real dump shared)")
    sp.add_argument("backup_instance")
    sp.add_argument("--count", type=int, default=25)
    sp.add_argument("--interval-hours", type=float, default=24)
    sp.add_argument("--archive", action="store_true")
    sp = add("seed-jobs", cmd_seed_jobs, "add N finished backup and restore jobs to a vault's history (no job runs)")
    sp.add_argument("vault", help="vault name or ARM id")
    sp.add_argument("--count", type=int, help="jobs to add (default 10)")
    sp.add_argument("--restore-share", type=float, help="share of restore jobs (default 0.25)")
    sp.add_argument("--failed-share", type=float, help="share of Failed jobs (default 0)")
    sp.add_argument("--interval-minutes", type=float, help="between two job starts (default 60)")
    sp.add_argument("--duration-seconds", type=float, help="of each job (default 600)")
    sp.add_argument("--target-server", help="single server the restores went to (default: the instance's own)")
    sp.add_argument("--seed", type=int, help="of the generator that mixes the jobs (default 0)")
    sp.add_argument("--backup-instance", action="append", help="only these (repeat; default: all of the vault)")
    sp = add("fault", cmd_fault, "list, add or clear injected faults")
    sp.add_argument("action", choices=("list", "add", "clear"))
    sp.add_argument("--kind", choices=FAULT_KINDS)
    sp.add_argument("--method")
    sp.add_argument("--path", help="regex on the URL path")
    sp.add_argument("--count", type=int)
    sp.add_argument("--status", type=int)
    sp.add_argument("--retry-after", type=int)
    sp.add_argument("--latency", type=float)
    sp.add_argument("--code")
    sp = add("cancel-job", cmd_cancel_job, "cancel a running job (by GUID)")
    sp.add_argument("job")
    return p


def main(argv=None):
    args = build_parser().parse_args(argv)
    return args.func(args) or 0


if __name__ == "__main__":
    sys.exit(main())
