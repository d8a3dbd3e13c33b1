"""LinearAG against CFG on the exact class-conditional mixture oracle; its declared cost
and bad input."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from diffjax.data import ClassConditionalMixture, GaussianMixture
from diffjax.errors import ConfigError
from diffjax.guidance import (ConditionalModel, Guidance, classifier_free, fit_linear_ag,
                              linear_ag)
from diffjax.guidance.build import (GuidanceContext, build_guidance, check_guidance_section,
                                    guidance_cost)
from diffjax.paths import build_path
from diffjax.solvers import sample
from tests.test_cli_fuzz import _assert_refused, _run

VP = build_path("vp")
STEPS = 10
SCALE = 3.0


def _gaussian(mean, std=0.8):
  return GaussianMixture(jnp.ones(1), jnp.asarray(mean, jnp.float32)[None],
                         std ** 2 * jnp.eye(2)[None])


def _model(task, n, null):
  fields_of = task.fields_of(VP)
  return ConditionalModel(fields_of, jnp.ones(n, jnp.int32), jnp.full((n,), null))


# Class 0 is a centred Gaussian: as the null condition its noise prediction
# sigma / (alpha^2 s^2 + sigma^2) x_t is x_t times a factor per step, in the regressors'
# span. Class 1 is a two-component mixture (a nonlinear conditional field).
EXACT = ClassConditionalMixture(jnp.full((2,), 0.5), (
    _gaussian([0.0, 0.0]),
    GaussianMixture(jnp.full((2,), 0.5), jnp.array([[1.5, -1.0], [1.5, 1.0]]),
                    0.5 ** 2 * jnp.broadcast_to(jnp.eye(2), (2, 2, 2)))))


def _linear_ag_sample(model, coefficients, exact_steps, x0):
  guidance = Guidance(model.conditional(), lambda s, n: linear_ag(
      s, model, VP, SCALE, coefficients, exact_steps, n))
  return sample("ddim", None, VP, x0, num_steps=STEPS, guidance=guidance)


@jax.jit
def _exact_case(calibration, x0):
  model = _model(EXACT, calibration.shape[0], 0)
  coefficients = fit_linear_ag(model, VP, "ddim", calibration, SCALE, num_steps=STEPS)
  model = _model(EXACT, x0.shape[0], 0)
  linear = _linear_ag_sample(model, coefficients, 1, x0)
  cfg = sample("ddim", classifier_free(model, SCALE), VP, x0, num_steps=STEPS)
  return coefficients, linear.x, linear.nfe, cfg.x


def test_linear_ag_is_cfg_when_the_coefficients_reproduce_the_unconditional_prediction():
  """The null class is N(0, 0.8^2 I): the fit on 64 calibration trajectories finds the
  unconditional prediction exactly (the coefficients are not unique: x_t and the past
  predictions are dependent here; lstsq takes the minimum-norm ones) and LinearAG, with only the first step calling the unconditional
  model, reproduces CFG's samples from other draws to float32 rounding, at 11 evaluations
  per example instead of 20."""
  calibration = VP.source_sample(jax.random.PRNGKey(0), (64, 2))
  x0 = VP.source_sample(jax.random.PRNGKey(1), (128, 2))
  coefficients, x, nfe, cfg = _exact_case(calibration, x0)
  assert coefficients.shape == (STEPS, 4)
  np.testing.assert_allclose(x, cfg, atol=2e-5)
  assert int(nfe) == 2 + (STEPS - 1)
  assert float(jnp.max(jnp.abs(cfg))) > 1.0   # Guided samples, not a degenerate case.


def test_linear_ag_on_the_unconditional_mixture_is_close_to_cfg():
  """With the real null class (the two-class mixture: not in the regressors' span) the
  estimate is approximate; with 4 of 10 steps exact the samples stay within 0.1 RMS of
  CFG's (measured 0.05), and every step exact is CFG."""
  n = 128
  model = _model(EXACT, n, 2)
  calibration = VP.source_sample(jax.random.PRNGKey(2), (n, 2))
  x0 = VP.source_sample(jax.random.PRNGKey(3), (n, 2))

  @jax.jit
  def run():
    coefficients = fit_linear_ag(model, VP, "ddim", calibration, SCALE, num_steps=STEPS)
    cfg = sample("ddim", classifier_free(model, SCALE), VP, x0, num_steps=STEPS).x
    return (_linear_ag_sample(model, coefficients, 4, x0).x,
            _linear_ag_sample(model, coefficients, STEPS, x0).x, cfg)

  some, every, cfg = run()
  np.testing.assert_allclose(every, cfg, atol=2e-5)
  assert float(jnp.sqrt(jnp.mean((some - cfg) ** 2))) < 0.1


def test_linear_ag_registry_entry_declares_its_cost_and_refuses_bad_input():
  table = np.zeros((STEPS, 4)).tolist()
  section = dict(method="linear_ag", scale=2.0, exact_steps=3, coefficients=table)
  assert guidance_cost(section, "ddim").forward == pytest.approx(1.3)
  check_guidance_section(section, True, "ddim")
  for bad, match in ((dict(section, coefficients=None), "coefficients"),
                     (dict(section, coefficients=[[0.0] * 3] * STEPS), r"\(num_steps, 4\)"),
                     (dict(section, exact_steps=0), "exact_steps"),
                     (dict(section, exact_steps=1.5), "exact_steps"),
                     (dict(section, scale="big"), "scale")):
    with pytest.raises(ConfigError, match=match):
      check_guidance_section(bad, True, "ddim")
  with pytest.raises(ConfigError, match="once per step"):
    check_guidance_section(section, True, "heun")
  with pytest.raises(ConfigError, match="unconditional"):
    check_guidance_section(section, False, "ddim")
  model = _model(EXACT, 4, 0)
  guidance = build_guidance(section, GuidanceContext(model, VP, "ddim"))
  with pytest.raises(ConfigError, match="rows for a grid of 5"):
    sample("ddim", None, VP, jnp.zeros((4, 2)), num_steps=5, guidance=guidance)


LINEAR_AG = "--config=configs/guidance/digits_linear_ag.py:tiny"


@pytest.mark.parametrize("override, text", [
    ("--config.sample.guidance.exact_steps=0", "sample.guidance.exact_steps=0"),
    ("--config.sample.guidance.exact_steps=30", "at most sample.num_steps=4"),
    ("--config.sample.guidance.calibration_samples=0", "calibration_samples=0"),
])
def test_linear_ag_study_refuses_bad_values_before_the_workdir(tmp_path, capfd, override,
                                                              text):
  workdir = tmp_path / "run"
  code, output = _run([LINEAR_AG, f"--workdir={workdir}", override], capfd)
  _assert_refused(code, output, 2, text)
  assert not workdir.exists()
