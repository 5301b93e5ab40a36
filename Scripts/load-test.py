#!/usr/bin/env python3
"""Load test for FieldSync's central node (on demand; not part of `swift test`).

    swift build                      # debug is fine; -c release for production-like figures
    python3 Scripts/load-test.py [--replicas 50] [--revisions 200] [--binary .build/debug/fieldsync]

Starts `fieldsync serve` on a fresh store, enrols N replicas (`server add-user` + `enroll`), gives
each M revisions (`add --from`), then runs N concurrent `fieldsync sync` twice (round 1 pushes
everything and pulls part of the rest, round 2 pulls the rest). Then it checks:

  * the server holds exactly N*M revisions and N*M records (every revision stored exactly once),
    and `fieldsync verify` on the server store is sound;
  * every replica holds the same knowledge (version vector) and revision count as the server;
  * `verify` is sound and `list --all --json` is identical on a sample of replicas (all with
    --verify-all; verifying 50 x 10000 revisions takes a long time on a debug build).

It reports throughput (revisions/s), p50/p99 latency of one `fieldsync sync` process, and the
server's peak RSS (VmHWM in /proc/PID/status). Exit status 0 when every check passed.
Uses only the Python standard library; Linux only (/proc).
"""

import argparse
import calendar
import concurrent.futures
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run(binary, args, store=None, check=True, timeout=1800):
    command = [binary] + args + (["--store", store] if store else [])
    env = dict(os.environ)
    env.pop("FIELDSYNC_STORE", None)
    result = subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env)
    if check and result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} exited {result.returncode}: {result.stderr.strip()}")
    return result


def percentile(values, p):
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = max(0, min(len(ordered) - 1, int(round(p / 100 * len(ordered) + 0.5)) - 1))
    return ordered[k]


