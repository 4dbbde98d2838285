"""Scaling fixes of the emulator, in process (an App on a temp state dir, real State, real routes and
handlers; no PostgreSQL: the pg_dump of a backup is faked, and no HTTP server):

- B5: `seed_points` and the world's initial backups store all their points in ONE state write, and so does
  `POST /_emulator/seed-jobs` with its jobs;
- B7: recovery point and job list pages render only the page's items (sort/filter/slice the records).

No durations are asserted: save and render calls are counted.
"""
import json
import os
import sys
from urllib.parse import parse_qsl, quote, urlencode, urlsplit

import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from dpemulator import arm_dataprotection  # noqa: E402
from dpemulator.emulator import App  # noqa: E402
from dpemulator.errors import ApiError  # noqa: E402
from dpemulator.server import Request  # noqa: E402
from dpemulator.util import hex_id, iso, new_guid, now  # noqa: E402

from dpemu_helpers import API, GRANTED  # noqa: E402

BASE_URL = "https://127.0.0.1:9"


@pytest.fixture
def app(tmp_path, monkeypatch):
    a = App(str(tmp_path / "state"), GRANTED)
    a.base_url = BASE_URL
    with a.state.tx() as data:
        a.dataprotection.seed(data)
    monkeypatch.setattr(arm_dataprotection, "authorize", lambda *args, **kw: None)

    def fake_dump(bi):
        rp_id = hex_id()
        folder = os.path.join(a.engine.store_root, rp_id)
        os.makedirs(folder)
        name = (bi["database"] or "all") + ".dump"
        with open(os.path.join(folder, name), "wb") as fh:
            fh.write(b"PGDMP fake")
        return rp_id, {bi["database"] or "all": name}, 10

    monkeypatch.setattr(a.engine, "dump_backup", fake_dump)
    a.state.data["knobs"]["page_size"] = 100
    return a


def count_saves(monkeypatch, state):
    """Count the writes of state.json (each is a temp file renamed over it), whatever calls them."""
    saves = []
    real = os.replace

    def replace(src, dst, *args, **kw):
        if os.path.abspath(dst) == os.path.abspath(state.path):
            saves.append(1)
        return real(src, dst, *args, **kw)

    monkeypatch.setattr(os, "replace", replace)
    return saves


def count_calls(monkeypatch, obj, name):
    calls = []
    real = getattr(obj, name)

    def wrapper(*args, **kw):
        calls.append(1)
        return real(*args, **kw)

    monkeypatch.setattr(obj, name, wrapper)
    return calls


def get(app, url, params=None):
    """Dispatch GET `url` (a path or an absolute nextLink, taken verbatim) through the app's router."""
    if url.startswith(BASE_URL):
        url = url[len(BASE_URL):]
    if params:
        url += ("&" if "?" in url else "?") + urlencode(params, quote_via=quote, safe="$'")
    elif "?" not in url:
        url += "?api-version=" + API
    req = Request("GET", url, {}, b"", "127.0.0.1")
    route, args = app.router.match("GET", req.path)
    assert args is not None, url
    resp = route.handler(req, **args)
    assert resp.status == 200, resp.body
    return json.loads(resp.body)


def list_all(app, url, params=None, renders=None):
    """All pages of a list call, following nextLink verbatim; checks each page's rendering count."""
    body = get(app, url, params)
    items, pages = [], 0
    while True:
        pages += 1
        items += body["value"]
        if renders is not None:
            assert len(renders) == len(body["value"]), "rendered %d items for a page of %d" % (
                len(renders), len(body["value"]))
            del renders[:]
        if not body.get("nextLink"):
            return items, pages
        assert body["nextLink"].startswith(BASE_URL) and "$skipToken=" in body["nextLink"]
        query = dict(parse_qsl(urlsplit(body["nextLink"]).query))
        if params:
            for k, v in params.items():
                assert query.get(k) == v, "nextLink lost %s" % k
        body = get(app, body["nextLink"])


def bi_record(app, which="empdb11"):
    return next(b for b in app.state.data["backup_instances"].values() if (b["database"] or b["server"]) == which)


# ------------------------------------------------------------------------------------------------ B5

