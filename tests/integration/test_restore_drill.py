# -*- coding: utf-8 -*-
# Copyright: (c) 2025, Azure Backup Data Protection collection contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Restore drills of a whole estate (issue 13) on the emulator's estate world (3 vaults, 30 backup instances, single
and flexible servers; estsingle2/hr13 is stale on purpose): the backup_instances inventory, the drill playbook over
every instance (the stale one fails in JSON, JUnit and HTML with its reason), the emulator's state after the drill
equal to before it but for the jobs, an interrupted drill resumed without a second restore, and the same drill as
three ansible-runner slices whose combined report equals one run's.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

from conftest import tool, worlds_dir  # pylint: disable=import-error

try:
    import yaml
except ImportError:  # pragma: no cover
    yaml = None

INVENTORY = """\
plugin: azure_backup.dataprotection.backup_instances
resource_groups: [drill-weu-rg, drill-neu-rg, drill-flex-rg]
keyed_groups:
  - key: dp_policy_name
    prefix: policy
groups:
  stale: dp_latest_recovery_point_age_hours | float > 48
compose:
  drill_label: dp_server_name ~ '/' ~ (dp_database_name or '*')
"""
STALE = 'hr13'
VAULTS = ('DrillVaultWeu', 'DrillVaultNeu', 'DrillVaultFlex')
HOSTVARS = ('dp_vault_name', 'dp_vault_resource_group', 'dp_vault_id', 'dp_vault_location', 'dp_subscription_id',
            'dp_backup_instance_name', 'dp_backup_instance_id', 'dp_friendly_name', 'dp_datasource_type',
            'dp_datasource_kind', 'dp_datasource_id', 'dp_datasource_location', 'dp_server_name', 'dp_server_id',
            'dp_database_name', 'dp_policy_name', 'dp_protection_state', 'dp_protection_status',
            'dp_recovery_point_count', 'dp_latest_recovery_point_id', 'dp_latest_recovery_point_time',
            'dp_latest_recovery_point_age_hours')
# What the state diff leaves out: the history a drill writes by design (jobs, the operations behind them).
HISTORY = ('jobs', 'operations')


def _drop_noise(state):
    """The state without the history, and without the empty per-key-vault / per-container maps the emulator creates
    on first use (no secret and no blob in them: nothing was left)."""
    out = {k: v for k, v in state.items() if k not in HISTORY}
    for key in ('secrets', 'blobs'):
        out[key] = {name: items for name, items in (out.get(key) or {}).items() if items}
    return out


def drill_vars(emu, tmp, drill_id, **extra):
    target, flex = emu.server('drilltarget'), emu.server('drillflextarget')
    out = {
        'drill_id': drill_id, 'drill_hosts': 'all:!localhost',
        'target_server_id': emu.server_id('drilltarget'), 'pg_host': target['host'], 'pg_port': target['port'],
        'pg_user': target['admin_user'], 'pg_password': target['admin_password'],
        'key_vault_uri': emu.kv_uri('drillkv'), 'container_url': emu.container_url('drillstorage', 'drill-files'),
        # the flexible servers into scratch databases on drillflextarget (flexible_mode auto), TLS verify-full
        'flexible_host': flex['host'], 'flexible_port': flex['port'], 'flexible_user': flex['admin_user'],
        'flexible_password': flex['admin_password'], 'flexible_ssl_root_cert': emu.ca,
        'key_vault_id': '/subscriptions/%s/resourceGroups/targetrg/providers/Microsoft.KeyVault/vaults/drillkv' % emu.sub,
        'rpo_hours': 48, 'poll_interval': 1, 'busy_delay': 1, 'validate_delay': 1, 'max_concurrent': 10,
        'state_dir': str(tmp / 'ledger'), 'report_dir': str(tmp / 'report'),
    }
    out.update(extra)
    return out