def proc_status(pid, field):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])  # kB
    except OSError:
        return None
    return None


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--replicas", type=int, default=50)
    parser.add_argument("--revisions", type=int, default=200, help="revisions per replica")
    parser.add_argument("--binary", default=os.path.join(ROOT, ".build/debug/fieldsync"))
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--setup-jobs", type=int, default=4, help="parallel jobs while creating replicas")
    parser.add_argument("--verify-sample", type=int, default=3, help="replicas to run full `verify` and list comparison on")
    parser.add_argument("--verify-all", action="store_true", help="run full `verify` on every replica")
    parser.add_argument("--keep", action="store_true", help="keep the working folder")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON as well")
    args = parser.parse_args()
    binary = os.path.abspath(args.binary)
    if not os.access(binary, os.X_OK):
        sys.exit(f"load-test: {binary} not found; run `swift build` first")

    work = tempfile.mkdtemp(prefix="fieldsync-load-")
    central = os.path.join(work, "central.sqlite")
    server_log = os.path.join(work, "server.log")
    server = None
    failures = []
    started_all = time.monotonic()

    def check(condition, message):
        if not condition:
            failures.append(message)
            print("FAIL: " + message, flush=True)

    try:
        log = open(server_log, "w")
        server = subprocess.Popen(
            [binary, "serve", "--store", central, "--host", "127.0.0.1", "--port", "0"],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        url = None
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and url is None:
            with open(server_log) as f:
                for line in f:
                    if "listening on " in line:
                        url = line.split("listening on ", 1)[1].split()[0]
            if server.poll() is not None:
                break
            time.sleep(0.05)
        if url is None:
            raise RuntimeError("the server did not start: " + open(server_log).read())
        print(f"server pid {server.pid} at {url}; work folder {work}", flush=True)

        rss_peak_sampled = [0]
        stop_sampling = threading.Event()

        def sample():
            while not stop_sampling.wait(0.2):
                rss = proc_status(server.pid, "VmRSS")
                if rss:
                    rss_peak_sampled[0] = max(rss_peak_sampled[0], rss)

        threading.Thread(target=sample, daemon=True).start()

        names = [f"doc{i:03d}" for i in range(args.replicas)]
        store = {name: os.path.join(work, name + ".fieldsync") for name in names}

        def setup(name):
            run(binary, ["init", "--name", name], store[name])
            added = json.loads(run(binary, ["server", "add-user", name, "--role", "documenter", "--store", central, "--json"]).stdout)
            run(binary, ["enroll", "--server", url, "--code", added["code"]], store[name])
            incidents = [{"title": f"{name} incident {i}", "occurred": {"start": "2025-03-07~"},
                          "location": {"governorate": random.choice(["Latakia", "Tartus", "Homs"])}}
                         for i in range(args.revisions)]
            path = os.path.join(work, name + ".json")
            with open(path, "w") as f:
                json.dump(incidents, f)
            run(binary, ["add", "--from", path], store[name])

        t = time.monotonic()
        with concurrent.futures.ThreadPoolExecutor(args.setup_jobs) as pool:
            list(pool.map(setup, names))
        print(f"set up {len(names)} replicas x {args.revisions} revisions in {time.monotonic() - t:.1f} s", flush=True)

        def sync(name):
            t0 = time.monotonic()
            result = run(binary, ["sync", "--json", "--batch-size", str(args.batch_size)], store[name], check=False)
            elapsed = time.monotonic() - t0
            report = json.loads(result.stdout) if result.returncode == 0 else None
            return name, result.returncode, elapsed, report, result.stderr.strip()

        rounds = []
        latencies = []
        round1_started = None
        for number in (1, 2):
            t = time.monotonic()
            if number == 1:
                round1_started = time.time()
            with concurrent.futures.ThreadPoolExecutor(len(names)) as pool:
                results = list(pool.map(sync, names))
            wall = time.monotonic() - t
            pushed = sum(r[3]["pushed"] for r in results if r[3])
            pulled = sum(r[3]["pulled"] for r in results if r[3])
            failed = [r for r in results if r[1] != 0]
            for r in failed:
                check(False, f"round {number}: sync of {r[0]} exited {r[1]}: {r[4]}")
            round_latencies = [r[2] for r in results]
            latencies += round_latencies
            rounds.append({
                "round": number, "wall_seconds": round(wall, 2), "pushed": pushed, "pulled": pulled, "failed": len(failed),
                "push_throughput": round(pushed / wall, 1), "transfer_throughput": round((pushed + pulled) / wall, 1),
                "p50_seconds": round(percentile(round_latencies, 50), 2), "p99_seconds": round(percentile(round_latencies, 99), 2),
                "max_seconds": round(max(round_latencies), 2),
            })
            print(f"round {number}: {len(names)} concurrent syncs in {wall:.1f} s; pushed {pushed}, pulled {pulled}; "
                  f"p50 {rounds[-1]['p50_seconds']} s, p99 {rounds[-1]['p99_seconds']} s; {len(failed)} failed", flush=True)

        total = args.replicas * args.revisions
        check(rounds[0]["pushed"] == total, f"round 1 pushed {rounds[0]['pushed']}, expected {total}")
        check(rounds[1]["pushed"] == 0, f"round 2 pushed {rounds[1]['pushed']}, expected 0")
        check(rounds[0]["pulled"] + rounds[1]["pulled"] == total * (args.replicas - 1),
              f"pulled {rounds[0]['pulled'] + rounds[1]['pulled']} in all, expected {total * (args.replicas - 1)}")

        # Server-side figures from its log (one line per request, timestamps to the second).
        push_ms, pull_ms, last_push = [], [], None
        with open(server_log) as f:
            for line in f:
                words = line.split()
                if not words or "duration_ms=" not in line:
                    continue
                ms = int(line.split("duration_ms=", 1)[1].split()[0])
                if words[-1] == "push":
                    push_ms.append(ms)
                    stamp = calendar.timegm(time.strptime(words[0][:19], "%Y-%m-%dT%H:%M:%S"))  # the log is in UTC (+0000)
                    last_push = stamp if last_push is None else max(last_push, stamp)
                elif words[-1] == "pull":
                    pull_ms.append(ms)
        push_window = (last_push + 1 - round1_started) if last_push else float("nan")

        stop_sampling.set()
        hwm = proc_status(server.pid, "VmHWM")
        server.send_signal(signal.SIGTERM)
        server_exit = server.wait(timeout=60)
        check(server_exit == 0, f"the server exited {server_exit} on SIGTERM")

        status = json.loads(run(binary, ["status", "--json"], central).stdout)
        check(status["revisions"] == total, f"server holds {status['revisions']} revisions, expected {total}")
        check(status["records"] == total, f"server holds {status['records']} records, expected {total}")
        t = time.monotonic()
        verify = json.loads(run(binary, ["verify", "--json"], central, check=False).stdout)
        check(verify["sound"] and verify["revisions"] == total, f"server verify: {verify}")
        print(f"server store: {status['revisions']} revisions, {status['records']} records, verify sound={verify['sound']} "
              f"({time.monotonic() - t:.1f} s)", flush=True)

        def replica_status(name):
            return name, json.loads(run(binary, ["status", "--json"], store[name]).stdout)

        with concurrent.futures.ThreadPoolExecutor(args.setup_jobs) as pool:
            statuses = dict(pool.map(replica_status, names))
        for name, s in statuses.items():
            check(s["revisions"] == total and s["knowledge"] == status["knowledge"],
                  f"{name}: {s['revisions']} revisions, knowledge differs from the server's: {s['knowledge'] != status['knowledge']}")

        sample = names if args.verify_all else random.sample(names, min(args.verify_sample, len(names)))
        reference = run(binary, ["list", "--all", "--json"], central).stdout

        def deep_check(name):
            v = json.loads(run(binary, ["verify", "--json"], store[name], check=False).stdout)
            same = run(binary, ["list", "--all", "--json"], store[name]).stdout == reference
            return name, v, same

        t = time.monotonic()
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            for name, v, same in pool.map(deep_check, sample):
                check(v["sound"] and v["revisions"] == total, f"{name} verify: sound={v['sound']} revisions={v['revisions']} {v['problems'][:3]}")
                check(same, f"{name}: list --all --json differs from the server's")
        print(f"verified and compared {len(sample)} replicas in full ({time.monotonic() - t:.1f} s); "
              f"compared knowledge and counts of all {len(names)}", flush=True)

        figures = {
            "binary": binary, "replicas": args.replicas, "revisions_per_replica": args.revisions, "total_revisions": total,
            "server_revisions": status["revisions"], "server_records": status["records"], "lost": total - status["revisions"],
            "rounds": rounds,
            "push_window_seconds": round(push_window, 1),
            "push_throughput_until_last_push": round(total / push_window, 1),
            "server_push_request_ms_p50_p99": [percentile(push_ms, 50), percentile(push_ms, 99)],
            "server_pull_request_ms_p50_p99": [percentile(pull_ms, 50), percentile(pull_ms, 99)],
            "sync_latency_p50_seconds": round(percentile(latencies, 50), 2),
            "sync_latency_p99_seconds": round(percentile(latencies, 99), 2),
            "server_peak_rss_mib_vmhwm": round(hwm / 1024, 1) if hwm else None,
            "server_peak_rss_mib_sampled": round(rss_peak_sampled[0] / 1024, 1),
            "replicas_verified_in_full": len(sample), "failures": failures,
            "total_seconds": round(time.monotonic() - started_all, 1),
        }
        print()
        print(f"revisions: {total} ({args.replicas} replicas x {args.revisions}); stored on the server: {status['revisions']}; lost: {total - status['revisions']}")
        print(f"push throughput: {total} revisions stored within {figures['push_window_seconds']} s of the start of round 1 "
              f"(last push logged), {figures['push_throughput_until_last_push']} revisions/s")
        print(f"transfer throughput (pushed+pulled / round wall time): round 1 {rounds[0]['transfer_throughput']}, "
              f"round 2 {rounds[1]['transfer_throughput']} revisions/s")
        for r in rounds:
            print(f"sync latency, round {r['round']} ({args.replicas} concurrent processes): p50 {r['p50_seconds']} s, p99 {r['p99_seconds']} s")
        print(f"sync latency over all {len(latencies)} syncs: p50 {figures['sync_latency_p50_seconds']} s, p99 {figures['sync_latency_p99_seconds']} s")
        print(f"server request time: push p50/p99 {figures['server_push_request_ms_p50_p99']} ms, "
              f"pull p50/p99 {figures['server_pull_request_ms_p50_p99']} ms")
        print(f"server peak RSS (VmHWM): {figures['server_peak_rss_mib_vmhwm']} MiB")
        print(f"result: {'PASS' if not failures else 'FAIL (%d problems)' % len(failures)} in {figures['total_seconds']} s")
        if args.json:
            print(json.dumps(figures, indent=2))
        return 0 if not failures else 1
    finally:
        if server is not None and server.poll() is None:
            server.kill()
            server.wait()
        if args.keep or failures:
            print(f"work folder kept: {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