def test_seed_2000_points_is_one_save_and_all_are_listed(app, monkeypatch):
    bi = bi_record(app)
    saves = count_saves(monkeypatch, app.state)
    made = app.engine.seed_points(bi, 2000, interval_hours=1)
    assert len(saves) == 1
    assert len(made) == 2000 and len({rp["id"] for rp in made}) == 2000
    assert all(rp["folder"] == made[0]["id"] and rp["files"] == made[0]["files"] for rp in made)
    # All persisted by that one save.
    with open(os.path.join(app.state_dir, "state.json")) as fh:
        on_disk = json.load(fh)["recovery_points"]
    assert set(rp["id"] for rp in made) <= set(next(v for k, v in on_disk.items() if k == bi["id"].lower()))

    renders = count_calls(monkeypatch, app.dataprotection, "point_json")
    items, pages = list_all(app, bi["id"] + "/recoveryPoints", renders=renders)
    assert pages == 20 and len(items) == 2000
    assert [p["name"] for p in items] == [rp["id"] for rp in sorted(made, key=lambda rp: -rp["time"])]
    assert items[0]["properties"]["recoveryPointDataStoresDetails"][0]["type"] == "VaultStore"


def test_seed_archived_points_is_one_save(app, monkeypatch):
    bi = bi_record(app)
    saves = count_saves(monkeypatch, app.state)
    made = app.engine.seed_points(bi, 50, archive=True)
    assert len(saves) == 1
    stored = app.state.data["recovery_points"][bi["id"].lower()]
    assert len(stored) == 50
    assert all([s["type"] for s in rp["stores"]] == ["ArchiveStore"] for rp in stored.values())
    assert {rp["id"] for rp in made} == set(stored)


def test_initial_backups_are_one_save(app, monkeypatch):
    saves = count_saves(monkeypatch, app.state)
    app.dataprotection.initial_backups()
    assert len(saves) == 1
    for bi in app.state.data["backup_instances"].values():
        assert "initial_backups" not in bi
        assert len(app.state.data["recovery_points"][bi["id"].lower()]) == 1


def test_seed_jobs_is_one_save_and_the_jobs_list_pages_through_them(app, monkeypatch):
    app.dataprotection.initial_backups()
    vault = bi_record(app)["vault_id"]
    points = {k: set(v) for k, v in app.state.data["recovery_points"].items()}
    saves = count_saves(monkeypatch, app.state)
    body = {"vault": "testbkpvault", "count": 250, "restore_share": 0.4, "failed_share": 0.1,
            "target_server": "targetossserver", "interval_minutes": 30, "duration_seconds": 600}
    req = Request("POST", "/_emulator/seed-jobs", {}, json.dumps(body).encode(), "127.0.0.1")
    route, args = app.router.match("POST", req.path)
    resp = route.handler(req, **args)
    assert resp.status == 201, resp.body
    summary = json.loads(resp.body)
    assert len(saves) == 1
    assert (summary["count"], summary["restore"], summary["backup"], summary["failed"]) == (250, 100, 150, 25)

    renders = count_calls(monkeypatch, app.dataprotection, "job_json")
    items, pages = list_all(app, vault + "/backupJobs", renders=renders)
    assert pages == 3 and len(items) == 250 and len({j["name"] for j in items}) == 250
    props = [j["properties"] for j in items]
    starts = [p["startTime"] for p in props]
    assert starts == sorted(starts, reverse=True) and starts[0] == summary["newest"]
    assert sum(p["operation"] == "Restore" for p in props) == 100
    assert sum(p["status"] == "Failed" for p in props) == 25 and all(
        p["errorDetails"] for p in props if p["status"] == "Failed")
    assert all(p["endTime"] and p["supportedActions"] == [""] for p in props)
    assert len({p["backupInstanceId"] for p in props}) == len(app.state.data["backup_instances"])
    for p in props:
        ext = p["extendedInfo"]
        if p["operation"] != "Restore":
            assert ext["recoveryDestination"] is None and ext["sourceRecoverPoint"] is None
            continue
        # a restore of one of the instance's own points, to a database (or blobs) that no client asked for
        assert ext["sourceRecoverPoint"]["recoveryPointID"] in points[p["backupInstanceId"].lower()]
        if p["restoreType"] == "AlternateLocationRestore":
            assert "/servers/targetossserver/databases/seeded_" in ext["recoveryDestination"]
        else:
            assert "/restored-files/seeded-" in ext["recoveryDestination"]

    bad = dict(body, duration_seconds=3600)   # longer than the interval: two jobs of an instance would overlap
    req = Request("POST", "/_emulator/seed-jobs", {}, json.dumps(bad).encode(), "127.0.0.1")
    with pytest.raises(ApiError) as err:
        route.handler(req)
    assert err.value.status == 400 and len(app.state.data["jobs"]) == 250


