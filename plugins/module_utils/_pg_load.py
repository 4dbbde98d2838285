# -*- coding: utf-8 -*-
# Copyright: (c) 2025, Azure Backup Data Protection collection contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
#
# INTERNAL USE ONLY: private to the azure_backup.dataprotection collection; no compatibility promise.
"""Load a pg_dump archive into a new database of a PostgreSQL server with the client tools (psql, pg_restore).

The password goes only into a pgpass file (mode 0600, in the caller's private folder, removed when the block ends):
never on a command line, never in a child's environment (PGPASSFILE names the file; PGPASSWORD is removed). Every
connection is TLS with the given sslmode (verify-full by default) and root certificate.

A database this collection loads carries a marker, its comment (``COMMENT ON DATABASE``):
``azure_backup.dataprotection {"state": "loading"|"complete", "source": <key>}``. It tells our finished load (leave it)
from our interrupted one (drop it, load again) and from a database that is not ours (never touched unless the caller
says overwrite).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
from contextlib import contextmanager

MARKER_PREFIX = 'azure_backup.dataprotection '
CONNECT_TIMEOUT = 15
_DROPPED_ENV = ('PGPASSWORD', 'PGPASSFILE', 'PGSERVICE', 'PGSERVICEFILE', 'PGHOST', 'PGHOSTADDR', 'PGPORT', 'PGUSER',
                'PGDATABASE', 'PGSSLMODE', 'PGSSLROOTCERT', 'PGOPTIONS', 'PGREQUIRESSL')


class PgLoadError(Exception):
    """kind: login, unreachable, tls, permission, exists, restore, missing_tool, error."""

    def __init__(self, kind, message):
        super().__init__(message)
        self.kind = kind
        self.message = message


def quote_ident(name):
    return '"' + str(name).replace('"', '""') + '"'


def quote_literal(value):
    return "'" + str(value).replace("'", "''") + "'"


def _pgpass_escape(value):
    return str(value).replace('\\', '\\\\').replace(':', '\\:')


def marker_text(state, source):
    return MARKER_PREFIX + json.dumps({'state': state, 'source': source}, sort_keys=True)


def parse_marker(comment):
    """The marker dict of a database comment, or None (no comment, or not ours)."""
    if not comment or not comment.startswith(MARKER_PREFIX):
        return None
    try:
        data = json.loads(comment[len(MARKER_PREFIX):])
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def classify_stderr(text):
    """(kind, first useful line) of a client tool's stderr."""
    lines = [ln.strip() for ln in str(text or '').splitlines() if ln.strip()]
    low = str(text or '').lower()
    first = next((ln for ln in lines if 'error' in ln.lower() or 'fatal' in ln.lower()), lines[0] if lines else '')
    first = re.sub(r'^(psql|pg_restore|createdb):\s*', '', first)[:400]
    if 'password authentication failed' in low or 'no password supplied' in low or 'authentication failed' in low:
        return 'login', first
    if 'certificate' in low or ('ssl' in low and ('error' in low or 'does not match' in low)):
        return 'tls', first
    if 'could not connect' in low or 'connection refused' in low or 'could not translate host name' in low \
            or 'timeout expired' in low or 'no route to host' in low:
        return 'unreachable', first
    if 'permission denied to create database' in low or 'must be owner' in low:
        return 'permission', first
    if re.search(r'database ".*" already exists', low):
        return 'exists', first
    return 'error', first


def parse_ado_connection(value):
    """{user, password, host, port} of an ADO.NET connection string (what the restore's Key Vault secret holds);
    None when `value` is not one (then it is the password itself)."""
    pairs = {}
    for match in re.finditer(r'\s*([^=;]+?)\s*=\s*("(?:[^"]|"")*"|\'(?:[^\']|\'\')*\'|[^;]*)\s*(?:;|$)', value or ''):
        key, raw = match.group(1).strip().lower().replace(' ', ''), match.group(2).strip()
        if raw[:1] in ('"', "'") and raw[-1:] == raw[:1]:
            raw = raw[1:-1].replace(raw[0] * 2, raw[0])
        pairs[key] = raw
    if 'password' not in pairs and 'pwd' not in pairs:
        return None
    user = pairs.get('userid') or pairs.get('user') or pairs.get('username') or pairs.get('uid')
    port = pairs.get('port')
    return {'user': user, 'password': pairs.get('password', pairs.get('pwd')),
            'host': pairs.get('server') or pairs.get('host'), 'port': int(port) if port and port.isdigit() else None}


