"""Charts and docs/benchmarks.md from the results.json that benchmarks/run writes.

    python3 benchmarks/report.py RESULTS.json IMG_DIR PAGE.md

Charts are SVG (matplotlib, Debian's python3-matplotlib) without a date in
their metadata, so that an unchanged figure is an unchanged file.
"""

import os
import re
import statistics
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402 (the backend is chosen first)

plt.rcParams["figure.constrained_layout.use"] = True

# The single-thread ceiling and the Store peers are not peer maps.
NOT_PEERS = ("absl-nolock",)
KVSTORE = "kvstore"
# One colour and marker per peer, the same in every chart.
STYLE = {
    "kvstore": ("#d62728", "o"), "libcuckoo": ("#1f77b4", "s"), "tkrzw": ("#2ca02c", "^"),
    "tbb": ("#9467bd", "v"), "absl": ("#8c564b", "D"), "unordered_map": ("#7f7f7f", "x"),
    "absl-nolock": ("#bcbd22", "*"), "store-none": ("#ff7f0e", "o"), "store-relaxed": ("#e377c2", "s"),
    "store-group": ("#17becf", "^"), "store-sync": ("#000000", "v"),
}


def style(peer_id):
    return STYLE.get(peer_id, ("#333333", "."))


def step_data(results, name):
    return results["steps"].get(name, {}).get("data")


def save(figure, img_dir, name):
    os.makedirs(img_dir, exist_ok=True)
    path = os.path.join(img_dir, name)
    figure.savefig(path, metadata={"Date": None}, bbox_inches="tight")
    plt.close(figure)
    return path


def short_label(label):
    return re.sub(r" \(.*\)$", "", label)


def map_throughput(results, img_dir):
    caches = [c for c in ("warm", "cold") if step_data(results, "map-" + c)]
    if not caches:
        return None
    workloads = step_data(results, "map-" + caches[0])["workloads"]
    figure, axes = plt.subplots(len(caches), len(workloads), figsize=(3.2 * len(workloads), 3.2 * len(caches)),
                                squeeze=False, sharey="row")
    for row, cache in enumerate(caches):
        data = step_data(results, "map-" + cache)
        for column, workload in enumerate(workloads):
            ax = axes[row][column]
            for peer in data["peers"]:
                points = [(t, m) for t, m in zip(data["threads"], peer["mops"][column]) if m is not None]
                if not points:
                    continue
                colour, marker = style(peer["id"])
                ax.plot([p[0] for p in points], [p[1] for p in points], color=colour, marker=marker,
                        label=short_label(peer["label"]))
            ax.set_title("%s, %s keys" % (workload, cache), fontsize=9)
            ax.set_xticks(data["threads"])
            ax.set_xlabel("threads")
            ax.grid(alpha=0.3)
        axes[row][0].set_ylabel("M ops/s (total)")
    axes[0][0].legend(fontsize=7, loc="upper left")
    figure.suptitle("ConcurrentMap and peer maps, %d keys, %d-byte values" % (data["keys"], data["value_size"]))
    return save(figure, img_dir, "map-throughput.svg")


