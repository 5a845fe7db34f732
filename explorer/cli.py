"""`python -m explorer ...`: the command line behind the Makefile."""

import argparse
import sys
from pathlib import Path

from explorer.errors import ExplorerError


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2
        self.exit(2, f"explorer: {message} (see --help)\n")


def main(argv: list[str] | None = None) -> int:
    parser = _Parser(prog="explorer", description="Build the figures and assets of the site.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    fig = sub.add_parser("figures", help="recompute stale figures")
    fig.add_argument("--only", nargs="+", metavar="ID", help="build only these figure ids")
    fig.add_argument("--force", action="store_true", help="recompute even if up to date")
    fig.add_argument("--check", action="store_true", help="list stale published figures; exit 1 if any")
    fig.add_argument("--scale", choices=("smoke", "full"), default="full", help="smoke: seconds (tests); full: published")
    fig.add_argument("--model", metavar="NAME", help="recompute the figures that accept a model on this one")
    fig.add_argument("--out", type=Path, help="output folder (default: docs/figures for full, .cache/ for smoke)")
    fig.add_argument("--list", action="store_true", help="list figure ids and exit")
    fig.add_argument("--quiet", action="store_true", help="no progress bars")

    runs = sub.add_parser("models", help="retrain a long-run artifact into models/NAME/ (no NAME: list them and their state)")
    runs.add_argument("name", nargs="?", metavar="NAME", help="the long run to retrain")
    runs.add_argument("--check", action="store_true", help="verify every stored artifact against its config and code; exit 1 if any is stale")
    runs.add_argument("--device", help="train on this device (default: the pipeline's choice)")

    ref = sub.add_parser("reference", help="write docs/contributing/reference.md from the docstrings")
    ref.add_argument("--check", action="store_true", help="exit 1 if the page is out of date instead of writing it")

    sub.add_parser("vendor", help="write the Vega JavaScript bundle from the pinned vl-convert package")
    sub.add_parser("bench", help="run the benchmarks and print their numbers (options: `explorer bench --help`)", add_help=False)

    args, rest = parser.parse_known_args(argv)  # the bench parses its own options
    if rest and args.command != "bench":
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    try:
        if args.command == "figures":
            return _figures(args)
        if args.command == "models":
            return _models(args)
        if args.command == "reference":
            from explorer.reference import main as reference_main

            return reference_main(check=args.check)
        if args.command == "vendor":
            from explorer.site.vendor import write_bundle

            print(write_bundle())
            return 0
        if args.command == "bench":
            from explorer.bench import main as bench_main

            return bench_main(rest)
    except ExplorerError as exc:
        print(f"explorer: {exc}", file=sys.stderr)
        return getattr(exc, "exit_code", 2)
    except OSError as exc:  # the output or cache folder itself: one line, not a traceback
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"explorer: {where}{exc.strerror or exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("explorer: interrupted", file=sys.stderr)
        return 130
    return 0


def _models(args: argparse.Namespace) -> int:
    from explorer import artifacts

    if args.name is not None:
        record = artifacts.train(args.name, device=args.device)
        print(f"trained {args.name}: {record['wall_time_s']:.1f} s on {record['device']}, "
              f"{record['weights_bytes'] / 1e6:.2f} MB -> {artifacts.display(artifacts.folder(args.name))}")
        return 0
    problems = 0
    for name, state in artifacts.status().items():
        print(f"{name:24} {state}")
        problems += state != "ok"
    if not artifacts.runs():
        print("no long runs are registered (see explorer/longruns/)", file=sys.stderr)
    return 1 if (args.check and problems) else 0


def _figures(args: argparse.Namespace) -> int:
    from explorer.pipeline import build as pipeline

    if args.list:
        from explorer.pipeline.registry import discover

        for fid, fig in discover().items():
            print(f"{fid}\t{fig.article}\t{fig.title}")
        return 0
    if args.model is not None:
        from explorer import models
        from explorer.errors import check_choice

        check_choice("model", args.model, models.known())
    if args.check:
        stale = pipeline.check(args.only, args.out, args.scale)
        for fid in stale:
            print(f"stale: {fid}")
        print(f"{len(stale)} stale figure(s)" if stale else "all figures up to date", file=sys.stderr)
        return 1 if stale else 0
    outcomes = pipeline.build(args.only, scale=args.scale, out=args.out, force=args.force, model=args.model, progress=not args.quiet)
    counts: dict[str, int] = {}
    for o in outcomes:
        counts[o.status] = counts.get(o.status, 0) + 1
        if o.status == "built":
            print(f"built   {o.id} ({o.seconds:.1f}s{', ' + o.message if o.message else ''})")
        elif o.status in ("skipped", "failed"):
            print(f"{o.status:7} {o.id}: {o.message}", file=sys.stderr if o.status == "failed" else sys.stdout)
    from explorer.site import compiled

    written = compiled.refresh(args.out or pipeline.default_out(args.scale, args.model))  # first views, compiled for the page
    if written:
        print(f"compiled the first view of {len(written)} figure(s) to Vega", file=sys.stderr)
    print(", ".join(f"{n} {s}" for s, n in sorted(counts.items())) or "no figures", file=sys.stderr)
    return 1 if counts.get("failed") else 0
