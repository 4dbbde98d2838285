"""Small steps of `make demo` (scripts/demo.sh) that are easier in Python than in bash.

Usage: _demo_helper.py STATE_DIR COMMAND [ARGS...]
  count SERVER DB              rows of the employees table in DB on the emulator's real cluster SERVER
  add-rows SERVER DB N         insert N more employees
  backup BACKUP_INSTANCE       take a backup now (control API); prints the recovery point as JSON
  field FILE KEY               print one field of a recovery point JSON (name, time)
  last-restore-job             the newest restore job, read with the collection's dataprotection_job_info module
  checksum SERVER DB           md5 of the employees table's rows (ordered), to compare a restore with its source
  flex-extravars RP            restore_flexible_server's extra vars: point RP of sourceflexserver, database orders,
                               into targetflexserver/FLEX_TARGET_DB, the files through Azurite
"""
import json
import os
import subprocess
import sys
import urllib.request
import ssl

VAULT, VAULT_RG = "TestBkpVault", "testBkpVaultRG"
FLEX_TARGET_DB = "orders_restored"


def env(state):
    with open(os.path.join(state, "env.json")) as fh:
        return json.load(fh)


def control(state, method, path, body=None):
    e = env(state)
    req = urllib.request.Request(e["DPEMULATOR_URL"] + path, method=method,
                                 data=json.dumps(body).encode() if body is not None else None,
                                 headers={"Authorization": "Bearer " + e["DPEMULATOR_CONTROL_TOKEN"],
                                          "Content-Type": "application/json"})
    ctx = ssl.create_default_context(cafile=os.path.join(state, "ca.pem"))
    with urllib.request.urlopen(req, context=ctx, timeout=600) as resp:
        return json.loads(resp.read())


def psql(state, server, db, sql):
    srv = control(state, "GET", "/_emulator/servers")[server]
    # The password goes through the environment, never the command line.
    run_env = dict(os.environ, PGHOST=srv["host"], PGPORT=str(srv["port"]), PGUSER=srv["admin_user"],
                   PGPASSWORD=srv["admin_password"], PGSSLMODE="prefer")
    out = subprocess.run(["psql", "-X", "-At", "-v", "ON_ERROR_STOP=1", "-d", db, "-c", sql],
                         env=run_env, check=True, capture_output=True, text=True)
    return out.stdout.strip()


def main(state, cmd, *args):
    if cmd == "count":
        print(psql(state, args[0], args[1], "SELECT count(*) FROM employees"))
    elif cmd == "add-rows":
        psql(state, args[0], args[1],
             "INSERT INTO employees (first_name, last_name, email, dept_id, salary, hired_on) "
             "SELECT 'New', 'Hire', 'new' || g || '@example.com', 1, 50000, current_date "
             "FROM generate_series(1, %d) AS g" % int(args[2]))
    elif cmd == "backup":
        rp = control(state, "POST", "/_emulator/backup", {"backup_instance": args[0]})
        print(json.dumps({"name": rp["name"], "time": rp["properties"]["recoveryPointTime"]}))
    elif cmd == "field":
        with open(args[0]) as fh:
            print(json.load(fh)[args[1]])
    elif cmd == "checksum":
        print(psql(state, args[0], args[1], "SELECT md5(string_agg(e::text, '|' ORDER BY emp_id)) FROM employees e"))
    elif cmd == "flex-extravars":
        servers = control(state, "GET", "/_emulator/servers")
        source, target = servers["sourceflexserver"], servers["targetflexserver"]
        e = env(state)
        account_id = "/subscriptions/%s/resourceGroups/targetrg/providers/Microsoft.Storage/storageAccounts/" \
            "targetossstorage" % e["AZURE_SUBSCRIPTION_ID"]
        print(json.dumps({
            "vault_name": VAULT,
            "vault_resource_group": VAULT_RG,
            "datasource_id": source["id"],
            "recovery_point_id": args[0],
            # Azurite, the emulator's blob storage for this path (the account's primary endpoint is the emulator's
            # own blob plane, so the account is named too)
            "target_container_url": e["DPEMULATOR_BLOB_URL"] + "targetossstorage/restored-files",
            "target_storage_account_id": account_id,
            "target_file_prefix": "demo-flex",
            "target_host": target["host"],
            "target_port": target["port"],
            "source_database": "orders",
            "target_database": FLEX_TARGET_DB,
            "login_user": target["admin_user"],
            "login_password": target["admin_password"],
            "ssl_root_cert": os.path.join(state, "ca.pem"),
            "validate_delay": 2,
            "poll_interval": 2,
            "wait_timeout": 600,
        }))
    elif cmd == "last-restore-job":
        args_text = "vault_name=%s resource_group=%s operation=Restore" % (VAULT, VAULT_RG)
        out = subprocess.run(["ansible", "localhost", "-o", "-m", "azure_backup.dataprotection.dataprotection_job_info",
                              "-a", args_text], check=True, capture_output=True, text=True,
                             env=dict(os.environ, ANSIBLE_LOCALHOST_WARNING="false"))
        result = json.loads(out.stdout.split("=>", 1)[1])
        job = result["jobs"][0]
        print("%s %s (%s)" % (job["job_id"], job["status"], job.get("duration") or "-"))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2], *sys.argv[3:])
