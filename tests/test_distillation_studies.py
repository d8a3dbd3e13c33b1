"""The studies' step budgets (`experiments.matching_studies --generator_steps`)."""
import pytest

from configs.distillation import disback as disback_config
from configs.distillation import dmd as dmd_config
from diffjax.distillation.disback import backtracking_start, disback_phases
from diffjax.errors import ConfigError
from experiments import matching_studies


@pytest.mark.parametrize("generator_steps", [None, 2000])
def test_disback_budget_gives_the_generator_its_steps(generator_steps):
  config = matching_studies._budget(disback_config.get_config("imbalanced"), generator_steps)
  phases = disback_phases(config.method, exact=True)
  start = backtracking_start(config.method, exact=True)
  generator = sum(p.num_steps for p in phases if p.name.startswith("backtrack_"))
  assert generator == (generator_steps or dmd_config.get_config("imbalanced").train.num_steps)
  assert config.train.num_steps == start + generator


def test_plain_budget_and_too_small_disback_budget():
  assert matching_studies._budget(dmd_config.get_config("imbalanced"), 1500).train.num_steps == 1500
  with pytest.raises(ConfigError, match="num_nodes"):
    matching_studies._budget(disback_config.get_config("imbalanced"), 1000)
