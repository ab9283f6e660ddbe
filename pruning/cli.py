"""`python -m pruning ...`: the same engine and numbers as the app, headless (DESIGN §8).

Exit codes: 0 success, 2 bad input (one line on stderr, no traceback), 1 internal error.
"""
from __future__ import annotations

import argparse
import json
import sys
from typing import Any, Callable, Optional, Sequence

from .errors import BadInput
from .plain import to_plain
from .specs import parse_sparsities


def print_json(obj: Any) -> None:
    print(json.dumps(to_plain(obj), indent=2, allow_nan=False))


def _progress(fraction: float, message: str) -> None:
    print(f"[{fraction:6.1%}] {message}", file=sys.stderr)


def _prune_spec(args: argparse.Namespace):
    """(spec, recipe or None) from either --recipe FILE or --model/--dataset/--method/--sparsity."""
    from .specs import DataRef, ModelRef, PruneSpec

    given = [flag for flag, value in (("--model", args.model), ("--dataset", args.dataset),
                                      ("--method", args.method), ("--sparsity", args.sparsity)) if value is not None]
    if args.recipe:
        from .runs.export import read_recipe

        if given or args.layers is not None:
            raise BadInput(f"--recipe fixes the whole spec: drop {', '.join(given or ['--layers'])}")
        recipe = read_recipe(args.recipe)
        return recipe.spec, recipe
    if len(given) < 4:
        missing = [f for f in ("--model", "--dataset", "--method", "--sparsity") if f not in given]
        raise BadInput(f"prune needs {', '.join(missing)} (or --recipe FILE from `python -m pruning export`)")
    layers = tuple(name for name in args.layers.split(",") if name) if args.layers is not None else None
    spec = PruneSpec(
        model=ModelRef.parse(args.model), data=DataRef.parse(args.dataset), method=args.method,
        target_sparsity=args.sparsity, scope=args.scope, layers=layers,
        finetune_epochs=args.finetune_epochs, seed=args.seed, mixed_precision=args.mixed_precision,
        recalibrate_bn=args.recalibrate_bn,
    )
    return spec, None


def cmd_prune(args: argparse.Namespace) -> int:
    from .executors.base import make_executor
    from .runs.store import open_store

    spec, recipe = _prune_spec(args)
    executor = make_executor(args.executor)
    # stored like app runs: running -> completed | failed | interrupted
    run_id, report = open_store().record_prune(
        spec, lambda: executor.prune(spec, on_progress=None if args.json else _progress), source="cli",
        save=lambda path: executor.save(spec, path),  # the run's model file, written once here
    )
    check = None
    if recipe is not None:
        from .runs.export import recipe_check

        check = recipe_check(recipe, report.sparsity, {report.metric: report.pruned[report.metric]})
        if not check["reproduced"]:
            print(f"warning: measured {check['measured']} but the recipe's run measured {check['expected']} "
                  f"(device {report.environment.get('device')} vs {recipe.environment.get('device')})",
                  file=sys.stderr)
    if args.out:
        from .model.keras3 import write_pruned  # Keras 3 in, Keras 3 out (DESIGN §8)

        write_pruned(report.model_path, args.out, spec, args.out_format)
    if args.json:
        print_json({**report.to_json_dict(), "run_id": run_id, **({"recipe_check": check} if check else {})})
        return 0
    derived = report.derived()
    print(f"{report.method} ({report.granularity}, scope {spec.scope}) on {spec.model.label} / {spec.data.name}")
    print(f"sparsity: requested {report.target_sparsity:.2%}, measured {report.sparsity:.2%}")
    metric = report.metric
    rows = [
        (metric, metric, "{:.4f}"), (f"robust {metric}", f"robust_{metric}", "{:.4f}"),
        ("nonzero params", "nonzero_params", "{:,}"), ("effective FLOPs", "effective_flops", "{:,}"),
        ("gzip size (bytes)", "gzip_bytes", "{:,}"), ("latency (ms/batch)", "latency_ms", "{:.3f}"),
    ]
    print(f"{'metric':<20}{'baseline':>14}{'pruned':>14}")
    for label, key, fmt in rows:
        print(f"{label:<20}{fmt.format(report.baseline[key]):>14}{fmt.format(report.pruned[key]):>14}")
    change = (f"accuracy loss {derived['accuracy_loss']:+.4f}" if metric == "accuracy"
              else f"{metric} change {derived['metric_change']:+.4f} (positive: worse)")
    print(f"{change}, speedup {derived['speedup']:.2f}x, "
          f"size reduction {derived['size_reduction']:.1%}")
    for note in report.notes:
        print(f"note: {note}")
    print(report.layers[["name", "type", "params", "nonzero_params", "sparsity", "shape_before", "shape_after"]]
          .to_string(index=False))
    if args.out:
        print(f"pruned model saved to {args.out}")
    if check is not None:
        print(f"recipe {'reproduced' if check['reproduced'] else 'NOT reproduced'}: sparsity {report.sparsity:.6f} "
              f"(recipe {check['expected'].get('sparsity', float('nan')):.6f}), {metric} {report.pruned[metric]:.6f} "
              f"(recipe {check['expected'].get(metric, float('nan')):.6f})")
    print(f"stored as run {run_id} (python -m pruning runs)")
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    from .model.zoo import ZOO

    for name, entry in ZOO.items():
        print(f"{name:<10} {entry.description} (trained {entry.epochs} epochs on first use)")
    return 0


