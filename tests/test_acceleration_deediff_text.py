"""DeeDiff on a masked-diffusion text run (configs/acceleration/deediff_text.py) through
the command line: exits trained on a tiny arithmetic run, threshold 0 samples exactly the
full network's statements with every block run, threshold 1 leaves every sequence at the
first exit; the blocks are counted from the sampler's own calls (`BlockTally`); bad input
is refused in one line, exit 2, nothing written."""
import dataclasses
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs.discrete import arithmetic
from configs.distillation import teacher as teacher_config
from diffjax import runs
from diffjax.acceleration import deediff
from diffjax.models.transformer import model_stages
from diffjax.train import train
from experiments import text, toy2d
from tests.helpers import assert_trees_equal
from tests.test_cli_fuzz import _assert_refused, _run

TEXT = "--config=configs/acceleration/deediff_text.py:tiny"
DIT = "--config=configs/acceleration/deediff.py:tiny"


def _trained(config, workdir, task):
  """config trained 2 steps, without evaluations, into workdir."""
  config.train.update(num_steps=2, steps_per_call=2, checkpoint_every=2, eval_every=0,
                      log_every=0)
  train(config, workdir, dataclasses.replace(task, evaluate=lambda params, key: ({}, {})))
  return workdir


@pytest.fixture(scope="module")
def source(tmp_path_factory):
  """A tiny arithmetic run of two blocks."""
  config = arithmetic.get_config("tiny")
  config.model.depth = 2
  return _trained(config, str(tmp_path_factory.mktemp("sources") / "arith"),
                  text.build_task(config))


@pytest.fixture(scope="module")
def moons(tmp_path_factory):
  """A tiny run of 2D points: not a token run."""
  config = teacher_config.get_config("moons,tiny")
  return _trained(config, str(tmp_path_factory.mktemp("sources") / "moons"),
                  toy2d.build_task(config))


def test_deediff_on_a_text_run_at_threshold_0_is_the_full_network(tmp_path, capfd, source):
  workdir = tmp_path / "exits"
  code, output = _run([TEXT, f"--workdir={workdir}", f"--config.source.workdir={source}"],
                      capfd)
  assert code == 0, output
  record = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()
            if "layers_t0" in line][-1]
  # Threshold 0: every one of the 9 first-hitting calls ran both blocks, and the sampled
  # statements are the full network's, token for token (same key).
  assert record["calls_t0"] == 9 and record["layers_t0"] == record["loop_layers_t0"] == 2
  assert record["changed_t0"] == 0.0
  # Threshold 1: every sequence leaves at the first exit, and the batch stops there.
  assert record["calls_t1"] == 9 and record["layers_t1"] == record["loop_layers_t1"] == 1
  assert 0.0 <= record["fraction_correct_t1"] <= 1.0
  assert record["nelbo_per_token_t1"] != record["nelbo_per_token_t0"]
  # The backbone stayed frozen: the network is the source run's, bit for bit.
  assert_trees_equal(runs.load(str(workdir), use_ema=False).params["network"],
                     runs.load(source).params)


def test_the_tally_counts_the_sampler_s_own_exits(source):
  run = runs.load(source)
  stages = model_stages("token_transformer", run.spec.shape, vocab_size=run.spec.vocab_size,
                        mask_id=run.path.mask_id,
                        **{k: v for k, v in run.config.model.items() if k != "name"})
  exits = deediff.init_exits(stages, run.params)
  exits["uncertainty"]["kernel"] = 2.0 * jax.random.normal(
      jax.random.PRNGKey(0), exits["uncertainty"]["kernel"].shape)
  states = jax.random.randint(jax.random.PRNGKey(1), (3, 6, 9), 0, run.path.mask_id + 1)
  _, u = jax.jit(lambda p, x: deediff.exit_outputs(stages, p, exits, x, jnp.zeros(6)))(
      run.params, states[0])
  threshold = float(np.median(np.asarray(u)))
  tally = deediff.BlockTally()
  model = deediff.early_exit_model(stages, exits, threshold, tally)
  # Three calls inside one compiled scan, the second skipped under a lax.cond.
  skipped = jnp.zeros((6, 9, run.spec.vocab_size))
  scan = jax.jit(lambda params: jax.lax.scan(lambda c, args: (c, jax.lax.cond(
      args[1], lambda: model(params, args[0], jnp.zeros(6)), lambda: skipped)), 0,
      (states, jnp.array([True, False, True]))))
  jax.block_until_ready(scan(run.params))
  jax.effects_barrier()
  apply = jax.jit(lambda p, x: deediff.early_exit_apply(stages, p, exits, x, jnp.zeros(6),
                                                        threshold=threshold)[1])
  layers = [apply(run.params, states[i]) for i in (0, 2)]
  assert tally.calls == 2
  assert tally.per_sample() == pytest.approx(float(np.mean(np.concatenate(layers))))
  assert tally.per_call() == pytest.approx(np.mean([int(np.max(l)) for l in layers]))
  assert 1.0 < tally.per_sample() < stages.depth


CASES = [
    (TEXT, ("--config.eval.thresholds=(0.0,1.5)",), "threshold must be in [0, 1]"),
    (TEXT, ("--config.sample.num_steps=4",), "sample.num_steps=4 is too few"),
    (TEXT, ("--config.source.kind=graphs",), "source.kind"),
    # A text run given to the DiT config; the text config given a run of 2D points.
    (DIT, ("--config.source.workdir={source}",),
     "not a flow-matching DiT run (configs/guidance/digits.py)"),
    ("--config=configs/acceleration/ld_pruner.py:tiny", ("--config.source.kind=tokens",),
     "takes source.kind in ('images',)"),
    (TEXT, ("--config.source.workdir={moons}",),
     "not a masked-diffusion run of token data"),
]


@pytest.mark.parametrize("config, overrides, text_", CASES,
                         ids=[f"{c[0].split('/')[-1]} {' '.join(c[1])}" for c in CASES])
def test_bad_deediff_text_input_is_refused_before_the_workdir(tmp_path, capfd, source, moons,
                                                               config, overrides, text_):
  workdir = tmp_path / "run"
  source_flag = () if "source.workdir" in " ".join(overrides) else (
      f"--config.source.workdir={source}",)
  code, output = _run([config, f"--workdir={workdir}", *source_flag,
                       *(o.format(source=source, moons=moons) for o in overrides)], capfd)
  _assert_refused(code, output, 2, text_)
  assert not workdir.exists()