def inventory_cli(emu, inventory, *args, env=None):
    environ = {k: os.environ[k] for k in ('PATH', 'HOME', 'LANG') if k in os.environ}
    environ.update(emu.awx_env, ANSIBLE_COLLECTIONS_PATH=os.environ.get('ANSIBLE_COLLECTIONS_PATH', ''),
                   ANSIBLE_HOME=str(Path(inventory).parent / 'ansible-home'),
                   AZURE_BACKUP_CACHE_DIR=emu.env['AZURE_BACKUP_CACHE_DIR'])
    environ.update(env or {})
    return subprocess.run([tool('ansible-inventory'), '-i', str(inventory), *args], env=environ, text=True,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=300, check=False)


def plain(value):
    """ansible-inventory --list marks the strings read from Azure as untrusted ({'__ansible_unsafe': ...})."""
    if isinstance(value, dict):
        if set(value) == {'__ansible_unsafe'}:
            return value['__ansible_unsafe']
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


def source_count(emu, server, database):
    return int(emu.psql(server, database, 'SELECT count(*) FROM employees')[0][0])


def restore_jobs(emu):
    """Every restore job of the estate's three vaults."""
    jobs = []
    for vault, group in zip(VAULTS, ('drill-weu-rg', 'drill-neu-rg', 'drill-flex-rg')):
        path = '/subscriptions/%s/resourceGroups/%s/providers/Microsoft.DataProtection/backupVaults/%s/backupJobs' % (
            emu.sub, group, vault)
        jobs.extend(j for j in emu._pages(path)  # pylint: disable=protected-access
                    if str(j['properties'].get('operationCategory')).lower() == 'restore')
    return jobs


def state(emu):
    return json.loads((Path(emu.state) / 'state.json').read_text())


# ------------------------------------------------------------------------------------------------ inventory


def step_inventory_lists_the_estate(estate, inventory, collections_path):
    proc = inventory_cli(estate, inventory, '--list', env={'ANSIBLE_COLLECTIONS_PATH': collections_path})
    assert proc.returncode == 0, proc.stderr
    data = plain(json.loads(proc.stdout))
    hostvars = data['_meta']['hostvars']
    assert len(hostvars) == 30
    assert {bi['name'] for bi in estate.backup_instances()} == set(hostvars)
    for name, hv in hostvars.items():
        assert set(HOSTVARS) <= set(hv), name
        assert hv['dp_backup_instance_name'] == name and hv['dp_vault_name'] in VAULTS
        assert hv['dp_protection_state'] == 'ProtectionConfigured' and hv['dp_recovery_point_count'] == 1
        assert hv['drill_label'] == '%s/%s' % (hv['dp_server_name'], hv['dp_database_name'] or '*')  # compose
    kinds = [hv['dp_datasource_kind'] for hv in hostvars.values()]
    assert kinds.count('single') == 26 and kinds.count('flexible') == 4
    flex = [hv for hv in hostvars.values() if hv['dp_datasource_kind'] == 'flexible']
    assert all(hv['dp_database_name'] == '' and hv['dp_datasource_type'].endswith('/flexibleServers') for hv in flex)
    points = {p['name'] for p in estate.recovery_points(next(h for h in hostvars if STALE in h))}
    stale_host = next(h for h in hostvars if STALE in h)
    assert hostvars[stale_host]['dp_latest_recovery_point_id'] in points
    assert hostvars[stale_host]['dp_latest_recovery_point_age_hours'] > 100

    groups = {g: set(v.get('hosts', [])) for g, v in data.items() if g != '_meta'}
    assert len(groups['vault_drillvaultweu']) == 13 and len(groups['vault_drillvaultneu']) == 13
    assert len(groups['vault_drillvaultflex']) == 4
    assert len(groups['datasource_single']) == 26 and len(groups['datasource_flexible']) == 4
    assert len(groups['server_estsingle1']) == 13 and len(groups['server_estflex3']) == 1
    assert len(groups['region_northeurope']) == 13 and len(groups['region_westeurope']) == 17
    assert len(groups['protection_protectionconfigured']) == 30
    assert len(groups['policy_flexpol']) == 4  # keyed_groups
    assert groups['stale'] == {stale_host}  # groups

    graph = inventory_cli(estate, inventory, '--graph', env={'ANSIBLE_COLLECTIONS_PATH': collections_path})
    assert graph.returncode == 0, graph.stderr
    for group in ('@vault_drillvaultweu:', '@datasource_flexible:', '@server_estsingle2:', '@region_northeurope:',
                  '@protection_protectionconfigured:', '@policy_weupol:', '@stale:'):
        assert group in graph.stdout


