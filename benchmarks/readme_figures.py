"""README figures from their commands: re-runs quoted studies and prints each figure beside
the value README.md quotes, so that a row drifting from its command is caught.

  python -m benchmarks.readme_figures --list                 # the checks and their cost
  python -m benchmarks.readme_figures --workdir=DIR [--only=NAME,...] [--quick]

Each check names a README line (a substring that occurs on exactly one line), a regular
expression per figure over that line (its one group: the quoted number, e.g. "0.042" or
"97.4%"), the commands that produce the run (`{workdir}` is the check's own directory
under --workdir) and where the run writes each figure (a key of the last line of
metrics.jsonl that has it). A figure matches when the rerun rounds to the quoted value:
|rerun - quoted| <= half a unit of the quoted number's last digit (plus 1e-9), i.e. the
README quotes exactly what the command gives. --quick runs the checks that take under
10 minutes on the quiet 2-core machine; a check whose workdir already holds a finished run
is read, not rerun (delete it to rerun). Results: benchmarks/results/readme_figures.{json,md}.

The studies are deterministic on a given machine and jax build (seeded data, keys and
sampling), so a mismatch means the code, the config or the README changed.
"""
import argparse
import dataclasses
import json
import os
import re
import subprocess
import sys
import time
from typing import Dict, Optional, Tuple

from benchmarks import common

README = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "README.md")
NUMBER = r"(-?[0-9][0-9,]*\.?[0-9]*%?)"


@dataclasses.dataclass(frozen=True)
class FigureCheck:
  """One README line and the run whose figures it quotes (module docstring).

  Attributes:
    name: the check's name (--only).
    line: a substring of exactly one README line.
    figures: {figure: (regex over that line with one group, metrics.jsonl key)}.
    commands: argument lists run in order from the repository root; "{workdir}" is
      replaced by the check's directory.
    minutes: the run's wall time on the quiet 2-core machine, about.
  """
  name: str
  line: str
  figures: Dict[str, Tuple[str, str]]
  commands: Tuple[Tuple[str, ...], ...]
  minutes: float


def _main(config, *flags):
  return ("python", "-m", "experiments.main", f"--config={config}", "--workdir={workdir}",
          *flags)


def _column(i):
  """A regex whose group is the i-th (0-based) mean of a 'mean ± std' table row."""
  cells = [r"[0-9.]+ ± [0-9.]+"] * 3
  cells[i] = r"([0-9.]+) ± [0-9.]+"
  return r"\| " + r" \| ".join(cells) + r" \|"


def _gdss(prefix):
  return {f"{prefix}{name}": (_column(i), f"{prefix}{name}")
          for i, name in enumerate(("degree", "clustering", "orbit"))}


GDSS_DEFAULT = (_main("configs/graphs/community_small.py"),)
CHECKS = (
    FigureCheck("quickstart", "| Quickstart (N(0,I) -> moons", {
        "w2": (r"W2 = " + NUMBER, "w2"),
        "energy_distance": (r"energy distance " + NUMBER, "energy_distance")},
        (_main("configs/quickstart.py"),), 1.0),
    FigureCheck("gdss", "| GDSS, diffjax (1,000 steps of 40 graphs)", _gdss(""),
                GDSS_DEFAULT, 3.0),
    FigureCheck("gdss_erdos_renyi", "| Erdős–Rényi fitted to the training graphs",
                _gdss("erdos_renyi_"), GDSS_DEFAULT, 3.0),
    FigureCheck("gdss_train_vs_test", "| 20 training graphs vs the test graphs",
                _gdss("train_vs_test_"), GDSS_DEFAULT, 3.0),
    FigureCheck("gdss_paper_seed0", "sampling seeds), degree / clustering / orbit: seed 0:", {
        "degree": (r"seed 0: " + NUMBER + r" ±", "degree"),
        "clustering": (r"seed 0: [0-9.]+ ± [0-9.]+ / " + NUMBER + r" ±", "clustering")},
        (_main("configs/graphs/community_small.py:paper", "--config.seed=0"),), 12.0),
    FigureCheck("digits", "| Digits, class-conditional DiT (3,000 steps)", {
        "class_accuracy": (r"class accuracy of samples " + NUMBER, "digits_class_accuracy"),
        "proxy_fd": (r"proxy Fréchet distance " + NUMBER, "digits_frechet_proxy"),
        "bits_per_dim": (NUMBER + r" bits/dim on held-out", "bits_per_dim")},
        (_main("configs/images/digits.py"),), 12.0),
    FigureCheck("guided_digits_cfg", "| Class-conditional digits, CFG vs CFG++", {
        f"accuracy_cfg_w{w}": (r"CFG w = 0 / 1 / 2 / 4: " + r" / ".join(
            NUMBER if j == i else r"[0-9.]+" for j in range(4)), f"accuracy_cfg_w{w}")
        for i, w in enumerate((0, 1, 2, 4))},
        (_main("configs/guidance/digits.py"),), 20.0),
    FigureCheck("arithmetic", "| Masked diffusion, arithmetic language", {
        "fraction_correct": (NUMBER + r" of 1,000 first-hitting samples correct",
                             "fraction_correct")},
        (_main("configs/discrete/arithmetic.py"),), 17.0),
)


