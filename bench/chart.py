"""One PNG of a benchmark run: throughput against its baseline, latency, totals."""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt


def draw(results: dict, path: Path) -> None:
    figure, (rate, latency, totals) = plt.subplots(1, 3, figsize=(15, 4.5))
    runs = {
        "bare hop": results["bare_hop"],
        "SIAPNET": results["max_load"],
        "SIAPNET @200/s": results["at_200_per_second"],
    }
    rate.bar(
        list(runs)[:2],
        [runs[n]["accepted_per_second"] for n in list(runs)[:2]],
        color=["#999999", "#2b6cb0"],
    )
    rate.axhline(
        results["targets"]["accepted_per_second"], color="red", linestyle="--", label="target"
    )
    rate.set_title("accepted submissions per second")
    rate.legend()
    for offset, percentile in enumerate(("p50_ms", "p95_ms", "p99_ms")):
        latency.bar(
            [i + offset * 0.27 for i in range(len(runs))],
            [run[percentile] for run in runs.values()],
            width=0.27,
            label=percentile,
        )
    latency.set_xticks([i + 0.27 for i in range(len(runs))], list(runs))
    latency.axhline(results["targets"]["p99_ms_at_200_per_second"], color="red", linestyle="--")
    latency.set_title("latency (ms)")
    latency.legend()
    queries = results["totals_1m"].get("queries", {})
    totals.barh(list(queries), [q["p95_ms"] for q in queries.values()], color="#2f855a")
    totals.axvline(results["targets"]["totals_1m_ms"], color="red", linestyle="--")
    totals.set_title("totals over 1M rows, p95 (ms)")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