def step_inventory_cache(estate, inventory, collections_path, tmp_path):
    """With cache: true the second read comes from Ansible's cache plugin (Azure failing does not matter) until
    --flush-cache, which reads Azure again."""
    cached = tmp_path / 'cached.backup_instances.yml'
    cached.write_text(INVENTORY + 'cache: true\ncache_plugin: ansible.builtin.jsonfile\ncache_connection: %s\n'
                      'cache_timeout: 3600\n' % (tmp_path / 'cache'))
    env = {'ANSIBLE_COLLECTIONS_PATH': collections_path}
    first = inventory_cli(estate, cached, '--list', env=env)
    assert first.returncode == 0, first.stderr
    assert list((tmp_path / 'cache').iterdir()), 'nothing in the cache'
    estate.add_fault(kind='status', method='GET', path='/backupInstances$', status=500)
    try:
        second = inventory_cli(estate, cached, '--list', env=env)
        assert second.returncode == 0, second.stderr
        assert json.loads(second.stdout)['_meta'] == json.loads(first.stdout)['_meta']
        flushed = inventory_cli(estate, cached, '--list', '--flush-cache', env=env)
        assert flushed.returncode != 0 or '30' not in flushed.stdout
        assert 'backupInstances' in flushed.stderr or 'HTTP 500' in flushed.stderr or '500' in flushed.stderr
    finally:
        estate.clear_faults()


# ------------------------------------------------------------------------------------------------ the drill


def run_whole_drill(estate, inventory, run_playbook, tmp):
    estate.wait_idle()
    before = state(estate)
    expected_sales03 = source_count(estate, 'estsingle1', 'sales03')
    extravars = drill_vars(estate, tmp, 'drillwhole', grant_permissions=True, checks=[
        {'name': 'employees present', 'sql': 'SELECT count(*) > 0 FROM employees', 'expect': 't'},
        {'name': 'sales03 rows as in the backup', 'database': 'sales03', 'sql': 'SELECT count(*) FROM employees',
         'expect': str(expected_sales03)}])
    result = run_playbook('restore_drill', extravars, args=('-i', str(inventory), '-f', '10'), emulator=estate,
                          timeout=1200)
    estate.wait_idle()
    report = json.loads((tmp / 'report' / 'restore_drill.json').read_text())
    return {'result': result, 'report': report, 'before': before, 'after': state(estate), 'dir': tmp,
            'vars': extravars}


