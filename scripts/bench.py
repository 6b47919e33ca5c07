"""`make bench`: our own cost next to the emulator's, in one table.

Runs against the stack `make up` started (functions under cargo lambda watch; DynamoDB
served by dynoxide, which reports consumed capacity as AWS does). It restarts watch with
release builds whose requests go through the fault proxy (FAULT_PROXY=1 scripts/up.sh),
which counts requests and the capacity DynamoDB reported, and adds latency, and puts
the default (debug builds, no proxy) back for its last row, the end-to-end figure of
`make up`. Capacity per row comes from each import's summary.json (`consumed`, its
own meter), with the proxy's count of what the emulator reported beside it; the
tables after the main one (scripts/bench_capacity.py) give each event type's units and
the GSI projection's yearly cost. ROWS (default 20000) sets the end-to-end file size;
PARSE_ROWS (default 500000) the parse benchmark's; EXPORT_ROWS (default 100000) the
size of the account contacts.export reads back.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "localstack"))
import bench_capacity
from local_aws import (
    BUCKET,
    ENDPOINT,
    PROXY,
    TABLE,
    cargo_target_dir,
    client,
    cpu_seconds,
    function_processes,
    invoke,
    proxy,
    stack_progress,
    wait_for,
)

s3, ddb = client("s3"), client("dynamodb")
ROWS = int(os.environ.get("ROWS", "20000"))
PARSE_ROWS = int(os.environ.get("PARSE_ROWS", "500000"))
EXPORT_ROWS = int(os.environ.get("EXPORT_ROWS", "100000"))


class RssSampler(threading.Thread):
    """Peak resident set size of the processes, sampled every 20 ms."""

    def __init__(self, processes):
        super().__init__(daemon=True)
        self.processes, self.peak, self.stop = processes, 0, False

    def run(self):
        import psutil

        while not self.stop:
            for p in self.processes:
                try:
                    self.peak = max(self.peak, p.memory_info().rss)
                except psutil.Error:
                    pass
            time.sleep(0.02)


def csv_body(rows, offset, renamed_every=None):
    lines = ["Name,Phone"]
    for i in range(offset, offset + rows):
        name = f"Renamed {i}" if renamed_every and i % renamed_every == 0 else f"Person {i}"
        lines.append(f"{name},+4474{i:08d}")
    return ("\n".join(lines) + "\n").encode()


def import_file(account, body, name="bench.csv", proxied=False):
    """Uploads, waits for the summary; returns (summary, cpu_s, wall_s, peak_rss_mb, stats).

    `stats` is the fault proxy's when `proxied` (the functions run through it): requests
    by service and operation, and the capacity DynamoDB reported; else None."""
    key = f"imports/{account}/whatsapp/{name}"
    processes = function_processes()
    if not processes:
        raise SystemExit("bench: no import-contacts process under this checkout's cargo lambda watch; run make up")
    if proxied:
        proxy("stats/reset", {})
    cpu0, sampler = cpu_seconds(processes), RssSampler(processes)
    sampler.start()
    start = time.monotonic()
    s3.put_object(Bucket=BUCKET, Key=key, Body=body)
    done = []

    def finished():
        pages = s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=f"reports/{account}/")
        found = [o["Key"] for page in pages for o in page.get("Contents", []) if o["Key"].endswith("summary.json")]
        docs = [json.loads(s3.get_object(Bucket=BUCKET, Key=k)["Body"].read()) for k in found]
        done[:] = [d for d in docs if d["source"]["key"] == key]
        return len(done) >= 1 + import_file.seen.get(key, 0)

    wait_for(finished, lambda: stack_progress(ddb), f"bench: waiting for the summary of {key}", interval=0.2)
    wall = time.monotonic() - start
    import_file.seen[key] = len(done)
    sampler.stop = True
    summary = max(done, key=lambda d: d["started_at"])
    stats = proxy("stats") if proxied else None
    return summary, cpu_seconds(processes) - cpu0, wall, sampler.peak / 2**20, stats


import_file.seen = {}


def export_account(account):
    """Invokes contacts.export of the account; returns (answer, wall_s, peak_rss_mb) with
    the peak RSS of the contact-events processes sampled while it runs."""
    processes = function_processes("contact-events")
    if not processes:
        raise SystemExit("bench: no contact-events process under this checkout's cargo lambda watch; run make up")
    sampler = RssSampler(processes)
    sampler.start()
    start = time.monotonic()
    answer = invoke("contact-events", {"type": "contacts.export", "account_id": account})
    wall = time.monotonic() - start
    sampler.stop = True
    if answer.get("status") != "exported":
        raise SystemExit(f"bench: the export failed: {answer}")
    return answer, wall, sampler.peak / 2**20


def naive(path, account, endpoint):
    out = subprocess.run([sys.executable, "scripts/naive_import.py", path, account, endpoint],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def ceiling(seconds=8, threads=8):
    count, lock, stop = [0], threading.Lock(), time.monotonic() + seconds

    def hammer(n):
        ddb = client("dynamodb")
        i = 0
        while time.monotonic() < stop:
            ddb.put_item(TableName=TABLE, Item={"pk": {"S": f"BENCH#{n}#{i}"}, "sk": {"S": "X"}})
            i += 1
        with lock:
            count[0] += i

    workers = [threading.Thread(target=hammer, args=(n,)) for n in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return count[0] / seconds


def restart_functions(release, proxied=False):
    """Watch with optimised (release) or debug builds of the functions, reaching the
    emulator through the fault proxy when `proxied`, directly otherwise."""
    env = dict(os.environ, WATCH_RELEASE="1" if release else "0", FAULT_PROXY="1" if proxied else "0")
    subprocess.run(["scripts/down.sh", "watch"], check=True, capture_output=True)
    subprocess.run(["scripts/up.sh"], check=True, capture_output=True, env=env)


def main():
    argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter).parse_args()
    # CPU per row is what Lambda runs: the release build, not watch's default debug one.
    restart_functions(release=True, proxied=True)
    try:
        measure()
        bench_capacity.print_tables()
    finally:
        restart_functions(release=False)


def measure():
    rows = []
    parse = subprocess.run([cargo_target_dir() / "release" / "bench_parse", str(PARSE_ROWS)], capture_output=True, text=True, check=True).stdout
    p = dict(kv.split("=") for kv in parse.split()[1:])
    # bench_parse runs the library's read + map + validate (WhatsApp rules, GB default
    # region) without the import's in-file duplicate check, so its one-thread figure is
    # an upper bound of an import's parse; an import parses on one thread (one parser per
    # file, duplicates found in file order), so the two-thread rows are the library's
    # capacity: they show no shared state (regex caches, pools) holds a second thread
    # back, which is what two imports in one process, or a parallel parse, would need.
    rows += [("parse+map+validate, 1 thread, no in-file duplicate check (rows/s)", p["one_thread_rows_per_s"], ">= 120000"),
             (f"library capacity on 2 threads taking {p['chunk_rows']}-row chunks (rows/s; an import uses 1)", f"{p['two_threads_rows_per_s']} (x{p['scaling']})", ">= 1.8x one thread"),
             ("the same, the file cut in 2 fixed halves", f"x{p['halves_scaling']}", ""),
             ("CPU per parsed row, 1 thread vs 2 threads (us)", f"{p['cpu_us_per_row_one_thread']} vs {p['cpu_us_per_row_two_threads']}", ""),
             ("control: the same chunks in 2 processes (no shared memory)", f"x{p['two_processes_scaling']}", ""),
             (f"parse bench peak RSS, {PARSE_ROWS} rows in memory (MB)", p["peak_rss_mb"], "")]

    ceil = ceiling()
    rows.append(("emulator ceiling, 8 parallel boto3 clients (single PutItem/s)", f"{ceil:.0f}", ""))

    with tempfile.NamedTemporaryFile("wb", suffix=".csv", delete=False) as f:
        f.write(csv_body(ROWS, 0))
        path = f.name
    account = "bench-" + uuid.uuid4().hex[:8]
    summary, cpu, wall, rss, stats = import_file(account, csv_body(ROWS, 0), proxied=True)
    assert summary["rows"]["created"] == ROWS, summary
    ddb = {k.removeprefix("dynamodb:"): v for k, v in stats["requests"].items() if k.startswith("dynamodb:")}
    ddb_req = sum(ddb.values())
    by_operation = ", ".join(f"{op} {n}" for op, n in sorted(ddb.items(), key=lambda kv: -kv[1]))
    again, _, _, rss2, stats2 = import_file(account, csv_body(ROWS, 0), name="bench again.csv", proxied=True)
    assert again["rows"]["unchanged"] == ROWS, again
    changed, _, _, _, stats3 = import_file(account, csv_body(ROWS, 0, renamed_every=10), name="bench changed.csv",
                                           proxied=True)
    assert changed["rows"]["updated"] == ROWS // 10, changed

    def per_row(doc, stats):
        """Units per row from the summary, and what the emulator reported (the proxy)."""
        c, p = doc["consumed"], stats["capacity"]
        return (f"{c['write_units'] / ROWS:.3f} W, {c['read_units'] / ROWS:.3f} R, {c['requests'] / ROWS:.3f} req "
                f"(emulator: {p['write_units'] / ROWS:.3f} W, {p['read_units'] / ROWS:.3f} R)")
    n = naive(path, "naive-" + uuid.uuid4().hex[:8], ENDPOINT)
    ours_us, naive_us = cpu / ROWS * 1e6, n["cpu_s"] / ROWS * 1e6
    rows += [(f"end to end, release, {ROWS} rows (rows/s)", f"{ROWS / wall:.0f} (naive {ROWS / n['wall_s']:.0f})", ""),
             ("CPU per row, release build under watch (us)", f"{ours_us:.0f}", "<= 100"),
             ("CPU per row: naive vs ours", f"{naive_us:.0f} vs {ours_us:.0f} us = {naive_us / ours_us:.1f}x less", ">= 10x less"),
             ("DynamoDB requests per row, fresh import (the proxy's count)", f"{ddb_req / ROWS:.3f} ({ddb_req}: {by_operation})", "<= 0.1"),
             ("capacity per row, fresh import (summary.json consumed)", per_row(summary, stats), "<= 2.0 W, <= 0.5 R"),
             ("capacity per row, the same file again (all unchanged)", per_row(again, stats2), "0 W (contacts), <= 0.5 R"),
             ("capacity per row, the file with 1 row in 10 changed", per_row(changed, stats3), "<= 0.25 W"),
             (f"peak RSS of the function process, {ROWS}-row imports (MB)", f"{max(rss, rss2):.1f}", "< 128 (100 MB files: make bench-memory)")]

    proxy("faults", {"latency_ms": 5})
    try:
        _, _, wall3, _, _ = import_file("bench-" + uuid.uuid4().hex[:8], csv_body(ROWS, 0), proxied=True)
        n3 = naive(path, "naive-" + uuid.uuid4().hex[:8], PROXY)
    finally:
        proxy("faults", {})
    ours3, naive3 = ROWS / wall3, ROWS / n3["wall_s"]
    rows.append(("end to end with +5 ms per DynamoDB request (rows/s)", f"{ours3:.0f} vs naive {naive3:.0f} = {ours3 / naive3:.1f}x", ">= 4x naive"))

    # What `make up` runs: debug builds of our crates (dependencies optimised), no proxy.
    restart_functions(release=False)
    _, cpu4, wall4, _, _ = import_file("bench-" + uuid.uuid4().hex[:8], csv_body(ROWS, 0))
    ours4 = ROWS / wall4
    naive_rate = ROWS / n["wall_s"]
    value = (f"{ours4:.0f} vs naive {naive_rate:.0f} = {ours4 / naive_rate:.1f}x; "
             f"{ours4 / ceil:.1f}x the single-put ceiling; {cpu4 / ROWS * 1e6:.0f} us CPU/row")
    rows.append((f"end to end through make up's build, {ROWS} rows (rows/s)", value, ">= 2.5x naive"))

    # The export reads what an import wrote: EXPORT_ROWS contacts in one account.
    account = "bench-export-" + uuid.uuid4().hex[:8]
    summary, _, _, _, _ = import_file(account, csv_body(EXPORT_ROWS, 0), name="export.csv", proxied=True)
    assert summary["rows"]["created"] == EXPORT_ROWS, summary
    answer, wall4, rss4 = export_account(account)
    assert answer["contacts"] == EXPORT_ROWS, answer
    rows.append((f"export of {EXPORT_ROWS:,} contacts: rows/s and peak RSS of contact-events (MB)",
                 f"{EXPORT_ROWS / wall4:.0f} rows/s, {rss4:.1f} MB", "emulator-bound; flat memory (8 MiB parts)"))

    width = max(len(r[0]) for r in rows)
    print(f"\n{'measure':{width}}  {'value':45}  target")
    print("-" * (width + 60))
    for name, value, target in rows:
        print(f"{name:{width}}  {value:45}  {target}")


if __name__ == "__main__":
    main()
