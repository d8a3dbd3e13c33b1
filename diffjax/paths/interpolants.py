"""Interpolant paths x_t = a(t) x0 + b(t) x1 + gamma(t) z between a source and the data.

Time convention of diffjax (used everywhere): t in [0, 1], t = 0 is the source rho0
(noise, or the first marginal of a bridge), t = 1 is the data rho1; generation integrates
from 0 to 1. Boundary conditions: a(0) = b(1) = 1, a(1) = b(0) = 0, gamma(0) = gamma(1) = 0.
("Stochastic Interpolants: A Unifying Framework for Flows and Diffusions", Albergo,
Boffi & Vanden-Eijnden, eq. 2.1.)

Coefficients are scalar functions of a scalar t; their time derivatives come from
`jax.jvp` unless given, so a user-defined interpolant needs only a, b and gamma.
"""
import dataclasses
from typing import Callable, Optional

import jax
import jax.numpy as jnp

from diffjax.registry import Registry

PATHS = Registry("path")

ScalarFn = Callable[[jax.Array], jax.Array]


def _zero(t):
  return jnp.zeros_like(t)


def _time_column(t, x):
  """Broadcasts t of shape () or (B,) against x of shape (B, ...)."""
  t = jnp.asarray(t, x.dtype)
  return t.reshape(t.shape + (1,) * (x.ndim - t.ndim))


@dataclasses.dataclass(frozen=True)
class Interpolant:
  """x_t = a(t) x0 + b(t) x1 + gamma(t) z, z ~ N(0, I).

  Attributes:
    name: the registry name (for messages and configs).
    a, b, gamma: scalar coefficient functions of a scalar t.
    da, db, dgamma: optional closed-form derivatives; default to `jax.jvp` of a, b, gamma.
  """
  name: str
  a: ScalarFn
  b: ScalarFn
  gamma: ScalarFn = _zero
  da: Optional[ScalarFn] = None
  db: Optional[ScalarFn] = None
  dgamma: Optional[ScalarFn] = None

  def _derivative(self, fn, closed_form, t):
    if closed_form is not None:
      return closed_form(t)
    return jax.jvp(fn, (t,), (jnp.ones_like(t),))[1]

  def coefficients(self, t):
    """t: () or (B,) -> (a, b, gamma), each shaped like t."""
    t = jnp.asarray(t, jnp.float32)
    return self.a(t), self.b(t), self.gamma(t)

  def coefficient_derivatives(self, t):
    """t: () or (B,) -> (a', b', gamma'), each shaped like t."""
    t = jnp.asarray(t, jnp.float32)
    return (self._derivative(self.a, self.da, t), self._derivative(self.b, self.db, t),
            self._derivative(self.gamma, self.dgamma, t))

  def sample(self, t, x0, x1, z=None):
    """x_t for t: () or (B,), x0, x1, z: (B, ...). z may be None when gamma = 0."""
    a, b, g = (_time_column(c, x1) for c in self.coefficients(t))
    xt = a * x0 + b * x1
    return xt if z is None else xt + g * z

  def conditional_velocity(self, t, x0, x1, z=None):
    """d/dt x_t = a' x0 + b' x1 + gamma' z: the regression target of the velocity."""
    da, db, dg = (_time_column(c, x1) for c in self.coefficient_derivatives(t))
    v = da * x0 + db * x1
    return v if z is None else v + dg * z


@PATHS.register("linear")
def linear() -> Interpolant:
  """x_t = (1 - t) x0 + t x1: rectified flow / conditional flow matching's straight path."""
  return Interpolant("linear", a=lambda t: 1 - t, b=lambda t: t,
                     da=lambda t: -jnp.ones_like(t), db=jnp.ones_like)


def build_path(name: str, **kwargs) -> Interpolant:
  """Builds the path registered as `name` with its keyword options."""
  return PATHS.get(name)(**kwargs)