def step_drill_whole_estate(estate, whole_drill):
    result, report = whole_drill['result'], whole_drill['report']
    assert result.rc != 0, 'the stale instance must fail the run'
    assert report['summary']['total'] == 30 and report['summary']['passed'] == 29 and report['summary']['failed'] == 1
    failed = [r for r in report['records'] if r['status'] != 'passed']
    assert len(failed) == 1 and failed[0]['database'] == STALE
    assert 'older than the RPO of 48 hours' in failed[0]['reasons'][0]
    assert failed[0]['recovery_point_age_hours'] > 48
    for rec in report['records']:
        assert rec['phase'] == 'done'
        assert rec['restore_seconds'] is not None and rec['job_id']
        if rec['kind'] == 'single':
            source = source_count(estate, rec['server'], rec['database'])
            rows = {t['table']: t['rows'] for t in rec['tables']}
            assert rows['public.employees'] == source, rec['host']  # the backup was taken after the seed
            assert rec['objects']['tables'] >= 2 and rec['cleanup']['database_dropped'] is True
            assert rec['cleanup']['secret_deleted'] is True
            assert all(c['ok'] for c in rec['checks']) and len(rec['checks']) == (2 if rec['database'] == 'sales03' else 1)
        else:  # loaded from the files into drillflextarget and read there, as a single-server database
            source = source_count(estate, rec['server'], 'app' + rec['server'][-1])
            rows = {t['table']: t['rows'] for t in rec['tables']}
            assert rec['database_loaded'] is True and rows['public.employees'] == source, rec['host']
            assert rec['target'].endswith('/drillwhole_' + rec['server']) and rec['objects']['tables'] >= 2
            assert rec['files'][0]['name'].startswith('drillwhole-' + rec['server'])
            assert rec['cleanup']['database_dropped'] is True and rec['cleanup']['download_deleted'] is True
            assert rec['cleanup']['blobs_deleted'] >= 1 and [c['ok'] for c in rec['checks']] == [True]
    # DrillVaultNeu's two missing grants, made once for its 13 hosts, recorded and revoked; nothing for the others
    grants = report['grants']
    wanted = [('DrillVaultNeu', 'Key Vault Secrets User'), ('DrillVaultNeu', 'Reader')]
    assert sorted((g['vault'], g['role']) for g in grants) == wanted, grants
    assert all(g['revoked'] and '/roleAssignments/' in g['assignment_id'] for g in grants)
    assert result.task('Grant what is missing')['result']['changed'] is True
    # the failed host fails in the recap, the others do not
    assert {h for h, s in result.stats.items() if s['failures']} == {failed[0]['host']}

    junit = ET.parse(whole_drill['dir'] / 'report' / 'restore_drill.xml').getroot()
    cases = junit.findall('.//testcase')
    assert len(cases) == 30 and junit.get('failures') == '1'
    failures = [c for c in cases if c.find('failure') is not None]
    assert [c.get('name') for c in failures] == ['estsingle2/%s' % STALE]
    assert 'older than the RPO' in failures[0].find('failure').get('message')

    page = (whole_drill['dir'] / 'report' / 'restore_drill.html').read_text()
    assert page.count('<tr class="failed"') == 1 and page.count('<tr class="passed"') == 29
    assert 'older than the RPO' in page and page.count('<svg') == 2
    for secret in estate.secret_values():
        for name in ('restore_drill.json', 'restore_drill.xml', 'restore_drill.html'):
            assert secret not in (whole_drill['dir'] / 'report' / name).read_text()
        assert secret not in result.output


def role_assignment_ids(snapshot):
    return {ra['name'] for ra in snapshot['role_assignments'].values()}


def step_drill_leaves_the_estate_as_it_was(estate, whole_drill):
    before, after = _drop_noise(whole_drill['before']), _drop_noise(whole_drill['after'])
    # the diff covers the role assignments: a grant left behind fails it
    assert before['role_assignments'] and 'role_assignments' in after
    granted = {g['assignment_id'].rsplit('/', 1)[-1].lower() for g in whole_drill['report']['grants']}
    assert len(granted) == 2 and not granted & role_assignment_ids(after)
    # what existed before (the other vaults' grants, the automation's own) is kept, every one
    assert role_assignment_ids(before) == role_assignment_ids(after)
    for key in sorted(set(before) | set(after)):
        assert before.get(key) == after.get(key), 'state.%s differs after the drill:\nbefore %s\nafter  %s' % (
            key, json.dumps(before.get(key), sort_keys=True)[:3000], json.dumps(after.get(key), sort_keys=True)[:3000])
    assert not [db for db in estate.databases('drilltarget') if db.startswith('drillwhole')]
    assert not [db for db in estate.databases('drillflextarget') if db.startswith('drillwhole')]
    assert estate.blobs('drillstorage', 'drill-files') == []
    assert not list((whole_drill['dir'] / 'ledger' / 'drillwhole').glob('*.download'))  # the load's local files
    restores = [j for j in restore_jobs(estate) if 'drillwhole' in json.dumps(j)]
    assert len(restores) == 30  # the history the drill leaves, one restore per backup instance


