"""Start-up benchmark: whole `papers` processes, timed from outside, against `python -c pass`
and against a whole run of DailyArXiv (the GitHub-Actions script our users come from).

Run: `python -m bench.bench_startup [--runs 10] [--dailyarxiv PATH [--dailyarxiv-python PY]]
[--before PATH]` with the project's virtualenv interpreter (`.venv/bin/python -m
bench.bench_startup`). `--before` names another checkout of this project (say, `git worktree add
/tmp/before <commit>`), whose help, list and readme run beside these as `python -m adapters` with
that checkout first on PYTHONPATH, on the same store.

What one measurement is: the wall time of one process, from `subprocess.run` starting it to
its exit, output thrown away; every command runs once per round, rounds repeat `--runs` times
after one warm-up round, and each ratio is taken within a round (paired) before the median, so
a machine that slows down during the run moves both sides. Commands:
- `python -c pass`: the interpreter alone (this interpreter, the one `papers` runs on);
- `papers help` and `papers --help` (the console script next to the interpreter), with
  DATABASE_URL pointing at an unreachable PostgreSQL server and in an empty folder: they must
  touch no database (the benchmark checks that no papers.db appeared). Target < 2x pass.
- `papers list` and `papers readme` on a SQLite store of 7 keywords x 100 papers, filled
  beforehand through `papers add` from a loopback arXiv stand-in (the README export is the same
  bytes DailyArXiv writes). Target < 0.5x DailyArXiv.
- settings: `import sqlmodel` with and without loading the settings (pydantic-settings), the
  start-up cost of reading the configuration in a command that loads the store anyway.
- DailyArXiv (with `--dailyarxiv`, a checkout of github.com/zezhishao/DailyArXiv; none of its
  code is part of this project): its `main.py` run whole by `--dailyarxiv-python` (an
  interpreter with its requirements, feedparser, easydict and pytz), in a scratch copy of the
  checkout, with its keyword list replaced by the same 7 keywords, `time.sleep` made a no-op
  (5 s between keywords) and its hard-coded http://export.arxiv.org URL sent through
  `http_proxy` to the same loopback stand-in, which answers each query with 100 papers in a few
  milliseconds. It stands in for the real run, whose 7 arXiv requests take seconds each: the
  real script is slower than measured here, so the ratio flatters DailyArXiv.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tests.fakes.arxiv_server import ArxivStandIn, make_entry

KEYWORDS = (
    "Virtual Try-On",
    "Clothes Changing Person ReID",
    "Image Editing",
    "Gaussian Splatting",
    "Diffusion",
    "Person Re-Identification",
    "Pose Estimation",
)
PAPERS_PER_KEYWORD = 100
UNREACHABLE = "postgresql+psycopg://nobody@127.0.0.1:1/none"
ABSTRACT = (
    "We propose a diffusion-based method that preserves fine garment detail under large pose "
    "changes, trained on paired and unpaired images, and evaluate it on three benchmarks. "
) * 6

# DailyArXiv's main.py, run as its workflow runs it, with the changes the docstring lists.
DAILYARXIV_RUN = """
import re, sys, time
time.sleep = lambda seconds: None  # its sleeps at 0
with open("main.py", encoding="utf-8") as file:
    source = file.read()
source, found = re.subn(r"^keywords = \\[.*?\\]", "keywords = " + repr({keywords!r}), source,
                        count=1, flags=re.M)
if found != 1:
    sys.exit("main.py has no `keywords = [...]` line to replace")