def cmd_datasets(args: argparse.Namespace) -> int:
    from .model.datasets import DATASETS

    notes = {"digits": "scikit-learn's bundled 8x8 digits (offline)"}
    for name in DATASETS:
        print(f"{name:<14} {notes.get(name, 'keras.datasets (downloaded on first use)')}")
    print(f"{'FILE.npz':<14} x_test, y_test (and x_train, y_train for training)")
    return 0


def cmd_methods(args: argparse.Namespace) -> int:
    from .methods import METHODS

    width = max(len(name) for name in METHODS)
    for method in METHODS.values():
        print(f"{method.name:<{width}}  {method.granularity:<13} {method.description}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m pruning", description="PruneScope, headless.")
    sub = parser.add_subparsers(dest="command", required=True)

    prune = sub.add_parser("prune", help="prune one model at one sparsity and measure it")
    # required unless --recipe gives the whole spec (checked in _prune_spec, exit 2)
    prune.add_argument("--model", help="zoo name or a .keras/.h5 path")
    prune.add_argument("--dataset", help="dataset name or an .npz path")
    prune.add_argument("--method")
    prune.add_argument("--sparsity", type=float)
    prune.add_argument("--recipe", default=None, help="a recipe JSON from `export --format recipe`: re-run that spec")
    prune.add_argument("--scope", default="layer", choices=["layer", "global"])
    prune.add_argument("--layers", default=None, help="comma-separated layers to prune (default: all prunable)")
    prune.add_argument("--finetune-epochs", type=int, default=0)
    prune.add_argument("--recalibrate-bn", action="store_true",
                       help="re-estimate BatchNorm statistics on training data after pruning")
    prune.add_argument("--mixed-precision", action="store_true",
                       help="fine-tune in mixed float16 on a GPU with compute capability >= 7.0")
    prune.add_argument("--seed", type=int, default=0)
    prune.add_argument("--out", default=None, help="save the pruned model to this .keras file")
    prune.add_argument("--out-format", default=None, choices=["keras2", "keras3"],
                       help="the --out file's Keras (default: the one the model came in; zoo models keras2)")
    prune.add_argument("--json", action="store_true", help="print one JSON object")
    add_executor_option(prune)
    prune.set_defaults(run=cmd_prune)

    for name, fn in (("models", cmd_models), ("datasets", cmd_datasets), ("methods", cmd_methods)):
        sub.add_parser(name, help=f"list the available {name}").set_defaults(run=fn)
    add_run_commands(sub)
    add_sweep_command(sub)
    add_sensitivity_command(sub)
    return parser