def step_html_report_in_chromium(whole_drill, dp_repo_root, tmp_path):
    chromium = shutil.which('chromium') or shutil.which('chromium-browser')
    assert chromium, 'chromium is not installed (.ci/run installs it: apt-get install chromium)'
    page = whole_drill['dir'] / 'report' / 'restore_drill.html'
    flags = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
             '--disable-background-networking', '--disable-component-update', '--disable-sync',
             '--user-data-dir=%s' % (tmp_path / 'profile')]
    dom = subprocess.run([chromium, *flags, '--dump-dom', page.as_uri()], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, timeout=120, check=False)
    assert dom.returncode == 0, dom.stderr[-2000:]
    rendered = dom.stdout
    assert rendered.count('<tr class="passed"') + rendered.count('<tr class="failed"') == 30
    assert rendered.count('data-host=') == 30 and 'data-chart="restore_seconds"' in rendered
    assert 'data-chart="recovery_point_age_hours"' in rendered and rendered.count('<rect') >= 60
    out_dir = dp_repo_root / 'tests' / 'output' / 'restore_drill'
    out_dir.mkdir(parents=True, exist_ok=True)
    shot = out_dir / 'restore_drill_report.png'
    if shot.exists():
        shot.unlink()
    proc = subprocess.run([chromium, *flags, '--user-data-dir=%s' % (tmp_path / 'profile2'),
                           '--window-size=1400,3000', '--screenshot=%s' % shot, page.as_uri()],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=120, check=False)
    assert proc.returncode == 0 and shot.exists(), proc.stderr[-2000:]
    assert shot.read_bytes()[:8] == b'\x89PNG\r\n\x1a\n' and shot.stat().st_size > 20000


# ------------------------------------------------------------------------------------------------ resuming


def step_interrupted_drill_resumes_without_a_second_restore(estate, inventory, run_playbook, tmp_path):
    """One backup instance at a time (drill_batch 1); the run is killed once the first one is restored and verified,
    then run again: it finishes the first one's clean-up and drills the others, one restore per backup instance in
    all."""
    hosts = sorted(bi['name'] for bi in estate.backup_instances() if bi['name'].startswith('estsingle1-sales0'))[:4]
    extravars = drill_vars(estate, tmp_path, 'drillresume', drill_batch=1)
    args = ('-i', str(inventory), '-f', '4', '--limit', ','.join(hosts))
    estate.wait_idle()
    estate.reset_counters()
    running = run_playbook.start('restore_drill', extravars, args=args, emulator=estate)
    ledger = tmp_path / 'ledger' / 'drillresume'
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and running.proc.poll() is None and not list(ledger.glob('*.json')):
        time.sleep(0.1)
    assert running.proc.poll() is None, 'the drill ended before it could be interrupted'
    running.kill()
    estate.wait_idle()
    done_first = {p.stem: json.loads(p.read_text())['phase'] for p in ledger.glob('*.json')}
    assert len(done_first) == 1 and set(done_first.values()) <= {'verified', 'done'}, done_first
    first_restores = estate.counters()['restore_jobs_created']
    assert 1 <= first_restores < 4, first_restores

    run_playbook('restore_drill', extravars, args=args, emulator=estate, timeout=600).assert_ok()
    report = json.loads((tmp_path / 'report' / 'restore_drill.json').read_text())
    assert report['summary'] == dict(report['summary'], total=4, passed=4, failed=0)
    # one restore per backup instance over both runs: the verified one was not restored again
    assert estate.counters()['restore_jobs_created'] == 4
    again = {r['host']: r for r in report['records']}
    for host, phase in done_first.items():
        assert again[host]['job_id'] and again[host]['phase'] == 'done'
        assert again[host].get('reused') is (True if phase == 'done' else None)
    assert not [db for db in estate.databases('drilltarget') if db.startswith('drillresume')]
    assert not [s for s in state(estate)['secrets'].get('drillkv', {}) if s.startswith('drillresume')]


# ------------------------------------------------------------------------------------------------ AWX slices


