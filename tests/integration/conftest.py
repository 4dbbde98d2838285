# -*- coding: utf-8 -*-
# Copyright: (c) 2025, Azure Backup Data Protection collection contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Shared fixtures of the integration tests: a real emulator (tests/emulator, real PostgreSQL behind it) and
ansible-playbook / ansible-runner runs against it. Other test trees (tests/integration/faults, benchmarks) reuse
them; the signatures below are a contract: extend, do not change.

Fixtures
--------
``dp_repo_root`` (session) -> pathlib.Path
    The source tree: ``$DP_REPO_ROOT`` (set by ``make``, which runs pytest inside the installed collection), else
    the checkout this file is in. Files that do not ship in the tarball (emulator worlds) are read from there.

``collections_path`` (session) -> str
    An ANSIBLE_COLLECTIONS_PATH that holds ``ansible_collections/azure_backup/dataprotection``: the tree this file
    is installed in (``make``), else ``$ANSIBLE_COLLECTIONS_PATH`` when it holds the collection, else a /tmp
    symlink tree to this checkout (removed at the end).

``emulator`` (session) -> Emulator
    One emulator for the whole session, world ``granted.yml`` (restore permissions and connection-string secrets
    in place), short durations (FAST_KNOBS). Tests sharing it must use distinct target names (``unique_name``)
    and leave knobs and faults as they found them (``emulator.clear_faults()``; an autouse fixture also clears
    faults after every test that used it).

``emulator_factory`` (function) -> callable ``emulator_factory(world='granted', knobs=None) -> Emulator``
    A fresh emulator in a new state dir for tests that need a pristine world (for example ``world='demo'``: the
    vault identity has no restore permission and no secret exists). ``world`` is ``'demo'``, ``'granted'``, a
    path, or a dict (a world document; ``extends: demo.yml`` works). ``knobs`` are merged over FAST_KNOBS. Every
    emulator it started is stopped at the end of the test.

``emulator_session_factory`` (session): the same, the emulators live until the end of the session.

``demo_emulator`` (session) -> Emulator: one demo-world emulator shared by the tests that need a vault identity
    without restore permissions. Whatever a test grants there stays: a test that needs "not permitted" must use a
    target nobody grants on (tests here grant at resource scope on targetossserver/targetosskv only; oldossserver
    stays ungranted).

``run_playbook`` (session) -> PlaybookRunner, callable as
    ``run_playbook(playbook, extravars=None, check=False, verbosity=0, env=None, timeout=600, emulator=None,
    diff=False, args=())`` -> PlaybookResult
    Runs ``ansible-playbook`` in a subprocess. ``playbook``: a path (absolute, or relative to the repository's
    ``playbooks/``), a name of one of the collection's playbooks (``restore_database``), or inline YAML text
    (contains a newline). The environment is what AWX injects: only the emulator's AZURE_* and REQUESTS_CA_BUNDLE
    (from ``emulator``, default the session emulator), plus PATH/HOME/LANG and the ANSIBLE_* settings below;
    ``env`` adds or overrides variables (a value of None removes one). Extravars go to a JSON file (``-e @file``).
    ``run_playbook.start(...)`` takes the same arguments and returns a RunningPlaybook (``.proc``, ``.kill()``,
    ``.wait() -> PlaybookResult``, ``.results()`` so far) for runs a test interrupts.

``run_role`` (session) -> callable ``run_role(role_vars, check=False, verbosity=0, emulator=None, ...)``:
    ``run_playbook`` of a one-play playbook that includes the role azure_backup.dataprotection.postgresql_restore
    with ``role_vars`` (FAST_ROLE_VARS first) given as extra vars, as AWX gives a job template's survey, and ends
    with a ``debug`` of ``postgresql_restore_result``. ``start=True`` returns a RunningPlaybook instead.

``run_tasks`` (session) -> callable ``run_tasks(tasks, **run_playbook_kwargs)`` -> PlaybookResult: one play on
    localhost with the given tasks, each ``{'name': ..., 'module': 'pg_restore' (short name = this collection) or
    an FQCN, 'params': {...}, other task keywords such as 'ignore_errors': True or 'check_mode': True}`` (written
    as JSON). Look results up with ``result.task(name)``.

``run_module`` (session) -> callable ``run_module(module, params, **run_playbook_kwargs)`` -> (PlaybookResult,
    record): ``run_tasks`` of one task; ``record['result']`` is what ``register`` would hold, ``record['status']``
    ok/changed/failed. Never asserts rc.

``restore_checks`` (session) -> RestoreChecks: data checks of a restore on the real clusters.
    ``.backup_between_markers(emulator, tag) -> (recovery point, snapshot)`` inserts a row '<tag>_before' into
    sourceossserver/empdb11, takes a backup, snapshots the source as of that backup (row count and md5 of both
    tables, the badge sequence), then inserts '<tag>_after'. ``.assert_restored_as_of(emulator, database,
    snapshot, tag, server='targetossserver')`` asserts the restored database equals the snapshot, holds the
    'before' row and not the 'after' one. ``.snapshot(emulator, server, database)``.

``unique_name`` (function) -> callable ``unique_name(prefix='db') -> str``: a lowercase name unique in the session.

