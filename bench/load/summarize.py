#!/usr/bin/env python3
"""Summarise a bench/load/run.sh TSV: medians per (connections, target) as a markdown table.

Usage: summarize.py RESULTS.tsv
Ratios compare medians measured in the same run of the script only.
"""
import csv
import statistics
import sys
from collections import defaultdict

ORDER = ["direct", "nginx", "portcullis", "portcullis-pass", "base", "base-pass", "nginx-h2",
         "portcullis-h2"]
PROXIES = ("portcullis", "base")


def med(rows, key):
    vals = [float(r[key]) for r in rows if r[key] not in ("", "-")]
    return statistics.median(vals) if vals else None


def ratio(a, b):
    return f"{a / b:.2f}x" if a and b else "-"


def fmt(v, digits=0):
    if v is None:
        return "-"
    return f"{v:,.{digits}f}"


def main(path):
    groups = defaultdict(list)
    with open(path, newline="") as f:
        for row in csv.DictReader(f, delimiter="\t"):
            groups[(int(row["conns"]), row["target"])].append(row)
    if not groups:
        print("no results")
        return 1
    conns_all = sorted({c for c, _ in groups})
    print("| conns | target | runs | req/s (median) | p50 ms | p99 ms | proxy CPU us/req | errors | req/s vs nginx | CPU vs nginx |")
    print("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for conns in conns_all:
        targets = sorted({t for c, t in groups if c == conns},
                         key=lambda t: ORDER.index(t) if t in ORDER else 99)
        base = groups.get((conns, "nginx"), [])
        base_rps = med(base, "rps") if base else None
        base_cpu = med(base, "cpu_us_per_req") if base else None
        for t in targets:
            rows = groups[(conns, t)]
            rps = med(rows, "rps")
            p50 = med(rows, "p50_us")
            p99 = med(rows, "p99_us")
            cpu = med(rows, "cpu_us_per_req")
            errors = sum(int(r["non2xx"]) + int(r["socket_errors"]) for r in rows)
            if t.endswith("-h2"):
                b = groups.get((conns, "nginx-h2"), [])
                b_rps, b_cpu = (med(b, "rps"), med(b, "cpu_us_per_req")) if b else (None, None)
            else:
                b_rps, b_cpu = base_rps, base_cpu
            r_rps = f"{rps / b_rps:.2f}x" if rps and b_rps and t.startswith(PROXIES) else ""
            r_cpu = f"{cpu / b_cpu:.2f}x" if cpu and b_cpu and t.startswith(PROXIES) else ""
            print(f"| {conns} | {t} | {len(rows)} | {fmt(rps)} | {fmt(p50 and p50 / 1000, 2)} | "
                  f"{fmt(p99 and p99 / 1000, 2)} | {fmt(cpu, 1)} | {errors} | {r_rps} | {r_cpu} |")
    print()
    for conns in conns_all:
        for on_t, off_t in (("portcullis", "portcullis-pass"), ("base", "base-pass")):
            on, off = groups.get((conns, on_t)), groups.get((conns, off_t))
            if on and off and med(off, "rps"):
                print(f"- {on_t}: checks on vs pass-through at {conns} connections: "
                      f"{med(on, 'rps') / med(off, 'rps'):.3f}x req/s, "
                      f"{ratio(med(on, 'cpu_us_per_req'), med(off, 'cpu_us_per_req'))} CPU/req")
        for new_t, old_t in (("portcullis", "base"), ("portcullis-pass", "base-pass")):
            new, old_rows = groups.get((conns, new_t)), groups.get((conns, old_t))
            if new and old_rows and med(old_rows, "rps"):
                print(f"- {new_t} vs {old_t} at {conns} connections: "
                      f"{med(new, 'rps') / med(old_rows, 'rps'):.3f}x req/s, "
                      f"{ratio(med(new, 'cpu_us_per_req'), med(old_rows, 'cpu_us_per_req'))} CPU/req, "
                      f"{ratio(med(new, 'p99_us'), med(old_rows, 'p99_us'))} p99")
    loads = [float(r["load1"]) for rows in groups.values() for r in rows if r.get("load1")]
    if loads:
        print(f"\nmachine load average (1 min) at the start of each run: min {min(loads):.2f}, "
              f"median {statistics.median(loads):.2f}, max {max(loads):.2f} "
              f"({len(loads)} runs; {__import__('os').cpu_count()} CPUs)")
    bad = [k for k, rows in groups.items()
           if any(int(r["non2xx"]) + int(r["socket_errors"]) for r in rows)]
    if bad:
        print("\nWARNING: some runs had non-2xx responses or socket errors "
              "(see the errors column); their throughput does not measure a working proxy.")
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    sys.exit(main(sys.argv[1]))
