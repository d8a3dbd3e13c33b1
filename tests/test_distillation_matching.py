"""f-distill's pieces against closed forms: h(r) = f''(r) r^2 per divergence, the reverse-
and forward-KL generator gradients on a Gaussian teacher / student pair, and the
discriminator's density ratio between two known Gaussians."""
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from diffjax.data.gaussian_mixture import isotropic_mixture
from diffjax.data.mixture_oracle import mixture_oracle
from diffjax.distillation.discriminator import (Head, discriminator_head, discriminator_loss,
                                                ratio_from_logits)
from diffjax.distillation.distribution_matching import FDistill
from diffjax.distillation.divergences import DIVERGENCES, batch_normalized, get_divergence
from diffjax.distillation.score_distillation import OneStepGenerator, ScoreDistillation
from diffjax.errors import ConfigError
from diffjax.models import Model
from diffjax.objectives.base import Objective
from diffjax.paths import build_path
from diffjax.pipeline import DataSpec, Pipeline
from diffjax.train import fit

DIM = 2


@pytest.mark.parametrize("name", DIVERGENCES.names())
def test_weight_is_f_second_derivative_times_r_squared(name):
  divergence = get_divergence(name)
  second = jax.vmap(jax.grad(jax.grad(lambda r: divergence.f(r))))
  r = jnp.array([0.01, 0.3, 1.0, 2.5, 40.0])
  np.testing.assert_allclose(divergence.weight(r), second(r) * r ** 2, rtol=1e-5)
  assert float(divergence.f(jnp.array(1.0))) == pytest.approx(0.0, abs=1e-7)


def test_named_weights_and_unknown_divergence():
  r = jnp.array([0.5, 2.0])
  np.testing.assert_allclose(get_divergence("reverse_kl").weight(r), [1.0, 1.0])
  np.testing.assert_allclose(get_divergence("forward_kl").weight(r), r)
  np.testing.assert_allclose(get_divergence("jensen_shannon").weight(r), r / (r + 1))
  np.testing.assert_allclose(batch_normalized(r), r / 1.25)
  with pytest.raises(ConfigError, match=r"method.divergence='kl' is not a registered "
                     r"f-divergence; valid: forward_kl, jensen_shannon, reverse_kl"):
    get_divergence("kl")


# ---- A Gaussian teacher N(mu_p, s_p^2 I) and a Gaussian student G(z) = m + s z. ----
MU_P, S_P, T = jnp.array([1.0, -0.5]), 0.7, 0.6
PATH = build_path("rectified_flow")


def _gaussian(mean, std):
  return isotropic_mixture(jnp.ones((1,)), mean[None], std)


def _fields(mean, std):
  return mixture_oracle(PATH, _gaussian(mean, std)).fields()


class _Tap(nn.Module):
  """Makes (x_t, t) the fake network's features at layer "tap"."""

  @nn.compact
  def __call__(self, x, t):
    return _Identity(name="tap")(
        jnp.concatenate([x, jnp.broadcast_to(t, x.shape[:1])[:, None]], -1))


class _Identity(nn.Module):

  def __call__(self, u):
    return u


def _exact_student_objective():
  """The fake score of a student N(m, s^2 I): its exact fields (the params are (m, log s))."""
  def fields(apply_fn, params, cond=None):
    del apply_fn, cond
    exact = _fields(params["mean"], jnp.exp(params["log_std"]))

    def evaluate(x, t):
      _Tap().apply({}, x, t)   # Only so that the features can be read.
      return exact.evaluate(x, t)
    return exact._replace(evaluate=evaluate)
  return Objective(loss=None, fields=fields)


def _log_ratio(theta, x_t, t):
  """log p_t(x_t) - log q_t(x_t) of the two Gaussians' noised marginals."""
  p = mixture_oracle(PATH, _gaussian(MU_P, S_P)).log_prob(x_t, t)
  q = mixture_oracle(PATH, _gaussian(theta["mean"], jnp.exp(theta["log_std"]))).log_prob(x_t, t)
  return p - q


def _matching(divergence, theta, batch):
  generator = OneStepGenerator(lambda key: theta,
                               lambda p, z, labels: p["mean"][None] + jnp.exp(p["log_std"]) * z)
  no_model = Model(None, None)
  fake = Pipeline(DataSpec((DIM,)), PATH, _exact_student_objective(), no_model, None, None)
  core = ScoreDistillation(generator, fake, lambda key, n: jax.random.normal(key, (n, DIM)),
                           0, batch, t_min=T, t_max=T + 1e-7)
  # The exact ratio read off the features (x_t, t) in place of a trained discriminator.
  head = Head(None, lambda params, f: _log_ratio(params, f[:, :DIM], f[:, DIM]))
  return FDistill(core, lambda labels, context: _fields(MU_P, S_P),
                  get_divergence(divergence), head, "tap", time_weight="unit",
                  max_log_ratio=50.0, normalize=False)


