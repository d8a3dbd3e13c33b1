"""Interpolant paths x_t = a(t) x0 + b(t) x1 + gamma(t) z between a source and the data.

Time convention of diffjax (used everywhere): t in [0, 1], t = 0 is the source rho0
(noise, or the first marginal of a bridge), t = 1 is the data rho1; generation integrates
from 0 to 1. Boundary conditions: a(0) = b(1) = 1, a(1) = b(0) = 0, gamma(0) = gamma(1) = 0.
("Stochastic Interpolants: A Unifying Framework for Flows and Diffusions", Albergo,
Boffi & Vanden-Eijnden, eq. 2.1.) Two registered paths relax them on purpose: `mirror`
(a = 0, b = 1: rho0 = rho1) and the Gaussian `lipman` (a(1) = sigma_min); a `constant`
gamma (TorchCFM's smoothing sigma) is nonzero at the ends.

Coefficients are scalar functions of a scalar t; their time derivatives come from
`jax.jvp` unless given, so a user-defined interpolant needs only a, b and gamma
(`custom_interpolant`). gamma * gamma' enters the score/velocity relations
(b = v - gamma gamma' s, Albergo et al. eq. 2.14); it is finite at the endpoints even where
gamma' is not (gamma = sqrt(t (1 - t))), so every gamma below gives it in closed form.

Every path is a `diffjax.core.Path`. The two-sided interpolants are registered here; the
one-sided Gaussian diffusion paths (x0 ~ N(0, sigma(0)^2 I), gamma = 0) in
`diffjax.paths.gaussian`. Each path is registered once.
"""
import math
from typing import NamedTuple

import jax
import jax.numpy as jnp

from diffjax.core import Path, ScalarFn
from diffjax.registry import Registry

PATHS = Registry("path")
GAMMAS = Registry("gamma (interpolant noise)")


def _zero(t):
  return jnp.zeros_like(t)


def _jvp(fn, t):
  return jax.jvp(fn, (t,), (jnp.ones_like(t),))[1]


# ----------------------------------------------------------------------------------------
# gamma(t): each factory returns a `Gamma` of closed forms.


class Gamma(NamedTuple):
  """gamma(t), gamma'(t), gamma(t)^2 and gamma(t) gamma'(t) as scalar functions."""
  gamma: ScalarFn
  dgamma: ScalarFn
  gamma_sq: ScalarFn
  gamma_dgamma: ScalarFn


@GAMMAS.register("zero")
def zero_gamma(scale=0.0):
  """gamma = 0: a deterministic interpolant."""
  del scale
  return Gamma(_zero, _zero, _zero, _zero)


@GAMMAS.register("constant")
def constant_gamma(scale=0.1):
  """gamma = scale: TorchCFM's constant smoothing sigma (breaks gamma(0) = gamma(1) = 0)."""
  return Gamma(lambda t: jnp.full_like(t, scale), _zero,
               lambda t: jnp.full_like(t, scale ** 2), _zero)


@GAMMAS.register("sqrt")
def sqrt_gamma(scale=1.0):
  """gamma = scale sqrt(t (1 - t)), i.e. sqrt(c t (1 - t)) with c = scale^2.

  gamma' is infinite at t = 0, 1; gamma gamma' = c (1 - 2t) / 2 is not. The Brownian-bridge
  noise of SB-CFM ("Improving and generalizing flow-based generative models...", eq. 20).
  """
  c = scale ** 2
  g = lambda t: jnp.sqrt(c * jnp.clip(t * (1 - t), 0.0))
  gg = lambda t: 0.5 * c * (1 - 2 * t)
  # gamma' is infinite where gamma = 0 (t = 0 or 1); there it is reported as 0, as
  # (x_t - mu_t) gamma'/gamma = gamma' z would be in TorchCFM (a probability-zero event in
  # training; samplers only use gamma gamma').
  dg = lambda t: jnp.where(g(t) > 0, gg(t) / jnp.maximum(g(t), 1e-30), 0.0)
  return Gamma(g, dg, lambda t: c * t * (1 - t), gg)


@GAMMAS.register("quadratic")
def quadratic_gamma(scale=1.0):
  """gamma = scale t (1 - t)."""
  return Gamma(lambda t: scale * t * (1 - t), lambda t: scale * (1 - 2 * t),
               lambda t: (scale * t * (1 - t)) ** 2,
               lambda t: scale ** 2 * t * (1 - t) * (1 - 2 * t))


@GAMMAS.register("sin2")
def sin2_gamma(scale=1.0):
  """gamma = scale sin^2(pi t)."""
  s = lambda t: jnp.sin(math.pi * t)
  ds = lambda t: scale * 2 * math.pi * s(t) * jnp.cos(math.pi * t)
  return Gamma(lambda t: scale * s(t) ** 2, ds, lambda t: (scale * s(t) ** 2) ** 2,
               lambda t: scale * s(t) ** 2 * ds(t))


