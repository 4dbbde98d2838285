"""200 concurrent clients polling operations and jobs over keep-alive connections: zero errors."""
import threading
import time

import requests

from dpemu_helpers import db_request, unique

CLIENTS = 200


def test_200_concurrent_pollers(emu):
    rp = emu.latest_point()["name"]
    r = emu.arm("POST", emu.bi("empdb11")["id"] + "/validateRestore",
                {"restoreRequestObject": db_request(emu, rp, unique())})
    op_url = r.headers["Azure-AsyncOperation"]
    backup = emu.poll_operation(emu.arm("POST", emu.bi("empdb11")["id"] + "/backup",
                                        {"backupRuleOptions": {"ruleName": "BackupWeekly"}}))
    job_url = emu.url + backup["properties"]["jobId"] + "?api-version=2024-04-01"
    token = emu.token()
    errors, counts = [], [0] * CLIENTS
    start = threading.Barrier(CLIENTS)
    stop_at = []

    def poller(i):
        s = requests.Session()
        s.verify = emu.ca
        s.headers["Authorization"] = "Bearer " + token
        try:
            start.wait(60)
            if not stop_at:
                stop_at.append(time.monotonic() + 4)
            while True:       # at least one round each, however late the thread gets the CPU
                for url in (op_url, job_url):
                    resp = s.get(url, timeout=60, verify=emu.ca)
                    if resp.status_code != 200:
                        errors.append(resp.status_code)
                    counts[i] += 1
                if time.monotonic() >= stop_at[0]:
                    break
        except Exception as exc:       # a connection error is an error of the test subject
            errors.append(repr(exc))
        finally:
            s.close()

    threads = [threading.Thread(target=poller, args=(i,)) for i in range(CLIENTS)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    elapsed = time.monotonic() - t0
    total = sum(counts)
    print("\n%d clients, %d requests in %.1fs (%.0f req/s), %d errors" % (CLIENTS, total, elapsed,
                                                                          total / elapsed, len(errors)))
    assert errors == []
    assert all(c > 0 for c in counts)
