#!/bin/sh
# Make sure the PostgreSQL binaries the emulator needs are present.
#   server: initdb, pg_ctl   (DPEMULATOR_PG_BIN, else /usr/lib/postgresql/<v>/bin, else PATH)
#   client: pg_dump, pg_restore, psql, createdb   (PATH or the server bin dir)
# Exit 0 when everything is there.  Otherwise, as root with apt-get, install Debian's postgresql and
# postgresql-client non-interactively without starting the default cluster (policy-rc.d), and exit 0
# if that worked.  Otherwise print what to install and exit 1.
set -u

find_server_bin() {
    if [ -n "${DPEMULATOR_PG_BIN:-}" ]; then
        [ -x "$DPEMULATOR_PG_BIN/initdb" ] && [ -x "$DPEMULATOR_PG_BIN/pg_ctl" ] && { echo "$DPEMULATOR_PG_BIN"; return 0; }
        return 1
    fi
    best=""
    for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -t/ -k5,5n); do
        [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ] && best="$d"
    done
    if [ -n "$best" ]; then echo "$best"; return 0; fi
    i=$(command -v initdb 2>/dev/null) && p=$(command -v pg_ctl 2>/dev/null) && { dirname "$i"; return 0; }
    return 1
}

missing_tools() {
    missing=""
    bindir=$(find_server_bin) || { missing="initdb pg_ctl"; bindir=""; }
    for t in pg_dump pg_restore psql createdb; do
        if ! command -v "$t" >/dev/null 2>&1 && ! { [ -n "$bindir" ] && [ -x "$bindir/$t" ]; }; then
            missing="$missing $t"
        fi
    done
    echo "$missing" | sed 's/^ *//'
}

missing=$(missing_tools)
if [ -z "$missing" ]; then
    echo "PostgreSQL OK: server binaries in $(find_server_bin)"
    exit 0
fi
echo "PostgreSQL tools missing: $missing" >&2

if [ -n "${DPEMULATOR_PG_BIN:-}" ]; then
    echo "DPEMULATOR_PG_BIN=$DPEMULATOR_PG_BIN does not hold initdb and pg_ctl; fix it or unset it." >&2
    exit 1
fi

if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "Installing postgresql and postgresql-client with apt-get (the default cluster is not started)..." >&2
    policy=/usr/sbin/policy-rc.d
    made_policy=0
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\n# temporary, written by ensure-postgres.sh: do not start services\nexit 101\n' > "$policy"
        chmod 755 "$policy"
        made_policy=1
    fi
    export DEBIAN_FRONTEND=noninteractive
    rc=0
    apt-get install -y -q --no-install-recommends postgresql postgresql-client >&2 || {
        apt-get update -q >&2 && apt-get install -y -q --no-install-recommends postgresql postgresql-client >&2
    } || rc=$?
    [ "$made_policy" = 1 ] && rm -f "$policy"
    if [ "$rc" = 0 ] && [ -z "$(missing_tools)" ]; then
        echo "PostgreSQL OK: server binaries in $(find_server_bin)"
        exit 0
    fi
    echo "apt-get install postgresql postgresql-client failed (rc $rc)." >&2
fi

cat >&2 <<'MSG'
Install PostgreSQL server and client binaries, for example:
  Debian/Ubuntu:  sudo apt-get install postgresql postgresql-client
  Fedora/RHEL:    sudo dnf install postgresql-server postgresql
  macOS:          brew install postgresql
or point DPEMULATOR_PG_BIN at a directory holding initdb and pg_ctl (pg_dump, pg_restore, psql and
createdb must then be on PATH or in that directory).
MSG
exit 1