# -- the run store: runs, export, report ------------------------------------------------
def cmd_runs(args: argparse.Namespace) -> int:
    from .runs.store import open_store

    runs = open_store().list(kind=args.kind, model=args.model, dataset=args.dataset, method=args.method)
    rows = [run.summary() for run in runs]
    if args.json:
        print_json(rows)
        return 0
    if not rows:
        print("no runs stored yet: `python -m pruning prune ...` stores one")
        return 0

    def cell(value: Any, fmt: str) -> str:
        return "-" if value is None else fmt.format(value)

    print(f"{'id':>5}  {'kind':<11} {'status':<11} {'model':<14} {'dataset':<12} {'method':<12} "
          f"{'target':>7} {'sparsity':>8} {'accuracy':>8} {'gzip bytes':>11}  name")
    for r in rows:
        print(f"{r['id']:>5}  {r['kind']:<11} {r['status']:<11} {r['model'][:14]:<14} {r['dataset'][:12]:<12} "
              f"{r['method'][:12]:<12} {cell(r['target_sparsity'], '{:.2f}'):>7} {cell(r['sparsity'], '{:.4f}'):>8} "
              f"{cell(r['accuracy'], '{:.4f}'):>8} {cell(r['gzip_bytes'], '{:,}'):>11}  {r['name']}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from .runs.export import EXPORTERS, ExportError
    from .runs.store import open_store
    from .specs import DeploySpec

    store = open_store()
    run = store.get(args.run_id)
    try:
        if args.format == "tflite-int8":
            options = DeploySpec(representative_samples=args.representative_samples, interface=args.interface,
                                 pqat_epochs=args.pqat_epochs, sparse_encoding=not args.no_sparse_encoding)
            result = EXPORTERS[args.format](run, args.out, store, options)
        else:
            result = EXPORTERS[args.format](run, args.out, store)
    except ExportError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print_json(result if isinstance(result, dict) else {"run_id": run.id, "format": args.format,
                                                            "out": str(args.out)})
        return 0
    if hasattr(result, "agreement"):
        print(f"TFLite agrees with Keras on {result.agreement:.4%} of {result.samples:,} test predictions "
              f"(largest output difference {result.max_abs_diff:.2g}); {result.size_bytes:,} bytes, "
              f"{result.gzip_bytes:,} gzipped")
    if isinstance(result, dict) and "int8" in result:
        int8, metric = result["int8"], result["metric"]
        print(f"{int8['artifact']} ({result['interface']} interface): {metric} {int8[metric]:.4f} "
              f"(TFLite interpreter, test split; dense Keras {result['baseline'][metric]:.4f}), "
              f"sparsity in its tensors {int8['sparsity']:.4f}, {int8['bytes']:,} bytes, {int8['gzip_bytes']:,} "
              f"gzipped ({result['derived']['int8_gzip_size_ratio']:.1f}x smaller than the dense .keras), "
              f"memory {int8['memory_bytes']:,} bytes")
    print(f"run {run.id} exported as {args.format} to {args.out}")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from .runs.report import write_report
    from .runs.store import open_store

    path = write_report(open_store(), args.run_id, args.out)
    print(f"report of run {args.run_id} written to {path} (one file, opens offline)")
    return 0


def add_run_commands(sub) -> None:
    from .runs.export import (
        EXPORTERS,  # light: TensorFlow loads only when a model is converted
    )

    runs = sub.add_parser("runs", help="list stored runs (newest first)")
    runs.add_argument("--kind", choices=["prune", "sweep", "sensitivity"])
    runs.add_argument("--model")
    runs.add_argument("--dataset")
    runs.add_argument("--method")
    runs.add_argument("--json", action="store_true", help="print a JSON list")
    runs.set_defaults(run=cmd_runs)

    export = sub.add_parser("export", help="export a stored run: its pruned model or a recipe")
    export.add_argument("run_id", type=int)
    export.add_argument("--format", required=True, choices=list(EXPORTERS))
    export.add_argument("--out", required=True)
    export.add_argument("--json", action="store_true",
                        help="print one JSON object (tflite-int8: the deploy report, waterfall and derived figures)")
    export.add_argument("--interface", choices=["float", "int8"], default="float",
                        help="tflite-int8: float32 input/output tensors (default) or int8 ones")
    export.add_argument("--pqat-epochs", type=int, default=0,
                        help="tflite-int8: epochs of sparsity-preserving quantization-aware training first")
    export.add_argument("--representative-samples", type=int, default=256,
                        help="tflite-int8: train-split samples that calibrate the activation ranges")
    export.add_argument("--no-sparse-encoding", action="store_true",
                        help="tflite-int8: store the zeros (no EXPERIMENTAL_SPARSITY): more memory, smaller gzip")
    export.set_defaults(run=cmd_export)

    report = sub.add_parser("report", help="a one-file HTML report of a stored run")
    report.add_argument("run_id", type=int)
    report.add_argument("--out", required=True)
    report.set_defaults(run=cmd_report)


# -- sweeps and sensitivity ---------------------------------------------------------------


def _names(text: str) -> tuple[str, ...]:
    return tuple(name.strip() for name in text.split(",") if name.strip())


def cmd_sweep(args: argparse.Namespace) -> int:
    from .executors.base import make_executor
    from .runs.resume import run_stored_sweep
    from .runs.store import open_store
    from .specs import DataRef, ModelRef, SweepSpec
    from .tables import to_markdown

    spec = SweepSpec(
        model=ModelRef.parse(args.model), data=DataRef.parse(args.dataset), methods=_names(args.methods),
        sparsities=parse_sparsities(args.rates), scope=args.scope,
        layers=_names(args.layers) if args.layers is not None else None,
        finetune_epochs=args.finetune_epochs, seed=args.seed,
    )
    executor = make_executor(args.executor)
    progress = _progress if args.format == "table" else None  # csv/json are for scripts: stderr stays clean
    # the page's policy, except that a script asking for a sweep gets one measured now: a
    # completed identical run is not reused, but an interrupted one's finished points are
    stored = run_stored_sweep(
        open_store(), spec, lambda on_point, resume: executor.sweep(spec, on_point=on_point, on_progress=progress,
                                                                    resume=resume),
        source="cli", reuse_completed=False,
    )
    run_id, report = stored.run_id, stored.report
    for note in report.notes:
        print(f"note: {note}", file=sys.stderr)
    if args.format == "json":
        text = json.dumps(to_plain({**report.to_json_dict(), "run_id": run_id, "resumed_points": stored.resumed_points}),
                          indent=2, allow_nan=False) + "\n"
    elif args.format == "csv":
        text = report.rows.to_csv(index=False)
    else:
        text = to_markdown(report.table()) + "\n"
    if args.out:
        with open(args.out, "w", encoding="utf-8") as handle:
            handle.write(text)
        print(f"{len(report.rows)} points written to {args.out} (stored as run {run_id})")
    else:
        sys.stdout.write(text)
    return 0


def add_executor_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--executor", default="inline", choices=["inline", "worker", "ray"],
                        help="inline: in this process (default); worker: in a spawned process, as the app does; "
                             "ray: on the Ray cluster at RAY_ADDRESS, or a local one (pip install -r requirements-ray.txt)")


