# -*- coding: utf-8 -*-
# Copyright: (c) 2025, Azure Backup Data Protection collection contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Helpers of the fault-tolerance suite (a uniquely named module: tests import it as `fault_helpers`)."""

from __future__ import annotations

import json
import os
import re
import signal
import time
from pathlib import Path

# The suite's base knobs: short operations and jobs (a job still passes through InProgress), small pages so that
# paging is exercised while jobs accumulate, the emulator's default 1 s Retry-After.
BASE_KNOBS = {'operation_duration': 0.3, 'job_duration': 1.0, 'rehydration_duration': 1.0, 'retry_after': 1,
              'page_size': 10, 'token_lifetime': 3600,
              'throttle': {'enabled': False, 'read_capacity': 250, 'read_refill': 25.0, 'write_capacity': 200,
                           'write_refill': 10.0}}
VAULT = {'vault_name': 'TestBkpVault', 'vault_resource_group': 'testBkpVaultRG'}
TARGET_SERVER = 'targetossserver'
# Variables of playbooks/restore_database.yml that keep its loops short on the emulator.
FAST_PLAYBOOK_VARS = {'poll_interval': 1, 'validate_delay': 1, 'validate_retries': 3, 'busy_delay': 1,
                      'busy_retries': 3, 'wait_timeout': 300}
JWT = re.compile(r'eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}')
MARKER_TABLE = 'fault_suite_marker'

COLUMNS = (('restores_requested', 'restores requested'), ('restore_jobs_created', 'restore jobs created'),
           ('databases_watched', 'databases watched'), ('databases_overwritten', 'databases overwritten'),
           ('outputs_scanned', 'outputs scanned'), ('secret_hits', 'secret values found'))


# ------------------------------------------------------------------------------------------------ figures


class Figures:
    """What one test contributes to the counts table; filled by the fixtures, read by the session hooks."""

    def __init__(self, nodeid):
        self.nodeid = nodeid
        self.values = {column[0]: 0 for column in COLUMNS}
        self.hits = []          # (where, what): never the secret itself
        self.watched = {}       # (server, db) -> oid when first seen (a restore we made, or a database of ours)

    def add_counters(self, counters):
        self.values['restores_requested'] += int(counters.get('restores_requested', 0))
        self.values['restore_jobs_created'] += int(counters.get('restore_jobs_created', 0))

    def scan(self, where, text, secrets):
        self.values['outputs_scanned'] += 1
        for value in secrets:
            start = text.find(value) if value else -1
            if start >= 0:
                context = text[max(0, start - 160):start + len(value) + 60].replace(value, '<SECRET>')
                self.hits.append((where, 'a secret value (%d chars) in: %r' % (len(value), context)))
        for match in JWT.finditer(text):
            context = text[max(0, match.start() - 160):match.start()]
            self.hits.append((where, 'an access token (JWT) after: %r' % context))
        self.values['secret_hits'] = len(self.hits)

    def as_dict(self):
        return {'nodeid': self.nodeid, 'values': dict(self.values), 'hits': list(self.hits)}


class Ledger:
    def __init__(self):
        self.rows = []

    def add(self, row):
        self.rows.append(row)

    def totals(self):
        totals = {column[0]: 0 for column in COLUMNS}
        for row in self.rows:
            for key in totals:
                totals[key] += row['values'].get(key, 0)
        return totals

    def violations(self):
        totals = self.totals()
        problems = []
        if totals['restores_requested'] != totals['restore_jobs_created']:
            problems.append('restores requested (%d) != restore jobs created (%d)' % (
                totals['restores_requested'], totals['restore_jobs_created']))
        if totals['databases_overwritten']:
            problems.append('%d database(s) overwritten' % totals['databases_overwritten'])
        if totals['secret_hits']:
            problems.append('%d secret value(s) found in outputs or logs' % totals['secret_hits'])
        return problems


# ------------------------------------------------------------------------------------------------ emulator


