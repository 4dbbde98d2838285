# -*- coding: utf-8 -*-
# Copyright: (c) 2025, Azure Backup Data Protection collection contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Runs the pg_restore_files_to_server module on the controller, in the task's worker process (see plugin_utils/_controller.py)."""

from __future__ import annotations

from ansible_collections.azure_backup.dataprotection.plugins.modules import pg_restore_files_to_server
from ansible_collections.azure_backup.dataprotection.plugins.plugin_utils._controller import DataProtectionAction


class ActionModule(DataProtectionAction):
    MODULE = pg_restore_files_to_server
