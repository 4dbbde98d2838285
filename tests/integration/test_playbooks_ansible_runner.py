# -*- coding: utf-8 -*-
# Copyright: (c) 2025, Azure Backup Data Protection collection contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The ready-to-run playbooks as AWX/AAP runs them: through ansible-runner, with a private data dir whose
env/envvars holds exactly what AWX's "Microsoft Azure Resource Manager" credential injects (AZURE_SUBSCRIPTION_ID,
AZURE_CLIENT_ID, AZURE_SECRET, AZURE_TENANT, AZURE_CLOUD_ENVIRONMENT) plus REQUESTS_CA_BUNDLE, and the job
template's inputs as env/extravars. The runner itself starts from an almost empty environment.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

try:
    import yaml
except ImportError:  # pragma: no cover
    yaml = None

VAULT = {'vault_name': 'TestBkpVault', 'vault_resource_group': 'testBkpVaultRG'}
FAST = {'poll_interval': 1, 'validate_delay': 1, 'busy_delay': 1, 'wait_timeout': 300}


class RunnerResult:
    def __init__(self, artifacts, proc):
        self.artifacts, self.proc = artifacts, proc
        self.status = (artifacts / 'status').read_text().strip() if (artifacts / 'status').exists() else None
        self.rc = int((artifacts / 'rc').read_text()) if (artifacts / 'rc').exists() else None
        self.stdout = (artifacts / 'stdout').read_text(errors='replace') if (artifacts / 'stdout').exists() else ''
        self.events = []
        for path in sorted((artifacts / 'job_events').glob('*.json'),
                           key=lambda p: int(p.name.split('-', 1)[0])):
            self.events.append(json.loads(path.read_text()))

    def ok(self, task):
        """The results of the task named `task` that ended ok or changed."""
        return [e['event_data']['res'] for e in self.events
                if e['event'] == 'runner_on_ok' and e['event_data'].get('task') == task]

    def stats(self):
        for event in self.events:
            if event['event'] == 'playbook_on_stats':
                return event['event_data']
        return None

    def describe(self):
        return 'status=%s rc=%s\n%s\n%s' % (self.status, self.rc, self.stdout[-6000:], self.proc.stdout[-2000:])


@pytest.fixture(scope='module')
def runner(emulator, collections_path, tmp_path_factory):
    if not shutil.which('ansible-runner', path=str(Path(sys.executable).parent)) and not shutil.which('ansible-runner'):
        pytest.skip('ansible-runner is not installed')
    runner_bin = str(Path(sys.executable).parent / 'ansible-runner')
    if not os.path.exists(runner_bin):
        runner_bin = shutil.which('ansible-runner')
    base = tmp_path_factory.mktemp('runner')
    playbooks = Path(collections_path) / 'ansible_collections' / 'azure_backup' / 'dataprotection' / 'playbooks'

    def run(playbook, extravars):
        pdd = base / ('%s-%s' % (playbook, uuid.uuid4().hex[:6]))
        (pdd / 'project').mkdir(parents=True)
        (pdd / 'inventory').mkdir()
        (pdd / 'env').mkdir()
        shutil.copy(playbooks / (playbook + '.yml'), pdd / 'project' / (playbook + '.yml'))
        (pdd / 'inventory' / 'hosts').write_text(
            'localhost ansible_connection=local ansible_python_interpreter=%s\n' % sys.executable)
        envvars = dict(emulator.awx_env)
        # what the execution environment provides: the collection, and a writable ANSIBLE_HOME
        envvars.update(ANSIBLE_COLLECTIONS_PATH=collections_path, ANSIBLE_HOME=str(pdd / 'ansible-home'))
        (pdd / 'env' / 'envvars').write_text(yaml.safe_dump(envvars))
        (pdd / 'env' / 'extravars').write_text(yaml.safe_dump(dict(extravars)))
        clean_env = {'PATH': '%s:/usr/local/bin:/usr/bin:/bin' % Path(sys.executable).parent,
                     'HOME': os.environ.get('HOME', '/root'), 'LANG': 'C.UTF-8'}
        proc = subprocess.run([runner_bin, 'run', str(pdd), '-p', playbook + '.yml', '--ident', 'job'],
                              env=clean_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              timeout=600, check=False)
        return RunnerResult(pdd / 'artifacts' / 'job', proc)

    if yaml is None:
        pytest.skip('PyYAML is needed')
    return run


@pytest.fixture(scope='module')
def restored(emulator, runner):
    emulator.wait_idle()
    point = emulator.backup('empdb11')
    database = 'runnerdb_%s' % uuid.uuid4().hex[:8]
    extravars = dict(VAULT, **FAST, datasource_id=emulator.server_id('sourceossserver', 'sourcerg') + '/databases/empdb11',
                     target_server_id=emulator.server_id('targetossserver'), target_database_name=database,
                     secret_uri=emulator.kv_uri() + 'secrets/targetossserver-conn')
    return {'result': runner('restore_database', extravars), 'database': database, 'point': point}


def test_restore_database(emulator, restored):
    result = restored['result']
    assert result.status == 'successful' and result.rc == 0, result.describe()
    summary = result.ok('Record the result')[0]['ansible_facts']['postgresql_restore_result']
    assert summary['status'] == 'Completed' and summary['recovery_point_id'] == restored['point']['name']
    assert restored['database'] in emulator.databases('targetossserver')
    source = emulator.psql('sourceossserver', 'empdb11', 'SELECT count(*) FROM employees')
    assert emulator.psql('targetossserver', restored['database'], 'SELECT count(*) FROM employees') == source
    assert result.stats()['failures'] == {}


def test_job_status(emulator, restored, runner):
    job_id = restored['result'].ok('Record the result')[0]['ansible_facts']['postgresql_restore_result']['job_id']
    one = runner('job_status', dict(VAULT, job_id=job_id, wait=True, poll_interval=1))
    assert one.status == 'successful', one.describe()
    job = one.ok('Read the job')[0]['job']
    assert job['job_id'] == job_id and job['status'] == 'Completed'
    assert 'Job %s: Restore Completed' % job_id in one.stdout


def test_list_recovery_points(emulator, runner):
    bi = emulator.backup_instance('empdb11')
    result = runner('list_recovery_points', dict(VAULT, backup_instance_name=bi['name']))
    assert result.status == 'successful', result.describe()
    points = result.ok('List the recovery points')[0]['recovery_points']
    assert {p['recovery_point_id'] for p in points} == {p['name'] for p in emulator.recovery_points('empdb11')}
    for point in points:
        assert point['recovery_point_id'] in result.stdout


def test_restore_files(emulator, runner):
    emulator.wait_idle()
    emulator.backup('sourceflexserver')  # the flexible server: files are its only restore
    prefix = 'runner-%s' % uuid.uuid4().hex[:8]
    result = runner('restore_files', dict(VAULT, **FAST, datasource_id=emulator.server_id(
        'sourceflexserver', 'sourcerg', 'flexibleServers'), target_container_url=emulator.container_url(),
        target_file_prefix=prefix))
    assert result.status == 'successful', result.describe()
    summary = result.ok('Record the result')[0]['ansible_facts']['postgresql_restore_result']
    assert summary['status'] == 'Completed' and summary['target_type'] == 'files'
    # one dump per database of the flexible server
    assert sorted(emulator.blobs(prefix=prefix)) == ['%s_%s.sql' % (prefix, name) for name in
                                                     ('inventory', 'orders', 'roles', 'schema', 'tablespace')]