class FaultEmulator:
    """The suite's emulator for one test: the parent's Emulator plus fault helpers and the test's figures."""

    def __init__(self, emulator, figures):
        self.emu = emulator
        self.figures = figures
        self.extra_secrets = set()
        self.log_offset = len(emulator.log_text())

    def log_since_start(self):
        """The emulator's log since this test started (the log file survives restarts)."""
        return self.emu.log_text()[self.log_offset:]

    def __getattr__(self, name):
        return getattr(self.emu, name)

    # faults ------------------------------------------------------------------------------------------
    def fault(self, kind, path, method='*', count=None, **spec):
        body = dict(spec, kind=kind, path=path, method=method)
        if count is not None:
            body['count'] = count
        return self.emu.add_fault(**body)

    def fault_hits(self):
        return {rule['id']: rule['hits'] for rule in self.emu.control('GET', 'faults').get('value', [])}

    # restart (counters live in memory: keep what this test counted so far) ------------------------------
    def restart(self, pause=0.0):
        self.figures.add_counters(self.emu.counters())
        self.emu.stop()
        time.sleep(pause)
        self.emu.start()

    def counted(self):
        """restores requested / jobs created so far in this test (across restarts)."""
        counters = self.emu.counters()
        return {key: self.figures.values[key] + int(counters.get(key, 0))
                for key in ('restores_requested', 'restore_jobs_created')}

    def wait_counter(self, name, value, timeout=120, interval=0.05):
        deadline = time.monotonic() + timeout
        while int(self.emu.counters().get(name, 0)) < value:
            assert time.monotonic() < deadline, '%s did not reach %d in %s s' % (name, value, timeout)
            time.sleep(interval)

    # restore jobs ------------------------------------------------------------------------------------
    def jobs_to(self, database, server=TARGET_SERVER):
        """Restore jobs of the vault whose destination is this database."""
        suffix = '/servers/%s/databases/%s' % (server, database)

        def destination(job):
            props = job['properties']
            return str((props.get('extendedInfo') or {}).get('recoveryDestination') or props.get('recoveryDestination')
                       or '').lower().rstrip('/')
        return [job for job in self.emu.restore_jobs() if destination(job).endswith(suffix.lower())]

    def job_status(self, guid):
        response = self.emu.arm('GET', '%s/backupJobs/%s' % (self.emu.vault_id, guid))
        assert response.status_code == 200, response.text
        return response.json()['properties']['status']

    def wait_job(self, guid, timeout=120):
        deadline = time.monotonic() + timeout
        while True:
            status = self.job_status(guid)
            if status not in ('InProgress', 'Cancelling', 'Started', 'NotStarted'):
                return status
            assert time.monotonic() < deadline, 'job %s still %s' % (guid, status)
            time.sleep(0.3)

    # databases ---------------------------------------------------------------------------------------
    def db_oid(self, database, server=TARGET_SERVER):
        rows = self.emu.psql(server, 'postgres', "SELECT oid FROM pg_database WHERE datname = '%s'" % database)
        return rows[0][0] if rows else None

    def watch(self, database, server=TARGET_SERVER, marker=True):
        """Remember a database that must never be replaced: its oid and (marker=True) a marker row in it."""
        oid = self.db_oid(database, server)
        assert oid, 'database %s does not exist on %s' % (database, server)
        if marker:
            self.emu.psql(server, database, 'CREATE TABLE IF NOT EXISTS %s (test text); INSERT INTO %s VALUES (%s)' % (
                MARKER_TABLE, MARKER_TABLE, _sql_literal(self.figures.nodeid)))
        self.figures.watched[(server, database)] = (oid, marker)
        return oid

    def create_database(self, database, server=TARGET_SERVER):
        """A database of the user's that already exists (and must survive every run)."""
        self.emu.psql(server, 'postgres', 'CREATE DATABASE %s' % database)
        return self.watch(database, server)

    def check_watched(self):
        overwritten = []
        for (server, database), (oid, marker) in self.figures.watched.items():
            now = self.db_oid(database, server)
            intact = now == oid
            if intact and marker:
                rows = self.emu.psql(server, database, 'SELECT test FROM %s' % MARKER_TABLE, check=False)
                intact = bool(rows)
            if not intact:
                overwritten.append('%s/%s' % (server, database))
        self.figures.values['databases_watched'] = len(self.figures.watched)
        self.figures.values['databases_overwritten'] = len(overwritten)
        return overwritten

    def secrets(self):
        return self.emu.secret_values() | self.extra_secrets

    # inputs ------------------------------------------------------------------------------------------
    def restore_vars(self, database, **extra):
        """Extra vars of playbooks/restore_database.yml: the latest point of empdb11 to a new database, the
        connection string stored by the role in Key Vault from the admin login (the password is a secret that no
        output may show)."""
        server = self.emu.server(TARGET_SERVER)
        values = dict(VAULT, **FAST_PLAYBOOK_VARS)
        values.update(backup_instance_name=self.emu.backup_instance('empdb11')['name'],
                      target_server_id=self.emu.server_id(TARGET_SERVER), target_database_name=database,
                      key_vault_uri=self.emu.kv_uri('targetosskv'), secret_name='%s-conn' % database.replace('_', '-'),
                      admin_user=server['admin_user'], admin_password=server['admin_password'])
        values.update(extra)
        return values

    def module_target(self, database, **extra):
        """pg_restore / pg_restore_validate options: latest point of empdb11 to a new database, the ready secret."""
        values = {'vault_name': VAULT['vault_name'], 'resource_group': VAULT['vault_resource_group'],
                  'backup_instance_name': self.emu.backup_instance('empdb11')['name'],
                  'recovery_point_id': self.latest_point()['name'],
                  'target_server_id': self.emu.server_id(TARGET_SERVER), 'target_database_name': database,
                  'secret_uri': self.emu.kv_uri('targetosskv') + 'secrets/targetossserver-conn'}
        values.update(extra)
        return values

    def latest_point(self):
        return max(self.emu.recovery_points('empdb11'), key=lambda p: p['properties']['recoveryPointTime'])


