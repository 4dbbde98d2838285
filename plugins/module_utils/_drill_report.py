# -*- coding: utf-8 -*-
# Copyright: (c) 2025, Azure Backup Data Protection collection contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
#
# INTERNAL USE ONLY: private to the azure_backup.dataprotection collection; no compatibility promise.
"""The restore drill's report: one JSON document (the source of truth), JUnit XML and a self-contained HTML page
rendered from it, and the combination of several reports (the slices of an AWX sliced job) into one. Pure: no I/O
besides write_report()."""

from __future__ import annotations

import html
import json
import os
import re
import tempfile
import xml.etree.ElementTree as ET
from datetime import datetime, timezone

SCHEMA = 'azure_backup.dataprotection/restore_drill_report/v1'
# Fields that differ from one run to the next although the drill's outcome is the same.
TIMING_FIELDS = ('generated', 'restore_seconds', 'restore_duration', 'restore_start', 'restore_end',
                 'recovery_point_age_hours', 'job_id', 'reused', 'earlier_restore', 'phase')
_DURATION = re.compile(r'^P(?:(?P<d>\d+(?:\.\d+)?)D)?(?:T(?:(?P<h>\d+(?:\.\d+)?)H)?(?:(?P<m>\d+(?:\.\d+)?)M)?'
                       r'(?:(?P<s>\d+(?:\.\d+)?)S)?)?$')


def duration_seconds(value):
    """Seconds of an ISO 8601 duration as jobs report it (PT5M43.1188607S); None when empty or unreadable."""
    match = _DURATION.match(str(value or '').strip())
    if not match or not any(match.groupdict().values()):
        return None
    parts = {k: float(v) if v else 0.0 for k, v in match.groupdict().items()}
    return round(parts['d'] * 86400 + parts['h'] * 3600 + parts['m'] * 60 + parts['s'], 3)


def normalise(record):
    """A host's record as the report keeps it: the fields every consumer reads, with their types."""
    rec = dict(record)
    rec['status'] = 'passed' if rec.get('status') == 'passed' else 'failed'
    rec['reasons'] = [str(r) for r in rec.get('reasons') or []]
    rec['restore_seconds'] = duration_seconds(rec.get('restore_duration'))
    rec['rows_checked'] = int(rec.get('rows_checked') or 0)
    for key in ('rpo_hours', 'recovery_point_age_hours'):
        rec[key] = float(rec[key]) if rec.get(key) not in (None, '') else None
    return rec


def normalise_grants(grants, revoked_ids=()):
    """The role assignments the drill created (once each, by id), sorted; `revoked_ids` marks those revoked since."""
    revoked_ids = {str(i).lower() for i in revoked_ids or ()}
    by_id = {}
    for grant in grants or []:
        ra_id = str(grant.get('assignment_id') or '')
        if not ra_id:
            continue
        earlier = by_id.get(ra_id.lower(), {})
        by_id[ra_id.lower()] = {
            'vault': str(grant.get('vault') or earlier.get('vault') or ''), 'role': str(grant.get('role') or ''),
            'scope': str(grant.get('scope') or ''), 'assignment_id': ra_id,
            'revoked': bool(grant.get('revoked')) or earlier.get('revoked', False) or ra_id.lower() in revoked_ids}
    return sorted(by_id.values(), key=lambda g: (g['vault'], g['role'], g['scope'], g['assignment_id']))


def build_report(records, drill_ids=None, title=None, now=None, grants=None):
    recs = sorted((normalise(r) for r in records), key=lambda r: (str(r.get('vault', '')), str(r.get('host', ''))))
    ids = sorted(set(drill_ids or []) | {str(r['drill_id']) for r in recs if r.get('drill_id')})
    failed = [r['host'] for r in recs if r['status'] != 'passed']
    return {
        'schema': SCHEMA,
        'title': title or 'Restore drill %s' % ', '.join(ids),
        'drill_ids': ids,
        'generated': (now or datetime.now(timezone.utc)).strftime('%Y-%m-%dT%H:%M:%SZ'),
        'summary': {'total': len(recs), 'passed': len(recs) - len(failed), 'failed': len(failed),
                    'rows_checked': sum(r['rows_checked'] for r in recs),
                    'restore_seconds': round(sum(r['restore_seconds'] or 0 for r in recs), 3)},
        'failed_hosts': failed,
        'records': recs,
        # the role assignments the drill created for the vault identities, and whether they were revoked
        'grants': normalise_grants(grants),
    }


def combine_reports(reports, title=None, revoked_ids=()):
    """One report from several (the slices of a sliced job). A host found twice keeps its last record, so that a
    slice run again after a failure replaces the earlier one when given after it. The grants are those of every
    slice (a grant is made once, by the first slice that needs it); `revoked_ids` marks those revoked since."""
    by_host, ids, grants = {}, set(), []
    for report in reports:
        if report.get('schema') != SCHEMA:
            raise ValueError('not a restore drill report (schema %r, expected %r)' % (report.get('schema'), SCHEMA))
        ids.update(report.get('drill_ids') or [])
        grants.extend(report.get('grants') or [])
        for rec in report.get('records') or []:
            by_host[rec['host']] = rec
    return build_report(by_host.values(), drill_ids=ids, title=title, grants=normalise_grants(grants, revoked_ids))


