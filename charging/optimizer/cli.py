"""Command line: ``python -m charging.optimizer {solve,evaluate,generate,replan} ...``."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from collections.abc import Iterator, Sequence
from typing import Any

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
    p.add_argument(
        "--time-limit",
        type=float,
        default=None,
        help="seconds per solver call; without it auto and milp stop on work limits and give the same plan every run",
    )

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
    with _stdout_to_stderr() as stdout:
        return _run(args, stdout)


def _run(args: argparse.Namespace, stdout: Any) -> int:
    try:
        if args.command == "generate":
            data = generate_instance_dict(
                vehicles=args.vehicles, connectors=args.connectors, seed=args.seed, slot_minutes=args.slot_minutes
            )
            _write(data, stdout, args.output)
            return 0
        instance = load_instance(args.instance)
        if args.command == "solve":
            _write(solve(instance, args.method, time_limit_s=args.time_limit).to_dict(), stdout)
        elif args.command == "evaluate":
            _write(evaluate(instance, load_plan(args.plan)).to_dict(), stdout)
        elif args.command == "replan":
            result = replan(instance, load_plan(args.plan), args.now_slot, method=args.method)
            _write({"instance": result.instance.to_dict(), "plan": result.plan.to_dict()}, stdout)
    except InstanceError as error:
        print(error, file=sys.stderr)
        return 2
    return 0


@contextlib.contextmanager
def _stdout_to_stderr() -> Iterator[Any]:
    """While the command runs, anything written to stdout - HiGHS's banner and log come from C++,
    past Python's ``sys.stdout`` - goes to stderr; yields a stream to the real stdout, which gets
    the JSON result only."""
    sys.stdout.flush()
    try:
        saved_fd = os.dup(1)
    except OSError:  # no file descriptor 1 (an embedding host): nothing C++ could print to
        yield sys.stdout
        return
    result = sys.stdout
    real_stdout = os.fdopen(saved_fd, "w", encoding="utf-8", closefd=False)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    try:
        # Under pytest's capture, sys.stdout is not fd 1: keep writing where the caller reads.
        yield real_stdout if result is sys.__stdout__ else result
    finally:
        sys.stdout = result
        real_stdout.flush()
        os.dup2(saved_fd, 1)
        os.close(saved_fd)


def _write(data: dict[str, Any], stdout: Any, path: str = "-") -> None:
    text = json.dumps(data, indent=1)
    if path == "-":
        stdout.write(text + "\n")
        stdout.flush()
    else:
        with open(path, "w", encoding="utf-8") as f:
            f.write(text + "\n")