def add_sweep_command(sub) -> None:
    sweep = sub.add_parser("sweep", help="prune at many sparsities with several methods; one row per point")
    sweep.add_argument("--model", required=True, help="zoo name or a .keras/.h5 path")
    sweep.add_argument("--dataset", required=True, help="dataset name or an .npz path")
    sweep.add_argument("--methods", required=True, help="comma-separated method names, e.g. magnitude,random")
    sweep.add_argument("--rates", required=True, help="comma-separated sparsities in [0, 1), e.g. 0,0.2,0.4,0.9")
    sweep.add_argument("--scope", default="layer", choices=["layer", "global"])
    sweep.add_argument("--layers", default=None, help="comma-separated layers to prune (default: all prunable)")
    sweep.add_argument("--finetune-epochs", type=int, default=0, help="masked fine-tuning per point (0 = one-shot)")
    sweep.add_argument("--seed", type=int, default=0)
    sweep.add_argument("--format", default="table", choices=["table", "csv", "json"],
                       help="table: Markdown like the reference article's; csv: every column; json: baseline, rows, timing_s")
    sweep.add_argument("--out", default=None, help="write the output to this file instead of stdout")
    add_executor_option(sweep)
    sweep.set_defaults(run=cmd_sweep)


def cmd_sensitivity(args: argparse.Namespace) -> int:
    from .executors.base import make_executor
    from .plan import plan_sparsity
    from .run.sensitivity import sensitivity_outcome
    from .runs.store import open_store
    from .specs import DataRef, ModelRef, SensitivitySpec

    spec = SensitivitySpec(
        model=ModelRef.parse(args.model), data=DataRef.parse(args.dataset), sparsities=parse_sparsities(args.rates),
        method=args.method, layers=_names(args.layers) if args.layers is not None else None, seed=args.seed,
    )
    executor = make_executor(args.executor)
    run_id, report = open_store().record(
        "sensitivity", spec, lambda: executor.sensitivity(spec, on_progress=None if args.json else _progress),
        sensitivity_outcome, source="cli",
    )
    plan = None
    if args.plan_target is not None or args.plan_budget is not None:
        plan = plan_sparsity(report, target_overall_sparsity=args.plan_target, accuracy_drop_budget=args.plan_budget)
    if args.json:
        print_json({**report.to_json_dict(), "plan": plan, "run_id": run_id})
        return 0
    if report.metric == "accuracy":
        print(f"{spec.model.label} on {spec.data.name}: baseline test accuracy {report.baseline_accuracy:.2%} "
              f"on {report.n_test:,} samples; accuracy drop (points) with one layer pruned at a time")
        table = (report.drop * 100).round(2)
    else:
        print(f"{spec.model.label} on {spec.data.name}: baseline test {report.metric} {report.baseline_accuracy:.4g} "
              f"on {report.n_test:,} samples; {report.metric} increase (worse) with one layer pruned at a time")
        table = report.drop.round(4)
    table.columns = [f"{rate:.0%}" for rate in table.columns]
    table.insert(0, "params", [int(sum(report.layer_sizes[layer])) for layer in table.index])
    if plan is not None:
        table["plan"] = [f"{plan[layer]:.1%}" for layer in table.index]
    print(table.to_string())
    t = report.timing_s
    print(f"{t['evaluations']} evaluations in {t['evaluate']:.1f} s; total {t['total']:.1f} s (stored as run {run_id})")
    return 0


def add_sensitivity_command(sub) -> None:
    sens = sub.add_parser("sensitivity", help="prune each layer alone at each sparsity; accuracy drop per layer")
    sens.add_argument("--model", required=True, help="zoo name or a .keras/.h5 path")
    sens.add_argument("--dataset", required=True, help="dataset name or an .npz path")
    sens.add_argument("--rates", required=True, help="comma-separated sparsities in [0, 1), e.g. 0.2,0.4,0.6,0.8,0.9")
    sens.add_argument("--method", default="magnitude", help="an unstructured method (default magnitude)")
    sens.add_argument("--layers", default=None, help="comma-separated layers to scan (default: all prunable)")
    sens.add_argument("--seed", type=int, default=0)
    add_executor_option(sens)
    plan = sens.add_mutually_exclusive_group()
    plan.add_argument("--plan-target", type=float, default=None,
                      help="also print a per-layer plan reaching this overall sparsity")
    plan.add_argument("--plan-budget", type=float, default=None,
                      help="also print a per-layer plan for this estimated accuracy drop (e.g. 0.01)")
    sens.add_argument("--json", action="store_true", help="print one JSON object")
    sens.set_defaults(run=cmd_sensitivity)


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