_AGE = re.compile(r'\b\d+(\.\d+)? hours old\b')


def comparable(report):
    """The report without what changes between two runs of the same drill (timings, job ids, the ages in the
    reasons): for comparing a sliced run's combined report with one run's."""
    out = {k: v for k, v in report.items() if k not in TIMING_FIELDS and k != 'summary'}
    out['summary'] = {k: v for k, v in report['summary'].items() if k != 'restore_seconds'}
    out['records'] = [dict({k: v for k, v in r.items() if k not in TIMING_FIELDS},
                           reasons=[_AGE.sub('N hours old', reason) for reason in r.get('reasons') or []])
                      for r in report['records']]
    # a grant's id is new every run; which role on which scope, for which vault, and its revocation are not
    out['grants'] = [{k: v for k, v in g.items() if k != 'assignment_id'} for g in report.get('grants') or []]
    return out


# ---------------------------------------------------------------- JUnit

def to_junit(report):
    suites = ET.Element('testsuites', name=report['title'], tests=str(report['summary']['total']),
                        failures=str(report['summary']['failed']), time=str(report['summary']['restore_seconds']))
    by_vault = {}
    for rec in report['records']:
        by_vault.setdefault(rec.get('vault') or 'unknown', []).append(rec)
    for vault, recs in sorted(by_vault.items()):
        failures = sum(1 for r in recs if r['status'] != 'passed')
        suite = ET.SubElement(suites, 'testsuite', name='restore drill: vault %s' % vault, tests=str(len(recs)),
                              failures=str(failures), errors='0', skipped='0',
                              time=str(round(sum(r['restore_seconds'] or 0 for r in recs), 3)),
                              timestamp=report['generated'])
        for rec in recs:
            case = ET.SubElement(suite, 'testcase', classname='%s.%s' % (vault, rec.get('server') or ''),
                                 name=_label(rec), time=str(rec['restore_seconds'] or 0))
            if rec['status'] != 'passed':
                failure = ET.SubElement(case, 'failure', message='; '.join(rec['reasons']) or 'failed',
                                        type='RestoreDrillFailure')
                failure.text = '\n'.join(rec['reasons'])
            out = ET.SubElement(case, 'system-out')
            out.text = ('backup instance %s, recovery point %s (%s, %s h old, RPO %s h), target %s, rows checked %d'
                        % (rec.get('backup_instance'), rec.get('recovery_point_id') or '-',
                           rec.get('recovery_point_time') or '-', _num(rec['recovery_point_age_hours']),
                           _num(rec['rpo_hours']), rec.get('target') or '-', rec['rows_checked']))
    ET.indent(suites)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suites, encoding='unicode') + '\n'


def _label(rec):
    where = rec.get('server') or ''
    return '%s/%s' % (where, rec['database']) if rec.get('database') else '%s (flexible server)' % where


def _num(value):
    return '-' if value is None else ('%.1f' % value)


# ---------------------------------------------------------------- HTML

_CSS = '''body{font-family:system-ui,sans-serif;margin:2em;color:#222}h1{font-size:1.4em}
table{border-collapse:collapse;margin:1em 0}th,td{border:1px solid #ccc;padding:4px 8px;text-align:left;font-size:.9em}
th{background:#f3f3f3}td.num,td.time{white-space:nowrap}td.reason{min-width:24em}tr.failed td{background:#fde8e8}
tr.passed td.status{color:#0a6b2b;font-weight:600}
tr.failed td.status{color:#a40000;font-weight:600}.summary span{margin-right:1.5em}.num{text-align:right}
svg text{font-size:11px;font-family:system-ui,sans-serif}'''


