"""Reference processes of Schrödinger bridges: dX = f(params, x, t) dt + g(t) dW.

A Schrödinger bridge is the path measure closest in KL to a reference process among those
with the given marginals. The reference here is an SDE on t in [0, 1] (t = 0 the first
marginal) whose drift belongs to a parametric family: a pure function
`drift(params, x, t)` with x (B, D), t () or (B,), returning (B, D), and params a pytree.
`brownian(sigma)` is the zero drift with g = sigma (a Brownian motion of variance sigma^2
per unit time); `linear` and `ornstein_uhlenbeck` have Gaussian transitions and closed-form
bridges (`diffjax.bridges.gaussian`); `lotka_volterra` and `repressilator` are the
families of "Multi-marginal Schrödinger Bridges with Iterative Reference Refinement"
(Shen, Berlinghieri & Broderick, AISTATS 2025, Sec. 5), whose parameters are refitted by
`diffjax.bridges.refinement`. Any user function drift(params, x, t) is a family too
(`custom_family`).

Snapshot data live on their own time axis tau in [tau_0, tau_K]; `Reference.rescaled`
writes the same SDE in t = (tau - tau_0) / T: dX = T f(params, x, tau_0 + T t) dt +
sqrt(T) g dW_t.
"""
import dataclasses
from typing import Any, Callable, NamedTuple, Optional

import jax
import jax.numpy as jnp

from diffjax.errors import ConfigError
from diffjax.registry import Registry

DRIFT_FAMILIES = Registry("reference drift family")


class DriftFamily(NamedTuple):
  """drift(params, x, t) -> (B, D); init_params(dim) -> params (the family's neutral
  start); dims: the state dimensions it accepts (None: any); linear: params -> (matrix
  (D, D), offset (D,)) when the drift is x M^T + c (Gaussian transitions), else None."""
  name: str
  drift: Callable[..., Any]
  init_params: Callable[[int], Any]
  dims: Optional[tuple] = None
  linear: Optional[Callable[[Any], Any]] = None


def _register(family: DriftFamily) -> DriftFamily:
  DRIFT_FAMILIES.register(family.name, family)
  return family


def _scalar(value=0.0):
  return jnp.asarray(value, jnp.float32)


ZERO = _register(DriftFamily(
    "zero", lambda params, x, t: jnp.zeros_like(x), lambda dim: {},
    linear=lambda params: None))


def _linear_drift(params, x, t):
  del t
  return x @ params["matrix"].T + params["offset"][None]


LINEAR = _register(DriftFamily(
    "linear", _linear_drift,
    lambda dim: {"matrix": jnp.zeros((dim, dim)), "offset": jnp.zeros((dim,))},
    linear=lambda params: (params["matrix"], params["offset"])))


def _ou_drift(params, x, t):
  del t
  return -params["rate"] * (x - params["mean"][None])


def _ou_linear(params):
  dim = params["mean"].shape[0]
  return -params["rate"] * jnp.eye(dim), params["rate"] * params["mean"]


ORNSTEIN_UHLENBECK = _register(DriftFamily(
    "ornstein_uhlenbeck", _ou_drift,
    lambda dim: {"rate": _scalar(), "mean": jnp.zeros((dim,))}, linear=_ou_linear))


def _lotka_volterra_drift(params, x, t):
  """Prey u, predator v: du = (alpha u - beta u v) dt, dv = (delta u v - gamma v) dt."""
  del t
  u, v = x[:, 0], x[:, 1]
  return jnp.stack([params["alpha"] * u - params["beta"] * u * v,
                    params["delta"] * u * v - params["gamma"] * v], -1)


LOTKA_VOLTERRA = _register(DriftFamily(
    "lotka_volterra", _lotka_volterra_drift,
    lambda dim: {k: _scalar() for k in ("alpha", "beta", "gamma", "delta")}, dims=(2,)))


def _repressilator_drift(params, x, t):
  """Three genes, each repressing the next (Elowitz & Leibler 2000):
  dx_i = (beta / (1 + (x_{i-1} / k)^n) - gamma x_i) dt; concentrations below 1e-6 are
  floored inside the Hill function so that it stays differentiable."""
  del t
  repressor = jnp.maximum(jnp.roll(x, 1, axis=1), 1e-6)
  hill = 1.0 / (1.0 + (repressor / params["k"]) ** params["n"])
  return params["beta"] * hill - params["gamma"] * x


REPRESSILATOR = _register(DriftFamily(
    "repressilator", _repressilator_drift,
    lambda dim: {"beta": _scalar(), "n": _scalar(1.0), "k": _scalar(1.0),
                 "gamma": _scalar()}, dims=(3,)))


def custom_family(name, drift, init_params, dims=None) -> DriftFamily:
  """A user family: drift(params, x, t) -> (B, D), init_params(dim) -> params."""
  return DriftFamily(name, drift, init_params, dims)


