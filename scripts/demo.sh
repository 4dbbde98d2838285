#!/usr/bin/env bash
# `make demo`: a real restore on the local emulator, from nothing to a restored database.
#
# The Makefile has already built the venv and installed the collection from its tarball into
# .cache/collections (ANSIBLE_COLLECTIONS_PATH). This script:
#   1. starts the emulator with the demo world (the seed article's names) in a fresh state folder,
#   2. takes a backup (a real pg_dump) of the sample database empdb11, then writes more rows to it,
#   3. runs the collection's restore playbook (recovery point lookup, Key Vault secret, permissions of the
#      vault's identity, validation, restore, wait) into the new database emprestored21 on targetossserver,
#   4. prints what was restored and compares row counts: source at backup time, source now, restored,
#   5. the same for a flexible server: backs up sourceflexserver, writes more rows to its database orders, runs
#      playbooks/restore_flexible_server.yml (restore as files into Azurite, then pg_restore_files_to_server into
#      the new database orders_restored on targetflexserver over TLS) and compares count and checksum,
#   6. stops the emulator and its PostgreSQL clusters and removes the state folder (also on failure).
# Re-runnable: each run starts from a fresh state folder.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
# The PostgreSQL clusters run as the postgres user (root may not run initdb): the state folder must be
# one that user can reach, so it lives under /tmp rather than in the clone.
state=${DEMO_STATE:-/tmp/azure-backup-demo-$(id -u)}
venv=${VENV:-$repo/.venv}
export PATH="$venv/bin:$PATH"

say() { printf '\n==> %s\n' "$*"; }

"$repo/scripts/ensure-postgres.sh"

cleanup() {
    local rc=$?
    if [ -f "$state/emulator.pid" ] || [ -d "$state/pg" ]; then
        say "Stopping the emulator"
        dpemulator stop --state "$state" || true
    fi
    rm -rf "$state"
    [ "$rc" -eq 0 ] || printf '\ndemo FAILED (exit %s)\n' "$rc" >&2
    exit "$rc"
}
trap cleanup EXIT INT TERM

# A previous run that was killed may have left its emulator behind: stop it before starting afresh.
if [ -d "$state" ]; then
    dpemulator stop --state "$state" >/dev/null 2>&1 || true
    rm -rf "$state"
fi

say "Starting the emulator (demo world: vault TestBkpVault, source database empdb11, target server targetossserver)"
dpemulator start --state "$state" --knob operation_duration=1 --knob job_duration=2
# shellcheck disable=SC1091
. "$state/env.sh"

# A small helper over the emulator's control API and the real clusters behind it.
emu() { python "$repo/scripts/_demo_helper.py" "$state" "$@"; }

say "Backing up empdb11 (pg_dump into the vault store)"
rows_at_backup=$(emu count sourceossserver empdb11)
emu backup sourceossserver/empdb11 >"$state/backup.json"
echo "recovery point $(emu field "$state/backup.json" name), $rows_at_backup employees"

say "Writing 250 more rows to empdb11 after the backup (they must NOT appear in the restore)"
emu add-rows sourceossserver empdb11 250
rows_now=$(emu count sourceossserver empdb11)

say "Restoring the latest recovery point as the new database emprestored21 (ansible-playbook)"
# Inputs go in a 0600 extra-vars file (the README's `dpemulator example-vars`): the server password never appears
# in a command line.
(umask 077 && dpemulator example-vars --state "$state" >"$state/extravars.yml")
ANSIBLE_NOCOLOR=${ANSIBLE_NOCOLOR:-0} ansible-playbook azure_backup.dataprotection.restore_database \
    -e "@$state/extravars.yml" | tee "$state/playbook.log"

rows_restored=$(emu count targetossserver emprestored21)
job=$(emu last-restore-job)

say "What was restored"
printf '  %-24s %s\n' \
    "vault" "TestBkpVault (resource group testBkpVaultRG)" \
    "source" "sourceossserver/empdb11" \
    "recovery point" "$(emu field "$state/backup.json" name) ($(emu field "$state/backup.json" time))" \
    "restore job" "$job" \
    "target" "targetossserver/emprestored21"
echo
printf '  %-34s %8s\n' "employees rows" "count" \
    "source at the recovery point" "$rows_at_backup" \
    "source now" "$rows_now" \
    "restored" "$rows_restored"

if [ "$rows_restored" != "$rows_at_backup" ]; then
    echo "MISMATCH: the restored database should hold the $rows_at_backup rows of the recovery point" >&2
    exit 1
fi
echo
echo "OK: the restored database holds exactly the rows of the recovery point."

say "Flexible server: backing up sourceflexserver (every database, plus roles.sql, tablespace.sql, schema.sql)"
flex_rows_at_backup=$(emu count sourceflexserver orders)
flex_sum_at_backup=$(emu checksum sourceflexserver orders)
emu backup sourceflexserver >"$state/flex-backup.json"
flex_rp=$(emu field "$state/flex-backup.json" name)
echo "recovery point $flex_rp, orders: $flex_rows_at_backup employees"
emu add-rows sourceflexserver orders 40
flex_rows_now=$(emu count sourceflexserver orders)

say "Restoring database orders of that point into orders_restored on targetflexserver (ansible-playbook:"
echo "    restore as files into the container, wait, download, create the database, pg_restore, verify)"
emu flex-extravars "$flex_rp" >"$state/flex-extravars.json"
chmod 600 "$state/flex-extravars.json"
ANSIBLE_NOCOLOR=${ANSIBLE_NOCOLOR:-0} ansible-playbook azure_backup.dataprotection.restore_flexible_server \
    -e "@$state/flex-extravars.json" | tee "$state/flex-playbook.log"
flex_rows_restored=$(emu count targetflexserver orders_restored)
flex_sum_restored=$(emu checksum targetflexserver orders_restored)

say "What was restored (flexible server)"
printf '  %-34s %8s  %s\n' "employees rows" "count" "md5 of the rows" \
    "source at the recovery point" "$flex_rows_at_backup" "$flex_sum_at_backup" \
    "source now" "$flex_rows_now" "$(emu checksum sourceflexserver orders)" \
    "restored (targetflexserver)" "$flex_rows_restored" "$flex_sum_restored"
if [ "$flex_rows_restored" != "$flex_rows_at_backup" ] || [ "$flex_sum_restored" != "$flex_sum_at_backup" ]; then
    echo "MISMATCH: orders_restored should hold exactly the rows of the recovery point" >&2
    exit 1
fi
echo
echo "OK: the flexible server's database was restored to another flexible server with the rows of the recovery point."
