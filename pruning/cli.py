"""`python -m pruning ...`: the same engine and numbers as the app, headless (DESIGN §8).

Exit codes: 0 success, 2 bad input (one line on stderr, no traceback), 1 internal error.
"""
from __future__ import annotations

import argparse
import json
import math
import shutil
import sys
from typing import Any, Callable, Optional, Sequence

from .errors import BadInput


def _clean(value: Any) -> Any:
    """JSON-safe: NaN/Inf become null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


def print_json(obj: Any) -> None:
    print(json.dumps(_clean(obj), indent=2, allow_nan=False))


def _progress(fraction: float, message: str) -> None:
    print(f"[{fraction:6.1%}] {message}", file=sys.stderr)


def cmd_prune(args: argparse.Namespace) -> int:
    from .executor import make_executor
    from .specs import DataRef, ModelRef, PruneSpec

    layers = tuple(name for name in args.layers.split(",") if name) if args.layers is not None else None
    spec = PruneSpec(
        model=ModelRef.parse(args.model), data=DataRef.parse(args.dataset), method=args.method,
        sparsity=args.sparsity, scope=args.scope, layers=layers,
        finetune_epochs=args.finetune_epochs, seed=args.seed,
    )
    report = make_executor().prune(spec, on_progress=None if args.json else _progress)
    if args.out:
        shutil.copyfile(report.model_path, args.out)
    if args.json:
        print_json(report.to_json_dict())
        return 0
    derived = report.derived()
    print(f"{report.method} ({report.granularity}, scope {spec.scope}) on {spec.model.label} / {spec.data.name}")
    print(f"sparsity: requested {report.target_sparsity:.2%}, measured {report.sparsity:.2%}")
    rows = [
        ("accuracy", "accuracy", "{:.4f}"), ("robust accuracy", "robust_accuracy", "{:.4f}"),
        ("nonzero params", "nonzero_params", "{:,}"), ("effective FLOPs", "effective_flops", "{:,}"),
        ("gzip size (bytes)", "gzip_bytes", "{:,}"), ("latency (ms/batch)", "latency_ms", "{:.3f}"),
    ]
    print(f"{'metric':<20}{'baseline':>14}{'pruned':>14}")
    for label, key, fmt in rows:
        print(f"{label:<20}{fmt.format(report.baseline[key]):>14}{fmt.format(report.pruned[key]):>14}")
    print(f"accuracy loss {derived['accuracy_loss']:+.4f}, speedup {derived['speedup']:.2f}x, "
          f"size reduction {derived['size_reduction']:.1%}")
    for note in report.notes:
        print(f"note: {note}")
    print(report.layers[["name", "type", "params", "nonzero_params", "sparsity", "shape_before", "shape_after"]]
          .to_string(index=False))
    if args.out:
        print(f"pruned model saved to {args.out}")
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    from .zoo import ZOO

    for name, entry in ZOO.items():
        print(f"{name:<10} {entry.description} (trained {entry.epochs} epochs on first use)")
    return 0


def cmd_datasets(args: argparse.Namespace) -> int:
    from .datasets import DATASETS

    notes = {"digits": "scikit-learn's bundled 8x8 digits (offline)"}
    for name in DATASETS:
        print(f"{name:<14} {notes.get(name, 'keras.datasets (downloaded on first use)')}")
    print(f"{'FILE.npz':<14} x_test, y_test (and x_train, y_train for training)")
    return 0


def cmd_methods(args: argparse.Namespace) -> int:
    from .methods import METHODS

    for method in METHODS.values():
        print(f"{method.name:<12} {method.granularity:<13} {method.description}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m pruning", description="PruneScope, headless.")
    sub = parser.add_subparsers(dest="command", required=True)

    prune = sub.add_parser("prune", help="prune one model at one sparsity and measure it")
    prune.add_argument("--model", required=True, help="zoo name or a .keras/.h5 path")
    prune.add_argument("--dataset", required=True, help="dataset name or an .npz path")
    prune.add_argument("--method", required=True)
    prune.add_argument("--sparsity", required=True, type=float)
    prune.add_argument("--scope", default="layer", choices=["layer", "global"])
    prune.add_argument("--layers", default=None, help="comma-separated layers to prune (default: all prunable)")
    prune.add_argument("--finetune-epochs", type=int, default=0)
    prune.add_argument("--seed", type=int, default=0)
    prune.add_argument("--out", default=None, help="save the pruned model to this .keras file")
    prune.add_argument("--json", action="store_true", help="print one JSON object")
    prune.set_defaults(run=cmd_prune)

    for name, fn in (("models", cmd_models), ("datasets", cmd_datasets), ("methods", cmd_methods)):
        sub.add_parser(name, help=f"list the available {name}").set_defaults(run=fn)
    return parser




def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse already printed a one-line usage error
        return 2 if exc.code else 0
    run: Callable[[argparse.Namespace], int] = args.run
    try:
        return run(args)
    except BadInput as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # an internal error: say so in one line, keep the trace out
        print(f"internal error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