# ------------------------------------------------------------------------------------------------ B7

def test_point_pages_render_only_their_items_with_filters(app, monkeypatch):
    bi = bi_record(app)
    made = app.engine.seed_points(bi, 1000, interval_hours=1)
    app.engine.archive_point(bi, made[500]["id"])
    newest = sorted(made, key=lambda rp: -rp["time"])
    renders = count_calls(monkeypatch, app.dataprotection, "point_json")
    url = bi["id"] + "/recoveryPoints"

    # One page: exactly page_size renders, whatever the number of points (the old code rendered all 1000).
    body = get(app, url)
    assert len(body["value"]) == 100 and len(renders) == 100 and body.get("nextLink")
    del renders[:]

    # A time window of 250 points: 3 pages, each rendering only its own items; the query survives paging.
    # (Bounds half an interval off the points: a bound equal to a point's own time is a rounding question.)
    lo, hi = newest[349]["time"] - 1800, newest[100]["time"] + 1800
    params = {"api-version": API, "$filter": "startDate eq '%s' and endDate eq '%s'" % (iso(lo), iso(hi))}
    items, pages = list_all(app, url, params=params, renders=renders)
    assert pages == 3 and [p["name"] for p in items] == [rp["id"] for rp in newest[100:350]]

    # The datastore filter: only the archived point.
    params = {"api-version": API, "$filter": "restorePointDataStoreId eq 'ArchiveStore'"}
    items, pages = list_all(app, url, params=params, renders=renders)
    assert pages == 1 and [p["name"] for p in items] == [made[500]["id"]]


def test_job_pages_render_only_their_items(app, monkeypatch):
    bi = bi_record(app)
    start = now()
    with app.state.tx() as data:
        for i in range(250):
            guid = new_guid()
            data["jobs"][guid] = {
                "guid": guid, "vault_id": bi["vault_id"], "bi_id": bi["id"], "operation": "Backup",
                "status": "Completed", "start": start - i * 60, "end": start - i * 60 + 5, "min_end": 0,
                "rehydration_end": None, "phase": "done", "plan": None, "bytes": 10, "cancel": False,
                "failure": None, "error": None, "activity": new_guid(), "restore_started": False,
                "result_point": None, "sub_tasks": [{"taskId": 1, "taskName": "Take Backup",
                                                     "taskStatus": "Completed", "taskProgress": None,
                                                     "additionalDetails": None}]}
    renders = count_calls(monkeypatch, app.dataprotection, "job_json")
    vault = bi["id"].split("/backupInstances/")[0]
    items, pages = list_all(app, vault + "/backupJobs", renders=renders)
    assert pages == 3 and len(items) == 250
    starts = [j["properties"]["startTime"] for j in items]
    assert starts == sorted(starts, reverse=True) and len({j["name"] for j in items}) == 250


# ------------------------------------------------------------------------------------------------ B6

def test_concurrent_transactions_are_on_disk_when_they_return(tmp_path):
    """Saves write outside the state lock and coalesce; each tx still returns only once its change (or a
    newer state) is on disk, and an older snapshot never replaces a newer one."""
    import threading

    from dpemulator.state import State

    state = State(str(tmp_path))
    errors = []

    def worker(n):
        try:
            for i in range(40):
                key = "%d-%d" % (n, i)
                with state.tx() as data:
                    data["secrets"][key] = {"n": n, "i": i}
                with open(state.path) as fh:
                    on_disk = json.load(fh)["secrets"]
                assert key in on_disk and all("%d-%d" % (n, j) in on_disk for j in range(i))
        except BaseException as exc:        # noqa: BLE001  reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[0]
    with open(state.path) as fh:
        assert json.load(fh) == state.data
    assert len(state.data["secrets"]) == 320
    assert State(str(tmp_path)).data["secrets"] == state.data["secrets"]