def quoted_value(text: str) -> Tuple[float, float]:
  """(value, half a unit of its last digit) of a quoted number: "0.042" -> (0.042,
  0.0005), "97.4%" -> (0.974, 0.0005), "1,000" -> (1000, 0.5)."""
  percent = text.endswith("%")
  digits = text.rstrip("%").replace(",", "")
  decimals = len(digits.split(".")[1]) if "." in digits else 0
  scale = 0.01 if percent else 1.0
  return float(digits) * scale, 0.5 * 10.0 ** -decimals * scale


def readme_line(text: str, line: str) -> str:
  """The one line of `text` that contains `line`; ValueError if none or several."""
  found = [candidate for candidate in text.splitlines() if line in candidate]
  if len(found) != 1:
    raise ValueError(f"README line {line!r} occurs {len(found)} times; a check needs one.")
  return found[0]


def quoted_figures(check: FigureCheck, text: str) -> Dict[str, str]:
  """{figure: the number README quotes for it} on the check's line."""
  row = readme_line(text, check.line)
  quoted = {}
  for figure, (pattern, _) in check.figures.items():
    match = re.search(pattern, row)
    if match is None:
      raise ValueError(f"{check.name}: the README line {check.line!r} no longer quotes "
                       f"{figure} (pattern {pattern!r}).")
    quoted[figure] = match.group(1)
  return quoted


def run_figures(check: FigureCheck, workdir: str) -> Dict[str, Optional[float]]:
  """{figure: value} from the last line of workdir/metrics.jsonl holding its key (None:
  the run never wrote it)."""
  values = {figure: None for figure in check.figures}
  path = os.path.join(workdir, "metrics.jsonl")
  if not os.path.exists(path):
    return values
  with open(path) as f:
    lines = [json.loads(line) for line in f if line.strip()]
  for figure, (_, key) in check.figures.items():
    for record in reversed(lines):
      if record.get(key) is not None:
        values[figure] = float(record[key])
        break
  return values


def compare(check: FigureCheck, text: str, values) -> list:
  """[(check, figure, quoted, rerun, matches)] of one check."""
  rows = []
  for figure, quoted in quoted_figures(check, text).items():
    expected, half_unit = quoted_value(quoted)
    value = values[figure]
    matches = value is not None and abs(value - expected) <= half_unit + 1e-9
    rows.append((check.name, figure, quoted, value, matches))
  return rows


def _finished(workdir):
  path = os.path.join(workdir, "run.json")
  if not os.path.exists(os.path.join(workdir, "metrics.jsonl")) or not os.path.exists(path):
    return False
  with open(path) as f:
    num_steps = json.load(f).get("num_steps")
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    steps = [json.loads(line).get("step", 0) for line in f if line.strip()]
  return bool(steps) and num_steps is not None and max(steps) >= num_steps


def _rerun(check: FigureCheck, workdir: str) -> float:
  """Runs the check's commands unless workdir holds a finished run; wall seconds."""
  if _finished(workdir):
    return 0.0
  start = time.perf_counter()
  for command in check.commands:
    argv = [sys.executable if a == "python" else a.replace("{workdir}", workdir)
            for a in command]
    subprocess.run(argv, check=True)
  return time.perf_counter() - start


def _selected(only, quick):
  names = [c.name for c in CHECKS]
  if only:
    unknown = sorted(set(only) - set(names))
    if unknown:
      raise SystemExit(f"--only={','.join(unknown)}: no such check; valid: {', '.join(names)}.")
    return [c for c in CHECKS if c.name in only]
  return [c for c in CHECKS if not quick or c.minutes < 10]


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--workdir", default="workdirs/readme_figures")
  parser.add_argument("--only", default="", help="comma-separated check names")
  parser.add_argument("--quick", action="store_true", help="only the checks under 10 min")
  parser.add_argument("--list", action="store_true", help="list the checks and stop")
  args = parser.parse_args(argv)
  with open(README) as f:
    text = f.read()
  checks = _selected([n for n in args.only.split(",") if n], args.quick)
  if args.list:
    for check in checks:
      print(f"{check.name:22s} ~{check.minutes:g} min  {' '.join(check.commands[0])}")
    return
  rows, details, runs = [], {}, {}
  for check in checks:
    quoted_figures(check, text)   # A README line that moved fails before any run.
    commands = check.commands
    workdir = runs.setdefault(commands, os.path.join(args.workdir, check.name))
    seconds = _rerun(check, workdir)
    found = compare(check, text, run_figures(check, workdir))
    details[check.name] = {"workdir": workdir, "wall_s": seconds,
                           "figures": {r[1]: {"readme": r[2], "rerun": r[3], "matches": r[4]}
                                       for r in found}}
    rows += found
  table = common.markdown_table(("check", "figure", "README", "rerun", "matches"), rows)
  figures = {"figures_checked": len(rows), "figures_matching": sum(r[4] for r in rows)}
  command = "python -m benchmarks.readme_figures" + (" --quick" if args.quick else "")
  common.write_results("readme_figures", figures, details, table, args.quick, command)


if __name__ == "__main__":
  main()