def _runner(collections_path, emu, base, name, inventory_text, extravars, limit):
    pdd = base / name
    (pdd / 'project').mkdir(parents=True)
    (pdd / 'inventory').mkdir()
    (pdd / 'env').mkdir()
    playbooks = Path(collections_path) / 'ansible_collections' / 'azure_backup' / 'dataprotection' / 'playbooks'
    shutil.copy(playbooks / 'restore_drill.yml', pdd / 'project' / 'restore_drill.yml')
    (pdd / 'inventory' / 'estate.backup_instances.yml').write_text(inventory_text)
    envvars = dict(emu.awx_env, ANSIBLE_COLLECTIONS_PATH=collections_path, ANSIBLE_HOME=str(pdd / 'ansible-home'),
                   AZURE_BACKUP_CACHE_DIR=emu.env['AZURE_BACKUP_CACHE_DIR'])
    (pdd / 'env' / 'envvars').write_text(yaml.safe_dump(envvars))
    (pdd / 'env' / 'extravars').write_text(yaml.safe_dump(dict(extravars)))
    runner_bin = tool('ansible-runner')
    clean_env = {'PATH': '%s:/usr/local/bin:/usr/bin:/bin' % Path(sys.executable).parent,
                 'HOME': os.environ.get('HOME', '/root'), 'LANG': 'C.UTF-8'}
    proc = subprocess.run([runner_bin, 'run', str(pdd), '-p', 'restore_drill.yml', '--ident', 'job',
                           '--limit', limit, '--forks', '10'], env=clean_env, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, timeout=900, check=False)
    return pdd, proc


def step_sliced_run_combines_to_one_runs_report(estate, whole_drill, collections_path, run_playbook, tmp_path):
    """Three ansible-runner jobs, each limited to one slice of the hosts as AWX job slicing does: their reports,
    combined, equal the whole-estate run's report (timings, job ids and the drill id aside: a drill id of its own,
    because pg_restore takes the whole run's completed restore as files to the same prefix for this one, although the
    whole run deleted the files)."""
    assert yaml is not None and tool('ansible-runner'), 'ansible-runner and PyYAML are needed'
    from ansible_collections.azure_backup.dataprotection.plugins.module_utils._drill_report import comparable

    hosts = sorted(r['host'] for r in whole_drill['report']['records'])
    estate.wait_idle()
    assignments_before = state(estate)['role_assignments']
    reports = []
    for index in range(3):
        # the slices grant but do not revoke (they run at once on AWX); combine_drill_reports revokes
        extravars = dict(whole_drill['vars'], drill_id='drillslices', drill_hosts='all', revoke_grants=False,
                         state_dir=str(tmp_path / ('ledger%d' % index)),
                         report_dir=str(tmp_path / ('slice%d' % index)))
        pdd, proc = _runner(collections_path, estate, tmp_path, 'slice%d' % index, INVENTORY, extravars,
                            ','.join(hosts[index::3]))
        report = tmp_path / ('slice%d' % index) / 'restore_drill.json'
        assert report.exists(), proc.stdout[-4000:]
        assert len(json.loads(report.read_text())['records']) == len(hosts[index::3])
        reports.append(str(report))
        estate.wait_idle()
    left = set(state(estate)['role_assignments']) - set(assignments_before)
    assert len(left) == 2, 'the slices revoke nothing: the combine step does'
    combined = run_playbook('combine_drill_reports', {'reports': reports, 'report_dir': str(tmp_path / 'combined')},
                            emulator=estate).assert_ok()
    # once every slice is done: exactly the slices' grants revoked, nothing else touched
    assert state(estate)['role_assignments'] == assignments_before
    assert combined.task('Delete them')['result']['changed'] is True
    together = json.loads((tmp_path / 'combined' / 'restore_drill.json').read_text())
    assert '%(passed)d of %(total)d passed, %(failed)d failed' % together['summary'] in combined.output
    assert together['summary'] == dict(together['summary'], total=30, passed=29, failed=1), [
        (r['host'], r['reasons']) for r in together['records'] if r['status'] != 'passed']
    same_id = comparable(json.loads(json.dumps(together).replace('drillslices', 'drillwhole')))
    one_run = comparable(whole_drill['report'])
    differences = [(a['host'], k, a.get(k), b.get(k)) for a, b in zip(same_id['records'], one_run['records'])
                   for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]
    assert not differences, differences[:10]
    assert same_id == one_run
    junit = ET.parse(tmp_path / 'combined' / 'restore_drill.xml').getroot()
    assert len(junit.findall('.//testcase')) == 30 and junit.get('failures') == '1'
    assert not [db for db in estate.databases('drilltarget') if db.startswith('drillslices')]


