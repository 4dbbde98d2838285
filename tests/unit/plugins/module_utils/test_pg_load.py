# -*- coding: utf-8 -*-
# Copyright: (c) 2025, Azure Backup Data Protection collection contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""_pg_load: how the client tools are called (never the password on argv or in the environment), the marker, the
error classification and the connection-string parsing. The real tools against real servers are in
tests/integration/test_flexible_server.py."""

from __future__ import annotations

import os
import stat
import subprocess

import pytest

from ansible_collections.azure_backup.dataprotection.plugins.module_utils import _pg_load as pgl

PASSWORD = 'S3cret:with\\odd;chars'


class Runner:
    """subprocess.run stand-in: records argv, env, stdin and what the pgpass file held at that moment."""

    def __init__(self, stdout='', returncode=0, stderr=''):
        self.calls = []
        self.stdout, self.returncode, self.stderr = stdout, returncode, stderr

    def __call__(self, argv, env, input, stdout, stderr, text, check):  # pylint: disable=redefined-builtin
        pgpass = env.get('PGPASSFILE')
        self.calls.append({'argv': argv, 'env': env, 'stdin': input,
                           'pgpass': open(pgpass).read() if pgpass and os.path.exists(pgpass) else None,
                           'pgpass_mode': stat.S_IMODE(os.stat(pgpass).st_mode) if pgpass else None})
        return subprocess.CompletedProcess(argv, self.returncode, self.stdout, self.stderr)


def _target(runner, tmp_path, **kw):
    tool = tmp_path / 'bin'
    tool.mkdir(exist_ok=True)
    for name in ('psql', 'pg_restore'):
        (tool / name).write_text('#!/bin/sh\n')
        (tool / name).chmod(0o755)
    return pgl.PgTarget('srv.postgres.database.azure.com', 5432, 'flexadmin', PASSWORD, bin_dir=str(tool),
                        sslrootcert='/ca.pem', runner=runner, **kw)


def test_the_password_is_only_in_the_pgpass_file(tmp_path, monkeypatch):
    monkeypatch.setenv('PGPASSWORD', 'from-the-environment')
    runner = Runner(stdout='1\x1f\n')
    target = _target(runner, tmp_path)
    with target.session(str(tmp_path)):
        target.database('newdb')
        target.restore('newdb', '/x/archive.dump', jobs=4)
    for call in runner.calls:
        assert PASSWORD not in ' '.join(call['argv'])
        assert PASSWORD not in ' '.join(call['env'].values()) and 'PGPASSWORD' not in call['env']
        assert call['pgpass'] == 'srv.postgres.database.azure.com:5432:*:flexadmin:S3cret\\:with\\\\odd;chars\n'
        assert call['pgpass_mode'] == 0o600
        assert "sslmode='verify-full'" in ' '.join(call['argv']) and "sslrootcert='/ca.pem'" in ' '.join(call['argv'])
    assert not (tmp_path / 'pgpass').exists()                     # removed when the session ends


def test_the_pgpass_file_is_removed_after_a_failure(tmp_path):
    target = _target(Runner(returncode=2, stderr='psql: error: connection refused'), tmp_path)
    with pytest.raises(pgl.PgLoadError):
        with target.session(str(tmp_path)):
            target.database('x')
    assert not (tmp_path / 'pgpass').exists()


@pytest.mark.parametrize('kwargs, flags, absent', [
    ({}, ['--exit-on-error', '--no-owner', '--no-privileges'], ['-j', '--role=']),
    ({'jobs': 4}, ['-j', '4'], []),
    ({'no_owner': False, 'no_privileges': False, 'role': 'app_owner'}, ['--role=app_owner'],
     ['--no-owner', '--no-privileges']),
])
def test_pg_restore_flags(tmp_path, kwargs, flags, absent):
    runner = Runner()
    target = _target(runner, tmp_path)
    with target.session(str(tmp_path)):
        target.restore('db', '/x/a.dump', **kwargs)
    argv = runner.calls[0]['argv']
    assert argv[-1] == '/x/a.dump'
    for flag in flags:
        assert flag in argv
    for flag in absent:
        assert not any(a.startswith(flag) for a in argv)


def test_sql_goes_on_stdin_with_quoted_names(tmp_path):
    runner = Runner()
    target = _target(runner, tmp_path)
    with target.session(str(tmp_path)):
        target.create_database('we"ird', pgl.marker_text('loading', 'abc'))
    create, comment = runner.calls[0]['stdin'].split('\n')     # one psql, two statements (two transactions)
    assert len(runner.calls) == 1 and create == 'CREATE DATABASE "we""ird";'
    assert comment.startswith('COMMENT ON DATABASE "we""ird" IS \'azure_backup.dataprotection {')


@pytest.mark.parametrize('stderr, kind', [
    ('psql: error: connection to server at "h" (1.2.3.4), port 5432 failed: FATAL:  password authentication failed '
     'for user "x"', 'login'),
    ('psql: error: connection to server at "h", port 1 failed: Connection refused', 'unreachable'),
    ('psql: error: could not translate host name "nohost" to address', 'unreachable'),
    ('psql: error: connection to server failed: SSL error: certificate verify failed', 'tls'),
    ('psql: error: server certificate for "x" does not match host name "y"', 'tls'),
    ('ERROR:  permission denied to create database', 'permission'),
    ('ERROR:  database "x" already exists', 'exists'),
    ('pg_restore: error: could not execute query: ERROR:  role "r" does not exist', 'error'),
])
def test_classify_stderr(stderr, kind):
    assert pgl.classify_stderr(stderr)[0] == kind


@pytest.mark.parametrize('comment, marker', [
    (pgl.marker_text('complete', 'k1'), {'state': 'complete', 'source': 'k1'}),
    (pgl.marker_text('loading', 'k2'), {'state': 'loading', 'source': 'k2'}),
    ('', None), ('a comment of the owner', None), ('azure_backup.dataprotection not json', None),
])
def test_parse_marker(comment, marker):
    assert pgl.parse_marker(comment) == marker


@pytest.mark.parametrize('value, expected', [
    ('Server=s.postgres.database.azure.com;Database=postgres;Port=5433;User Id=flexadmin;Password=pw;Ssl Mode=Require;',
     {'user': 'flexadmin', 'password': 'pw', 'host': 's.postgres.database.azure.com', 'port': 5433}),
    ('User Id=u;Password="p;w""q";', {'user': 'u', 'password': 'p;w"q', 'host': None, 'port': None}),
    ('just-a-password', None),
])
def test_parse_ado_connection(value, expected):
    assert pgl.parse_ado_connection(value) == expected


def test_archive_tables_reads_the_table_data_entries(tmp_path):
    listing = (';\n; Archive created at ...\n'
               '215; 1259 16390 TABLE public employees flexadmin\n'
               '3340; 0 16390 TABLE DATA public employees flexadmin\n'
               '3339; 0 16385 TABLE DATA sales departments flexadmin\n'
               '3191; 2606 16397 CONSTRAINT public employees employees_pkey flexadmin\n')
    target = _target(Runner(stdout=listing), tmp_path)
    with target.session(str(tmp_path)):
        assert target.archive_tables('/x/a.dump') == ['public.employees', 'sales.departments']


def test_a_missing_tool_says_what_to_install(tmp_path):
    target = pgl.PgTarget('h', 5432, 'u', 'p', bin_dir=str(tmp_path), runner=Runner())
    with pytest.raises(pgl.PgLoadError) as info:
        target.tool('pg_restore')
    assert info.value.kind == 'missing_tool' and 'postgresql-client' in info.value.message


def _stream_target(tmp_path, script):
    """A PgTarget whose pg_restore is a real process running `script` (sh)."""
    target = _target(Runner(), tmp_path)
    (tmp_path / 'bin' / 'pg_restore').write_text('#!/bin/sh\n' + script)
    return target


def test_restore_stream_feeds_pg_restore_stdin_in_order(tmp_path):
    out = tmp_path / 'got'
    target = _stream_target(tmp_path, 'cat > %s\n' % out)
    chunks = [b'PGDMP', b'x' * 200000, b'end']

    def feed(write):
        for chunk in chunks:
            write(chunk)
        return {'bytes': 7}
    with target.session(str(tmp_path)):
        assert target.restore_stream('db', feed) == {'bytes': 7}
    assert out.read_bytes() == b''.join(chunks)


def test_restore_stream_a_failing_pg_restore_stops_the_feed_with_its_error(tmp_path):
    target = _stream_target(tmp_path, 'head -c 10 >/dev/null; echo \'pg_restore: error: could not execute query: '
                            'ERROR:  extension "postgis" is not available\' >&2; exit 1\n')
    fed = []

    def feed(write):
        for _chunk in range(2000):     # far more than a pipe holds: the feed must stop, not block or go on
            write(b'y' * 65536)
            fed.append(1)
    with target.session(str(tmp_path)):
        with pytest.raises(pgl.PgLoadError) as info:
            target.restore_stream('db', feed)
    assert info.value.kind == 'restore' and 'postgis' in info.value.message and len(fed) < 2000


def test_restore_stream_a_failing_feed_stops_pg_restore(tmp_path):
    target = _stream_target(tmp_path, 'cat >/dev/null\n')

    def feed(write):
        write(b'abc')
        raise ValueError('the MD5 does not match')
    with target.session(str(tmp_path)):
        with pytest.raises(ValueError):
            target.restore_stream('db', feed)


def test_restore_stream_pg_restore_done_before_the_end_lets_the_feed_finish(tmp_path):
    target = _stream_target(tmp_path, 'head -c 10 >/dev/null\n')   # reads what it needs, exits 0
    fed = []

    def feed(write):
        for _chunk in range(100):
            write(b'z' * 65536)
            fed.append(1)
        return 'checked'
    with target.session(str(tmp_path)):
        assert target.restore_stream('db', feed) == 'checked'
    assert len(fed) == 100
