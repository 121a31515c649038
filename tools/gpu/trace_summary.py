#!/usr/bin/env python3
"""Summarises a Kineto Chrome trace of one engine run (`AttnPortal.Cli bench --profile`): GPU kernels by total time,
what each decoding step costs between CUDA graph replays (kernel time against wall time), copies, the largest idle
gaps of the GPU and the CPU ops that took longest. A diagnostic: it asserts nothing."""
import collections, gzip, json, statistics, sys

path = sys.argv[1]
trace = json.load(gzip.open(path) if path.endswith(".gz") else open(path))
events = [e for e in trace["traceEvents"] if e.get("ph") == "X"]
kernels = sorted((e for e in events if e.get("cat") == "kernel"), key=lambda e: e["ts"])
copies = [e for e in events if e.get("cat") in ("gpu_memcpy", "gpu_memset")]
runtime = [e for e in events if e.get("cat") == "cuda_runtime"]
ops = [e for e in events if e.get("cat") == "cpu_op"]
if not kernels:
    sys.exit("no kernels in the trace")
t0 = min(e["ts"] for e in kernels + ops)

def ms(us): return us / 1000.0


def table(title, events, limit):
    """Events grouped by name, by total duration: total, count, mean, name."""
    print(f"\n{title}")
    groups = collections.defaultdict(list)
    for e in events:
        groups[e["name"]].append(e["dur"])
    for name, durs in sorted(groups.items(), key=lambda kv: -sum(kv[1]))[:limit]:
        print(f"{ms(sum(durs)):8.3f} ms {len(durs):6d} x {statistics.mean(durs):8.2f} us  {name[:110]}")

busy_until, busy, gaps = kernels[0]["ts"], 0.0, []
for k in sorted(kernels + copies, key=lambda e: e["ts"]):
    if k["ts"] > busy_until:
        gaps.append((k["ts"] - busy_until, busy_until))
    busy += max(0.0, k["ts"] + k["dur"] - max(busy_until, k["ts"]))
    busy_until = max(busy_until, k["ts"] + k["dur"])
span = busy_until - kernels[0]["ts"]
print(f"{len(kernels)} kernels, {len(copies)} copies/memsets; GPU span {ms(span):.1f} ms, busy {ms(busy):.1f} ms ({100 * busy / span:.0f} %)")

table("kernels by total GPU time", kernels, 35)

launches = sorted((e for e in runtime if "GraphLaunch" in e["name"]), key=lambda e: e["ts"])
print(f"\n{len(launches)} CUDA graph launches")
if len(launches) >= 2:
    per_step = []
    for a, b in zip(launches, launches[1:]):
        inside = [k for k in kernels if a["ts"] <= k["ts"] < b["ts"]]
        per_step.append((b["ts"] - a["ts"], sum(k["dur"] for k in inside), len(inside),
                         (max(k["ts"] + k["dur"] for k in inside) - min(k["ts"] for k in inside)) if inside else 0))
    wall, ktime, count, kspan = (statistics.median(x) for x in zip(*per_step))
    print(f"per decoding step (median between graph launches): wall {ms(wall):.2f} ms, kernels {count:.0f}, "
          f"kernel time {ms(ktime):.2f} ms, first-to-last kernel {ms(kspan):.2f} ms")
    a, b = launches[len(launches) // 2], launches[len(launches) // 2 + 1]
    table("one replayed step, kernels by total time", [k for k in kernels if a["ts"] <= k["ts"] < b["ts"]], 30)

table("copies and memsets", copies, 8)

print("\nlargest GPU idle gaps (start relative to the first event)")
for gap, at in sorted(gaps, reverse=True)[:12]:
    before = [o for o in ops if o["ts"] <= at + gap and o["ts"] + o["dur"] >= at]
    top = sorted(before, key=lambda o: -o["dur"])[:3]
    print(f"{ms(gap):8.2f} ms at {ms(at - t0):8.1f} ms  during: {', '.join(o['name'] for o in top)}")

table("CPU ops by total time (host side; nested ops counted in their parents too)", ops, 25)
table("CUDA runtime calls by total time", runtime, 10)
