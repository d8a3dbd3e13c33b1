"""Faster Diffusion's encoder propagation on the U-Net: every step a key step is the plain
sampler exactly; parallel decoding equals sequential propagation; bad key steps."""
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from diffjax.acceleration import (check_key_steps, faster_diffusion, paper_key_steps,
                                  parallel_width)
from diffjax.errors import ConfigError
from diffjax.fields import complete
from diffjax.models import build_model
from diffjax.objectives import build_objective
from diffjax.paths import build_path
from diffjax.solvers import sample
from experiments import acceleration_studies

PATH = build_path("rectified_flow")
OBJECTIVE = build_objective("flow_matching", PATH)
MODEL = build_model("unet", (8, 8, 1), channels=8, channel_mults=(1, 2), num_res_blocks=1,
                    attention_resolutions=(), dropout=0.0, num_classes=3)
# Random weights moved off the zero-initialised output layers, so the output varies.
PARAMS = jax.tree.map(
    lambda a: a + 0.05 * jax.random.normal(jax.random.PRNGKey(1), a.shape),
    MODEL.init(jax.random.PRNGKey(0)))
COND = jnp.arange(4) % 3
X0 = PATH.source_sample(jax.random.PRNGKey(2), (4, 8, 8, 1))
STEPS = 6


def _propagated(key_steps, parallel=False, name="ddim"):
  return sample(name, None, PATH, X0, num_steps=STEPS, guidance=faster_diffusion(
      MODEL.apply, OBJECTIVE, PATH, PARAMS, COND, key_steps, parallel=parallel))


@functools.lru_cache(maxsize=None)
def _runs():
  """The plain sampler, every step a key step, keys (0, 1, 4) sequential and parallel:
  one compilation for the file's U-Net runs."""
  keys = (0, 1, 4)
  return jax.jit(lambda: (
      sample("ddim", complete(OBJECTIVE.fields(MODEL.apply, PARAMS, COND), PATH), PATH, X0,
             num_steps=STEPS),
      _propagated(range(STEPS)), _propagated(keys).x, _propagated(keys, parallel=True).x))()


def test_every_step_a_key_step_is_the_plain_sampler_exactly():
  plain, every, _, _ = _runs()
  np.testing.assert_array_equal(every.x, plain.x)
  assert int(every.nfe) == int(plain.nfe) == STEPS


def test_parallel_decoding_equals_sequential_propagation_and_differs_from_plain():
  _, every, sequential, parallel = _runs()
  np.testing.assert_allclose(parallel, sequential, atol=1e-5)
  assert float(jnp.max(jnp.abs(sequential - every.x))) > 1e-4


def test_paper_key_steps_and_bad_schedules():
  assert paper_key_steps(50) == (0, 1, 2, 3, 5, 10, 15, 25, 35)
  assert paper_key_steps(20) == (0, 1, 2, 4, 6, 10, 14)
  assert check_key_steps((3, 0, 3), 5) == (0, 3)
  assert parallel_width((0, 1, 2, 4, 6, 10, 14), 20) == 5
  assert parallel_width(range(5), 5) == 1
  for bad, match in (((0, 5), "outside the sampler's grid of 5 steps"),
                     ((-1, 0), "outside"), ((1, 2), "include step 0"),
                     ((0, 1.5), "integer"), ("ab", "step indices")):
    with pytest.raises(ConfigError, match=match):
      check_key_steps(bad, 5)
  with pytest.raises(ConfigError, match="outside the sampler's grid of 6 steps"):
    _propagated((0, 6))
  with pytest.raises(ConfigError, match="once per step"):
    _propagated((0, 2), name="heun")


@pytest.mark.parametrize("args, text", [
    (["--key_steps=0,5,20"], "outside the sampler's grid of 20 steps"),
    (["--key_steps=2,4"], "include step 0"),
    (["--sampler=heun"], "once per step"),
    (["--num_steps=0"], "--num_steps"),
    ([], "no run"),
])
def test_the_study_refuses_bad_values_in_one_line_before_writing(tmp_path, capsys, args,
                                                                 text):
  workdir = tmp_path / "missing"
  code = acceleration_studies.main(["faster_diffusion", f"--workdir={workdir}", *args])
  err = capsys.readouterr().err.strip().splitlines()
  assert code == 2 and len(err) == 1 and err[0].startswith("error: "), err
  assert text in err[0], err
  assert not workdir.exists()