def get_family(family) -> DriftFamily:
  """A DriftFamily, or the registered family of that name (unknown names list the valid)."""
  return family if isinstance(family, DriftFamily) else DRIFT_FAMILIES.get(family)


# ----------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Reference:
  """dX = s f(params, x, tau0 + s t) dt + sqrt(s) sigma dW on bridge time t in [0, 1],
  with tau0 = t_offset and s = time_scale (0 and 1, the family's own time, unless
  `rescaled`).

  Attributes:
    family: the `DriftFamily` of f.
    params: the family's parameters (a pytree).
    sigma: g, the constant diffusion coefficient (> 0) in the family's own time.
    t_offset, time_scale: the affine map from bridge time t in [0, 1] to the family's time.
  """
  family: DriftFamily
  params: Any
  sigma: float
  t_offset: float = 0.0
  time_scale: float = 1.0

  @property
  def name(self) -> str:
    return self.family.name

  def drift(self, x, t, params=None):
    """f in bridge time: x (B, D), t () or (B,) -> (B, D); params default self.params."""
    params = self.params if params is None else params
    tau = self.t_offset + self.time_scale * jnp.asarray(t, jnp.float32)
    return self.time_scale * self.family.drift(params, x, tau)

  def diffusion(self, t=None):
    """g in bridge time (a float): sigma sqrt(time_scale)."""
    del t
    return self.sigma * self.time_scale ** 0.5

  def with_params(self, params) -> "Reference":
    return dataclasses.replace(self, params=params)

  def rescaled(self, t_offset, time_scale) -> "Reference":
    """The same SDE on bridge time t = (tau - t_offset) / time_scale."""
    return dataclasses.replace(self, t_offset=float(t_offset), time_scale=float(time_scale))

  def linear_coefficients(self):
    """(matrix (D, D), offset (D,)) of the drift in bridge time if it is linear, with
    matrix None for the zero drift; raises ConfigError for a nonlinear family."""
    if self.family.linear is None:
      raise ConfigError(f"The {self.name!r} reference drift is not linear; closed-form "
                        "Gaussian bridges need 'zero', 'linear' or 'ornstein_uhlenbeck'.")
    coefficients = self.family.linear(self.params)
    if coefficients is None:
      return None, None
    matrix, offset = coefficients
    return self.time_scale * matrix, self.time_scale * offset


def check_sigma(sigma, who="sigma"):
  """Refuses a non-positive or non-finite diffusion coefficient."""
  try:
    value = float(sigma)
  except (TypeError, ValueError):
    raise ConfigError(f"{who} must be a positive number; got {sigma!r}.") from None
  if not value > 0 or value == float("inf"):
    raise ConfigError(f"{who} must be a positive number (the reference's diffusion "
                      f"coefficient); got {sigma!r}.")
  return value


def check_reference(reference: Reference, dim: int) -> Reference:
  """Refuses a family that does not accept dimension `dim` or whose drift does not return
  the shape of x (checked by tracing, no computation)."""
  family = reference.family
  if family.dims is not None and dim not in family.dims:
    dims = " or ".join(map(str, family.dims))
    raise ConfigError(f"The {family.name!r} reference drift works in dimension {dims}; "
                      f"the data have dimension {dim}.")
  x = jax.ShapeDtypeStruct((3, dim), jnp.float32)
  try:
    out = jax.eval_shape(lambda x: reference.drift(x, jnp.zeros(())), x)
  except Exception as error:  # A user drift may fail in any way on a wrong shape.
    raise ConfigError(f"The {family.name!r} reference drift failed on x of shape "
                      f"{x.shape}: {error}") from error
  if getattr(out, "shape", None) != x.shape:
    raise ConfigError(f"The {family.name!r} reference drift returned shape "
                      f"{getattr(out, 'shape', out)} for x of shape {x.shape}; it must "
                      "return the shape of x.")
  return reference


def reference_process(family="zero", sigma=1.0, params=None, dim=None) -> Reference:
  """A checked reference: family name or DriftFamily, sigma > 0, params (default: the
  family's init_params(dim)); dim is needed for default params and the shape check."""
  family = get_family(family)
  sigma = check_sigma(sigma)
  if params is None:
    if dim is None:
      raise ConfigError("reference_process needs params or the data dimension dim.")
    params = family.init_params(dim)
  params = jax.tree.map(lambda p: jnp.asarray(p, jnp.float32), params)
  reference = Reference(family, params, sigma)
  return reference if dim is None else check_reference(reference, dim)


def brownian(sigma, dim=None) -> Reference:
  """dX = sigma dW: the reference of SB-CFM, DSB's Brownian case, DSBM and Bunne et al."""
  return reference_process("zero", sigma, {}, dim)