def _noised_gaussian_kl(theta, forward):
  """KL(q_t || p_t) (or KL(p_t || q_t)) of the isotropic Gaussians at time T."""
  alpha, sigma = T, 1 - T
  var_q = alpha ** 2 * jnp.exp(2 * theta["log_std"]) + sigma ** 2
  var_p = alpha ** 2 * S_P ** 2 + sigma ** 2
  gap = jnp.sum((alpha * (theta["mean"] - MU_P)) ** 2)
  u, v = (var_p, var_q) if forward else (var_q, var_p)
  return 0.5 * (DIM * u / v + gap / v - DIM + DIM * jnp.log(v / u))


@pytest.mark.parametrize("divergence, forward", [("reverse_kl", False), ("forward_kl", True)])
def test_generator_gradient_is_the_divergence_gradient(divergence, forward):
  """With the student's exact fake score, unit time weight and the exact ratio, the
  generator loss's gradient at fixed t is grad_theta D_f(p_t || q_t): KL(q_t || p_t) for
  reverse KL (the score difference alone, VSD), KL(p_t || q_t) for forward KL (weighted
  by r); Monte Carlo over 200k draws."""
  theta = {"mean": jnp.array([0.2, 0.4]), "log_std": jnp.array(np.log(1.3), jnp.float32)}
  matching = _matching(divergence, theta, 200_000)
  params = {"generator": theta, "fake": theta, "discriminator": theta}
  loss = lambda g: matching.generator_loss({**params, "generator": g}, jax.random.PRNGKey(3),
                                           lambda x: x, 0, None)[0]
  got = jax.grad(loss)(theta)
  want = jax.grad(lambda th: _noised_gaussian_kl(th, forward))(theta)
  for key in theta:
    np.testing.assert_allclose(got[key], want[key], rtol=0.03, atol=3e-3)
  assert np.max(np.abs(want["mean"])) > 0.1   # Far from the optimum: a real test.


def test_reverse_kl_gradient_vanishes_at_the_teacher():
  """A generator equal to the teacher (and a fake score equal to both) gets no gradient."""
  theta = {"mean": MU_P, "log_std": jnp.array(np.log(S_P), jnp.float32)}
  matching = _matching("reverse_kl", theta, 1000)
  params = {"generator": theta, "fake": theta, "discriminator": theta}
  grads = jax.grad(lambda g: matching.generator_loss({**params, "generator": g},
                                                     jax.random.PRNGKey(0), lambda x: x, 0,
                                                     None)[0])(theta)
  np.testing.assert_allclose(grads["mean"], 0.0, atol=1e-5)
  np.testing.assert_allclose(grads["log_std"], 0.0, atol=1e-5)


def test_discriminator_ratio_between_two_gaussians():
  """Trained by BCE on N(0, I) (label 1) against N((1, 0), 1.5^2 I) (label 0), the head's
  exp(logit) approaches p / q: the log-ratio error is small where both have mass."""
  head = discriminator_head(width=64, depth=2)
  mean_q, std_q = jnp.array([1.0, 0.0]), 1.5

  def loss(params, batch, key):
    del batch
    k_p, k_q = jax.random.split(key)
    real = jax.random.normal(k_p, (512, DIM))
    fake = mean_q[None] + std_q * jax.random.normal(k_q, (512, DIM))
    return discriminator_loss(head.apply(params, real), head.apply(params, fake))

  state = fit(loss, optax.adam(3e-3), lambda key: head.init(key, DIM), num_steps=1500,
              key=jax.random.PRNGKey(0), ema_decay=None, steps_per_call=1500)
  x = 0.5 * mean_q[None] + jax.random.normal(jax.random.PRNGKey(1), (2000, DIM))
  log_p = _gaussian(jnp.zeros(DIM), 1.0).log_prob(x)
  log_q = _gaussian(mean_q, std_q).log_prob(x)
  estimate = jnp.log(ratio_from_logits(head.apply(state.params, x)))
  error = float(jnp.mean(jnp.abs(estimate - (log_p - log_q))))
  spread = float(jnp.std(log_p - log_q))
  assert error < 0.12 and spread > 0.5, (error, spread)
