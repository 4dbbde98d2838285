# -*- coding: utf-8 -*-
# Copyright: (c) 2025, Azure Backup Data Protection collection contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The cross-region restore options (argspec: module_utils/_cross_region.py CROSS_REGION_ARGSPEC)."""

from __future__ import annotations


class ModuleDocFragment:

    DOCUMENTATION = r'''
options:
  use_secondary_region:
    description:
      - Work from the vault's secondary (paired) region instead of its own region (cross-region restore), for
        when the vault's region is down. The vault must be geo-redundant with cross-region restore enabled.
      - The vault and the backup instance are read from Azure Resource Graph (it answers while the vault's region
        is down), and every other call goes to the location-scoped cross-region calls of the secondary region
        (C(fetchSecondaryRecoveryPoints), C(validateCrossRegionRestore), C(crossRegionRestore),
        C(fetchCrossRegionRestoreJob(s))), under C(/subscriptions/<s>/resourceGroups/<vault rg>/providers/Microsoft.DataProtection/locations/<secondary>).
      - The recovery points there are copies that reach the secondary region some hours after they were taken, so the
        latest point of the secondary region is older than the primary's.
      - A restore target (server or storage account) must be in the secondary region; that is checked before
        anything is sent.
    type: bool
    default: false
  secondary_region:
    description:
      - The secondary region, for a vault that does not report it (its C(properties.replicatedRegions)). By default the
        region the vault reports is used, and a different one fails.
      - Only with O(use_secondary_region=true).
    type: str
'''
