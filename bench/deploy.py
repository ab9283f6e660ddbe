"""Deploy benchmark: int8 TFLite of a pruned MNIST cnn (size and accuracy under the interpreter), and
Keras vs TFLite float32 vs int8 latency and inference memory, dense / masks / filters-l1, cnn and resnet20.

    PRUNESCOPE_HOME=/tmp/ps-bench-deploy python bench/deploy.py [--skip-latency]
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from mnist_npz import SOURCE, build_mnist_npz  # noqa: E402

from pruning.paths import home  # noqa: E402
from pruning.run.engine import Engine  # noqa: E402
from pruning.runs.export import deploy_summary, stored_deploy  # noqa: E402
from pruning.runs.store import RunStore  # noqa: E402
from pruning.specs import DataRef, DeploySpec, ModelRef, PruneSpec  # noqa: E402


def deployed(store: RunStore, engine: Engine, spec: PruneSpec, options: DeploySpec) -> dict:
    run_id, _ = store.record_prune(spec, lambda: engine.prune(spec), save=lambda path: engine.save(spec, path))
    report = stored_deploy(store, run_id, options)
    return deploy_summary(store.get(run_id), report)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--skip-latency", action="store_true")
    parser.add_argument("--pqat-epochs", type=int, default=0)
    parser.add_argument("--only-mnist", action="store_true")
    args = parser.parse_args()
    store, engine = RunStore(home() / "runs.db"), Engine(2)
    # ../shared beside the checkout, or two levels up for a worktree under /work/wt/
    source = next((p for p in (SOURCE, ROOT.parents[1] / "shared" / "data" / "mnist-t10k") if p.is_dir()), SOURCE)
    mnist = DataRef.parse(str(build_mnist_npz(home() / "mnist-8k-2k.npz", source)))
    options = DeploySpec(representative_samples=256, latency_calls=20, pqat_epochs=args.pqat_epochs)
    out: dict = {}

    start = time.perf_counter()
    spec = PruneSpec(model=ModelRef("cnn"), data=mnist, method="magnitude", target_sparsity=0.8, finetune_epochs=2)
    s = deployed(store, engine, spec, options)
    out["mnist_cnn_80"] = {"waterfall": s["waterfall"], "int8": s["int8"], "derived": s["derived"],
                           "baseline_accuracy": s["baseline"]["accuracy"], "seconds": time.perf_counter() - start}
    print(json.dumps(out["mnist_cnn_80"], indent=1, default=str), flush=True)
    dense_stored = DeploySpec(representative_samples=256, latency_calls=20, sparse_encoding=False)
    s = deploy_summary(store.get(store.list(kind="prune")[0].id), stored_deploy(store, store.list(kind="prune")[0].id,
                                                                                 dense_stored))
    out["mnist_cnn_80_no_sparse_encoding"] = {"int8": s["int8"], "derived": s["derived"]}
    print(json.dumps(out["mnist_cnn_80_no_sparse_encoding"], indent=1, default=str), flush=True)
    if args.only_mnist:
        return

    if not args.skip_latency:
        digits = DataRef("digits")
        for model in ("cnn", "resnet20"):
            for label, method, target in (("dense", "magnitude", 0.0), ("masks", "magnitude", 0.8),
                                          ("filters-l1", "filters-l1", 0.5)):
                start = time.perf_counter()
                spec = PruneSpec(model=ModelRef(model), data=digits, method=method, target_sparsity=target)
                s = deployed(store, engine, spec, DeploySpec(representative_samples=128, latency_calls=20))
                rows = {r["artifact"]: r for r in s["artifacts"]}
                keras_rows = {r["model"]: r for r in s["keras"]}
                point = {
                    "keras_ms": keras_rows["pruned"]["latency_ms"],
                    "f32_1t_ms": rows["pruned float32"]["latency_1t_ms"],
                    "f32_all_ms": rows["pruned float32"]["latency_all_ms"],
                    "int8_1t_ms": rows["pruned int8"]["latency_1t_ms"],
                    "int8_all_ms": rows["pruned int8"]["latency_all_ms"],
                    "keras_memory": keras_rows["pruned"]["memory_bytes"],
                    "f32_memory": rows["pruned float32"]["memory_bytes"],
                    "int8_memory": rows["pruned int8"]["memory_bytes"],
                    "accuracy": keras_rows["pruned"]["accuracy"], "int8_accuracy": rows["pruned int8"]["accuracy"],
                    "int8_sparsity": rows["pruned int8"]["sparsity"], "threads": s["threads"],
                    "seconds": time.perf_counter() - start,
                }
                out[f"{model}_{label}"] = point
                print(model, label, json.dumps(point), flush=True)
    (home() / "bench-deploy.json").write_text(json.dumps(out, indent=1, default=str))


if __name__ == "__main__":
    main()
