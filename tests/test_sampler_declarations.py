"""Samplers declare what they are (`diffjax.solvers.sampler`), every declaration matches its
stepper, and a sampler registered here, unknown to `diffjax.guidance`, is guided by CFG and
SVDD through its declaration alone (exact Gaussian-mixture fields, closed-form means)."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from diffjax.conditioning import class_condition
from diffjax.core import Fields, Stepper
from diffjax.data import GaussianMixture, mixture_oracle, two_class_mixture
from diffjax.errors import ConfigError
from diffjax.guidance import ConditionalModel, GuidanceContext, build_guidance, guidance_cost
from diffjax.paths import build_path
from diffjax.registry import UnknownComponentError
from diffjax.solvers import SAMPLERS, Sampler, sample, sampler_for

VP = build_path("vp")
MASKED = build_path("masked", vocab_size=5)


def toy_euler_maruyama(path):
  """Euler–Maruyama for the reverse-time SDE of a Gaussian path, written as a user would:
  dX = (v + eps s) dt + sqrt(2 eps) dW with eps = sigma^2 lambda' (Song et al.'s reverse
  SDE in diffjax time), no noise on the last step. Its state is the grid's last time."""
  view = path.gaussian

  def step(fields, x, t_end, t, t_next, key):
    out = fields.evaluate(x, t)
    eps = jnp.where(t_next == t_end, 0.0, view.reverse_sde_eps(t))
    h = t_next - t
    noise = jax.random.normal(key, x.shape, x.dtype)
    return x + h * (out.velocity + eps * out.score) + jnp.sqrt(2 * eps * h) * noise, t_end, 1

  return Stepper(lambda x0, ts: ts[-1], step, ("velocity", "score"))


TOY = Sampler(toy_euler_maruyama, evaluations=1, order=1, stochastic=True,
              needs=("velocity", "score"), evaluates_once_at_start=True, default_steps=100)


def test_a_registered_toy_sampler_is_guided_by_cfg_through_its_declaration():
  """CFG with w = 1 is the conditional model: the class-1 samples of the two-class
  mixture have mean (1, 0) (N = 512: 4 standard errors, 0.7 / sqrt(512) and 0.86 /
  sqrt(512), plus 0.05 for 100 Euler–Maruyama steps). The run takes the toy's own
  default of 100 steps; the sampler is gone after the block."""
  task = two_class_mixture(separation=1.0, std=0.7)
  n = 512
  cond, null = class_condition(jnp.ones(n, jnp.int32), 2)
  model = ConditionalModel(task.fields_of(VP), cond, null)
  x0 = VP.source_sample(jax.random.PRNGKey(0), (n, 2))
  with SAMPLERS.registered("toy_euler_maruyama", TOY):
    guidance = build_guidance({"method": "cfg", "scale": 1.0},
                              GuidanceContext(model, VP, "toy_euler_maruyama"))
    result = jax.jit(lambda x, key: sample("toy_euler_maruyama", None, VP, x, key,
                                           guidance=guidance))(x0, jax.random.PRNGKey(1))
  assert int(result.nfe) == 100
  mean = np.asarray(result.x).mean(0)
  np.testing.assert_allclose(mean, [1.0, 0.0], atol=4 * 0.86 / np.sqrt(n) + 0.05)
  assert "toy_euler_maruyama" not in SAMPLERS


def test_a_registered_toy_sampler_is_guided_by_svdd_through_its_declaration():
  """Prior N(0.5, 1), reward r = x, alpha = 1: SVDD's target is N(1.5, 1); with M = 8
  candidates per step the mean is within 0.3 of 1.5 (as with the built-in ancestral
  sampler, tests/test_guidance.py), and with alpha = 1e9 (uniform weights) it is the
  prior's 0.5 (1,000 samples: 0.15 = 4.7 standard errors). The declaration says the toy
  evaluates once at the start of a step, so SVDD shares that evaluation among the M
  candidates: 1 + M calls per step; declared otherwise, M (1 + 1) calls per step (its cost
  is declared alike). Declared deterministic, it is refused."""
  prior = GaussianMixture(jnp.ones(1), jnp.array([[0.5]]), jnp.ones((1, 1, 1)))
  fields = mixture_oracle(VP, prior).fields()
  model = ConditionalModel(lambda cond: fields, None)
  x0 = VP.source_sample(jax.random.PRNGKey(0), (1000, 1))
  context = GuidanceContext(model, VP, "toy_euler_maruyama", reward=lambda x1: x1[:, 0])
  section = lambda alpha: {"method": "svdd", "num_candidates": 8, "alpha": alpha}

  def run(alpha, steps=100):
    guidance = build_guidance(section(alpha), context)
    result = sample("toy_euler_maruyama", None, VP, x0, jax.random.PRNGKey(1),
                    num_steps=steps, guidance=guidance)
    return jnp.mean(result.x), result.nfe

  with SAMPLERS.registered("toy_euler_maruyama", TOY):
    tilted = jax.jit(run)
    mean, nfe = tilted(1.0)
    assert int(nfe) == 100 * (1 + 8)
    assert abs(float(mean) - 1.5) < 0.3
    assert abs(float(tilted(1e9)[0]) - 0.5) < 0.15
    assert guidance_cost(section(1.0), "toy_euler_maruyama").forward == 1 + 8
  with SAMPLERS.registered("toy_euler_maruyama", TOY._replace(evaluates_once_at_start=False)):
    assert int(jax.jit(lambda: run(1.0, steps=2)[1])()) == 2 * (8 + 8)
    assert guidance_cost(section(1.0), "toy_euler_maruyama").forward == 8 * 2
  with SAMPLERS.registered("toy_euler_maruyama", TOY._replace(stochastic=False)):
    with pytest.raises(ConfigError, match="'toy_euler_maruyama' draws no noise"):
      build_guidance(section(1.0), context)