def step_busy_instance_fails_clearly(estate, inventory, run_playbook, tmp_path):
    """The service runs one operation at a time per backup instance: a drill of an instance whose backup is running
    fails that host with the service's refusal (after its busy retries), and the other host passes."""
    names = ('estsingle1-sales05', 'estsingle1-sales06')
    busy, free = sorted(bi['name'] for bi in estate.backup_instances() if bi['name'].startswith(names))
    # and a flexible server as files only (flexible_mode files, although a flexible target is given)
    flex = next(bi['name'] for bi in estate.backup_instances() if bi['server'] == 'estflex4')
    estate.wait_idle()
    estate.set_knobs(job_duration=15)  # the backup outlasts the busy retries (2 x 1 s)
    try:
        path = '/subscriptions/%s/resourceGroups/drill-weu-rg/providers/Microsoft.DataProtection/backupVaults/' \
               'DrillVaultWeu/backupInstances/%s/backup' % (estate.sub, busy)
        started = estate.arm('POST', path, body={'backupRuleOptions': {'ruleName': 'BackupDaily', 'triggerOption': {
            'retentionTagOverride': 'Default'}}})
        assert started.status_code in (200, 202), started.text
        result = run_playbook('restore_drill', drill_vars(estate, tmp_path, 'drillbusy', busy_retries=2,
                                                          flexible_mode='files'),
                              args=('-i', str(inventory), '--limit', '%s,%s,%s' % (busy, free, flex)), emulator=estate)
    finally:
        estate.set_knobs(job_duration=1.0)
    report = {r['host']: r for r in json.loads((tmp_path / 'report' / 'restore_drill.json').read_text())['records']}
    assert report[free]['status'] == 'passed'
    assert report[flex]['status'] == 'passed' and 'database_loaded' not in report[flex]
    assert report[flex]['files'] and report[flex]['cleanup']['blobs_deleted'] == len(report[flex]['files'])
    assert report[flex]['files'][0]['name'].startswith('drillbusy-estflex4')
    assert report[busy]['status'] == 'failed' and report[busy]['phase'] == 'error'
    assert 'UserErrorMaxConcurrentOperationLimitReached' in ' '.join(report[busy]['reasons']), report[busy]
    assert {h for h, s in result.stats.items() if s['failures']} == {busy}
    estate.wait_idle()
    assert not [db for db in estate.databases('drilltarget') if db.startswith('drillbusy')]
    assert estate.blobs('drillstorage', 'drill-files') == []
    assert not [s for s in state(estate)['secrets'].get('drillkv', {}) if s.startswith('drillbusy')]


# ------------------------------------------------------------------------------------------------ the test


def test_restore_drill_estate(emulator_factory, run_playbook, collections_path, dp_repo_root, tmp_path):
    """One test, steps in order: they share one estate emulator (seven PostgreSQL clusters) and the whole-estate run,
    which pytest-xdist would otherwise start again on every worker that gets one of them."""
    estate = emulator_factory(world=str(worlds_dir() / 'estate.yml'))
    inventory = tmp_path / 'estate.backup_instances.yml'
    inventory.write_text(INVENTORY)
    step_inventory_lists_the_estate(estate, inventory, collections_path)
    step_inventory_cache(estate, inventory, collections_path, _fresh(tmp_path, 'cache'))
    whole = run_whole_drill(estate, inventory, run_playbook, _fresh(tmp_path, 'whole'))
    step_drill_whole_estate(estate, whole)
    step_drill_leaves_the_estate_as_it_was(estate, whole)
    step_html_report_in_chromium(whole, dp_repo_root, _fresh(tmp_path, 'chromium'))
    step_interrupted_drill_resumes_without_a_second_restore(estate, inventory, run_playbook, _fresh(tmp_path, 'resume'))
    step_sliced_run_combines_to_one_runs_report(estate, whole, collections_path, run_playbook, _fresh(tmp_path, 'slices'))
    # last: its backup job adds a recovery point to the estate
    step_busy_instance_fails_clearly(estate, inventory, run_playbook, _fresh(tmp_path, 'busy'))


def _fresh(base, name):
    path = base / name
    path.mkdir()
    return path
