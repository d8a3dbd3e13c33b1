"""The repository's structure: one optimizer update, in the train step."""
import pathlib
import re

from tests.helpers import REPO

TRAIN_STEP = pathlib.Path("diffjax/train/step.py")
# An optax update applied by hand: `optax.apply_updates`, or a GradientTransformation's
# `update(grads, ...)` on anything named like an optimizer.
OPTIMIZER_UPDATE = re.compile(r"apply_updates|\w*(optimizer|opt|tx)\w*\.update\(\s*\w*grad",
                              re.IGNORECASE)
SEARCHED = ("diffjax", "experiments", "benchmarks", "configs", "notebooks")


def _optimizer_updates():
  """(path, line number, line) of every hand-applied optimizer update in SEARCHED."""
  found = []
  for top in SEARCHED:
    for path in sorted((pathlib.Path(REPO) / top).rglob("*")):
      if path.suffix not in (".py", ".ipynb") or ".ipynb_checkpoints" in path.parts:
        continue
      for number, line in enumerate(path.read_text().splitlines(), 1):
        if OPTIMIZER_UPDATE.search(line):
          found.append((path.relative_to(REPO), number, line.strip()))
  return found


def test_optimizer_updates_are_applied_only_by_the_train_step():
  updates = _optimizer_updates()
  elsewhere = [u for u in updates if u[0] != TRAIN_STEP]
  assert not elsewhere, ("Optimizer updates outside the train step (use "
                         f"diffjax.train.make_train_step or fit): {elsewhere}")
  assert {u[0] for u in updates} == {TRAIN_STEP}   # The pattern finds the step's own.