def _sql_literal(text):
    return "'%s'" % str(text).replace("'", "''")


class Play:
    """run_playbook with -vvvv and the suite's emulator by default; every output is scanned for secrets."""

    def __init__(self, runner, femu_):
        self.runner, self.femu = runner, femu_
        self.results = []
        self.running = []

    def _kwargs(self, kwargs):
        kwargs.setdefault('verbosity', 4)
        kwargs.setdefault('emulator', self.femu.emu)
        # Every task signs in, as before the token cache: the sign-in faults (dropped, expired or refused tokens)
        # must reach the authority. The cache itself is tested in tests/integration/test_one_pass.py.
        kwargs['env'] = dict({'AZURE_BACKUP_TOKEN_CACHE': 'false'}, **(kwargs.get('env') or {}))
        return kwargs

    def __call__(self, playbook, extravars=None, **kwargs):
        result = self.runner(playbook, extravars=extravars, **self._kwargs(kwargs))
        self.results.append(result)
        return result

    def start(self, playbook, extravars=None, **kwargs):
        running = self.runner.start(playbook, extravars=extravars, **self._kwargs(kwargs))
        self.running.append(running)
        original_wait = running.wait

        def wait(timeout=600):
            result = original_wait(timeout=timeout)
            self.results.append(result)
            return result
        running.wait = wait
        return running

    def tasks(self, tasks, **kwargs):
        return self(play_text(tasks), **kwargs)

    def close(self):
        """Kills (by process group) the runs a failed test left running, and keeps their output for the scan."""
        for running in self.running:
            if running.proc.poll() is None:
                running.kill()
                running.wait()

    def module(self, module, params, **kwargs):
        result = self.tasks([{'name': 'Module under test', 'module': module, 'params': params}], **kwargs)
        records = result.tasks('Module under test')
        assert records, result.tail()
        return result, records[-1]


def play_text(tasks):
    """A one-play playbook on localhost from task dicts {'name', 'module', 'params', **task keywords}."""
    lines = ['- name: Fault suite play', '  hosts: localhost', '  gather_facts: false', '  tasks:']
    for task in tasks:
        task = dict(task)
        module = task.pop('module')
        fqcn = module if '.' in module else 'azure_backup.dataprotection.' + module
        lines.append('    - name: %s' % json.dumps(task.pop('name')))
        lines.append('      %s: %s' % (fqcn, json.dumps(task.pop('params', {}))))
        for key, value in task.items():
            lines.append('      %s: %s' % (key, json.dumps(value)))
    return '\n'.join(lines) + '\n'


def wait_for_record(running, predicate, timeout=180, interval=0.02):
    """Polls a running playbook's task records until one satisfies predicate; returns it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for record in running.results():
            if 'task' in record and predicate(record):
                return record
        if running.proc.poll() is not None:
            raise AssertionError('the playbook ended (rc %s) before the expected task:\n%s' % (
                running.proc.returncode, Path(running._stdout).read_text(errors='replace')[-6000:]))  # pylint: disable=protected-access
        time.sleep(interval)
    raise AssertionError('no matching task record within %s s' % timeout)


def stop_leftover_clusters(state):
    """Kills (by pid) PostgreSQL servers still running on a stopped emulator's state dir; returns their pids."""
    marker = ('%s/pg/' % str(state).rstrip('/')).encode()
    found = []
    for entry in Path('/proc').iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / 'cmdline').read_bytes()
        except OSError:
            continue
        if marker in cmdline and b'postgres' in cmdline:
            found.append(int(entry.name))
            try:
                os.kill(int(entry.name), signal.SIGKILL)
            except ProcessLookupError:
                pass
    return found


def wait_for_job_polls(femu, count, timeout=120):
    """Until the restore job was read `count` times: the run is waiting for it (one request per poll)."""
    deadline = time.monotonic() + timeout
    while femu.emu.request_counts().get('GET dataprotection.backupJobs.get', 0) < count:
        assert time.monotonic() < deadline, 'the job was not polled within %s s' % timeout
        time.sleep(0.05)
