"""What a sampler declares, and what guidance hands `sample`.

Every sampler is a stepper factory registered in `SAMPLERS` with a `Sampler` declaration.
Callers read the declaration (guidance, to know which samplers it can wrap and how; the
NFE accounting; the token front end; configs), never a list of names:

  build                    build(path, **options) -> `Stepper` (`diffjax.core`)
  evaluations              field evaluations (`fields.evaluate` calls) per grid step. An
                           adaptive sampler declares them per attempted internal step; its
                           reported nfe counts every attempt, accepted or rejected, and its
                           start-up evaluations (dopri5: 6 per attempt, 2 to start)
  order                    the global order of convergence in the step size (the weak
                           order, of the law of the samples, for a stochastic sampler); None
                           where the notion does not apply (token samplers)
  stochastic               whether a step draws noise (`sample` then needs a key)
  needs                    the predictions a step reads (`Fields.names`)
  evaluates_once_at_start  each step evaluates its fields once (at most), as
                           fields.evaluate(x, t) at its own start: a guidance method may
                           compute the predictions there itself and hand them to the step
                           (CFG++, Adaptive Guidance, DPS, SVDD's shared evaluation)
  default_grid             the `TIME_GRIDS` name it runs on by default
  default_steps            its number of grid steps when the caller gives none, or None:
                           the caller must give num_steps
  adaptive                 it chooses its own steps inside each grid interval, so the grid
                           only says where a trajectory is recorded (without one, `sample`
                           makes one solve from the grid's first time to its last)
`tokens` (the sampler reads token logits or next-token logits) follows from `needs`. A property that depends on
the sampler's options is a function of them, e.g. DDIM's `stochastic=lambda eta=0.0, **_:
eta != 0`, and `default_steps` may be a function default_steps(x0, **options);
`sampler_for(name, options)` returns the declaration with them evaluated for one run.

Registering a new sampler is a stepper factory and one declaration:

  SAMPLERS.register("my_sampler", Sampler(build, evaluations=1, order=1, stochastic=True,
                                          needs=("velocity", "score")))

(`with SAMPLERS.registered(name, sampler):` registers one for a block only, as a test or
a notebook may). Guidance reads its declaration: nothing in `diffjax.guidance` changes.
"""
from typing import Any, Callable, NamedTuple, Optional

from diffjax.core import TOKEN_PREDICTIONS, Fields, Stepper
from diffjax.registry import Registry

# The properties that may be functions of the sampler's options (`Sampler.bind`).
OPTION_DEPENDENT = ("evaluations", "order", "stochastic", "needs", "adaptive")


def _evaluated(value, options):
  return value(**options) if callable(value) else value


class Sampler(NamedTuple):
  """A registered sampler's declaration (module docstring); `name` is set by `bind`."""
  build: Callable[..., Stepper]
  evaluations: Any
  order: Any = None
  stochastic: Any = False
  needs: Any = ("velocity",)
  evaluates_once_at_start: bool = False
  default_grid: str = "uniform"
  default_steps: Any = None
  adaptive: Any = False
  name: str = ""

  @property
  def tokens(self) -> bool:
    """Whether the sampler draws tokens (reads logits)."""
    return any(n in TOKEN_PREDICTIONS for n in _evaluated(self.needs, {}))

  def bind(self, name: str, options: Optional[dict] = None) -> "Sampler":
    """This declaration for one run: `name` set and every option-dependent property
    evaluated at `options` (the sampler's keyword options)."""
    options = dict(options or {})
    return self._replace(name=name, **{p: _evaluated(getattr(self, p), options)
                                       for p in OPTION_DEPENDENT})

  def steps_for(self, x0, options: Optional[dict] = None) -> Optional[int]:
    """default_steps for the initial state x0 (B, ...) and `options`."""
    steps = self.default_steps
    return steps(x0, **dict(options or {})) if callable(steps) else steps


SAMPLERS = Registry("sampler")


def sampler_for(name: str, options: Optional[dict] = None) -> Sampler:
  """The declaration of the sampler registered as `name`, bound to `options`."""
  return SAMPLERS.get(name).bind(name, options)


def _unchanged(stepper, sampler):
  del sampler
  return stepper


class Guidance(NamedTuple):
  """Guidance as `sample(..., guidance=...)` runs it (`diffjax.guidance` builds them).

  fields: what the sampler integrates (guided fields for CFG, classifier or reconstruction
    guidance), or None for the fields given to `sample`;
  wrap(stepper, sampler) -> Stepper: the guided stepper from the sampler's stepper and its
    bound declaration (`sampler_for`); the identity for methods that change only fields.
  """
  fields: Optional[Fields] = None
  wrap: Callable[[Stepper, Sampler], Stepper] = _unchanged