def map_memory(results, img_dir):
    data = step_data(results, "map-cold") or step_data(results, "map-warm")
    if not data:
        return None
    peers = [p for p in data["peers"] if p["bytes_per_entry"] is not None]
    figure, ax = plt.subplots(figsize=(7, 3.2))
    names = [short_label(p["label"]) for p in peers]
    positions = range(len(peers))
    ax.barh([i + 0.2 for i in positions], [p["bytes_per_entry"] for p in peers], height=0.4, label="after loading",
            color=[style(p["id"])[0] for p in peers])
    ax.barh([i - 0.2 for i in positions], [p["peak_bytes_per_entry"] or 0 for p in peers], height=0.4,
            label="peak while loading", color="#cccccc")
    raw = data["key_size"] + data["value_size"]
    ax.axvline(raw, color="black", linestyle="--", linewidth=1)
    ax.text(raw, len(peers) - 0.4, " raw key + value: %d" % raw, fontsize=8)
    ax.set_yticks(list(positions))
    ax.set_yticklabels(names, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("bytes per entry (lower is better)")
    ax.legend(fontsize=7, loc="lower right")
    ax.set_title("Memory per entry, %d keys, %d-byte keys, %d-byte values" % (data["keys"], data["key_size"],
                                                                             data["value_size"]), fontsize=10)
    return save(figure, img_dir, "map-memory.svg")


def two_thread_95_5(data):
    """{peer id: (label, 95/5 uniform M ops/s at the largest thread count, bytes/entry)}"""
    workload = data["workloads"].index("95/5")
    column = len(data["threads"]) - 1
    return {p["id"]: (short_label(p["label"]), p["mops"][workload][column], p["bytes_per_entry"])
            for p in data["peers"]}


def sweep_chart(results, img_dir, prefix, parameter, base_value, xlabel, name, title):
    """95/5 throughput and bytes/entry against a swept driver parameter."""
    points = {}
    for step, record in results["steps"].items():
        if not step.startswith(prefix) and step != "map-cold":
            continue
        data = record.get("data")
        if not data or (step == "map-cold" and data[parameter] != base_value):
            continue
        for peer_id, figures in two_thread_95_5(data).items():
            points.setdefault(peer_id, {})[data[parameter]] = figures
    if len(points.get(KVSTORE, {})) < 2:
        return None
    figure, (speed, memory) = plt.subplots(1, 2, figsize=(10, 3.6))
    for peer_id, by_value in points.items():
        values = sorted(by_value)
        colour, marker = style(peer_id)
        label = by_value[values[0]][0]
        speed.plot(values, [by_value[v][1] for v in values], color=colour, marker=marker, label=label)
        memory.plot(values, [by_value[v][2] for v in values], color=colour, marker=marker, label=label)
    for ax in (speed, memory):
        ax.set_xscale("log")
        ax.set_xlabel(xlabel)
        ax.grid(alpha=0.3)
    speed.set_ylabel("95/5 uniform, M ops/s, 2 threads")
    memory.set_ylabel("bytes per entry")
    if parameter == "value_size":
        memory.set_yscale("log")
    speed.legend(fontsize=7)
    figure.suptitle(title)
    return save(figure, img_dir, name)


def wal_durable(results, img_dir):
    data = step_data(results, "wal")
    if not data:
        return None
    figure, ax = plt.subplots(figsize=(7, 4))
    threads = data["threads"]
    for peer in data["peers"]:
        relaxed = peer["id"] == "relaxed"  # acknowledged before its sync: not a durable write
        ax.plot(threads, peer["records_per_second"], marker="o", linestyle="--" if relaxed else "-",
                label=peer["label"])
    raw = next((p for p in data["peers"] if p["id"] == "raw"), None)
    if raw:
        # One writer, one fdatasync per record: the disk's syncs per second.
        limit = raw["records_per_second"][0]
        ax.axhline(limit, color="black", linewidth=1, linestyle=":")
        ax.text(threads[0], limit * 1.08, "fdatasync limit: one sync per write, %.0f/s" % limit, fontsize=8)
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xticks(threads)
    ax.set_xticklabels([str(t) for t in threads])
    ax.set_xlabel("writer threads")
    ax.set_ylabel("acknowledged records/s")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7, loc="center right")
    ax.set_title("Write-ahead log, %d-byte values; %s" % (data["value_size"], data["disk"]), fontsize=9)
    return save(figure, img_dir, "wal-durable.svg")


def recovery(results, img_dir):
    runs = sorted((d["records"], d) for d in (step_data(results, s) for s in results["steps"]
                                              if s.startswith("recovery-")) if d)
    if len(runs) < 2:
        return None
    records = [r for r, _ in runs]
    figure, ax = plt.subplots(figsize=(6, 3.8))
    for key, label in (("open_from_log_seconds", "open, recovering from the log"),
                       ("checkpoint_seconds", "checkpoint (snapshot written)"),
                       ("open_from_snapshot_seconds", "open, recovering from the snapshot")):
        ax.plot(records, [d[key] for _, d in runs], marker="o", label=label)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("records (16-byte keys, %d-byte values)" % runs[0][1]["value_size"])
    ax.set_ylabel("seconds")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    ax.set_title("Store recovery and checkpoint time")
    return save(figure, img_dir, "recovery.svg")


