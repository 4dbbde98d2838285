"""Everything the emulator must not lose across a restart, in one JSON document on disk.

Why one JSON file: the state is small (vaults, points, jobs, secrets, assignments), reads are served
from memory under one lock (200 pollers do no I/O), and every mutation rewrites the file atomically
(write a temp file, fsync, rename), so a kill at any moment leaves either the old or the new state.
A mutation's caller continues only once its change is on disk; the disk write itself happens outside
the state lock and concurrent saves coalesce (see State.save).
"""
import copy
import json
import os
import secrets as _secrets
import threading
from contextlib import contextmanager

DEFAULT_KNOBS = {
    "operation_duration": 1.0,      # s until an LRO (validate/restore/backup trigger) reaches its end state
    "job_duration": 3.0,            # minimum s a restore/backup job stays InProgress
    "rehydration_duration": 3.0,    # s the rehydration sub-task of an archive restore takes
    "retry_after": 1,               # Retry-After (s) on 202 and operation polls (the service sends 10-60)
    "page_size": 10,                # items per page of list calls (nextLink beyond)
    "token_lifetime": 3600,         # s an issued access token stays valid
    # Cross-region restore: a point reaches the vault's secondary region this many hours after it was taken (the
    # service copies points to the paired region some hours later; its exact delay is not documented).
    "secondary_lag_hours": 12.0,
    # A regional outage: every ARM call to a resource of `region` (its vaults, their instances, points and jobs,
    # servers, key vaults and accounts there, and the locations/<region> endpoints) fails, as `mode` says: "status"
    # (answer `status`, a 5xx) or "reset" (the connection is reset before any answer). Empty region: no outage.
    "region_outage": {"region": "", "mode": "status", "status": 503},
    "throttle": {                   # ARM-like token buckets per subscription (off: headers only)
        "enabled": False,
        "read_capacity": 250, "read_refill": 25.0,
        "write_capacity": 200, "write_refill": 10.0,
    },
}

COLLECTIONS = ("backup_instances", "recovery_points", "operations", "jobs", "secrets", "role_assignments",
               "access_policies", "blobs", "containers")


def merge_knobs(current, update):
    """Apply a partial knob update; unknown names raise ValueError so typos do not pass silently."""
    out = copy.deepcopy(current)
    for key, value in (update or {}).items():
        if key not in DEFAULT_KNOBS:
            raise ValueError("unknown knob %r (known: %s)" % (key, ", ".join(sorted(DEFAULT_KNOBS))))
        if isinstance(DEFAULT_KNOBS[key], dict):
            if not isinstance(value, dict):
                raise ValueError("knob %r takes an object" % key)
            for sub, subval in value.items():
                if sub not in DEFAULT_KNOBS[key]:
                    raise ValueError("unknown knob %s.%s" % (key, sub))
                out[key][sub] = type(DEFAULT_KNOBS[key][sub])(subval)
        else:
            out[key] = type(DEFAULT_KNOBS[key])(value)
    return out


class State:
    def __init__(self, state_dir):
        self.dir = state_dir
        self.path = os.path.join(state_dir, "state.json")
        self.lock = threading.RLock()
        self._file_lock = threading.Lock()      # orders the writes of state.json (see save())
        self._seq = 0                           # snapshots taken (under self.lock)
        self._written = 0                       # the newest snapshot on disk (under self._file_lock)
        if os.path.exists(self.path):
            with open(self.path) as fh:
                self.data = json.load(fh)
        else:
            self.data = {"meta": {}, "knobs": copy.deepcopy(DEFAULT_KNOBS), "faults": []}
        for name in COLLECTIONS:
            self.data.setdefault(name, {})
        self.data["knobs"] = merge_knobs(DEFAULT_KNOBS, self.data.get("knobs"))
        meta = self.data["meta"]
        # The signing key makes issued tokens survive a restart; the control token guards /_emulator.
        meta.setdefault("signing_key", _secrets.token_hex(32))
        meta.setdefault("control_token", _secrets.token_urlsafe(24))
        meta.setdefault("identity_header", _secrets.token_urlsafe(16))
        self.save()

    @property
    def meta(self):
        return self.data["meta"]

    @property
    def knobs(self):
        return self.data["knobs"]

    def save(self):
        """Persist the whole state; returns once this state (or a newer one) is on disk.

        B6: the snapshot is serialised in one go (json.dumps, ~4x faster than streaming json.dump) under
        the state lock, then written + fsynced + renamed under a separate file lock, outside the state
        lock unless the caller holds it, so readers do not wait for the disk.  Snapshots are numbered
        under the state lock; a writer whose snapshot is older than the one already written skips its
        write (the newer snapshot contains its change), so saves under contention coalesce and an older
        state never replaces a newer one."""
        with self.lock:
            seq, payload = self._snapshot()
        self._write(seq, payload)

    def _snapshot(self):
        self._seq += 1
        return self._seq, json.dumps(self.data, separators=(",", ":"))

    def _write(self, seq, payload):
        with self._file_lock:
            if self._written >= seq:
                return
            tmp = self.path + ".tmp"
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(payload)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.path)
            self._written = seq

    @contextmanager
    def tx(self):
        """Mutate under the lock, then persist once (the caller continues only when it is on disk)."""
        with self.lock:
            yield self.data
            seq, payload = self._snapshot()
        self._write(seq, payload)
