# -*- coding: utf-8 -*-
# Copyright: (c) 2025, Azure Backup Data Protection collection contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The backup vault and backup instance options (argspec: module_utils/_restore_flow.py BACKUP_INSTANCE_ARGSPEC)."""

from __future__ import annotations


class ModuleDocFragment:

    DOCUMENTATION = r'''
options:
  vault_name:
    description:
      - Name of the Backup vault (C(Microsoft.DataProtection/backupVaults)) that holds the backups.
    type: str
    required: true
  resource_group:
    description:
      - Resource group of the Backup vault (in O(subscription_id)).
    type: str
    required: true
  backup_instance_name:
    description:
      - Name of the backup instance, for example C(testpostgresql-empdb11-957d23b1-c679-4c94-ade6-c4d34635e149)
        for a single server database or C(pgflex01-8a7c2e51-40f1-4a33-9c1b-2f0e9d6b5c77) for a flexible server.
      - Exactly one of O(backup_instance_name) and O(datasource_id) is required.
    type: str
  datasource_id:
    description:
      - ARM id of the protected datasource, used to find its backup instance in the vault (the vault's backup
        instances are listed and the one whose datasource is this id, compared case-insensitively, is used).
      - A single server database
        C(/subscriptions/<guid>/resourceGroups/<rg>/providers/Microsoft.DBforPostgreSQL/servers/<server>/databases/<db>)
        or a flexible server
        C(/subscriptions/<guid>/resourceGroups/<rg>/providers/Microsoft.DBforPostgreSQL/flexibleServers/<server>).
      - Exactly one of O(backup_instance_name) and O(datasource_id) is required. When no backup instance protects
        the datasource, the task fails and lists what the vault protects.
    type: str
'''