def server_latency(results, img_dir):
    data = step_data(results, "server")
    if not data or not data["rows"]:
        return None
    rows = [r for r in data["rows"] if r["pipeline"] == 1]
    cells = []
    for persistence in ("off", "durable", "relaxed"):
        for command in ("set", "get"):
            cells.append((persistence, command))
    figure, axes = plt.subplots(1, 2, figsize=(10, 3.6), sharey=True)
    for ax, percentile in zip(axes, ("p50", "p99")):
        width = 0.4
        for offset, server in ((-width / 2, "kvstore"), (width / 2, "redis")):
            heights = []
            for persistence, command in cells:
                values = [r["%s_%s_ms" % (command, percentile)] for r in rows
                          if r["server"] == server and r["persistence"] == persistence]
                heights.append(statistics.median(values) if values else 0)
            ax.bar([i + offset for i in range(len(cells))], heights, width=width,
                   label="kvstore-server" if server == "kvstore" else "redis-server",
                   color="#d62728" if server == "kvstore" else "#1f77b4")
        ax.set_xticks(range(len(cells)))
        ax.set_xticklabels(["%s\n%s" % (c.upper(), p) for p, c in cells], fontsize=8)
        ax.set_title("%s latency, 50 clients, no pipelining" % percentile, fontsize=9)
        ax.grid(alpha=0.3, axis="y")
    axes[0].set_ylabel("ms")
    axes[0].legend(fontsize=8)
    return save(figure, img_dir, "server-latency.svg")


def store_policies(results, img_dir):
    data = step_data(results, "store")
    if not data:
        return None
    workloads = data["workloads"]
    column = len(data["threads"]) - 1
    figure, ax = plt.subplots(figsize=(9, 3.6))
    peers = data["peers"]
    width = 0.8 / len(peers)
    for i, peer in enumerate(peers):
        ax.bar([w + (i - len(peers) / 2 + 0.5) * width for w in range(len(workloads))],
               [m[column] or 0 for m in peer["mops"]], width=width, label=short_label(peer["label"]),
               color=style(peer["id"])[0])
    ax.set_xticks(range(len(workloads)))
    ax.set_xticklabels(workloads)
    ax.set_ylabel("M ops/s, %d threads" % data["threads"][column])
    ax.set_yscale("log")
    ax.grid(alpha=0.3, axis="y", which="both")
    ax.legend(fontsize=7, ncol=2)
    ax.set_title("Store under each durability policy against the bare map, %d keys" % data["keys"], fontsize=10)
    return save(figure, img_dir, "store-policies.svg")


def draw_charts(results, img_dir):
    charts = [
        map_throughput(results, img_dir),
        map_memory(results, img_dir),
        sweep_chart(results, img_dir, "map-keys-", "keys", results["keys"], "keys preloaded", "map-keys.svg",
                    "Growing key counts, cache-cold keys, 100-byte values"),
        sweep_chart(results, img_dir, "map-value-", "value_size", 100, "value bytes", "map-values.svg",
                    "Growing values, cache-cold keys, %d keys" % results["keys"]),
        wal_durable(results, img_dir),
        recovery(results, img_dir),
        server_latency(results, img_dir),
        store_policies(results, img_dir),
    ]
    return [c for c in charts if c]


def best_other(data, workload, threads):
    """(kvstore, best peer's figure, its label) for one workload and thread count."""
    w = data["workloads"].index(workload)
    t = data["threads"].index(threads)
    mine, best = None, (None, "")
    for peer in data["peers"]:
        value = peer["mops"][w][t]
        if value is None:
            continue
        if peer["id"] == KVSTORE:
            mine = value
        elif peer["id"] not in NOT_PEERS and (best[0] is None or value > best[0]):
            best = (value, short_label(peer["label"]))
    return mine, best[0], best[1]


