"""Flow-map students: a network of (x, t, h) read as the average velocity u(x, t, s) of the
probability-flow ODE over [t, s] (h = s - t), shared by MeanFlow and shortcut models.

In diffjax time (noise at t = 0, data at t = 1) the flow map of the ODE dx/dt = v(x, t)
from t to s is X(x, t, s) = x + (s - t) u(x, t, s), u the average of v along the trajectory
over [t, s]; u(x, t, t) = v(x, t). Generation jumps from t = 0 towards 1 (s > t) with the
"flow_map" sampler (`diffjax.solvers.flow_maps`); the student's fields give its
instantaneous velocity u(x, t, t), so any ODE sampler runs it too.

The regression targets use a velocity at x_t: "conditional" (the path's conditional
velocity a' x0 + b' x1 of the pair, as flow matching and both papers train from data) or
"teacher" (the teacher's marginal velocity v(x_t, t), a distillation of the teacher; with
the exact oracle the losses vanish at the exact flow map).
"""
from typing import Callable

import jax

from diffjax.core import Fields
from diffjax.distillation.methods import (Student, method_options, player,
                                          sampler_generate)
from diffjax.errors import ConfigError
from diffjax.fields import complete

VELOCITIES = ("conditional", "teacher")


def target_velocity(context, kind: str) -> Callable:
  """velocity(x_t, t, x0, x1, labels) -> (B, ...): the regression velocity `kind`
  (module docstring) on the context's path; t (B,)."""
  path = context.path
  if kind == "conditional":
    return lambda x_t, t, x0, x1, labels: path.conditional_velocity(t, x0, x1)
  if kind != "teacher":
    raise ConfigError(f"method.velocity={kind!r} is not one of: {', '.join(VELOCITIES)}.")
  teacher = context.teacher
  if teacher is None:
    raise ConfigError("method.velocity='teacher' regresses on a teacher's velocity: set "
                      "teacher.kind to 'run' or 'oracle' (or use velocity='conditional').")
  return lambda x_t, t, x0, x1, labels: complete(teacher.fields(labels),
                                                 path).velocity(x_t, t)


def flow_map_student(context, loss: Callable) -> Student:
  """A flow-map student (module docstring) trained by
  loss(u, params, key, x0, x1, labels) -> (loss, aux), u(params, x, t, s, labels) its
  average velocity, x0 from the context's source and x1 (with labels) from its data."""
  network = context.network(step_input=True)

  def u(params, x, t, s, labels=None):
    return network.apply(params, x, t, s - t, labels)

  def student_loss(params, key, shard, step, batch):
    del step, batch
    k_data, k_source, k_loss = jax.random.split(key, 3)
    x1, labels = context.draw(k_data, context.batch_size)
    x0 = context.source(k_source, context.batch_size)
    return loss(u, params["student"], k_loss, shard(x0), shard(x1), labels)

  def fields_of(params, labels):
    return Fields.of(velocity=lambda x, t: u(params["student"], x, t, t, labels))

  def options_of(params, labels):
    return {"average_velocity": lambda x, t, s: u(params["student"], x, t, s, labels)}

  generate = sampler_generate(context, "flow_map", fields_of, 1, options_of)
  return Student(lambda key: {"student": network.init(key)},
                 (player("student", student_loss, ("student",)),), generate)


def flow_map_method(loss: Callable, defaults: dict) -> Callable:
  """build(context) -> Student of a flow-map method whose
  loss(u, params, key, x0, x1, labels, path, velocity, options) reads the options
  `defaults` (with config.method over them), among them `velocity` (`VELOCITIES`)."""
  def build(context):
    options = method_options(context.config, defaults)
    velocity = target_velocity(context, options["velocity"])
    return flow_map_student(context, lambda u, params, key, x0, x1, labels: loss(
        u, params, key, x0, x1, labels, context.path, velocity, options))
  return build
