"""Command line: ``python -m charging.optimizer {solve,evaluate,generate,replan} ...``."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from .evaluate import evaluate
from .generate import generate_instance_dict
from .instance import InstanceError, load_instance
from .plan import load_plan
from .replan import replan
from .solve import METHODS, solve


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m charging.optimizer", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("solve", help="plan a night; prints the plan as JSON")
    p.add_argument("instance")
    p.add_argument("--method", choices=METHODS, default="auto")
    p.add_argument("--time-limit", type=float, default=None, help="seconds per solver call")

    p = sub.add_parser("evaluate", help="score a plan: costs and constraint violations, as JSON")
    p.add_argument("instance")
    p.add_argument("plan")

    p = sub.add_parser("generate", help="write a realistic random instance as JSON")
    p.add_argument("--vehicles", type=int, required=True)
    p.add_argument("--connectors", type=int, required=True)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--slot-minutes", type=int, default=15)
    p.add_argument("--output", "-o", default="-", help="file to write (default: stdout)")

    p = sub.add_parser("replan", help="freeze a plan before NOW and re-solve the rest")
    p.add_argument("instance")
    p.add_argument("plan")
    p.add_argument("--now-slot", type=int, required=True)
    p.add_argument("--method", choices=METHODS, default="lp")

    args = parser.parse_args(argv)
    try:
        if args.command == "generate":
            data = generate_instance_dict(
                vehicles=args.vehicles, connectors=args.connectors, seed=args.seed, slot_minutes=args.slot_minutes
            )
            _write(data, args.output)
            return 0
        instance = load_instance(args.instance)
        if args.command == "solve":
            _write(solve(instance, args.method, time_limit_s=args.time_limit).to_dict())
        elif args.command == "evaluate":
            _write(evaluate(instance, load_plan(args.plan)).to_dict())
        elif args.command == "replan":
            result = replan(instance, load_plan(args.plan), args.now_slot, method=args.method)
            _write({"instance": result.instance.to_dict(), "plan": result.plan.to_dict()})
    except InstanceError as error:
        print(error, file=sys.stderr)
        return 2
    return 0


def _write(data: dict, path: str = "-") -> None:
    text = json.dumps(data, indent=1)
    if path == "-":
        sys.stdout.write(text + "\n")
    else:
        with open(path, "w", encoding="utf-8") as f:
            f.write(text + "\n")
