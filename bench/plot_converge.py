#!/usr/bin/env python3
"""Plots `bistro experiment converge` CSVs: held-out loss against tokens, one line per method.

  /usr/bin/python3 bench/plot_converge.py OUT.png RUN1.csv [RUN2.csv ...]
"""
import csv
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main():
    out, paths = sys.argv[1], sys.argv[2:]
    series = {}
    for path in paths:
        with open(path) as f:
            for row in csv.DictReader(f):
                s = series.setdefault(row["method"], ([], []))
                s[0].append(int(row["tokens"]))
                s[1].append(float(row["eval_loss"]))
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for method, (tokens, loss) in series.items():
        ax.plot(tokens, loss, label=method, marker=".")
    ax.set_xlabel("training tokens (all miners)")
    ax.set_ylabel("held-out loss (global pages)")
    ax.set_title("4 simulated miners, tiny preset, default corpus")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    for method, (tokens, loss) in series.items():
        print(f"{method:20s} final loss {loss[-1]:.4f} after {tokens[-1]} tokens")


if __name__ == "__main__":
    main()
