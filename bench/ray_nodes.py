"""Ray executor throughput on 1, 2 and 3 nodes of a multi-node cluster on this machine (issue 13 part 1).

Each size is its own `ray.cluster_utils.Cluster` (the head plus n-1 worker nodes, each a raylet of
`--cpus-per-node` CPUs, one actor per CPU), joined through RAY_ADDRESS; the same sweep on each, in
one run. Each actor loads the model and runs one point before the clock starts. On a machine with
fewer cores than nodes this measures the cost of spreading over raylets, not a speedup.
"""
from __future__ import annotations

import argparse
import json
import os
import socket
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from pruning.executors.ray_actors import RayExecutor  # noqa: E402
from pruning.specs import FINE_SPARSITIES, SweepSpec  # noqa: E402
from ray_throughput import add_model_arguments, measure, model_refs, warm  # noqa: E402


def start_cluster(nodes: int, cpus: int):
    """A head and `nodes - 1` workers, `cpus` CPUs each, the head's GCS on a free port."""
    from ray.cluster_utils import Cluster

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    store = 100 * 1024 * 1024
    cluster = Cluster(initialize_head=True, head_node_args={
        "num_cpus": cpus, "gcs_server_port": port, "include_dashboard": False, "object_store_memory": store})
    for _ in range(nodes - 1):
        cluster.add_node(num_cpus=cpus, object_store_memory=store)
    cluster.wait_for_nodes()
    return cluster


def points_by_node(executor: RayExecutor) -> Counter:
    """Sweep points run so far by each node's actors."""
    found: Counter = Counter()
    for about in executor.slots():
        found[about["node"]] += about["ran"].get("sweep_point", 0)
    return found


def run_size(nodes: int, cpus: int, spec: SweepSpec) -> dict:
    """`spec` on a fresh cluster of `nodes` nodes, warmed first; the cluster is shut down after."""
    started = time.perf_counter()
    cluster = start_cluster(nodes, cpus)
    up_s = time.perf_counter() - started
    os.environ["RAY_ADDRESS"] = cluster.address
    executor = RayExecutor(log_to_driver=False)
    try:
        actors = len(executor.slots())
        warm(executor, spec, actors)
        before = points_by_node(executor)
        timed = measure(executor, spec)
        return {"nodes": nodes, "num_cpus_per_node": cpus, "actors": actors, "cluster_start_s": up_s, **timed,
                "points_per_node": sorted((points_by_node(executor) - before).values(), reverse=True),
                "resources": executor.resources()}
    finally:
        executor.shutdown()
        cluster.shutdown()
        os.environ.pop("RAY_ADDRESS", None)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    add_model_arguments(parser)
    parser.add_argument("--nodes", default="1,2,3", help="cluster sizes to compare, comma-separated")
    parser.add_argument("--cpus-per-node", type=int, default=1, help="num_cpus each raylet declares")
    parser.add_argument("--points", type=int, default=20,
                        help=f"magnitude points, the first of FINE_SPARSITIES (1-{len(FINE_SPARSITIES)})")
    args = parser.parse_args()
    if not 1 <= args.points <= len(FINE_SPARSITIES):
        parser.error(f"--points must be in 1-{len(FINE_SPARSITIES)}, not {args.points}")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    os.environ.pop("RAY_ADDRESS", None)
    model, data = model_refs(args)
    spec = SweepSpec(model=model, data=data, sparsities=FINE_SPARSITIES[:args.points])
    runs = [run_size(int(n), args.cpus_per_node, spec) for n in args.nodes.split(",")]
    result = {"model": args.model, "dataset": args.dataset, "machine_cores": os.cpu_count(),
              "load_average_after": os.getloadavg(), "runs": runs,
              "throughput_vs_first": [r["points_per_s"] / runs[0]["points_per_s"] for r in runs]}
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
