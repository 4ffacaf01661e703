#!/usr/bin/env python3
"""Times several commands in interleaved rounds (A B C D, A B C D, ...), so that load from other
processes on a shared machine falls on every tool alike, unlike back-to-back series.

    measure.py --runs R --warmup W --out FILE.json NAME=COMMAND...

COMMAND is split like a shell would (shlex) and run without a shell, output discarded. A
non-zero exit (some host failed) is counted in "failures" and its run is kept out of the
times. FILE.json: {"results": [{"command": NAME, "times": [...], "min": s, "median": s,
"mean": s, "failures": n}]} (hyperfine's format, plus failures).
"""
import argparse, json, shlex, statistics, subprocess, sys, time

p = argparse.ArgumentParser()
p.add_argument("--runs", type=int, required=True)
p.add_argument("--warmup", type=int, default=1)
p.add_argument("--out", required=True)
p.add_argument("commands", nargs="+")
a = p.parse_args()
cmds = []
for c in a.commands:
    name, _, cmd = c.partition("=")
    cmds.append((name, shlex.split(cmd)))
times = {name: [] for name, _ in cmds}
failures = {name: 0 for name, _ in cmds}
for r in range(a.warmup + a.runs):
    for name, argv in cmds:
        t = time.perf_counter()
        rc = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL).returncode
        dt = time.perf_counter() - t
        if rc != 0:
            print(f"measure.py: {name} exited {rc}: {shlex.join(argv)}", file=sys.stderr)
            failures[name] += 1
        elif r >= a.warmup:
            times[name].append(dt)
if not all(times.values()):
    sys.exit("measure.py: a command never succeeded")
res = [{"command": n, "times": t, "min": min(t), "median": statistics.median(t),
        "mean": statistics.mean(t), "failures": failures[n]} for n, t in times.items()]
json.dump({"results": res}, open(a.out, "w"), indent=1)
for x in res:
    print(f"  {x['command']:<14} min {x['min']:.3f} s  median {x['median']:.3f} s", file=sys.stderr)
