# -*- coding: utf-8 -*-
# Copyright: (c) 2025, Azure Backup Data Protection collection contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The restore drill's report: durations, JUnit, HTML, and combining slices."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest

from ansible_collections.azure_backup.dataprotection.plugins.module_utils import _drill_report as dr


def record(host, status='passed', **extra):
    rec = {'drill_id': 'd1', 'host': host, 'vault': 'V1', 'backup_instance': host, 'kind': 'single', 'server': 's1',
           'database': host, 'status': status, 'reasons': [] if status == 'passed' else ['check x: expected 1, got 2'],
           'rpo_hours': 26.0, 'recovery_point_age_hours': 3.5, 'restore_duration': 'PT1M2.5S', 'rows_checked': 10,
           'job_id': host + '-job'}
    rec.update(extra)
    return rec


@pytest.mark.parametrize('text, seconds', [('PT5M43.1188607S', 343.119), ('PT2S', 2.0), ('P1DT1H', 90000.0),
                                           ('PT0.5S', 0.5), ('', None), ('soon', None), ('P', None)])
def test_duration_seconds(text, seconds):
    assert dr.duration_seconds(text) == seconds


def test_report_counts_and_orders():
    report = dr.build_report([record('b'), record('a', 'failed'), record('c', vault='V0')])
    assert [r['host'] for r in report['records']] == ['c', 'a', 'b']
    assert report['summary'] == {'total': 3, 'passed': 2, 'failed': 1, 'rows_checked': 30, 'restore_seconds': 187.5}
    assert report['failed_hosts'] == ['a'] and report['drill_ids'] == ['d1']


def test_unknown_status_counts_as_failed():
    report = dr.build_report([record('a', status='weird')])
    assert report['summary']['failed'] == 1


def test_junit_has_one_case_per_database_and_the_reason():
    root = ET.fromstring(dr.to_junit(dr.build_report([record('a'), record('b', 'failed'), record('c', vault='V2')])))
    assert root.get('tests') == '3' and root.get('failures') == '1'
    assert [s.get('name') for s in root.findall('testsuite')] == ['restore drill: vault V1', 'restore drill: vault V2']
    failures = root.findall('.//failure')
    assert len(failures) == 1 and failures[0].get('message') == 'check x: expected 1, got 2'


def test_html_is_self_contained_and_escaped():
    page = dr.to_html(dr.build_report([record('a<b>'), record('c', 'failed', reasons=['<script>x</script>'])]))
    assert page.count('<tr class=') == 2 and page.count('<svg') == 2
    assert '<script>' not in page and '&lt;script&gt;' in page and 'a&lt;b&gt;' in page
    assert 'http' not in page.replace('http://www.w3.org/2000/svg', '')  # nothing fetched from anywhere


def test_combine_equals_one_report_modulo_timings():
    stale = ['recovery point p is %s hours old, older than the RPO of 26 hours']
    whole = dr.build_report([record(h, 'failed' if h == 'h3' else 'passed', reasons=[stale[0] % '30.1'])
                             for h in ('h1', 'h2', 'h3', 'h4')])
    slices = [dr.build_report([record(h, 'failed' if h == 'h3' else 'passed', restore_duration='PT9S', job_id='x',
                                      reasons=[stale[0] % '30.4']) for h in hosts])
              for hosts in (('h1', 'h4'), ('h2',), ('h3',))]
    combined = dr.combine_reports(json.loads(json.dumps(s)) for s in slices)
    assert dr.comparable(combined) == dr.comparable(whole)
    assert combined['summary']['restore_seconds'] == 36.0
    other = dr.build_report([record(h, reasons=['check x: expected 1, got 3']) for h in ('h1', 'h2', 'h3', 'h4')])
    assert dr.comparable(other) != dr.comparable(whole)


def test_combine_keeps_the_last_record_of_a_host():
    first = dr.build_report([record('h1', 'failed')])
    again = dr.build_report([record('h1')])
    assert dr.combine_reports([first, again])['summary']['failed'] == 0


def test_combine_refuses_other_documents():
    with pytest.raises(ValueError, match='not a restore drill report'):
        dr.combine_reports([{'records': []}])


def test_write_report_is_atomic_and_reports_change(tmp_path):
    report = dr.build_report([record('a')])
    paths, changed = dr.write_report(report, str(tmp_path / 'out'), 'r')
    assert changed and sorted(p.rsplit('.', 1)[1] for p in paths.values()) == ['html', 'json', 'xml']
    assert json.loads((tmp_path / 'out' / 'r.json').read_text()) == json.loads(json.dumps(report))
    assert dr.write_report(report, str(tmp_path / 'out'), 'r') == (paths, False)
    _paths, changed = dr.write_report(dr.build_report([record('b')]), str(tmp_path / 'check'), 'r', check_mode=True)
    assert changed and not (tmp_path / 'check').exists()


RA = '/subscriptions/s/resourceGroups/t/providers/Microsoft.Authorization/roleAssignments/%s'


def grant(vault, role, guid, revoked=False):
    return {'vault': vault, 'role': role, 'scope': '/subscriptions/s/resourceGroups/t', 'assignment_id': RA % guid,
            'revoked': revoked}


def test_grants_are_recorded_once_each_and_combined_across_slices():
    whole = dr.build_report([record('h1'), record('h2')],
                            grants=[grant('V2', 'Reader', 'a1', True), grant('V1', 'Reader', 'b1', True)])
    assert [g['vault'] for g in whole['grants']] == ['V1', 'V2'] and all(g['revoked'] for g in whole['grants'])
    # slices: the first that needs a grant makes it (the others find it present); none revokes; combine marks them
    slices = [dr.build_report([record('h1')], grants=[grant('V1', 'Reader', 'c1'), grant('V2', 'Reader', 'c2')]),
              dr.build_report([record('h2')], grants=[])]
    pending = dr.combine_reports(slices)
    assert [g['revoked'] for g in pending['grants']] == [False, False]
    assert dr.comparable(pending) != dr.comparable(whole)  # a grant left behind shows
    done = dr.combine_reports(slices, revoked_ids=[RA % 'c1', (RA % 'c2').upper()])
    assert dr.comparable(done) == dr.comparable(whole)  # the ids differ from run to run, nothing else
    assert 'roleAssignments/c1' in dr.to_html(done) and 'NOT revoked' in dr.to_html(pending)
    assert dr.build_report([record('h1')])['grants'] == [] and 'granted nothing' in dr.to_html(whole | {'grants': []})