def _bar_chart(records, value_key, title, limit_key=None, unit=''):
    """A horizontal bar chart as inline SVG: one bar per database, red when over its limit."""
    rows = [r for r in records if r.get(value_key) is not None]
    width, left, thickness, gap = 720, 260, 14, 4
    height = 30 + len(rows) * (thickness + gap) + 10
    top = max([r[value_key] for r in rows] + [r.get(limit_key) or 0 for r in rows if limit_key] + [1e-9])
    scale = (width - left - 60) / top
    parts = ['<svg xmlns="http://www.w3.org/2000/svg" class="chart" data-chart="%s" width="%d" height="%d" role="img" '
             'aria-label="%s">' % (value_key, width, height, html.escape(title)),
             '<text x="4" y="16" font-weight="bold">%s</text>' % html.escape(title)]
    for i, rec in enumerate(rows):
        y = 28 + i * (thickness + gap)
        over = limit_key and rec.get(limit_key) is not None and rec[value_key] > rec[limit_key]
        color = '#c0392b' if over or rec['status'] != 'passed' else '#2e86c1'
        length = max(rec[value_key] * scale, 1)
        parts.append('<text x="4" y="%d">%s</text>' % (y + thickness - 3, html.escape(_label(rec))))
        parts.append('<rect x="%d" y="%d" width="%.1f" height="%d" fill="%s"><title>%s: %s%s</title></rect>'
                     % (left, y, length, thickness, color, html.escape(_label(rec)), _num(rec[value_key]), unit))
        parts.append('<text x="%.1f" y="%d">%s%s</text>'
                     % (left + length + 4, y + thickness - 3, _num(rec[value_key]), unit))
        if limit_key and rec.get(limit_key) is not None:
            x = left + rec[limit_key] * scale
            parts.append('<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#555" stroke-dasharray="3,2"/>'
                         % (x, y - 1, x, y + thickness + 1))
    parts.append('</svg>')
    return ''.join(parts)


def _grants_html(grants):
    if not grants:
        return '<p id="grants">The drill granted nothing.</p>'
    esc = html.escape
    rows = ''.join('<tr class="%s"><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td></tr>'
                   % ('revoked' if g['revoked'] else 'kept', esc(g['vault']), esc(g['role']), esc(g['scope']),
                      esc(g['assignment_id']), 'revoked' if g['revoked'] else 'NOT revoked') for g in grants)
    return ('<h2>Role assignments the drill created</h2><table id="grants"><thead><tr><th>vault</th><th>role</th>'
            '<th>scope</th><th>role assignment</th><th>after the drill</th></tr></thead><tbody>%s</tbody></table>' % rows)


def to_html(report):
    esc = html.escape
    summary = report['summary']
    rows = []
    for rec in report['records']:
        target = rec.get('target') or ''
        rows.append(
            '<tr class="%s" data-host="%s"><td>%s</td><td>%s</td><td class="status">%s</td><td class="time">%s</td>'
            '<td class="num">%s / %s h</td><td class="num">%s</td><td class="num">%d</td><td>%s</td>'
            '<td class="reason">%s</td></tr>'
            % (rec['status'], esc(rec['host']), esc(_label(rec)), esc(rec.get('vault') or ''), rec['status'].upper(),
               esc((rec.get('recovery_point_time') or '-')[:19].replace('T', ' ')), _num(rec['recovery_point_age_hours']), _num(rec['rpo_hours']),
               '-' if rec['restore_seconds'] is None else '%.1f s' % rec['restore_seconds'], rec['rows_checked'],
               esc(target), esc('; '.join(rec['reasons']))))
    body = [
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>%s</title><style>%s</style></head><body>'
        % (esc(report['title']), _CSS),
        '<h1>%s</h1>' % esc(report['title']),
        '<p class="summary"><span>generated %s</span><span id="total">%d databases</span><span id="passed">%d passed'
        '</span><span id="failed">%d failed</span><span>%d rows checked</span></p>'
        % (esc(report['generated']), summary['total'], summary['passed'], summary['failed'], summary['rows_checked']),
        '<table id="databases"><thead><tr><th>database</th><th>vault</th><th>status</th><th>recovery point</th>'
        '<th>age / RPO</th><th>restore duration</th><th>rows checked</th><th>scratch target</th><th>reason</th></tr>'
        '</thead><tbody>%s</tbody></table>' % ''.join(rows),
        '<h2>Restore durations and recovery point ages</h2>',
        _bar_chart(report['records'], 'restore_seconds', 'Restore duration (seconds)', unit=' s'),
        _bar_chart(report['records'], 'recovery_point_age_hours', 'Recovery point age (hours; dashed: the RPO)',
                   limit_key='rpo_hours', unit=' h'),
        _grants_html(report.get('grants') or []),
        '</body></html>\n',
    ]
    return '\n'.join(body)


# ---------------------------------------------------------------- files

def render(report):
    """{suffix: text} of the three files."""
    return {'json': json.dumps(report, indent=2, sort_keys=True) + '\n', 'xml': to_junit(report), 'html': to_html(report)}


def write_report(report, output_dir, basename, check_mode=False):
    """Write <basename>.json/.xml/.html atomically; (paths, changed)."""
    paths, changed = {}, False
    for suffix, text in render(report).items():
        path = os.path.join(output_dir, '%s.%s' % (basename, suffix))
        paths[suffix] = path
        old = None
        if os.path.exists(path):
            with open(path, encoding='utf-8') as handle:
                old = handle.read()
        if old == text:
            continue
        changed = True
        if check_mode:
            continue
        os.makedirs(output_dir, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=output_dir, prefix='.%s.' % basename)
        with os.fdopen(fd, 'w', encoding='utf-8') as handle:
            handle.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    return paths, changed
