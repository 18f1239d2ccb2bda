"""One PNG of a benchmark run: throughput against its baseline, latency, totals."""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt


def draw(results: dict, path: Path) -> None:
    figure, (rate, latency, totals) = plt.subplots(1, 3, figsize=(15, 4.5))
    runs = {
        "bare hop": results["bare_hop"],
        "SQLite": results["max_load"],
        "SQLite @200/s": results["at_200_per_second"],
    }
    postgres = results.get("postgres", {})
    if "max_load" in postgres:
        runs["PostgreSQL"] = postgres["max_load"]
        runs["PostgreSQL @200/s"] = postgres["at_200_per_second"]
    saturated = [name for name in runs if "@" not in name]
    rate.bar(
        saturated,
        [runs[name]["accepted_per_second"] for name in saturated],
        color=["#999999", "#2b6cb0", "#6b46c1"][: len(saturated)],
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
    latency.set_xticks(
        [i + 0.27 for i in range(len(runs))], list(runs), rotation=20, horizontalalignment="right"
    )
    latency.axhline(results["targets"]["p99_ms_at_200_per_second"], color="red", linestyle="--")
    latency.set_title("latency (ms)")
    latency.legend()
    queries = results["totals_1m"].get("queries", {})
    totals.barh(list(queries), [q["p95_ms"] for q in queries.values()], color="#2f855a")
    totals.axvline(results["targets"]["totals_1m_ms"], color="red", linestyle="--")
    rows = results["totals_1m"].get("rows", 0)
    totals.set_title(f"totals over {rows:,} rows, p95 (ms)")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
