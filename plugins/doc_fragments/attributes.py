# -*- coding: utf-8 -*-
# Copyright: (c) 2025, Azure Backup Data Protection collection contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Attribute documentation: the base descriptions, the action group, and the read-only (info) variant."""

from __future__ import annotations


class ModuleDocFragment:

    # Base: every module extends this and sets `support` for check_mode and diff_mode itself.
    DOCUMENTATION = r'''
options: {}
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
'''

    # Every module is in the action group: module_defaults can set the auth options once.
    ACTION_GROUP = r'''
options: {}
attributes:
  action_group:
    description: Use C(group/azure_backup.dataprotection.dataprotection) in C(module_defaults) to set defaults for this module.
    support: full
    membership:
      - azure_backup.dataprotection.dataprotection
'''

    # Read-only modules (the _info modules, pg_restore_validate): check mode changes nothing about what they do.
    INFO_MODULE = r'''
options: {}
attributes:
  check_mode:
    support: full
    details:
      - This action does not modify state.
  diff_mode:
    support: N/A
    details:
      - This action does not modify state.
'''
