#!/usr/bin/env python
# Copyright: (c) 2025, Azure Backup Data Protection collection contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Bench contender: the same restores written on the official SDK (azure-mgmt-dataprotection), the way its
samples do it: one DataProtectionMgmtClient, recovery_points.list + max(), begin_validate_for_restore().result(),
begin_trigger_restore().result(), then jobs.get in a loop (the SDK has no job waiter). Many restores run on a
thread pool sharing the client. The LRO pollers use the SDK defaults (they honour Retry-After).

    sdk_restore.py restore PLAN.json [--workers N] [--poll S]   # PLAN: [{"backup_instance", "target_database"}]
    sdk_restore.py latest BACKUP_INSTANCE                       # list every point, select the latest

Environment: AZURE_CLOUD_ENVIRONMENT (the ARM and AAD base URL), AZURE_SUBSCRIPTION_ID, AZURE_CLIENT_ID,
AZURE_SECRET, AZURE_TENANT, REQUESTS_CA_BUNDLE, BENCH_VAULT, BENCH_VAULT_RG, BENCH_TARGET_SERVER_ID,
BENCH_SECRET_URI, BENCH_LOCATION. Prints one JSON line per event on stdout ("done" lines carry the time the
script saw the job end) and a summary line last.
"""

import argparse
import json
import os
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from azure.identity import ClientSecretCredential
from azure.mgmt.dataprotection import DataProtectionMgmtClient

TERMINAL = ("completed", "failed", "cancelled", "canceled", "completedwithwarnings", "succeeded")
_print_lock = threading.Lock()


def emit(**event):
    with _print_lock:
        sys.stdout.write(json.dumps(event) + "\n")
        sys.stdout.flush()


def make_client():
    base = os.environ["AZURE_CLOUD_ENVIRONMENT"].rstrip("/")
    credential = ClientSecretCredential(os.environ["AZURE_TENANT"], os.environ["AZURE_CLIENT_ID"],
                                        os.environ["AZURE_SECRET"], authority=base, disable_instance_discovery=True)
    return DataProtectionMgmtClient(credential, os.environ["AZURE_SUBSCRIPTION_ID"], base_url=base)


def restore_request(recovery_point_id, database):
    server_id = os.environ["BENCH_TARGET_SERVER_ID"]
    location = os.environ.get("BENCH_LOCATION", "westeurope")
    db_type = "Microsoft.DBforPostgreSQL/servers/databases"
    return {
        "objectType": "AzureBackupRecoveryPointBasedRestoreRequest",
        "recoveryPointId": recovery_point_id,
        "sourceDataStoreType": "VaultStore",
        "restoreTargetInfo": {
            "objectType": "RestoreTargetInfo", "recoveryOption": "FailIfExists", "restoreLocation": location,
            "datasourceInfo": {"objectType": "Datasource", "resourceID": server_id + "/databases/" + database,
                               "resourceName": database, "resourceType": db_type, "datasourceType": db_type,
                               "resourceUri": "", "resourceLocation": location},
            "datasourceSetInfo": {"objectType": "DatasourceSet", "resourceID": server_id,
                                  "resourceName": server_id.rstrip("/").split("/")[-1],
                                  "resourceType": "Microsoft.DBforPostgreSQL/servers", "datasourceType": db_type,
                                  "resourceUri": "", "resourceLocation": location},
            "datasourceAuthCredentials": {
                "objectType": "SecretStoreBasedAuthCredentials",
                "secretStoreResource": {"secretStoreType": "AzureKeyVault", "uri": os.environ["BENCH_SECRET_URI"]}},
        },
    }


def latest_point(client, rg, vault, backup_instance):
    points = client.recovery_points.list(rg, vault, backup_instance)
    return max(points, key=lambda p: p.properties.recovery_point_time)


def restore_one(client, item, poll):
    rg, vault = os.environ["BENCH_VAULT_RG"], os.environ["BENCH_VAULT"]
    bi, database = item["backup_instance"], item["target_database"]
    try:
        point = latest_point(client, rg, vault, bi)
        body = restore_request(point.name, database)
        client.backup_instances.begin_validate_for_restore(rg, vault, bi, {"restoreRequestObject": body}).result()
        operation = client.backup_instances.begin_trigger_restore(rg, vault, bi, body).result()
        job_guid = operation.job_id.rstrip("/").split("/")[-1]
        polls = 0
        while True:
            job = client.jobs.get(rg, vault, job_guid)
            polls += 1
            if (job.properties.status or "").lower() in TERMINAL:
                break
            time.sleep(poll)
        ok = job.properties.status.lower() in ("completed", "succeeded")
        emit(event="done", backup_instance=bi, target_database=database, job_id=job_guid,
             status=job.properties.status, ok=ok, seen=time.time(), job_polls=polls)
        return ok
    except Exception as exc:  # pylint: disable=broad-exception-caught  # a bench reports every failure, never stops
        emit(event="done", backup_instance=bi, target_database=database, ok=False, seen=time.time(),
             error="%s: %s" % (type(exc).__name__, str(exc).splitlines()[0] if str(exc) else ""))
        return False


def cmd_restore(args):
    with open(args.plan, encoding="utf-8") as fh:
        plan = json.load(fh)
    client = make_client()
    if len(plan) == 1:
        results = [restore_one(client, plan[0], args.poll)]
    else:
        with ThreadPoolExecutor(max_workers=args.workers) as pool:
            results = list(pool.map(lambda item: restore_one(client, item, args.poll), plan))
    emit(event="summary", restores=len(results), failures=results.count(False))
    return 0 if all(results) else 1


def cmd_latest(args):
    client = make_client()
    started = time.time()
    point = latest_point(client, os.environ["BENCH_VAULT_RG"], os.environ["BENCH_VAULT"], args.backup_instance)
    emit(event="latest", recovery_point_id=point.name, recovery_point_time=point.properties.recovery_point_time.isoformat(),
         seconds=time.time() - started)
    return 0


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    sub = parser.add_subparsers(dest="command", required=True)
    restore = sub.add_parser("restore")
    restore.add_argument("plan")
    restore.add_argument("--workers", type=int, default=16)
    restore.add_argument("--poll", type=float, default=1.0, help="seconds between two reads of the job")
    restore.set_defaults(func=cmd_restore)
    latest = sub.add_parser("latest")
    latest.add_argument("backup_instance")
    latest.set_defaults(func=cmd_latest)
    args = parser.parse_args()
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
