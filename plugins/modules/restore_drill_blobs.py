#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2025, Azure Backup Data Protection collection contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r'''
---
module: restore_drill_blobs
short_description: List or delete the blobs a restore as files wrote under a prefix
version_added: 1.2.0
description:
  - Lists the blobs of a container whose names start with O(prefix) (every page), to check that a restore as files
    wrote its dump files; with O(state=absent) deletes them, to clean up after a restore drill.
  - Uses the blob data plane with an Azure AD token (C(Storage Blob Data Reader) lists, C(Storage Blob Data
    Contributor) deletes); the same sign-in as every module of the collection.
  - Give a prefix that only the drill writes (the C(azure_backup.dataprotection.restore_drill) role uses
    C(<drill id>-<server>-<hash>)); every blob under it is deleted.
author:
  - Azure Backup Data Protection collection contributors (@azure-backup)
options:
  container_url:
    description: The container, C(https://<account>.blob.core.windows.net/<container>).
    type: str
    required: true
  prefix:
    description: Blob name prefix; at least 3 characters, so that a whole container is never listed or emptied by mistake.
    type: str
    required: true
  state:
    description: V(present) lists the blobs (never changes anything); V(absent) deletes them.
    type: str
    choices: [present, absent]
    default: present
  min_count:
    description: With O(state=present), fail when fewer blobs than this are found.
    type: int
    default: 0
extends_documentation_fragment:
  - azure_backup.dataprotection.auth
  - azure_backup.dataprotection.attributes
  - azure_backup.dataprotection.attributes.ACTION_GROUP
attributes:
  check_mode:
    support: full
    details:
      - With O(state=absent), lists what would be deleted and deletes nothing.
  diff_mode:
    support: none
'''

EXAMPLES = r'''
- name: Check that the restore wrote its dump files
  azure_backup.dataprotection.restore_drill_blobs:
    container_url: https://drillstorage.blob.core.windows.net/drill-files
    prefix: drill-20250101-pgflex01
    min_count: 1

- name: Delete them
  azure_backup.dataprotection.restore_drill_blobs:
    container_url: https://drillstorage.blob.core.windows.net/drill-files
    prefix: drill-20250101-pgflex01
    state: absent
'''

RETURN = r'''
blobs:
  description: The blobs found under the prefix (before deleting, with O(state=absent)).
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: Blob name.
      type: str
    size:
      description: Size in bytes.
      type: int
  sample: [{name: drill-20250101-pgflex01_inventory.dump, size: 20480}]
deleted:
  description: Names of the blobs deleted (with O(state=absent); in check mode, that would be deleted).
  returned: always
  type: list
  elements: str
  sample: [drill-20250101-pgflex01_inventory.dump]
msg:
  description: What happened.
  returned: always
  type: str
  sample: 2 blobs under drill-20250101-pgflex01.
'''

from ansible_collections.azure_backup.dataprotection.plugins.module_utils._blobs import (
    blob_client, delete_blob, list_blobs,
)
from ansible_collections.azure_backup.dataprotection.plugins.module_utils._ids import parse_container_url
from ansible_collections.azure_backup.dataprotection.plugins.module_utils._module import DataProtectionModule

ARGSPEC = {
    'container_url': {'type': 'str', 'required': True},
    'prefix': {'type': 'str', 'required': True},
    'state': {'type': 'str', 'choices': ['present', 'absent'], 'default': 'present'},
    'min_count': {'type': 'int', 'default': 0},
}
CONSTRAINTS = {}


def run(module):
    params = module.params
    parse_container_url(params['container_url'])  # a ValueError that says what a container URL looks like
    prefix = params['prefix']
    if len(prefix.strip()) < 3:
        raise ValueError(f"prefix '{prefix}' is too short: give at least 3 characters that only the drill writes")
    client = blob_client(module)
    blobs = list_blobs(client, params['container_url'], prefix)
    if params['state'] == 'present':
        if len(blobs) < params['min_count']:
            module.fail_json(msg=f"{len(blobs)} blobs under {prefix} in {params['container_url']}, expected at least "
                             f"{params['min_count']}: the restore wrote no files there.", blobs=blobs, deleted=[],
                             changed=False)
        return {'changed': False, 'blobs': blobs, 'deleted': [], 'msg': f'{len(blobs)} blobs under {prefix}.'}
    names = [blob['name'] for blob in blobs]
    if module.check_mode:
        deleted = names
    else:
        deleted = [name for name in names if delete_blob(client, params['container_url'], name)]
    return {'changed': bool(deleted), 'blobs': blobs, 'deleted': deleted,
            'msg': f"{'Would delete' if module.check_mode else 'Deleted'} {len(deleted)} blobs under {prefix}."}


def main():
    module = DataProtectionModule(argument_spec=ARGSPEC, supports_check_mode=True, **CONSTRAINTS)
    module.exit_with(run)


if __name__ == '__main__':
    main()
