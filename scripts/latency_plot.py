#!/usr/bin/env python3
"""Plots the distributions of a `v2m-latency measure --out` run (JSON lines) into a PNG.

    latency_plot.py runs.jsonl latency.png
"""
import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main(src, dst):
    runs = [json.loads(line) for line in open(src) if line.strip()]
    if not runs:
        sys.exit(f"latency_plot: {src}: no runs")
    delays = sorted({r["stop_delay_ms"] for r in runs})
    by_delay = lambda key: [[r[key] for r in runs if r["stop_delay_ms"] == d] for d in delays]
    labels = [f"stop +{d} ms" for d in delays]

    fig, ax = plt.subplots(2, 3, figsize=(15, 8.5))
    fig.suptitle(f"v2m latency: {len(runs)} runs of {len({r['utterance'] for r in runs})} recordings")

    def boxes(a, data, title):
        a.boxplot(data, showfliers=False)
        a.set_xticks(range(1, len(labels) + 1), labels)
        for i, values in enumerate(data, start=1):
            a.plot([i] * len(values), values, "o", alpha=0.5, color="tab:blue")
        a.set_title(title)
        a.set_ylabel("ms")
        a.grid(alpha=0.3)

    boxes(ax[0][0], by_delay("stop_to_final_ms"), "stop → final text")
    boxes(ax[0][1], by_delay("speech_end_to_final_ms"), "end of speech → final text")

    first = [r["first_provisional_ms"] for r in runs if r["first_provisional_ms"] is not None]
    ax[0][2].hist(first, bins=20, color="tab:green")
    ax[0][2].set_title(f"speech onset → first provisional ({len(first)} runs)")
    ax[0][2].set_xlabel("ms")

    intervals = [x for r in runs for x in r["provisional_intervals_ms"]]
    ax[1][0].hist(intervals, bins=30, color="tab:orange")
    ax[1][0].set_title(f"interval between provisional events ({len(intervals)})")
    ax[1][0].set_xlabel("ms")

    counts = []
    for r in runs:
        c = r["capture_to_read"]["counts"]
        counts.extend([0] * (len(c) - len(counts)))
        for i, n in enumerate(c):
            counts[i] += n
    total = sum(counts)
    if total:
        ax[1][1].bar(range(len(counts)), counts, width=1.0, color="tab:purple")
        ax[1][1].set_yscale("log")
    ax[1][1].set_title(f"frame capture → worker read ({total} frames)")
    ax[1][1].set_xlabel("ms (1 ms buckets)")

    speech = [r["speech_ms"] for r in runs]
    ax[1][2].plot(speech, [r["speech_end_to_final_ms"] for r in runs], "o", color="tab:red")
    ax[1][2].set_title("end of speech → final vs speech length")
    ax[1][2].set_xlabel("speech, ms")
    ax[1][2].set_ylabel("ms")
    ax[1][2].grid(alpha=0.3)

    fig.tight_layout()
    fig.savefig(dst, dpi=100)
    print(f"latency: plot written to {dst}", file=sys.stderr)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
