#!/usr/bin/env python3
"""Sums a Chrome trace (from `bistro bench train --profile FILE`) by op name: self time is not
separated, so nested ops count in their parents too; read the leaf aten:: ops."""
import collections
import json
import sys

events = json.load(open(sys.argv[1]))
if isinstance(events, dict):
    events = events.get("traceEvents", [])
total = collections.Counter()
count = collections.Counter()
for e in events:
    if e.get("ph") == "X":
        total[e["name"]] += e.get("dur", 0)
        count[e["name"]] += 1
for name, us in total.most_common(int(sys.argv[2]) if len(sys.argv) > 2 else 30):
    print(f"{us / 1000:10.1f} ms  {count[name]:6d}  {name}")
