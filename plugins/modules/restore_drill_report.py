#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2025, Azure Backup Data Protection collection contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r'''
---
module: restore_drill_report
short_description: Write the report of a restore drill (JSON, JUnit XML, HTML), or combine the reports of its slices
version_added: 1.2.0
description:
  - Writes one report of a restore drill from the records of the C(azure_backup.dataprotection.restore_drill) role
    (the fact C(restore_drill_record) of every host) into three files. C(<basename>.json) is the source of truth;
    C(<basename>.xml) is JUnit, one test case per database, failed with its reasons, as CI systems and AWX show it;
    C(<basename>.html) is a self-contained page with a table of one row per database and inline SVG charts of the
    restore durations and of the recovery point ages against the RPO.
  - With O(combine), reads the JSON reports of several runs (the slices of an AWX/AAP sliced job, each of which wrote
    its own) and writes the report of the whole estate, the same as one run over all hosts would have written.
  - Runs on the controller (its action plugin), once per run (C(run_once)); it needs no Azure access.
author:
  - Azure Backup Data Protection collection contributors (@azure-backup)
options:
  records:
    description: The hosts' records (C(restore_drill_record)); required unless O(combine) is given.
    type: list
    elements: dict
  combine:
    description:
      - Paths of JSON reports written by this module, to combine into one (a host found twice keeps its record of the
        last file). Shell patterns (C(reports/*/restore_drill.json)) are expanded, in name order.
    type: list
    elements: path
  output_dir:
    description: Folder of the report files (created when missing).
    type: path
    required: true
  basename:
    description: File name of the reports, without suffix.
    type: str
    default: restore_drill
  title:
    description: Title of the report (default C(Restore drill <drill ids>)).
    type: str
  drill_id:
    description: The drill's id, named in the report also when there is no record.
    type: str
  grants:
    description:
      - With O(records), the role assignments the drill created (each C(vault), C(role), C(scope), C(assignment_id),
        C(revoked)), as the report's record of what it granted and revoked. With O(combine), the grants come from
        the combined reports.
    type: list
    elements: dict
  revoked_grants:
    description: Ids of grants revoked since they were recorded (for example by the combine step of a sliced drill).
    type: list
    elements: str
extends_documentation_fragment:
  - azure_backup.dataprotection.attributes
attributes:
  check_mode:
    support: full
    details:
      - Builds the report and returns it, writes nothing.
  diff_mode:
    support: none
notes:
  - The report holds no secret. The records name databases, secrets and blobs, never a password.
'''

EXAMPLES = r'''
- name: Write the drill's report once per run
  azure_backup.dataprotection.restore_drill_report:
    records: "{{ ansible_play_hosts_all | map('extract', hostvars, 'restore_drill_record') | select('defined') | list }}"
    output_dir: "{{ playbook_dir }}/reports"
  run_once: true
  delegate_to: localhost

- name: Combine the reports of three slices
  azure_backup.dataprotection.restore_drill_report:
    combine: [slice1/restore_drill.json, slice2/restore_drill.json, slice3/restore_drill.json]
    output_dir: combined
'''

RETURN = r'''
paths:
  description: The files written (or that would be written), by kind.
  returned: always
  type: dict
  sample: {json: reports/restore_drill.json, xml: reports/restore_drill.xml, html: reports/restore_drill.html}
summary:
  description: Counts of the report.
  returned: always
  type: dict
  sample: {total: 30, passed: 29, failed: 1, rows_checked: 1200, restore_seconds: 94.2}
failed_hosts:
  description: Hosts whose drill failed.
  returned: always
  type: list
  elements: str
  sample: [estsingle2-hr13-0af10ab1-0888-5f82-978f-bffafcb56317]
grants:
  description:
    - The role assignments the drill created for the vault identities (O(grants), or those of every combined
      report), each with C(vault), C(role), C(scope), C(assignment_id) and C(revoked).
  returned: always
  type: list
  elements: dict
  sample: [{vault: DrillVaultNeu, role: Reader, scope: /subscriptions/.../servers/drilltarget,
            assignment_id: /subscriptions/.../providers/Microsoft.Authorization/roleAssignments/3f1c..., revoked: true}]
msg:
  description: What happened.
  returned: always
  type: str
  sample: 'Restore drill drill20250101: 29 of 30 passed, 1 failed.'
'''

import glob
import json

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.azure_backup.dataprotection.plugins.module_utils._drill_report import (
    build_report, combine_reports, normalise_grants, write_report,
)

ARGSPEC = {
    'records': {'type': 'list', 'elements': 'dict'},
    'combine': {'type': 'list', 'elements': 'path'},
    'output_dir': {'type': 'path', 'required': True},
    'basename': {'type': 'str', 'default': 'restore_drill'},
    'title': {'type': 'str'},
    'drill_id': {'type': 'str'},
    'grants': {'type': 'list', 'elements': 'dict'},
    'revoked_grants': {'type': 'list', 'elements': 'str'},
}
CONSTRAINTS = {'required_one_of': [('records', 'combine')],
               'mutually_exclusive': [('records', 'combine'), ('grants', 'combine')]}


def run(params, check_mode=False):
    """The module's result for validated params (also called by the action plugin on the controller)."""
    if params.get('combine'):
        reports, paths = [], []
        for pattern in params['combine']:
            found = sorted(glob.glob(pattern)) if any(c in pattern for c in '*?[') else [pattern]
            if not found:
                raise ValueError(f'combine: no report matches {pattern}')
            paths.extend(found)
        for path in paths:
            try:
                with open(path, encoding='utf-8') as handle:
                    reports.append(json.load(handle))
            except (OSError, ValueError) as exc:
                raise ValueError(f'combine: cannot read the report {path}: {exc}') from None
        report = combine_reports(reports, title=params.get('title'), revoked_ids=params.get('revoked_grants'))
    else:
        ids = [params['drill_id']] if params.get('drill_id') else []
        report = build_report(params['records'], drill_ids=ids, title=params.get('title'),
                              grants=normalise_grants(params.get('grants'), params.get('revoked_grants')))
    paths, changed = write_report(report, params['output_dir'], params['basename'], check_mode=check_mode)
    summary = report['summary']
    return {'changed': changed, 'paths': paths, 'summary': summary, 'failed_hosts': report['failed_hosts'],
            'grants': report['grants'],
            'msg': f"{report['title']}: {summary['passed']} of {summary['total']} passed, {summary['failed']} failed."}


def main():
    module = AnsibleModule(argument_spec=ARGSPEC, supports_check_mode=True, **CONSTRAINTS)
    try:
        module.exit_json(**run(module.params, check_mode=module.check_mode))
    except ValueError as exc:
        module.fail_json(msg=str(exc))


if __name__ == '__main__':
    main()
