# -*- coding: utf-8 -*-
# Copyright: (c) 2025, Azure Backup Data Protection collection contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Runs the restore_drill_blobs module on the controller, in the task's worker process (see plugin_utils/_controller.py)."""

from __future__ import annotations

from ansible_collections.azure_backup.dataprotection.plugins.modules import restore_drill_blobs
from ansible_collections.azure_backup.dataprotection.plugins.plugin_utils._controller import DataProtectionAction


class ActionModule(DataProtectionAction):
    MODULE = restore_drill_blobs
