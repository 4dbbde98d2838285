"""Fault injection, ARM-like throttling (token buckets) and counters.

A fault rule matches a method and a path regex (the path without the query string) and fires
`count` times (None: every time).  Kinds:
  status       answer `status` (429 with Retry-After, or 5xx) without running the handler
  status_after run the handler (its effects stay: a restore job is created), then answer `status` (5xx) instead of
               its response: the service failed after it took the request
  drop_before  close the connection (TCP reset) before the handler runs: nothing happened
  drop_after   run the handler (its effects stay: a restore job is created) then reset the connection
  latency      sleep `latency` seconds, then serve normally
  job_failure  serve normally; the job the request creates fails with `code` (and `message`)
"""
import itertools
import re
import threading
import time
from collections import Counter

FAULT_KINDS = ("status", "status_after", "drop_before", "drop_after", "latency", "job_failure")
STATUS_CODES = {429: "TooManyRequests", 500: "InternalServerError", 502: "BadGateway", 503: "ServiceUnavailable",
                504: "GatewayTimeout"}
_ids = itertools.count(1)


def validate_fault(spec):
    kind = spec.get("kind")
    if kind not in FAULT_KINDS:
        raise ValueError("fault kind must be one of %s" % ", ".join(FAULT_KINDS))
    rule = {"id": spec.get("id") or "f%d-%d" % (int(time.time()), next(_ids)), "kind": kind,
            "method": str(spec.get("method") or "*").upper(), "path": spec.get("path") or ".*",
            "count": None if spec.get("count") in (None, "") else int(spec["count"]), "hits": 0}
    re.compile(rule["path"])
    if kind in ("status", "status_after"):
        rule["status"] = int(spec.get("status") or 503)
        allowed = STATUS_CODES if kind == "status" else [c for c in STATUS_CODES if c >= 500]  # a 429 never ran
        if rule["status"] not in allowed:
            raise ValueError("%s faults take %s" % (kind, ", ".join(str(c) for c in allowed)))
        rule["retry_after"] = spec.get("retry_after", 1 if rule["status"] in (429, 503) else None)
    elif kind == "latency":
        rule["latency"] = float(spec.get("latency") or 1.0)
    elif kind == "job_failure":
        rule["code"] = spec.get("code") or "UserErrorServerConnectionClosed"
        rule["message"] = spec.get("message") or "Injected job failure (%s)." % rule["code"]
    return rule


class FaultInjector:
    """Rules live in state (persisted); matching decrements their remaining count."""

    def __init__(self, state):
        self.state = state
        self._compiled = {}

    def match(self, method, path):
        with self.state.lock:
            fired = []
            changed = False
            for rule in self.state.data["faults"]:
                if rule["method"] not in ("*", method):
                    continue
                rx = self._compiled.get(rule["path"])
                if rx is None:
                    rx = self._compiled[rule["path"]] = re.compile(rule["path"], re.I)
                if not rx.search(path):
                    continue
                if rule["count"] is not None and rule["count"] <= 0:
                    continue
                if rule["count"] is not None:
                    rule["count"] -= 1
                rule["hits"] += 1
                changed = True
                fired.append(dict(rule))
            if changed:
                self.state.save()
            return fired


class TokenBucket:
    def __init__(self, capacity, refill):
        self.capacity = float(capacity)
        self.refill = float(refill)
        self.tokens = float(capacity)
        self.stamp = time.monotonic()

    def _update(self):
        now = time.monotonic()
        self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.refill)
        self.stamp = now

    def take(self):
        """(allowed, remaining, retry_after_seconds)."""
        self._update()
        if self.tokens >= 1:
            self.tokens -= 1
            return True, int(self.tokens), 0
        wait = (1 - self.tokens) / self.refill if self.refill > 0 else 60
        return False, 0, max(1, int(wait + 0.999))


class Throttle:
    """Per-subscription read and write buckets, as ARM's 2024 throttling model (reference §7)."""

    def __init__(self, knobs_getter):
        self.knobs = knobs_getter
        self.lock = threading.Lock()
        self.buckets = {}

    def reset(self):
        with self.lock:
            self.buckets.clear()

    def _bucket(self, subscription, kind):
        cfg = self.knobs()["throttle"]
        key = (subscription, kind)
        bucket = self.buckets.get(key)
        if bucket is None:
            bucket = self.buckets[key] = TokenBucket(cfg[kind + "_capacity"], cfg[kind + "_refill"])
        return bucket, cfg["enabled"]

    def take(self, subscription, kind):
        """(allowed, remaining, retry_after) for one request of `kind` (read/write)."""
        with self.lock:
            bucket, enabled = self._bucket(subscription, kind)
            allowed, remaining, retry = bucket.take()
        if not enabled:
            return True, remaining, 0
        return allowed, remaining, retry

    def remaining(self, subscription, kind):
        with self.lock:
            bucket, _ = self._bucket(subscription, kind)
            bucket._update()
            return int(bucket.tokens)


class Counters:
    def __init__(self):
        self.lock = threading.Lock()
        self.c = Counter()
        self.routes = Counter()

    def inc(self, name, n=1):
        with self.lock:
            self.c[name] += n

    def route(self, name):
        with self.lock:
            self.routes[name] += 1

    def snapshot(self):
        with self.lock:
            return {"counters": dict(self.c), "requests": dict(self.routes)}

    def reset(self):
        with self.lock:
            self.c.clear()
            self.routes.clear()