Environment
-----------
``DP_REPO_ROOT`` (see ``dp_repo_root``); ``DP_KEEP_EMULATOR_STATE=1`` keeps the emulators' state dirs (logs,
clusters' data) under /tmp/dp-integration after the run, for debugging (the emulators are stopped either way).

Objects
-------
``Emulator``: ``.url``, ``.env`` (env.json, values as str), ``.state`` (state dir), ``.ca``, ``.sub``, ``.pid``,
``.world_path``, ``.awx_env`` (the AZURE_* + REQUESTS_CA_BUNDLE an AWX job gets), ``.pg_env(server)`` (libpq
environment for a world server); ``.control(method, path, body=None)`` (path relative to ``/_emulator/``, e.g. ``'counters'``;
raises AssertionError on HTTP >= 300), ``.servers()``, ``.server(name)``, ``.psql(server, db, sql,
user=None, password=None, check=True)`` -> list of rows (tuples of str; psql -At), ``.databases(server)``,
``.set_knobs(**kw)``, ``.knobs()``, ``.add_fault(**spec)``, ``.clear_faults()``, ``.counters()`` (the
``counters`` dict) / ``.request_counts()`` / ``.writes()`` (non-GET Azure calls) / ``.reset_counters()``, ``.status()``, ``.backup_instances()``,
``.backup_instance(ref='empdb11')`` (by name, database or server), ``.backup(bi='empdb11')`` -> recovery point
(ARM shape), ``.archive(bi='empdb11', rp='latest')``, ``.seed_points(bi, count, interval_hours, archive)``,
``.cancel_job(guid)``, ``.wait_idle(timeout=120)`` (until no job runs), ``.token(scope)``, ``.arm(method, path, body=None, params=None)`` -> requests.Response,
``.jobs(operation=None)`` -> raw backupJobs of the vault (every page), ``.restore_jobs()``,
``.recovery_points(bi='empdb11')`` (raw), ``.server_id(name, rg='targetrg')``, ``.vault_id``,
``.kv_uri(vault)``, ``.container_url(account, container)``, ``.blobs(account, container, prefix='')``,
``.download_blob(account, container, name, dest)``, ``.log_text()``, ``.secret_values()`` (every secret value
the world and env.json know: client secrets, admin passwords, the control token), ``.stop()``, ``.start()``
(restart on the same state dir).

``PlaybookResult``: ``.rc``, ``.stdout``, ``.stderr``, ``.output`` (both), ``.results`` (every task/item result
record: ``{'event', 'status' ('ok'|'changed'|'failed'|'skipped'|'ignored'|'retry'|...), 'host', 'task', 'action',
'role', 'result'}``), ``.stats`` (``{host: {'ok', 'changed', 'failures', 'skipped', 'rescued', ...}}``, None when
the run did not reach the recap), ``.changed`` (changed count of localhost), ``.task(name)`` (last task record
named ``name``, else whose name contains it; KeyError when none), ``.tasks(name)``, ``.by_action(action)``, ``.failed``
(failed task records), ``.assert_ok()``, ``.assert_failed()`` (both return self and show the output's tail on
failure).
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
import uuid
from pathlib import Path

import pytest

try:
    import requests
except ImportError:  # pragma: no cover - requests is a runtime requirement of the collection
    requests = None

try:
    import yaml
except ImportError:  # pragma: no cover - PyYAML comes with ansible-core
    yaml = None

HERE = Path(__file__).resolve().parent
NAMESPACE, NAME = 'azure_backup', 'dataprotection'
MODULES_DIR = HERE.parents[1] / 'plugins' / 'modules'  # the tree under test: the installed collection under make


