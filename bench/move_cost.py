"""What a fresh slider move costs beyond pruning and evaluation, before and after issue 11.

Goals (issue 11): a fresh prune through the worker executor costs total / (prune + evaluate)
<= 2.0 on keras.applications ResNet50, MobileNetV2 and the default model (mlp; and cnn) (`cards_s`: when its
evaluated phase, the metric cards, reached the caller); a 20-point one-shot sweep on resnet20
and on ResNet50 has timing_s.measure / timing_s.evaluate <= 1.0. `--trees A,B` runs each case
on each source tree (e.g. the base commit unpacked with `git archive`) in one run.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve()


def make_files(folder: Path) -> dict[str, tuple[str, str]]:
    """ResNet50 and MobileNetV2 (weights=None, 32x32x3, 10 classes) saved with tf_keras, and
    a small .npz of random data; (model, dataset) per case."""
    import numpy as np

    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    import tf_keras as keras

    folder.mkdir(parents=True, exist_ok=True)
    data = folder / "random32.npz"
    if not data.exists():
        rng = np.random.default_rng(0)
        np.savez(data, x_test=rng.random((32, 32, 32, 3), dtype=np.float32), y_test=rng.integers(0, 10, 32),
                 x_train=rng.random((64, 32, 32, 3), dtype=np.float32), y_train=rng.integers(0, 10, 64))
    cases = {}
    for name, build in (("resnet50", keras.applications.ResNet50), ("mobilenetv2", keras.applications.MobileNetV2)):
        path = folder / f"{name}.keras"
        if not path.exists():
            build(weights=None, input_shape=(32, 32, 3), classes=10).save(path)
        cases[name] = (str(path), str(data))
    cases["cnn"] = ("cnn", "digits")
    cases["mlp"] = ("mlp", "digits")  # the first screen's model (ui/state.py DEFAULT_MODEL)
    return cases


def one_move(model: str, dataset: str, sparsities: list[float]) -> dict:
    """In the tree on PYTHONPATH: open the model in a worker, then time fresh prunes."""
    from pruning.executors.worker import WorkerExecutor
    from pruning.specs import DataRef, ModelRef, PruneSpec

    ref, data = ModelRef.parse(model), DataRef.parse(dataset)
    executor = WorkerExecutor()
    try:
        t0 = time.perf_counter()
        executor.baseline(ref, data)
        open_s = time.perf_counter() - t0
        moves = []
        for rate in sparsities:
            spec = PruneSpec(model=ref, data=data, method="magnitude", target_sparsity=rate)
            evaluated: list[float] = []
            t0 = time.perf_counter()
            report = executor.prune(spec, on_evaluated=lambda view: evaluated.append(time.perf_counter() - t0))
            total = time.perf_counter() - t0
            t = report.timing_s
            move = {"sparsity": rate, "total_s": total, "timing_s": t, "cards_s": evaluated[0] if evaluated else None,
                    "ratio": total / (t["prune"] + t["evaluate"])}
            if hasattr(executor, "save"):  # after issue 11: the file is written when stored or downloaded
                t0 = time.perf_counter()
                executor.save(spec, str(Path(os.environ["PRUNESCOPE_HOME"]) / "bench-move.keras"))
                move["save_s"] = time.perf_counter() - t0
            moves.append(move)
        return {"open_s": open_s, "moves": moves}
    finally:
        executor.stop()


def sweep(model: str, dataset: str) -> dict:
    from pruning.run.sweep import run_sweep
    from pruning.run.workbench import Workbench
    from pruning.specs import FINE_SPARSITIES, DataRef, ModelRef, SweepSpec

    ref, data = ModelRef.parse(model), DataRef.parse(dataset)
    bench = Workbench(ref, data)
    spec = SweepSpec(model=ref, data=data, methods=("magnitude",), sparsities=FINE_SPARSITIES)
    bench.baseline_metrics(spec.point("magnitude", 0.0))
    t = run_sweep(bench, spec).timing_s
    return {"timing_s": t, "measure_over_evaluate": t["measure"] / t["evaluate"]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--trees", default=str(HERE.parents[1]), help="comma-separated source trees")
    parser.add_argument("--cases", default="mlp,cnn,mobilenetv2,resnet50")
    parser.add_argument("--sparsities", default="0.5,0.7")
    parser.add_argument("--files", default="/tmp/prunescope-bench-models")
    parser.add_argument("--sweep", default="resnet20:digits,resnet50",
                        help="20-point sweeps: model:dataset pairs or cases above, comma-separated ('' skips)")
    parser.add_argument("--one", nargs=2, help=argparse.SUPPRESS)
    parser.add_argument("--sweep-one", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one_move(*args.one, [float(s) for s in args.sparsities.split(",")])))
        return 0
    if args.sweep_one:
        print(json.dumps(sweep(*args.sweep_one)))
        return 0
    cases = make_files(Path(args.files))
    results = []
    for name in filter(None, args.cases.split(",")):
        for tree in args.trees.split(","):
            env = dict(os.environ, PYTHONPATH=tree)
            out = subprocess.run([sys.executable, str(HERE), "--one", *cases[name], "--sparsities", args.sparsities],
                                 env=env, cwd=tree, capture_output=True, text=True)
            if out.returncode:
                print(out.stderr[-3000:], file=sys.stderr)
                return 1
            row = {"case": name, "tree": tree, **json.loads(out.stdout.strip().splitlines()[-1])}
            results.append(row)
            print(json.dumps(row), flush=True)
    for target in filter(None, args.sweep.split(",")):
        pair = cases[target] if target in cases else target.split(":")
        for tree in args.trees.split(","):
            out = subprocess.run([sys.executable, str(HERE), "--sweep-one", *pair],
                                 env=dict(os.environ, PYTHONPATH=tree), cwd=tree, capture_output=True, text=True)
            if out.returncode:
                print(out.stderr[-3000:], file=sys.stderr)
                return 1
            row = {"case": f"sweep {target}", "tree": tree, **json.loads(out.stdout.strip().splitlines()[-1])}
            print(json.dumps(row), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