@GAMMAS.register("sigmoid_bump")
def sigmoid_bump_gamma(scale=1.0, sharpness=10.0, width=1.0):
  """A smooth bump vanishing exactly at t = 0 and 1, flat in the middle:

    gamma = scale [sig(k (t - 1/2) + w) - sig(k (t - 1/2) - w) - sig(w - k/2) + sig(-w - k/2)]

  with k = sharpness, w = width (symmetric about t = 1/2 by sig(-x) = 1 - sig(x)).
  """
  k, w, sig = sharpness, width, jax.nn.sigmoid
  g = lambda t: scale * (sig(k * (t - 0.5) + w) - sig(k * (t - 0.5) - w)
                         - sig(w - k / 2) + sig(-w - k / 2))
  dg = lambda t: _jvp(g, t)
  return Gamma(g, dg, lambda t: g(t) ** 2, lambda t: g(t) * dg(t))


def build_gamma(name="zero", scale=None) -> Gamma:
  """The gamma registered as `name`, with its `scale` (each has its own default)."""
  factory = GAMMAS.get(name)
  return factory() if scale is None else factory(scale=scale)


# ----------------------------------------------------------------------------------------
# Paths.


def custom_interpolant(a, b, gamma="zero", gamma_scale=None, *, name="custom", da=None,
                       db=None) -> Path:
  """A user-defined two-sided interpolant: scalar functions a(t), b(t) and a gamma (a name
  in `GAMMAS`, or a `Gamma`). Derivatives of a and b come from `jax.jvp` unless given."""
  if isinstance(gamma, str) and gamma == "zero":
    return Path(name, a=a, b=b, da=da, db=db)
  gam = gamma if isinstance(gamma, Gamma) else build_gamma(gamma, gamma_scale)
  return Path(name, a=a, b=b, gamma=gam.gamma, da=da, db=db, dgamma=gam.dgamma,
              gamma_dgamma=gam.gamma_dgamma)


@PATHS.register("linear")
def linear(gamma="zero", gamma_scale=None) -> Path:
  """x_t = (1 - t) x0 + t x1 + gamma(t) z from any source: I-CFM's straight path (with a
  standard normal source and gamma = 0 it equals `rectified_flow`)."""
  return custom_interpolant(lambda t: 1 - t, lambda t: t, gamma, gamma_scale,
                            name="linear", da=lambda t: -jnp.ones_like(t),
                            db=jnp.ones_like)


@PATHS.register("trigonometric")
def trigonometric(gamma="sqrt", gamma_scale=None) -> Path:
  """a = sqrt(1 - gamma^2) cos(pi t / 2), b = sqrt(1 - gamma^2) sin(pi t / 2) + gamma z.

  Albergo et al., "Stochastic Interpolants", eq. 4.6 (needs gamma <= 1; derivatives via
  gamma^2, so finite at the endpoints).
  """
  gam = build_gamma(gamma, gamma_scale)
  amp = lambda t: jnp.sqrt(1 - gam.gamma_sq(t))
  return custom_interpolant(lambda t: amp(t) * jnp.cos(0.5 * math.pi * t),
                            lambda t: amp(t) * jnp.sin(0.5 * math.pi * t), gam,
                            name="trigonometric")


@PATHS.register("vp_cfm")
def vp_cfm(gamma="zero", gamma_scale=None) -> Path:
  """x_t = cos(pi t / 2) x0 + sin(pi t / 2) x1 + gamma z from any source: VP-CFM ("Improving
  and generalizing flow-based generative models with minibatch optimal transport", Tong et
  al., sec. 5). Unlike `trigonometric` the amplitude does not shrink with gamma. (Not the
  Gaussian `iddpm_cosine` noise schedule.)"""
  return custom_interpolant(lambda t: jnp.cos(0.5 * math.pi * t),
                            lambda t: jnp.sin(0.5 * math.pi * t), gamma, gamma_scale,
                            name="vp_cfm")


@PATHS.register("encoder_decoder")
def encoder_decoder(gamma="sin2", gamma_scale=None) -> Path:
  """a = cos^2(pi t) on t < 1/2 (0 after), b = cos^2(pi t) on t > 1/2 (0 before), with
  gamma = sin^2(pi t) by default: x0 is encoded into pure noise at t = 1/2, then decoded
  into x1 (Albergo et al., "Stochastic Interpolants", eq. 4.9)."""
  c2 = lambda t: jnp.cos(math.pi * t) ** 2
  return custom_interpolant(lambda t: jnp.where(t < 0.5, c2(t), 0.0),
                            lambda t: jnp.where(t > 0.5, c2(t), 0.0), gamma, gamma_scale,
                            name="encoder_decoder")


@PATHS.register("mirror")
def mirror(gamma="sqrt", gamma_scale=None) -> Path:
  """x_t = x1 + gamma(t) z: from the data to itself through noise (rho0 = rho1; a = 0)."""
  return custom_interpolant(_zero, jnp.ones_like, gamma, gamma_scale, name="mirror",
                            da=_zero, db=_zero)


def build_path(name: str, **kwargs) -> Path:
  """Builds the path registered as `name` with its keyword options."""
  return PATHS.get(name)(**kwargs)