def test_option_dependent_declarations_and_the_registry_helpers():
  """DDIM is stochastic only with eta != 0, Euler–Maruyama only with eps != 0; diffrax
  is adaptive only with a tolerance; UniPC's corrector raises its order; the token
  samplers' default steps follow the sequence length and blocks. A temporary entry is
  removed even when its block fails."""
  assert not sampler_for("ddim").stochastic and sampler_for("ddim", {"eta": 0.5}).stochastic
  assert not sampler_for("euler_maruyama", {"eps": 0.0}).stochastic
  assert sampler_for("euler_maruyama", {"eps": "reverse_sde"}).stochastic
  assert sampler_for("euler_maruyama", {"correct_drift": False}).needs == ("velocity",)
  assert sampler_for("diffrax", {"rtol": 1e-3}).adaptive
  assert not sampler_for("diffrax", {"solver": "Heun"}).adaptive
  assert sampler_for("diffrax", {"solver": "Heun"}).evaluations == 2
  assert (sampler_for("unipc").order, sampler_for("unipc", {"corrector": False}).order) == (3, 2)
  tokens = jnp.zeros((3, 10), jnp.int32)
  assert sampler_for("first_hitting").steps_for(tokens) == 10
  assert sampler_for("semi_autoregressive").steps_for(
      tokens, {"block_size": 4, "inner": "ancestral", "steps_per_block": 5}) == 3 * 5
  with pytest.raises(RuntimeError):
    with SAMPLERS.registered("toy_euler_maruyama", TOY):
      raise RuntimeError
  with pytest.raises(UnknownComponentError, match="Unknown sampler 'toy_euler_maruyama'"):
    SAMPLERS.unregister("toy_euler_maruyama")


def test_every_declaration_matches_its_stepper():
  """For every continuous sampler with its default options: the built stepper reads what
  the declaration says; a step makes `evaluations` field calls (counted as they run, over
  3 steps on the exact fields of a Gaussian) and reports them as its nfe; a stochastic
  sampler refuses to run without a key, a deterministic one runs without. (diffrax, a
  peer, is left to tests/test_solvers_adaptive.py.) Token samplers read logits (autoregressive:
  next-token logits), as their steppers do, and have no order."""
  exact = mixture_oracle(VP, GaussianMixture(jnp.ones(1), jnp.zeros((1, 1)),
                                             jnp.ones((1, 1, 1)))).fields()
  calls = []

  def evaluate(x, t):
    jax.debug.callback(lambda: calls.append(1))
    return exact.evaluate(x, t)

  fields = Fields(evaluate, exact.names)
  x0 = VP.source_sample(jax.random.PRNGKey(0), (2, 1))
  continuous = [n for n in SAMPLERS if not SAMPLERS.get(n).tokens]
  assert {"euler", "dopri5", "ddim", "euler_maruyama", "unipc"} <= set(continuous)
  for name in continuous:
    options = {"euler_maruyama": {"eps": "reverse_sde"}}.get(name, {})
    declared = sampler_for(name, options)
    assert tuple(declared.build(VP, **options).needs) == declared.needs, name
    if declared.adaptive or name == "diffrax":
      continue
    key = jax.random.PRNGKey(1) if declared.stochastic else None
    calls.clear()
    nfe = jax.jit(lambda x: sample(name, fields, VP, x, key, num_steps=3, **options).nfe)(x0)
    jax.effects_barrier()
    assert int(nfe) == len(calls) == 3 * declared.evaluations, (name, int(nfe), len(calls))
    if declared.stochastic:
      with pytest.raises(ValueError, match="stochastic"):
        jax.eval_shape(lambda x: sample(name, fields, VP, x, None, num_steps=3, **options).x,
                       x0)
  for name in SAMPLERS:
    if SAMPLERS.get(name).tokens:
      options = {"block_size": 2} if name == "semi_autoregressive" else {}
      declared = sampler_for(name, options)
      assert declared.build(MASKED, **options).needs == declared.needs, name
      assert declared.needs in (("logits",), ("next_token_logits",)) and declared.order is None