class _RestoreStopped(Exception):
    """pg_restore failed while it was being fed: its own error is reported."""


def _restore_error(err):
    return PgLoadError('restore' if err.kind in ('error', 'exists', 'permission') else err.kind, err.message)


class PgTarget:
    """A target server reached with TLS; client tools from `bin_dir` or PATH."""

    # pylint: disable-next=too-many-arguments
    def __init__(self, host, port, user, password, sslmode='verify-full', sslrootcert=None, bin_dir=None,
                 runner=subprocess.run, popen=subprocess.Popen):
        self.host, self.port, self.user, self.password = host, int(port), user, password
        self.sslmode, self.sslrootcert, self.bin_dir = sslmode, sslrootcert, bin_dir
        self._run, self._popen = runner, popen
        self._env = None

    def tool(self, name):
        path = os.path.join(self.bin_dir, name) if self.bin_dir else shutil.which(name)
        if not path or not os.access(path, os.X_OK):
            raise PgLoadError('missing_tool', f'{name} was not found ' + (f'in {self.bin_dir}' if self.bin_dir else
                                                                          'on PATH') +
                              ': install the PostgreSQL client (Debian/Ubuntu: postgresql-client; RHEL: postgresql) '
                              'of the target server\'s major version or newer, or set pg_bin_dir.')
        return path

    def conninfo(self, dbname):
        parts = {'host': self.host, 'port': self.port, 'user': self.user, 'dbname': dbname, 'sslmode': self.sslmode,
                 'connect_timeout': CONNECT_TIMEOUT, 'application_name': 'azure_backup.dataprotection'}
        if self.sslrootcert:
            parts['sslrootcert'] = self.sslrootcert
        return ' '.join(f"{k}='" + str(v).replace('\\', '\\\\').replace("'", "\\'") + "'" for k, v in parts.items())

    @contextmanager
    def session(self, folder):
        """Write the pgpass file into `folder` (0700, the caller's); remove it when the block ends."""
        path = os.path.join(folder, 'pgpass')
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            with os.fdopen(fd, 'w') as fh:
                fh.write(':'.join(_pgpass_escape(v) for v in (self.host, self.port, '*', self.user, self.password))
                         + '\n')
            env = {k: v for k, v in os.environ.items() if k not in _DROPPED_ENV}
            env.update(PGPASSFILE=path, PGCONNECT_TIMEOUT=str(CONNECT_TIMEOUT), PGCLIENTENCODING='UTF8')
            self._env = env
            yield self
        finally:
            self._env = None
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass

    def _call(self, argv, stdin_text=None):
        if self._env is None:
            raise RuntimeError('PgTarget used outside session()')
        proc = self._run(argv, env=self._env, input=stdin_text, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True, check=False)
        if proc.returncode != 0:
            kind, line = classify_stderr(proc.stderr)
            raise PgLoadError(kind, line or f'{os.path.basename(argv[0])} exited with {proc.returncode}')
        return proc.stdout

    def psql(self, sql, dbname='postgres'):
        """Rows (lists of fields) of `sql`, given on stdin (it never shows in a process list)."""
        out = self._call([self.tool('psql'), '-X', '-A', '-t', '-q', '-w', '-F', '\x1f', '-v', 'ON_ERROR_STOP=1',
                          '-d', self.conninfo(dbname), '-f', '-'], stdin_text=sql)
        return [line.split('\x1f') for line in out.splitlines() if line]

    def database(self, name):
        """None when `name` does not exist; else {'marker': our marker or None, 'comment': its comment}."""
        # a leading constant: an empty comment still makes a line
        rows = self.psql("SELECT 1, coalesce(shobj_description(oid, 'pg_database'), '') FROM pg_database "
                         f"WHERE datname = {quote_literal(name)}")
        if not rows:
            return None
        comment = rows[0][1] if len(rows[0]) > 1 else ''

        return {'marker': parse_marker(comment), 'comment': comment}

    def server_version(self):
        return int(self.psql('SHOW server_version_num')[0][0])

    def create_database(self, name, marker):
        # one psql: each statement of a script runs in its own transaction (CREATE DATABASE must)
        self.psql(f'CREATE DATABASE {quote_ident(name)};\nCOMMENT ON DATABASE {quote_ident(name)} IS '
                  f'{quote_literal(marker)};')

    def set_marker(self, name, marker):
        self.psql(f'COMMENT ON DATABASE {quote_ident(name)} IS {quote_literal(marker)}')

    def drop_database(self, name):
        force = ' WITH (FORCE)' if self.server_version() >= 130000 else ''
        self.psql(f'DROP DATABASE IF EXISTS {quote_ident(name)}{force}')

    def _restore_argv(self, name, jobs, no_owner, role, no_privileges):
        argv = [self.tool('pg_restore'), '-w', '--exit-on-error', '-d', self.conninfo(name)]
        if jobs and int(jobs) > 1:
            argv += ['-j', str(int(jobs))]
        if no_owner:
            argv.append('--no-owner')
        if role:
            argv.append('--role=' + role)
        if no_privileges:
            argv.append('--no-privileges')
        return argv

    def restore(self, name, archive, jobs=1, no_owner=True, role=None, no_privileges=True):
        try:
            self._call(self._restore_argv(name, jobs, no_owner, role, no_privileges) + [archive])
        except PgLoadError as err:
            raise _restore_error(err) from None

    # pylint: disable-next=too-many-arguments
    def restore_stream(self, name, feed, no_owner=True, role=None, no_privileges=True):
        """pg_restore (one job: it reads a custom-format archive from stdin) fed while the archive arrives.

        `feed(write)` calls write(bytes) with the archive in order and returns what it returns; an exception of
        `feed` stops pg_restore and goes up. A pg_restore that fails while being fed stops the feed."""
        if self._env is None:
            raise RuntimeError('PgTarget used outside session()')
        state = {'open': True}
        with tempfile.TemporaryFile() as errors:
            proc = self._popen(self._restore_argv(name, 1, no_owner, role, no_privileges), env=self._env,
                               stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=errors)

            def write(chunk):
                if not state['open']:
                    return
                try:
                    proc.stdin.write(chunk)
                except BrokenPipeError:
                    # pg_restore has stopped reading: at the end of the archive's data (the feed goes on, to
                    # check the whole file), or on an error (the feed stops).
                    state['open'] = False
                    if proc.wait() != 0:
                        raise _RestoreStopped() from None
            try:
                fed = feed(write)
            except _RestoreStopped:
                fed = None
            except BaseException:
                proc.kill()
                proc.wait()
                raise
            finally:
                try:
                    proc.stdin.close()
                except BrokenPipeError:
                    pass
            if proc.wait() != 0:
                errors.seek(0)
                kind, line = classify_stderr(errors.read().decode('utf-8', 'replace'))
                raise _restore_error(PgLoadError(kind, line or f'pg_restore exited with {proc.returncode}'))
        return fed

    def archive_tables(self, archive):
        """'schema.table' of every TABLE DATA entry of a custom-format archive (pg_restore -l)."""
        out = self._call([self.tool('pg_restore'), '-l', archive])
        tables = []
        for line in out.splitlines():
            match = re.match(r'^\d+;\s*\d+\s+\d+\s+TABLE DATA\s+(\S+)\s+(\S+)\s', line)
            if match:
                tables.append(f'{match.group(1)}.{match.group(2)}')
        return sorted(tables)

    def table_counts(self, name):
        """{'schema.table': exact row count} of the ordinary and partitioned tables of database `name`."""
        rows = self.psql(
            "SELECT n.nspname || '.' || c.relname, (xpath('/row/c/text()', query_to_xml(format("
            "'SELECT count(*) AS c FROM %I.%I', n.nspname, c.relname), false, true, '')))[1]::text "
            "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind IN ('r', 'p') "
            "AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%' "
            "ORDER BY 1", dbname=name)
        return {row[0]: int(row[1]) for row in rows}
