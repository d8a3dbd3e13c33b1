"""The registry of distillation methods and the engine `Task` a method's student trains in.

A method declares what it is (`DistillationMethod`): its name, its config check (run before
anything is built), whether it needs a teacher, the players it trains (each a
`diffjax.train.Player` with its own loss and optimizer), the registered sampler
(`diffjax.solvers.SAMPLERS`) its student generates with and that sampler's default number of
steps, and `build(context) -> Student`. Callers read the declaration, never a list of
names. Adding a method is one file and its registration:

  DISTILLATION_METHODS.register("my_method", DistillationMethod(
      "my_method", build=build_my_method, check=check_my_method, needs_teacher=True,
      players=("generator", "fake"), sampler="flow_map", num_steps=1,
      paper="Title of the paper"))

`build` receives a `diffjax.distillation.context.DistillationContext` and returns a
`Student`: the networks' init, the players (and optionally phases), and `generate`.
Parameters are a dict {network name: parameters}; a player trains the networks its
`trainable` marks. The engine runs the players in one compiled step, checkpoints them
together and resumes them bit for bit (`diffjax.train.task`, "Players").
"""
import dataclasses
from typing import Any, Callable, Optional, Sequence, Tuple

import jax

from diffjax import runs
from diffjax.distillation.context import DistillationContext, build_context
from diffjax.errors import ConfigError
from diffjax.registry import Registry
from diffjax.solvers import sample
from diffjax.train.task import Phase, Player, Task
from diffjax.train.validation import check_keys


@dataclasses.dataclass(frozen=True)
class Student:
  """What a method builds (module docstring).

  Attributes:
    init_params: key -> {network name: parameters}.
    players: the `Player`s trained in each step, in their order.
    generate: generate(params, key, num_samples, labels=None, num_steps=None) ->
      `diffjax.solvers.Solution` (x: (num_samples, *shape)); labels (num_samples,) for a
      class-conditional student; num_steps None: the method's default.
    phases: optional `Phase`s naming the players each updates (e.g. DisBack's degradation
      then distillation); () for one phase of every player.
  """
  init_params: Callable[[Any], Any]
  players: Tuple[Player, ...]
  generate: Callable[..., Any]
  phases: Tuple[Phase, ...] = ()


def _no_check(config):
  del config


@dataclasses.dataclass(frozen=True)
class DistillationMethod:
  """A registered method's declaration (module docstring).

  Attributes:
    name: its registry name (config.method.name).
    build: build(context) -> `Student`.
    check: check(config) -> None, raising ConfigError (one line) for a bad config.method
      option; run before the teacher is loaded or any workdir is touched.
    needs_teacher: whether the method reads a teacher (teacher.kind "none" is refused).
    players: the names of the players it trains, in their update order.
    sampler: the `diffjax.solvers.SAMPLERS` name its student generates with.
    num_steps: that sampler's default number of steps for the student.
    paper: the paper (title) the method implements.
  """
  name: str
  build: Callable[[DistillationContext], Student]
  check: Callable[[Any], None] = _no_check
  needs_teacher: bool = True
  players: Tuple[str, ...] = ("student",)
  sampler: str = ""
  num_steps: int = 1
  paper: str = ""


DISTILLATION_METHODS = Registry("distillation method")


def method_of(config) -> DistillationMethod:
  """The declaration config.method.name names, its check passed and its teacher
  requirement met (teacher.kind "none" for a method that needs one is refused)."""
  method = DISTILLATION_METHODS.get(config.method.name)
  method.check(config)
  kind = config.get("teacher", {}).get("kind", "none")
  if method.needs_teacher and kind == "none":
    raise ConfigError(f"method.name={method.name!r} distils a teacher: set teacher.kind to "
                      "'run' (teacher.workdir) or 'oracle' (teacher.mixture).")
  return method


def build_student(config, teacher=None
                  ) -> Tuple[DistillationMethod, DistillationContext, Student]:
  """(declaration, context, student) of `config`: the method checked first, then the
  teacher and the data loaded (`build_context`; `teacher`, a `Teacher`, replaces the one
  config.teacher names), then the student built."""
  method = method_of(config)
  context = build_context(config, teacher)
  student = method.build(context)
  names = tuple(p.name for p in student.players)
  if names != tuple(method.players):
    raise ValueError(f"The {method.name!r} method declares players {method.players} but "
                     f"built {names}.")
  return method, context, student


def sampler_generate(context: DistillationContext, sampler: str, fields_of: Callable,
                     default_steps: int, options_of: Optional[Callable] = None):
  """A `Student.generate` that runs the registered `sampler` on the student's fields:
  fields_of(params, labels) -> `Fields`; options_of(params, labels) -> the sampler's
  options (e.g. a flow map); config.sample.grid, when set, is the time grid."""
  grid = context.config.get("sample", {}).get("grid", None)

  def generate(params, key, num_samples, labels=None, num_steps=None):
    k_source, k_sampler = jax.random.split(key)
    x0 = context.source(k_source, num_samples)
    options = {} if options_of is None else options_of(params, labels)
    return sample(sampler, fields_of(params, labels), context.path, x0, k_sampler,
                  num_steps=num_steps or default_steps, grid=grid, **options)

  return generate


def distillation_task(config, context: DistillationContext, student: Student,
                      evaluate: Callable, sample_fn: Callable) -> Task:
  """The engine's `Task` of a student: its players (and phases) over the parameters of
  `student.init_params`, each loss drawing its own data; evaluate(params, key) and
  sample_fn(params, key) as `diffjax.train.Task`. run.json records the method and the
  data's spec (`load_student`)."""
  record = {"distillation": {"method": config.method.name,
                             "data_spec": dataclasses.asdict(context.spec)}}
  return Task(init_params=student.init_params, loss=None, evaluate=evaluate,
              sample=sample_fn, batch_size=config.train.batch_size,
              players=student.players, phases=tuple(student.phases), record=record)


def load_student(workdir: str, *, use_ema: Optional[bool] = None,
                 step: Optional[int] = None):
  """(student, params, context) of the distillation run in `workdir`: the student
  rebuilt from the recorded config (its teacher loaded again where the method reads one)
  and the trained parameters (EMA by default, as the run's eval.use_ema).

  Raises:
    RunError: no finished run there, or a run of another family.
  """
  run = runs.load(workdir, use_ema=use_ema, step=step)
  if run.config.get("experiment") != "distillation":
    raise runs.RunError(f"{workdir} holds a {run.config.get('experiment')!r} run, not a "
                        "distillation run.")
  _, context, student = build_student(run.config)
  return student, run.params, context


def method_options(config, defaults) -> dict:
  """`defaults` (a dict of the method's options) with config.method's values over them."""
  return dict(defaults, **{k: v for k, v in config.method.items() if k in defaults})


def check_options(config, keys, names):
  """Refuses a config.method key outside `names` (one ConfigError line listing the valid
  ones), then checks `keys` (`diffjax.train.validation.Key`s of config.method)."""
  unknown = sorted(set(config.method.keys()) - set(names))
  if unknown:
    raise ConfigError(f"method.{unknown[0]} is not an option of method.name="
                      f"{config.method.name!r}; valid: {', '.join(sorted(names))}.")
  check_keys(config, keys)


def player(name: str, loss: Callable, networks: Sequence[str], optimizer=None) -> Player:
  """A `Player` named `name` training the networks `networks` of the parameter dict
  with `loss` (and `optimizer`: None for config.optim, or a config section name)."""
  owned = tuple(networks)
  return Player(name, loss, optimizer,
                trainable=lambda params: {k: k in owned for k in params})
