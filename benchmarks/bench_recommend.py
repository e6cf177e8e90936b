"""Throughput of ``smartretry recommend`` on one core (goal: at least 200 requests/s).

    python benchmarks/bench_recommend.py [--requests 5000] [--invoices 20000] [--seed 7]
        [--batch-size 1000] [--core 0] [--profile-requests 1000] [--work /tmp/smartretry-bench]

A history is simulated and the real model trained on it with ``smartretry train``
(cached in ``--work``, see ``bench_world.py``). The requests are the held-out invoices'
first failures in the API contract (cycled to ``--requests``; every fifth leaves
``customer`` out, so the artifact's known customers are looked up). The command runs as
a child process pinned to one core (``taskset -c CORE``, ``OMP_NUM_THREADS=1`` so
LightGBM uses one thread). Reported: items/s of the scoring loop (the command's own
summary) and the wall clock including start-up and model load. Then the same command
runs under cProfile on ``--profile-requests`` requests, and the functions where the time
goes are printed (cumulative and own time), so the hot spots are visible.
"""

from __future__ import annotations

import argparse
import json
import os
import pstats
import re
import subprocess
import sys
import time
from pathlib import Path

from bench_world import prepare

SUMMARY = re.compile(r"(\d+) items, (\d+) errors, ([\d.]+) s, (\d+) items/s")


def _write_requests(path: Path, requests: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in requests), encoding="utf-8")
    return path


def _command(core: int, *args: str) -> tuple[list[str], dict[str, str]]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    return ["taskset", "-c", str(core), sys.executable, *args], env


def run_recommend(
    core: int, model: Path, source: Path, output: Path, batch_size: int
) -> dict[str, float]:
    command, env = _command(
        core, "-m", "training.cli.main", "recommend", "--model", str(model), "--input", str(source),
        "--output", str(output), "--batch-size", str(batch_size), "--no-progress",
    )  # fmt: skip
    start = time.perf_counter()
    done = subprocess.run(command, env=env, check=True, capture_output=True, text=True)
    wall = time.perf_counter() - start
    match = SUMMARY.search(done.stdout)
    if match is None:
        raise RuntimeError(f"no summary in the command's output: {done.stdout}{done.stderr}")
    items, errors, seconds, rate = match.groups()
    lines = sum(1 for _ in output.open())
    return {
        "items": int(items),
        "errors": int(errors),
        "output_lines": lines,
        "scoring_seconds": float(seconds),
        "items_per_second": float(rate),
        "wall_seconds": wall,
        "wall_items_per_second": int(items) / wall,
    }


def profile_recommend(
    core: int, model: Path, source: Path, output: Path, batch_size: int, stats_file: Path
) -> pstats.Stats:
    command, env = _command(
        core, "-m", "cProfile", "-o", str(stats_file), "-m", "training.cli.main", "recommend",
        "--model", str(model), "--input", str(source), "--output", str(output),
        "--batch-size", str(batch_size), "--no-progress",
    )  # fmt: skip
    subprocess.run(command, env=env, check=True, capture_output=True)
    return pstats.Stats(str(stats_file))


def _short(func: tuple[str, int, str]) -> str:
    path = func[0].split("site-packages/")[-1].split("/work/main/")[-1]
    return f"{path}:{func[1]}({func[2]})"


def _paths_to_project(stats: pstats.Stats, func: tuple, depth: int = 0, seen=None) -> None:
    """Print the heaviest callers of ``func`` up to the first project function (>= 50 ms)."""
    seen = set() if seen is None else seen
    callers = stats.stats[func][4]  # type: ignore[attr-defined]
    for caller, (*_, cumulative) in sorted(callers.items(), key=lambda kv: -kv[1][3])[:3]:
        if cumulative < 0.05 or caller in seen:
            continue
        seen.add(caller)
        print("  " * (depth + 1) + f"<- {_short(caller)} {cumulative:.2f} s")
        if "site-packages" in caller[0] and depth < 8:
            _paths_to_project(stats, caller, depth + 1, seen)


def print_hot_spots(stats: pstats.Stats, top: int) -> None:
    """Project functions by cumulative time, everything by own time, and the call paths
    from the heaviest own-time functions up to the project code that causes them."""
    print(f"\n--- project functions by cumulative time (top {top}) ---")
    stats.sort_stats("cumulative").print_stats(r"/(training|serving)/", top)
    print(f"\n--- all functions by own time (top {top}) ---")
    stats.sort_stats("tottime").print_stats(top)
    print("\n--- where the 8 heaviest own-time functions are called from ---")
    heaviest = sorted(stats.stats.items(), key=lambda kv: -kv[1][2])[:8]  # type: ignore[attr-defined]
    for func, (_, _, own, *_) in heaviest:
        print(f"{_short(func)}: {own:.2f} s own")
        _paths_to_project(stats, func)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--invoices", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--core", type=int, default=0)
    parser.add_argument("--profile-requests", type=int, default=1000)
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--work", type=Path, default=Path("/tmp/smartretry-bench"))
    args = parser.parse_args()

    world = prepare(args.work, args.invoices, args.seed)
    print(f"model {world.model_dir}; {len(world.requests)} held-out requests", flush=True)
    source = _write_requests(
        args.work / "recommend-requests.jsonl", world.sample(args.requests, known_share=0.2)
    )
    result = run_recommend(
        args.core, world.model_dir, source, args.work / "recommend-responses.jsonl",
        args.batch_size,
    )  # fmt: skip
    print(
        f"\nsmartretry recommend, 1 core (taskset -c {args.core}, OMP_NUM_THREADS=1), "
        f"batch size {args.batch_size}:\n"
        f"  {result['items']} requests, {result['errors']} errors, "
        f"{result['output_lines']} output lines\n"
        f"  scoring: {result['scoring_seconds']:.2f} s = {result['items_per_second']:.0f} "
        f"requests/s (goal >= 200)\n"
        f"  wall clock incl. start-up and model load: {result['wall_seconds']:.2f} s = "
        f"{result['wall_items_per_second']:.0f} requests/s",
        flush=True,
    )
    (args.work / "bench_recommend.json").write_text(json.dumps(result, indent=2))
    if args.profile_requests > 0:
        subset = _write_requests(
            args.work / "profile-requests.jsonl",
            world.sample(args.profile_requests, known_share=0.2),
        )
        stats = profile_recommend(
            args.core, world.model_dir, subset, args.work / "profile-responses.jsonl",
            args.batch_size, args.work / "recommend.pstats",
        )  # fmt: skip
        print(f"\nprofile of {args.profile_requests} requests: {args.work / 'recommend.pstats'}")
        print_hot_spots(stats, args.top)


if __name__ == "__main__":
    main()