def targets_table(results):
    rows = []

    def verdict(met):
        return "yes" if met else "**no**"

    for cache, floor in (("cold", 1.5), ("warm", 2.0)):
        data = step_data(results, "map-" + cache)
        if not data or 2 not in data["threads"]:
            continue
        mine, best, label = best_other(data, "95/5", 2)
        if mine and best:
            rows.append("| 95/5 uniform, 2 threads, cache-%s keys: kvstore / best peer | %.2f (%.2f / %.2f M ops/s, "
                        "%s) | ≥ %.1f | %s |" % (cache, mine / best, mine, best, label, floor,
                                                 verdict(mine / best >= floor)))
    data = step_data(results, "map-cold") or step_data(results, "map-warm")
    if data and data["key_size"] == 16 and data["value_size"] == 100:
        mine = next(p["bytes_per_entry"] for p in data["peers"] if p["id"] == KVSTORE)
        rows.append("| bytes per entry, 16-byte keys, 100-byte values | %.0f | ≤ 133 | %s |" % (mine, verdict(mine <= 133)))
    wal = step_data(results, "wal")
    if wal and 32 in wal["threads"] and 64 in wal["threads"]:
        group = next((p for p in wal["peers"] if p["id"] == "group"), None)
        if group:
            at32 = group["records_per_second"][wal["threads"].index(32)]
            at64 = group["records_per_second"][wal["threads"].index(64)]
            rows.append("| GroupCommitWAL durable records/s, 64 against 32 writers | %.0f / %.0f = %.2f | ≥ 1.00 | %s |"
                        % (at64, at32, at64 / at32, verdict(at64 >= at32)))
    if not rows:
        return ""
    return "| target | this run | floor | met |\n|---|---|---|---|\n" + "\n".join(rows) + "\n"


def machine_text(results):
    m = results["machine"]
    return ("%s, %s hardware threads (%s cache), %s GiB; %s, kernel %s; %s; transparent huge pages `%s`. "
            "Commit %s, %s; %d round(s) of %g s per cell, medians." % (
                m["cpu"], m["hardware_threads"], m["cache"], m["memory_gib"], m["os"], m["kernel"], m["compiler"],
                m["transparent_hugepages"], m["commit"], m["date"], results["rounds"], results["seconds"]))


def steps_table(results):
    lines = ["| step | seconds | load average before → after | host steal |", "|---|---|---|---|"]
    for name, record in results["steps"].items():
        lines.append("| %s | %.0f | %s → %s | %.1f %% |" % (
            name, record["seconds"], " ".join(record["load_average_before"].split()[:3]),
            " ".join(record["load_average_after"].split()[:3]), record["steal_percent"]))
    return "\n".join(lines) + "\n"


def step_section(results, prefix):
    """Each step whose name starts with `prefix`: its title, command and tables."""
    parts = []
    for name, record in results["steps"].items():
        if name != prefix and not name.startswith(prefix + "-"):
            continue
        parts.append("#### %s\n\n```sh\n%s\n```\n\n%s\n" % (record["title"], record["command"], record["markdown"]))
    return "\n".join(parts) if parts else "_Not run: see the missing peers above._\n"


def render_page(results, template_path):
    with open(template_path) as file:
        page = file.read()
    missing = ", ".join(results["missing"]) or "none"
    fields = {
        "machine": machine_text(results),
        "missing": missing,
        "targets": targets_table(results),
        "steps": steps_table(results),
    }
    for prefix in ("map-warm", "map-cold", "map-value", "map-keys", "store", "wal", "recovery", "server"):
        fields["section " + prefix] = step_section(results, prefix)
    return re.sub(r"\{\{([a-z -]+)\}\}", lambda m: fields[m.group(1)], page)


if __name__ == "__main__":
    import json

    if len(sys.argv) != 4:
        sys.exit("usage: report.py RESULTS.json IMG_DIR PAGE.md")
    with open(sys.argv[1]) as results_file:
        loaded = json.load(results_file)
    for chart in draw_charts(loaded, sys.argv[2]):
        print(chart)
    page_text = render_page(loaded, os.path.join(os.path.dirname(os.path.abspath(__file__)), "report.md.in"))
    with open(sys.argv[3], "w") as page_file:
        page_file.write(page_text)
