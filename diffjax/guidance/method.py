"""What a guidance method declares: the registry entry `build_guidance` and
`check_guidance_section` read (`diffjax.guidance.build`).

A method is one module that defines its functions and registers a `GuidanceMethod`:
  build(section, context) -> Guidance   the method from a config section (sample.guidance:
                                        a ConfigDict or dict) and what the experiment
                                        offers (`GuidanceContext`);
  check(section, sampler)               refuses a bad section with a `ConfigError` before
                                        anything runs; `sampler` is the bound declaration
                                        of the sampler it will wrap
                                        (`diffjax.solvers.sampler_for`), or None when not
                                        yet known;
  needs_unconditional                   it reads the unconditional (null-condition) model;
  restores                              it solves an inverse problem from measurements
                                        y = A(x) + noise (context.measurements, operator);
  cost(section, sampler) -> Cost        its network work per step relative to the unguided
                                        sampler's.
The wrap of the `Guidance` it builds receives the bound sampler declaration, so a method
reads what the sampler is (stochastic, evaluating once at its start, ...) from there,
never from a list of names: a newly registered sampler reaches every method unchanged.

  GUIDANCE_METHODS.register("my_method", GuidanceMethod(build, check, cost=cost))
"""
import math
from typing import Any, Callable, NamedTuple, Optional

from diffjax.errors import ConfigError
from diffjax.guidance.model import ConditionalModel, traced
from diffjax.registry import Registry
from diffjax.solvers import Guidance


class Cost(NamedTuple):
  """Network work per step of the guided sampler relative to the unguided one. forward:
  forward passes on a batch of B examples per unguided pass (CFG: 2, one batched call on
  2B examples; an upper bound where it varies, as with a guidance interval or Adaptive
  Guidance's switch); backward: whether each evaluation also backpropagates through the
  network (a vector-Jacobian product, about two forward passes more)."""
  forward: float
  backward: bool = False


class GuidanceContext(NamedTuple):
  """What an experiment offers guidance. model: the `ConditionalModel` (for an
  unconditional run: fields_of(None) the model, cond None, null None); sampler: the
  sampler's name and sampler_options its options; the rest optional: measurements y and
  operator A (dps, reconstruction), observed values and mask (tsdiff), reward(x1) -> (B,)
  (svdd), classifier_logits(x1) -> (B, K) (elucd), classifier_log_prob(x, t) -> (B,)
  (classifier), state_shape (B, ...) for checks, target_labels (B,) the classes elucd
  guides to (default: the model's condition; give them when the model is the
  unconditional one)."""
  model: ConditionalModel
  path: Any
  sampler: str
  sampler_options: dict = {}
  measurements: Any = None
  operator: Optional[Callable] = None
  observed: Any = None
  mask: Any = None
  reward: Optional[Callable] = None
  classifier_logits: Optional[Callable] = None
  classifier_log_prob: Optional[Callable] = None
  state_shape: Any = None
  target_labels: Any = None


def _no_check(section, sampler):
  del section, sampler


def _unit_cost(section, sampler):
  del section, sampler
  return Cost(1.0)


class GuidanceMethod(NamedTuple):
  """A registered guidance method (module docstring)."""
  build: Callable[[Any, GuidanceContext], Guidance]
  check: Callable[[Any, Any], None] = _no_check
  needs_unconditional: bool = False
  restores: bool = False
  cost: Callable[[Any, Any], Cost] = _unit_cost


GUIDANCE_METHODS = Registry("guidance method")


def require_context(context: GuidanceContext, method: str, *names):
  """Refuses a method whose needs (context fields) the experiment does not provide."""
  missing = [n for n in names if getattr(context, n) is None]
  if missing:
    raise ConfigError(f"Guidance method {method!r} needs {', '.join(missing)}, which this "
                      "experiment does not provide; choose another sample.guidance.method.")


def check_number(section, key, default):
  """section[key] (default `default`) if it is a finite number, else a ConfigError naming
  sample.guidance.key; a traced value (a sweep under jit) passes unchecked."""
  value = section.get(key, default)
  if traced(value):
    return value
  try:
    number = float(value)
  except (TypeError, ValueError):
    raise ConfigError(f"sample.guidance.{key} must be a number; got {value!r}.") from None
  if not math.isfinite(number):
    raise ConfigError(f"sample.guidance.{key} must be finite; got {value!r}.")
  return value


GUIDANCE_METHODS.register("none", GuidanceMethod(
    lambda section, context: Guidance(context.model.conditional())))
