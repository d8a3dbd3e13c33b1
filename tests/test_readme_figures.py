"""The README figure checks (`benchmarks.readme_figures`): every check still finds its
line and its figures in README.md, quoted numbers parse to their precision, and a run's
metrics are compared at that precision."""
import json

import pytest

from benchmarks import readme_figures


@pytest.fixture(scope="module")
def readme():
  with open(readme_figures.README) as f:
    return f.read()


@pytest.mark.parametrize("check", readme_figures.CHECKS, ids=lambda c: c.name)
def test_every_check_finds_its_line_and_figures(check, readme):
  quoted = readme_figures.quoted_figures(check, readme)
  assert set(quoted) == set(check.figures)
  for text in quoted.values():
    readme_figures.quoted_value(text)


def test_quoted_values_carry_their_precision():
  assert readme_figures.quoted_value("0.042") == pytest.approx((0.042, 0.0005))
  assert readme_figures.quoted_value("97.4%") == pytest.approx((0.974, 0.0005))
  assert readme_figures.quoted_value("1,000") == pytest.approx((1000.0, 0.5))


def test_a_line_must_occur_once():
  with pytest.raises(ValueError, match="occurs 2 times"):
    readme_figures.readme_line("| a 1 |\n| a 2 |", "| a")


def test_runs_match_only_when_they_round_to_the_quote(tmp_path):
  check = readme_figures.FigureCheck(
      "toy", "| toy row", {"w2": (r"W2 = " + readme_figures.NUMBER, "w2"),
                           "acc": (r"accuracy " + readme_figures.NUMBER, "acc")}, (), 0.1)
  text = "intro\n| toy row | W2 = 0.257, accuracy 97.4% |\n"
  with open(tmp_path / "metrics.jsonl", "w") as f:
    f.write(json.dumps({"step": 10, "w2": 0.2574, "acc": 0.9739}) + "\n")
    f.write(json.dumps({"step": 20, "w2": 0.2576}) + "\n")
  rows = readme_figures.compare(check, text, readme_figures.run_figures(check, str(tmp_path)))
  assert [(r[1], r[4]) for r in rows] == [("w2", False), ("acc", True)]
  assert readme_figures.run_figures(check, str(tmp_path / "none")) == {"w2": None, "acc": None}
