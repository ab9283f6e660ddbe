"""The seed's ResNet-v1 table on real data: resnet20 on MNIST (8,000 train / 2,000 test).

Magnitude one-shot and gradual pruning with fine-tuning at 0-95 % sparsity, printed as
the two Markdown tables that BENCHMARKS.md shows beside the seed's own numbers.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.mnist_npz import build_mnist_npz  # noqa: E402
from pruning.methods import METHODS  # noqa: E402
from pruning.paths import home  # noqa: E402
from pruning.run.engine import Engine  # noqa: E402
from pruning.specs import REFERENCE_SPARSITIES, DataRef, ModelRef, SweepSpec  # noqa: E402
from pruning.tables import to_markdown  # noqa: E402


def progress(fraction: float, message: str) -> None:
    print(f"[{fraction:6.1%}] {message}", file=sys.stderr, flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--baseline-epochs", type=int, default=6, help="resnet20 training epochs (trained once, cached)")
    parser.add_argument("--finetune-epochs", type=int, default=1, help="fine-tuning epochs per gradual point")
    parser.add_argument("--rates", default=",".join(str(r) for r in REFERENCE_SPARSITIES))
    parser.add_argument("--json", default=None, help="also write both reports' rows here")
    args = parser.parse_args()
    rates = tuple(float(r) for r in args.rates.split(","))
    data = DataRef.parse(str(build_mnist_npz(home() / "bench" / "mnist-t10k-8k2k.npz")))
    model = ModelRef("resnet20", epochs=args.baseline_epochs)
    engine = Engine()
    t0 = time.perf_counter()
    baseline = engine.baseline(model, data, on_progress=progress)
    print(f"baseline: {baseline.description}; loaded/trained in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    # gradual is tfmot's PolynomialDecay schedule inside the fine-tune epochs; without it,
    # one-shot magnitude followed by masked fine-tuning stands in
    tuned_method = "gradual" if "gradual" in METHODS else "magnitude"
    runs = {
        "magnitude, one-shot": SweepSpec(model=model, data=data, methods=("magnitude",), sparsities=rates),
        f"{tuned_method} + {args.finetune_epochs} fine-tune epoch(s)": SweepSpec(
            model=model, data=data, methods=(tuned_method,), sparsities=rates, finetune_epochs=args.finetune_epochs),
    }
    out = {"baseline": baseline.metrics, "description": baseline.description, "environment": baseline.environment}
    for title, spec in runs.items():
        report = engine.sweep(spec, on_progress=progress)
        print(f"\n### {title} (resnet20, MNIST 8,000 / 2,000; dense test accuracy "
              f"{report.baseline['accuracy']:.2%}, 95% CI +-{report.rows.accuracy_ci95.iloc[0]:.2%})\n")
        print(to_markdown(report.table()))
        t = report.timing_s
        print(f"\ntiming: prune {t['prune']:.1f} s, fine-tune {t['finetune']:.1f} s, evaluate {t['evaluate']:.1f} s, "
              f"measure {t['measure']:.1f} s, total {t['total']:.1f} s")
        out[title] = report.to_json_dict()
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
