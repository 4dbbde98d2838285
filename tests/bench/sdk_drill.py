#!/usr/bin/env python
# Copyright: (c) 2025, Azure Backup Data Protection collection contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Bench contender of the drill section: the same drill as a plain SDK script with a thread pool. Per backup
instance: restore the latest point into a scratch database exactly as sdk_restore.py does (latest point, validate,
restore, poll the job), count the rows of every table with one psql query (the drill role's query), drop the scratch
database. It writes no secret of its own (the world's connection-string secret serves every restore) and makes no
report: what the drill does besides restore + row-count check is ours alone.

    sdk_drill.py PLAN.json [--workers N] [--poll S]   # PLAN: [{"backup_instance", "target_database"}]

Environment: that of sdk_restore.py, plus BENCH_PG_HOST, BENCH_PG_PORT, BENCH_PG_USER, BENCH_PG_PASSWORD (the scratch
server as psql reaches it). One JSON line per event on stdout ("done" from the restore, then "verified").
"""

import argparse
import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

from sdk_restore import emit, make_client, restore_one

# the restore_drill role's count of every table (roles/restore_drill/vars/main.yml), tables only
COUNT_SQL = ("SELECT coalesce(json_agg(json_build_object('table', s || '.' || n, 'rows', (xpath('/row/c/text()', "
             "query_to_xml(format('SELECT count(*) AS c FROM %I.%I', s, n), false, true, '')))[1]::text::bigint)), "
             "'[]'::json) FROM (SELECT table_schema AS s, table_name AS n FROM information_schema.tables "
             "WHERE table_type = 'BASE TABLE' AND table_schema NOT IN ('pg_catalog', 'information_schema')) t")


def psql(database, sql):
    env = dict(os.environ, PGHOST=os.environ["BENCH_PG_HOST"], PGPORT=os.environ["BENCH_PG_PORT"],
               PGUSER=os.environ["BENCH_PG_USER"], PGPASSWORD=os.environ["BENCH_PG_PASSWORD"], PGSSLMODE="require")
    return subprocess.run(["psql", "-X", "-At", "-v", "ON_ERROR_STOP=1", "-d", database, "-c", sql], env=env,
                          capture_output=True, text=True, check=True).stdout


def drill_one(client, item, poll):
    if not restore_one(client, item, poll):
        return False
    database = item["target_database"]
    try:
        tables = json.loads(psql(database, COUNT_SQL))
        psql("postgres", 'DROP DATABASE "%s"' % database)
    except (subprocess.CalledProcessError, ValueError) as exc:
        emit(event="verified", target_database=database, ok=False, error=str(exc)[:300])
        return False
    emit(event="verified", target_database=database, ok=bool(tables), rows=sum(t["rows"] for t in tables))
    return bool(tables)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("plan")
    parser.add_argument("--workers", type=int, default=16)
    parser.add_argument("--poll", type=float, default=1.0)
    args = parser.parse_args()
    with open(args.plan, encoding="utf-8") as fh:
        plan = json.load(fh)
    client = make_client()
    with ThreadPoolExecutor(max_workers=args.workers) as pool:
        results = list(pool.map(lambda item: drill_one(client, item, args.poll), plan))
    emit(event="summary", restores=len(results), failures=results.count(False))
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