sys.path.insert(0, ".")
exec(compile(source, "main.py", "exec"), {{"__name__": "__main__"}})
"""


@dataclass
class Case:
    name: str
    argv: list[str]
    cwd: Path
    env: dict[str, str]
    seconds: list[float] = field(default_factory=list)

    def run(self) -> float:
        start = time.perf_counter()
        subprocess.run(
            self.argv,
            cwd=self.cwd,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            check=True,
        )
        return time.perf_counter() - start


def entries(k: int) -> list[bytes]:
    newest = datetime(2026, 11, 1, tzinfo=UTC)
    return [
        make_entry(
            arxiv_id=f"26{k:02d}.{i:05d}",
            version=1 + i % 3,
            title=f"{KEYWORDS[k]}: a study of method {i} with | pipes and <brackets>",
            summary=ABSTRACT,
            comment="Accepted at CVPR 2026, 12 pages, 8 figures" if i % 2 else None,
            authors=("Ada Lovelace", "Alan Turing", "Grace Hopper"),
            updated=newest - timedelta(hours=k * 1000 + i),
            categories=("cs.CV", "cs.LG"),
        )
        for i in range(PAPERS_PER_KEYWORD)
    ]


def base_env(**extra: str) -> dict[str, str]:
    keep = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "TMPDIR")}
    return {**keep, **extra}


def fill_store(papers: list[str], work: Path, env: dict[str, str]) -> None:
    for keyword in KEYWORDS:
        subprocess.run(
            [*papers, "add", keyword], cwd=work, env=env, check=True, capture_output=True
        )
    readme = subprocess.run(
        [*papers, "readme"], cwd=work, env=env, check=True, capture_output=True, text=True
    ).stdout
    rows = sum(line.startswith("| **[") for line in readme.splitlines())
    assert readme.count("\n## ") == len(KEYWORDS) and rows == 700, (readme.count("\n## "), rows)


def papers_command() -> list[str]:
    script = Path(sys.executable).with_name("papers")
    return [str(script)] if script.exists() else [sys.executable, "-m", "adapters"]


def dailyarxiv_case(args: argparse.Namespace, work: Path, api: ArxivStandIn) -> Case:
    copy = work / "dailyarxiv"
    shutil.copytree(args.dailyarxiv, copy, ignore=shutil.ignore_patterns(".git"))
    proxy = f"http://127.0.0.1:{api.port}"
    env = base_env(http_proxy=proxy, HTTP_PROXY=proxy, no_proxy="", NO_PROXY="")
    code = DAILYARXIV_RUN.format(keywords=list(KEYWORDS))
    case = Case("DailyArXiv main.py", [args.dailyarxiv_python, "-c", code], copy, env)
    before = len(api.requests)
    case.run()  # a check run: every keyword asked from the stand-in, a full README written
    asked = len(api.requests) - before
    readme = (copy / "README.md").read_text(encoding="utf-8")
    rows = sum(line.startswith("| **[") for line in readme.splitlines())
    if asked != len(KEYWORDS) or rows != 700:
        sys.exit(f"DailyArXiv asked the stand-in {asked} times and wrote {rows} rows")
    return case


def build_cases(args: argparse.Namespace, work: Path, api: ArxivStandIn) -> list[Case]:
    python, papers = sys.executable, papers_command()
    empty = work / "empty"
    empty.mkdir()
    store = work / "store"
    store.mkdir()
    store_env = base_env(DATABASE_URL=f"sqlite:///{store / 'papers.db'}")
    fill_store(papers, store, {**store_env, "ARXIV_API_URL": api.url, "ARXIV_DELAY_SECONDS": "0"})
    no_db = base_env(DATABASE_URL=UNREACHABLE)
    settings = "import sqlmodel; from bot.config import load_settings; load_settings()"
    cases = [
        Case("python -c pass", [python, "-c", "pass"], empty, base_env()),
        Case("papers help", [*papers, "help"], empty, no_db),
        Case("papers --help", [*papers, "--help"], empty, no_db),
        Case("papers list", [*papers, "list"], store, store_env),
        Case("papers readme", [*papers, "readme"], store, store_env),
        Case("import sqlmodel", [python, "-c", "import sqlmodel"], empty, base_env()),
        Case("import sqlmodel + settings", [python, "-c", settings], empty, base_env()),
    ]
    if args.before:
        before = [python, "-m", "adapters"]
        path = {"PYTHONPATH": str(args.before.resolve())}
        cases += [
            # (on the store: a version that opens the database for help fails on no_db)
            Case("before: papers help", [*before, "help"], store, {**store_env, **path}),
            Case("before: papers list", [*before, "list"], store, {**store_env, **path}),
            Case("before: papers readme", [*before, "readme"], store, {**store_env, **path}),
        ]
    if args.dailyarxiv:
        cases.append(dailyarxiv_case(args, work, api))
    return cases


def measure(cases: list[Case], runs: int) -> None:
    for round_number in range(runs + 1):  # round 0 warms up
        shift = round_number % len(cases)  # each round starts with another command
        for case in cases[shift:] + cases[:shift]:
            seconds = case.run()
            if round_number:
                case.seconds.append(seconds)


def paired_ratio(a: Case, b: Case) -> float:
    return statistics.median(x / y for x, y in zip(a.seconds, b.seconds, strict=True))


def report(cases: list[Case], args: argparse.Namespace) -> None:
    by_name = {c.name: c for c in cases}
    base, anchor = by_name["python -c pass"], by_name.get("DailyArXiv main.py")
    print(f"interpreter: {sys.executable} (Python {sys.version.split()[0]}), for pass and papers")
    print(f"{len(base.seconds)} paired rounds after 1 warm-up; wall time of whole processes\n")
    print(f"{'command':<28}{'median':>9}{'min':>9}{'max':>9}{'x pass':>9}{'x DailyArXiv':>14}")
    for case in cases:
        ms = [s * 1000 for s in case.seconds]
        versus = f"{paired_ratio(case, anchor):.2f}" if anchor else "-"
        print(
            f"{case.name:<28}{statistics.median(ms):7.0f}ms{min(ms):7.0f}ms{max(ms):7.0f}ms"
            f"{paired_ratio(case, base):9.2f}{versus:>14}"
        )
    with_settings, without = by_name["import sqlmodel + settings"], by_name["import sqlmodel"]
    settings_ms = 1000 * statistics.median(
        a - b for a, b in zip(with_settings.seconds, without.seconds, strict=True)
    )
    print(f"\nreading the settings (pydantic-settings) over sqlmodel: {settings_ms:+.0f} ms")
    for name in ("help", "list", "readme"):
        if f"before: papers {name}" in by_name:
            ratio = paired_ratio(by_name[f"papers {name}"], by_name[f"before: papers {name}"])
            print(f"papers {name}: {ratio:.2f}x the --before checkout's")
    for name in ("papers help", "papers --help"):
        ratio = paired_ratio(by_name[name], base)
        print(f"{name}: {ratio:.2f}x pass, target < 2x: {'met' if ratio < 2 else 'MISSED'}")
    if anchor is None:
        print("DailyArXiv not measured: give --dailyarxiv PATH (a checkout) to compare with it")
        return
    print(f"DailyArXiv: {args.dailyarxiv} run by {args.dailyarxiv_python}")
    for name in ("papers list", "papers readme"):
        ratio = paired_ratio(by_name[name], anchor)
        print(
            f"{name}: {ratio:.2f}x DailyArXiv, target < 0.5x: {'met' if ratio < 0.5 else 'MISSED'}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10, help="measured rounds (default 10)")
    parser.add_argument("--dailyarxiv", type=Path, help="a checkout of zezhishao/DailyArXiv")
    parser.add_argument("--before", type=Path, help="another checkout of this project")
    parser.add_argument(
        "--dailyarxiv-python",
        default=sys.executable,
        help="an interpreter with feedparser, easydict and pytz (default: this one)",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, ArxivStandIn() as api:
        for k, keyword in enumerate(KEYWORDS):
            api.add_entries(keyword, entries(k))
        cases = build_cases(args, Path(tmp), api)
        measure(cases, args.runs)
        assert not list((Path(tmp) / "empty").iterdir()), "papers help created a file"
        report(cases, args)
        print("papers help / --help: no database touched (unreachable DATABASE_URL, no file made)")


if __name__ == "__main__":
    main()