def _load_return_contract():
    spec = importlib.util.spec_from_file_location('dp_return_contract', HERE.parent / 'return_contract.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


return_contract = _load_return_contract()
BIN = Path(sys.executable).parent
VAULT_NAME, VAULT_RG = 'TestBkpVault', 'testBkpVaultRG'
API_VERSION = '2024-04-01'
DEFAULT_TIMEOUT = 600

# Short emulator durations: jobs still go through InProgress, so that waits and polls are exercised.
FAST_KNOBS = {'operation_duration': 0.3, 'job_duration': 1.0, 'rehydration_duration': 1.5, 'retry_after': 1}
# Role variables that keep the role's loops short on the emulator.
FAST_ROLE_VARS = {'postgresql_restore_poll_interval': 1, 'postgresql_restore_validate_delay': 1,
                  'postgresql_restore_validate_retries': 5, 'postgresql_restore_busy_delay': 1,
                  'postgresql_restore_busy_retries': 5, 'postgresql_restore_wait_timeout': 300}
# What AWX's Azure credential injects, plus the CA of the emulator.
AWX_ENV_KEYS = ('AZURE_SUBSCRIPTION_ID', 'AZURE_CLIENT_ID', 'AZURE_SECRET', 'AZURE_TENANT', 'AZURE_CLOUD_ENVIRONMENT',
                'REQUESTS_CA_BUNDLE')


def tool(name):
    """An executable of the venv running the tests, else from PATH."""
    path = BIN / name
    return str(path) if path.exists() else shutil.which(name)


def repo_root():
    if os.environ.get('DP_REPO_ROOT'):
        return Path(os.environ['DP_REPO_ROOT']).resolve()
    return HERE.parents[1]


def worlds_dir():
    return repo_root() / 'tests' / 'emulator' / 'dpemulator' / 'worlds'


def _state_parent():
    # The emulator runs PostgreSQL as the postgres user when we are root: every parent of the state dir must be
    # traversable by that user (pytest's tmp_path under /root is not).
    base = Path(tempfile.gettempdir()) / 'dp-integration'
    base.mkdir(exist_ok=True)
    os.chmod(base, 0o755)
    return base


# ------------------------------------------------------------------------------------------------ the emulator


class Emulator:
    """A running dpemulator (started by the CLI), with helpers for the control API, ARM and the real clusters."""

    def __init__(self, state, world_path, knobs=None):
        self.state = str(state)
        self.world_path = str(world_path)
        self.knobs_at_start = dict(FAST_KNOBS, **(knobs or {}))
        self.env = {}
        self.pid = None
        self._token_cache = {}
        self._servers = None

    # lifecycle -------------------------------------------------------------------------------------------
    def _cli(self, *args, check=True, timeout=300):
        dpemulator = tool('dpemulator')
        if not dpemulator:
            pytest.skip('dpemulator is not installed (pip install -e tests/emulator)')
        proc = subprocess.run([dpemulator, *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              timeout=timeout, check=False)
        if check and proc.returncode != 0:
            raise AssertionError('dpemulator %s failed (rc %d):\n%s\n%s' % (' '.join(args), proc.returncode,
                                                                            proc.stdout, self.log_text()[-4000:]))
        return proc

    def start(self):
        """Start (first time: with the world and knobs; afterwards: a restart on the same state dir)."""
        args = ['start', '--state', self.state]
        if not (Path(self.state) / 'state.json').exists():
            args += ['--world', self.world_path]
            for key, value in self.knobs_at_start.items():
                args += ['--knob', '%s=%s' % (key, value)]
        self._cli(*args)
        self.env = {k: str(v) for k, v in json.loads((Path(self.state) / 'env.json').read_text()).items()}
        self.pid = int(self.env['DPEMULATOR_PID'])
        self._token_cache = {}
        self._servers = None
        return self

    def stop(self):
        """Stop by pid (the CLI stops the emulator and its clusters), then make sure the pid is gone."""
        if self.pid is None:
            return
        self._cli('stop', '--state', self.state, check=False)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and _alive(self.pid):
            time.sleep(0.2)
        if _alive(self.pid):
            os.kill(self.pid, signal.SIGKILL)
        self.pid = None

    def running(self):
        return self.pid is not None and _alive(self.pid)

    @property
    def url(self):
        return self.env['DPEMULATOR_URL']

    @property
    def ca(self):
        return self.env['REQUESTS_CA_BUNDLE']

    @property
    def sub(self):
        return self.env['AZURE_SUBSCRIPTION_ID']

    @property
    def awx_env(self):
        """The environment AWX's Azure credential injects (+ the CA bundle)."""
        return {key: self.env[key] for key in AWX_ENV_KEYS}

    # HTTP ------------------------------------------------------------------------------------------------
    def control(self, method, path, body=None):
        response = requests.request(method, '%s/_emulator/%s' % (self.url, path.lstrip('/')), json=body,
                                    verify=self.ca, timeout=300,
                                    headers={'Authorization': 'Bearer ' + self.env['DPEMULATOR_CONTROL_TOKEN']})
        assert response.status_code < 300, '%s %s: %s %s' % (method, path, response.status_code, response.text)
        return response.json() if response.content else {}

    def token(self, scope='https://management.azure.com/.default'):
        if scope not in self._token_cache:
            response = requests.post('%s/%s/oauth2/v2.0/token' % (self.url, self.env['AZURE_TENANT']), verify=self.ca,
                                     timeout=60, data={'grant_type': 'client_credentials', 'scope': scope,
                                                       'client_id': self.env['AZURE_CLIENT_ID'],
                                                       'client_secret': self.env['AZURE_SECRET']})
            assert response.status_code == 200, response.text
            self._token_cache[scope] = response.json()['access_token']
        return self._token_cache[scope]

    def arm(self, method, path, body=None, params=None, scope='https://management.azure.com/.default', headers=None):
        params = dict(params or {})
        url = path if path.startswith('https://') else self.url + path
        if 'api-version' not in params and 'api-version=' not in url and '/keyvaults/' not in url \
                and '/blob/' not in url:
            params['api-version'] = API_VERSION
        return requests.request(method, url, json=body, params=params, verify=self.ca, timeout=120,
                                headers=dict(headers or {}, Authorization='Bearer ' + self.token(scope)))

    def _pages(self, path, params=None):
        response = self.arm('GET', path, params=params)
        while True:
            assert response.status_code == 200, response.text
            body = response.json()
            yield from body.get('value', [])
            if not body.get('nextLink'):
                return
            response = self.arm('GET', body['nextLink'])

    # control API -----------------------------------------------------------------------------------------
    def status(self):
        return self.control('GET', 'status')

    def knobs(self):
        return self.control('GET', 'knobs')

    def set_knobs(self, **knobs):
        return self.control('PATCH', 'knobs', knobs)

    def add_fault(self, **spec):
        return self.control('POST', 'faults', spec)

    def clear_faults(self):
        return self.control('DELETE', 'faults')

    def counters(self):
        return self.control('GET', 'counters')['counters']

    def request_counts(self):
        return self.control('GET', 'counters')['requests']

    def writes(self):
        """Request counts of every non-GET call to the emulated Azure (control API and token requests excluded):
        compare two snapshots to prove that a run wrote nothing. validateRestore (a read-only POST) is included."""
        return {key: count for key, count in self.request_counts().items()
                if key.split(' ')[0] in ('PUT', 'POST', 'PATCH', 'DELETE')
                and not key.split(' ', 1)[1].startswith(('control.', 'aad.', 'msi.'))}

    def reset_counters(self):
        return self.control('DELETE', 'counters')

    def servers(self):
        if self._servers is None:
            self._servers = self.control('GET', 'servers')
        return self._servers

    def server(self, name):
        return self.servers()[name]

    def backup_instances(self):
        return self.control('GET', 'backup-instances')['value']

    def backup_instance(self, ref='empdb11'):
        for item in self.backup_instances():
            if ref in (item['name'], item['id'], item['database'], item['server']):
                return item
        raise KeyError(ref)

    def backup(self, bi='empdb11'):
        """A real backup (pg_dump) now: returns the new recovery point (ARM shape)."""
        return self.control('POST', 'backup', {'backup_instance': self.backup_instance(bi)['name']})

    def archive(self, bi='empdb11', rp='latest'):
        """Moves a point to the archive tier (its only datastore becomes ArchiveStore)."""
        return self.control('POST', 'archive', {'backup_instance': self.backup_instance(bi)['name'],
                                                'recovery_point': rp})

    def seed_points(self, bi='empdb11', count=10, interval_hours=24, archive=False):
        return self.control('POST', 'seed-points', {'backup_instance': self.backup_instance(bi)['name'],
                                                    'count': count, 'interval_hours': interval_hours,
                                                    'archive': archive})

    def cancel_job(self, guid):
        return self.control('POST', 'jobs/%s/cancel' % guid)

    def wait_idle(self, timeout=120):
        """Waits until no job runs (a restore/backup trigger while a job runs on the backup instance is refused)."""
        deadline = time.monotonic() + timeout
        while self.status()['jobs_running']:
            assert time.monotonic() < deadline, 'jobs still running after %s s' % timeout
            time.sleep(0.3)

    # ARM views -------------------------------------------------------------------------------------------
    @property
    def vault_id(self):
        return '/subscriptions/%s/resourceGroups/%s/providers/Microsoft.DataProtection/backupVaults/%s' % (
            self.sub, VAULT_RG, VAULT_NAME)

    def server_id(self, name, rg='targetrg', kind='servers'):
        return '/subscriptions/%s/resourceGroups/%s/providers/Microsoft.DBforPostgreSQL/%s/%s' % (
            self.sub, rg, kind, name)

    def kv_uri(self, vault='targetosskv'):
        return '%s/keyvaults/%s/' % (self.url, vault)

    def container_url(self, account='targetossstorage', container='restored-files'):
        return '%s/blob/%s/%s' % (self.url, account, container)

    def jobs(self, operation=None):
        jobs = list(self._pages(self.vault_id + '/backupJobs'))
        if operation:
            jobs = [j for j in jobs if operation.lower() in (str(j['properties'].get('operation')).lower(),
                                                             str(j['properties'].get('operationCategory')).lower())]
        return jobs

    def restore_jobs(self):
        return self.jobs('Restore')

    def recovery_points(self, bi='empdb11'):
        return list(self._pages(self.backup_instance(bi)['id'] + '/recoveryPoints'))

    def blobs(self, account='targetossstorage', container='restored-files', prefix=''):
        """Blob names in a container (the blob data plane, as the automation principal)."""
        response = self.arm('GET', self.container_url(account, container),
                            params={'restype': 'container', 'comp': 'list', 'prefix': prefix},
                            scope='https://storage.azure.com/.default', headers={'x-ms-version': '2021-08-06'})
        assert response.status_code == 200, response.text
        import xml.etree.ElementTree as ET  # pylint: disable=import-outside-toplevel
        return [node.text for node in ET.fromstring(response.content).iter('Name')]

    def download_blob(self, account, container, name, dest):
        response = self.arm('GET', '%s/%s' % (self.container_url(account, container), name),
                            scope='https://storage.azure.com/.default', headers={'x-ms-version': '2021-08-06'})
        assert response.status_code == 200, response.text
        Path(dest).write_bytes(response.content)
        return dest

    # the real PostgreSQL clusters ------------------------------------------------------------------------
    def pg_env(self, server, user=None, password=None):
        info = self.server(server)
        return dict(os.environ, PGHOST=info['host'], PGPORT=str(info['port']), PGUSER=user or info['admin_user'],
                    PGPASSWORD=password or info['admin_password'], PGSSLMODE='prefer', PGCONNECT_TIMEOUT='20')

    def psql(self, server, db, sql, user=None, password=None, check=True):
        """Runs SQL with psql on a world server's real cluster; returns the rows as tuples of strings."""
        proc = subprocess.run([tool('psql') or 'psql', '-X', '-v', 'ON_ERROR_STOP=1', '-At', '-F', '\t', '-d', db,
                               '-c', sql], env=self.pg_env(server, user, password), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, timeout=120, check=False)
        if check and proc.returncode != 0:
            raise AssertionError('psql on %s/%s failed: %s' % (server, db, proc.stderr))
        return [tuple(line.split('\t')) for line in proc.stdout.splitlines() if line]

    def databases(self, server):
        return {row[0] for row in self.psql(server, 'postgres', 'SELECT datname FROM pg_database')}

    # logs and secrets ------------------------------------------------------------------------------------
    def log_text(self):
        path = Path(self.state) / 'emulator.log'
        return path.read_text(errors='replace') if path.exists() else ''

    def secret_values(self):
        """Every secret value this emulator knows: the SP client secrets, user, admin and role passwords of the
        world, the control token and the identity header."""
        values = {self.env['AZURE_SECRET'], self.env['DPEMULATOR_CONTROL_TOKEN'],
                  self.env.get('DPEMULATOR_IDENTITY_HEADER', '')}
        values.update(s['admin_password'] for s in self.servers().values())
        world = _load_world(Path(self.world_path))
        for principal in world.get('principals', []):
            values.add(principal.get('client_secret') or '')
        values.update(str(user.get('password') or '') for user in world.get('users', []))
        for srv in world.get('postgres_servers', []):
            values.add(srv.get('admin_password') or '')
            values.update(role.get('password') or '' for role in srv.get('roles', []))
        values.discard('')
        return values


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie child of ours counts as gone
    try:
        with open('/proc/%d/stat' % pid, encoding='utf-8') as handle:
            return handle.read().split()[2] != 'Z'
    except OSError:
        return False


def _load_world(path, seen=None):
    """The world document with `extends` resolved (lists appended, other keys replaced), as the emulator does."""
    data = yaml.safe_load(path.read_text()) or {}
    parent = data.pop('extends', None)
    if not parent:
        return data
    base = _load_world((path.parent / parent) if not os.path.isabs(parent) else Path(parent))
    for key, value in data.items():
        if isinstance(value, list) and isinstance(base.get(key), list):
            base[key] = base[key] + value
        else:
            base[key] = value
    return base


def _world_file(world, state_parent):
    if isinstance(world, dict):
        doc = dict(world)
        if doc.get('extends') and not os.path.isabs(doc['extends']):
            doc['extends'] = str(worlds_dir() / doc['extends'])
        handle, name = tempfile.mkstemp(prefix='world-', suffix='.yml', dir=state_parent)
        with os.fdopen(handle, 'w', encoding='utf-8') as stream:
            stream.write(yaml.safe_dump(doc))
        return Path(name)
    if world in ('demo', 'granted'):
        return worlds_dir() / ('%s.yml' % world)
    return Path(world)


class _EmulatorPool:
    def __init__(self):
        self.started = []
        self.world_files = []

    def __call__(self, world='granted', knobs=None):
        if requests is None or yaml is None:
            pytest.skip('requests and PyYAML are needed for the integration tests')
        parent = _state_parent()
        state = Path(tempfile.mkdtemp(prefix='emu-', dir=parent))
        os.chmod(state, 0o755)
        world_path = _world_file(world, parent)
        if isinstance(world, dict):
            self.world_files.append(world_path)
        emulator = Emulator(state, world_path, knobs)
        self.started.append(emulator)
        return emulator.start()

    def close(self):
        for emulator in self.started:
            try:
                emulator.stop()
            finally:
                if os.environ.get('DP_KEEP_EMULATOR_STATE') != '1':
                    shutil.rmtree(emulator.state, ignore_errors=True)
        self.started = []
        for path in self.world_files:
            Path(path).unlink(missing_ok=True)
        self.world_files = []


# ------------------------------------------------------------------------------------------------ playbooks


class PlaybookResult:
    def __init__(self, rc, stdout, stderr, records, command):
        self.rc, self.stdout, self.stderr, self.command = rc, stdout, stderr, command
        self.results = [r for r in records if r.get('event') in ('task', 'item')]
        stats = [r['stats'] for r in records if r.get('event') == 'stats']
        self.stats = stats[-1] if stats else None
        self._check_return_docs()

    def _check_return_docs(self):
        """Every result of one of this collection's modules must match the module's RETURN documentation
        (tests/return_contract.py): a renamed, dropped, retyped or undocumented return value fails the test."""
        prefix = '%s.%s.' % (NAMESPACE, NAME)
        for record in self.results:
            result, action = record.get('result') or {}, record.get('action') or ''
            if not action.startswith(prefix) or record['status'] == 'skipped' or 'censored' in result \
                    or (record['event'] == 'task' and 'results' in result):  # a loop: its items are checked
                continue
            source = MODULES_DIR / (action[len(prefix):] + '.py')
            if source.is_file():  # (the collection's lookups and roles have no RETURN of a module)
                return_contract.assert_matches_return_doc(
                    result, return_contract.return_doc_of_file(str(source)), module=action,
                    failed=record['status'] in ('failed', 'ignored', 'retry') or bool(result.get('failed')))

    @property
    def output(self):
        return self.stdout + self.stderr

    @property
    def changed(self):
        return (self.stats or {}).get('localhost', {}).get('changed')

    @property
    def failed(self):
        return [r for r in self.results if r['event'] == 'task' and r['status'] == 'failed']

    def tasks(self, name):
        """Task records named `name` exactly, else those whose name contains it."""
        exact = [r for r in self.results if r['event'] == 'task' and r['task'] == name]
        return exact or [r for r in self.results if r['event'] == 'task' and name in r['task']]

    def task(self, name):
        found = self.tasks(name)
        if not found:
            raise KeyError('no task named like %r; tasks: %s' % (name, sorted({r['task'] for r in self.results})))
        return found[-1]

    def by_action(self, action):
        return [r for r in self.results if r['event'] == 'task' and r['action'].split('.')[-1] == action]

    def tail(self, size=8000):
        return '$ %s\nrc=%s\n--- stdout (tail)\n%s\n--- stderr (tail)\n%s' % (
            ' '.join(self.command), self.rc, self.stdout[-size:], self.stderr[-size // 2:])

    def assert_ok(self):
        assert self.rc == 0, self.tail()
        return self

    def assert_failed(self):
        assert self.rc != 0, self.tail()
        return self


class RunningPlaybook:
    def __init__(self, proc, results_file, command, workdir, stdout_path, stderr_path):
        self.proc, self.results_file, self.command = proc, results_file, command
        self.workdir, self._stdout, self._stderr = workdir, stdout_path, stderr_path

    def results(self):
        return _read_records(self.results_file)

    def kill(self, sig=signal.SIGKILL):
        """Kills ansible-playbook, its workers and the modules they run. The workers call setsid() (ansible-core
        2.19), so killing the process group would leave them, and the module they run, going on. Tests kill just as
        a task starts, when a worker is being forked: every process is stopped first, until no new one appears, so
        that none is forked between the look at /proc and the kill."""
        if self.proc.poll() is not None:
            return
        stopped = []
        found = [self.proc.pid]
        while set(found) - set(stopped):
            for pid in set(found) - set(stopped):
                _signal(pid, signal.SIGSTOP)
            _wait_stopped(found)  # SIGSTOP is asynchronous: a process may still fork until it is really stopped
            stopped = found
            found = [self.proc.pid] + _descendants(self.proc.pid)
        for pid in stopped:
            _signal(pid, sig)
            _signal(pid, signal.SIGCONT)  # a signal other than SIGKILL waits for it

    def wait(self, timeout=DEFAULT_TIMEOUT):
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            self.proc.wait()
            raise AssertionError('ansible-playbook did not finish in %s s:\n%s' % (
                timeout, Path(self._stdout).read_text(errors='replace')[-8000:]))
        result = PlaybookResult(self.proc.returncode, Path(self._stdout).read_text(errors='replace'),
                                Path(self._stderr).read_text(errors='replace'), _read_records(self.results_file),
                                self.command)
        return result


def _signal(pid, sig):
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def _wait_stopped(pids, timeout=2.0):
    deadline = time.monotonic() + timeout
    for pid in pids:
        while time.monotonic() < deadline:
            try:
                state = Path('/proc/%d/stat' % pid).read_text().rsplit(')', 1)[1].split()[0]
            except (OSError, IndexError):
                break  # gone
            if state in ('T', 't', 'Z', 'X'):
                break
            time.sleep(0.005)


def _descendants(pid):
    """The pids of every process below `pid` (from /proc), children first."""
    children = {}
    for entry in Path('/proc').iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / 'stat').read_text().rsplit(')', 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue  # gone meanwhile
            children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], list(children.get(pid, []))
    while todo:
        child = todo.pop()
        found.append(child)
        todo.extend(children.get(child, []))
    return found


def _read_records(path):
    records = []
    if Path(path).exists():
        for line in Path(path).read_text().splitlines():
            try:
                records.append(json.loads(line))
            except ValueError:
                pass  # a line cut by a kill
    return records


class PlaybookRunner:
    """Runs ansible-playbook against an emulator (see the module docstring)."""

    def __init__(self, collections, default_emulator, workdir):
        self.collections = collections
        self._default = default_emulator  # a callable: the session emulator, started on first use
        self.workdir = Path(workdir)
        self._count = 0

    def environment(self, emulator, env=None):
        environ = {key: os.environ[key] for key in ('PATH', 'HOME', 'LANG', 'LC_ALL', 'TMPDIR') if key in os.environ}
        environ['PATH'] = '%s:%s' % (BIN, environ.get('PATH', '/usr/bin:/bin'))
        environ.update(emulator.awx_env)
        # the emulator's own token cache folder (an AWX job has one of its own too: a new container)
        environ['AZURE_BACKUP_CACHE_DIR'] = emulator.env['AZURE_BACKUP_CACHE_DIR']
        environ.update({
            'ANSIBLE_COLLECTIONS_PATH': self.collections,
            'ANSIBLE_HOME': str(self.workdir / 'ansible-home'),
            'ANSIBLE_CALLBACK_PLUGINS': str(HERE / 'callback_plugins'),
            'ANSIBLE_CALLBACKS_ENABLED': 'dp_results',
            'ANSIBLE_STDOUT_CALLBACK': 'ansible.builtin.default',
            'ANSIBLE_NOCOLOR': '1', 'ANSIBLE_FORCE_COLOR': '0',
            'ANSIBLE_RETRY_FILES_ENABLED': '0', 'ANSIBLE_LOCALHOST_WARNING': '0',
            'ANSIBLE_INVENTORY_UNPARSED_WARNING': '0', 'ANSIBLE_PYTHON_INTERPRETER': sys.executable,
            'ANSIBLE_HOST_KEY_CHECKING': '0', 'PYTHONDONTWRITEBYTECODE': '1',
        })
        for key, value in (env or {}).items():
            if value is None:
                environ.pop(key, None)
            else:
                environ[key] = str(value)
        return environ

    def _playbook_path(self, playbook, rundir):
        text = str(playbook)
        if '\n' in text:
            path = rundir / 'playbook.yml'
            path.write_text(textwrap.dedent(text))
            return str(path)
        if os.path.isabs(text):
            return text
        for candidate in (repo_root() / 'playbooks' / text, repo_root() / 'playbooks' / (text + '.yml'),
                          Path(self.collections) / 'ansible_collections' / NAMESPACE / NAME / 'playbooks' / (
                              text + '.yml')):
            if candidate.exists():
                return str(candidate)
        return text  # e.g. an FQCN playbook: azure_backup.dataprotection.restore_database

    def start(self, playbook, extravars=None, check=False, verbosity=0, env=None, timeout=DEFAULT_TIMEOUT,
              emulator=None, diff=False, args=()):
        del timeout  # used by wait()
        emulator = emulator or self._default()
        self._count += 1
        rundir = self.workdir / ('run-%03d' % self._count)
        rundir.mkdir(parents=True)
        results_file = rundir / 'results.jsonl'
        inventory = rundir / 'inventory.yml'
        inventory.write_text('all:\n  hosts:\n    localhost:\n      ansible_connection: local\n'
                             '      ansible_python_interpreter: %s\n' % sys.executable)
        command = [tool('ansible-playbook'), self._playbook_path(playbook, rundir), '-i', str(inventory)]
        if extravars:
            # a file, as AWX does: no secret on the command line (visible in ps)
            extravars_file = rundir / 'extravars.json'
            extravars_file.write_text(json.dumps(extravars))
            os.chmod(extravars_file, 0o600)
            command += ['-e', '@' + str(extravars_file)]
        if check:
            command.append('--check')
        if diff:
            command.append('--diff')
        if verbosity:
            command.append('-' + 'v' * verbosity)
        command += list(args)
        environ = self.environment(emulator, env)
        environ['DP_RESULTS_FILE'] = str(results_file)
        stdout_path, stderr_path = rundir / 'stdout.txt', rundir / 'stderr.txt'
        with open(stdout_path, 'w', encoding='utf-8') as out, open(stderr_path, 'w', encoding='utf-8') as err:
            proc = subprocess.Popen(command, env=environ, cwd=str(rundir), stdout=out, stderr=err,  # pylint: disable=consider-using-with
                                    stdin=subprocess.DEVNULL, start_new_session=True)
        return RunningPlaybook(proc, results_file, command, rundir, stdout_path, stderr_path)

    def __call__(self, playbook, extravars=None, check=False, verbosity=0, env=None, timeout=DEFAULT_TIMEOUT,
                 emulator=None, diff=False, args=()):
        running = self.start(playbook, extravars=extravars, check=check, verbosity=verbosity, env=env,
                             emulator=emulator, diff=diff, args=args)
        return running.wait(timeout=timeout)


class RestoreChecks:
    """Compares a restored database with the source as of a recovery point (see the module docstring)."""

    SNAPSHOT_SQL = ("SELECT (SELECT count(*) FROM employees), "
                    "(SELECT md5(string_agg(e::text, '|' ORDER BY emp_id)) FROM employees e), "
                    "(SELECT md5(string_agg(d::text, '|' ORDER BY dept_id)) FROM departments d), "
                    "(SELECT last_value FROM employee_badge_seq)")
    MARKER_SQL = ("INSERT INTO employees (first_name, last_name, email, dept_id, salary, hired_on, notes) "
                  "VALUES ('Marker', '{tag}', '{tag}@example.test', 1, 1, current_date, 'integration marker')")

    def snapshot(self, emulator, server, database):
        return emulator.psql(server, database, self.SNAPSHOT_SQL)[0]

    @staticmethod
    def markers(emulator, server, database):
        return {row[0] for row in emulator.psql(server, database,
                                                "SELECT last_name FROM employees WHERE first_name = 'Marker'")}

    def backup_between_markers(self, emulator, tag):
        emulator.wait_idle()
        emulator.psql('sourceossserver', 'empdb11', self.MARKER_SQL.format(tag=tag + '_before'))
        point = emulator.backup('empdb11')
        state = self.snapshot(emulator, 'sourceossserver', 'empdb11')
        emulator.psql('sourceossserver', 'empdb11', self.MARKER_SQL.format(tag=tag + '_after'))
        assert self.snapshot(emulator, 'sourceossserver', 'empdb11') != state
        return point, state

    def assert_restored_as_of(self, emulator, database, state, tag, server='targetossserver'):
        assert database in emulator.databases(server), '%s was not restored' % database
        assert self.snapshot(emulator, server, database) == state, 'the restored rows differ from the recovery point'
        found = self.markers(emulator, server, database)
        assert tag + '_before' in found and tag + '_after' not in found, found


ROLE_PLAY = '''\
- name: Run the postgresql_restore role
  hosts: localhost
  gather_facts: false
  tasks:
    - name: Restore
      ansible.builtin.include_role:
        name: azure_backup.dataprotection.postgresql_restore

    - name: Show the result
      ansible.builtin.debug:
        var: postgresql_restore_result
'''

# ------------------------------------------------------------------------------------------------ fixtures


@pytest.fixture(scope='session')
def dp_repo_root():
    return repo_root()


@pytest.fixture(scope='session')
def collections_path():
    # 1. installed (make): .../ansible_collections/azure_backup/dataprotection/tests/integration/conftest.py
    coll = HERE.parents[1]
    if coll.name == NAME and coll.parent.name == NAMESPACE and coll.parent.parent.name == 'ansible_collections':
        yield str(coll.parents[2])
        return
    # 2. an ANSIBLE_COLLECTIONS_PATH that has the collection
    for entry in os.environ.get('ANSIBLE_COLLECTIONS_PATH', '').split(os.pathsep):
        if entry and (Path(entry) / 'ansible_collections' / NAMESPACE / NAME / 'galaxy.yml').exists():
            yield entry
            return
    # 3. a symlink tree to this checkout
    root = Path(tempfile.mkdtemp(prefix='dp-colls-'))
    (root / 'ansible_collections' / NAMESPACE).mkdir(parents=True)
    os.symlink(repo_root(), root / 'ansible_collections' / NAMESPACE / NAME)
    yield str(root)
    shutil.rmtree(root, ignore_errors=True)  # removes the symlink, never the checkout


@pytest.fixture(scope='session')
def emulator_session_factory():
    pool = _EmulatorPool()
    yield pool
    pool.close()


@pytest.fixture()
def emulator_factory():
    pool = _EmulatorPool()
    yield pool
    pool.close()


@pytest.fixture(scope='session')
def emulator(emulator_session_factory):
    return emulator_session_factory('granted')


@pytest.fixture(scope='session')
def demo_emulator(emulator_session_factory):
    return emulator_session_factory('demo')


@pytest.fixture(autouse=True)
def _clear_emulator_faults(request):
    yield
    if 'emulator' in request.fixturenames:
        emu = request.getfixturevalue('emulator')
        if emu.running():
            emu.clear_faults()


@pytest.fixture(scope='session')
def run_playbook(collections_path, emulator_session_factory, request, tmp_path_factory):
    def default():
        return request.getfixturevalue('emulator')
    del emulator_session_factory  # ordering: the emulators outlive the runner
    return PlaybookRunner(collections_path, default, tmp_path_factory.mktemp('playbooks'))


@pytest.fixture(scope='session')
def run_role(run_playbook):
    def run(role_vars, check=False, verbosity=0, emulator=None, env=None, timeout=DEFAULT_TIMEOUT, args=(),
            start=False):
        extravars = dict(FAST_ROLE_VARS, **role_vars)
        call = run_playbook.start if start else run_playbook
        return call(ROLE_PLAY, extravars=extravars, check=check, verbosity=verbosity, emulator=emulator, env=env,
                    timeout=timeout, args=args)
    return run


def play_text(tasks):
    """A one-play playbook (localhost, no facts) from task dicts {'name', 'module', 'params', **task keywords}."""
    lines = ['- name: Integration test play', '  hosts: localhost', '  gather_facts: false', '  tasks:']
    for task in tasks:
        task = dict(task)
        module = task.pop('module')
        fqcn = module if '.' in module else '%s.%s.%s' % (NAMESPACE, NAME, module)
        lines.append('    - name: %s' % json.dumps(task.pop('name')))
        lines.append('      %s: %s' % (fqcn, json.dumps(task.pop('params', {}))))
        for key, value in task.items():
            lines.append('      %s: %s' % (key, json.dumps(value)))
    return '\n'.join(lines) + '\n'


@pytest.fixture(scope='session')
def run_tasks(run_playbook):
    def run(tasks, **kwargs):
        return run_playbook(play_text(tasks), **kwargs)
    return run


@pytest.fixture(scope='session')
def run_module(run_tasks):
    def run(module, params, **kwargs):
        result = run_tasks([{'name': 'Module under test', 'module': module, 'params': params}], **kwargs)
        records = result.tasks('Module under test')
        assert records, result.tail()
        return result, records[-1]
    return run


@pytest.fixture(scope='session')
def restore_checks():
    return RestoreChecks()


@pytest.fixture()
def unique_name():
    def make(prefix='db'):
        return '%s_%s' % (prefix, uuid.uuid4().hex[:8])
    return make
