"""Optax optimiser with learning-rate warm-up/decay and gradient clipping, from a config."""
import optax

from diffjax.registry import Registry

OPTIMIZERS = Registry("optimizer")
OPTIMIZERS.register("adam", optax.adamw)   # adamw with weight_decay = 0 is Adam.
OPTIMIZERS.register("adamw", optax.adamw)
OPTIMIZERS.register("lion", optax.lion)

SCHEDULES = Registry("learning-rate schedule")


@SCHEDULES.register("constant")
def _constant(peak, warmup_steps, total_steps, end_factor):
  del total_steps, end_factor
  return optax.join_schedules(
      [optax.linear_schedule(0.0, peak, max(warmup_steps, 1)), optax.constant_schedule(peak)],
      [warmup_steps])


@SCHEDULES.register("cosine")
def _cosine(peak, warmup_steps, total_steps, end_factor):
  return optax.warmup_cosine_decay_schedule(
      0.0, peak, max(warmup_steps, 1), max(total_steps, warmup_steps + 1), peak * end_factor)


@SCHEDULES.register("linear")
def _linear(peak, warmup_steps, total_steps, end_factor):
  return optax.join_schedules(
      [optax.linear_schedule(0.0, peak, max(warmup_steps, 1)),
       optax.linear_schedule(peak, peak * end_factor, max(total_steps - warmup_steps, 1))],
      [warmup_steps])


def build_optimizer(optim_config, total_steps):
  """optim_config: name, learning_rate, schedule, warmup_steps, end_lr_factor, grad_clip,
  weight_decay, b1, b2, decay_steps. Returns an optax GradientTransformation.

  The schedule decays over `decay_steps`, or over `total_steps` (the run length) when
  decay_steps is 0: then extending a run's train.num_steps on resumption stretches the
  schedule from that point on; set decay_steps to keep it fixed.
  """
  total_steps = optim_config.get("decay_steps", 0) or total_steps
  make = OPTIMIZERS.get(optim_config.name)
  schedule = SCHEDULES.get(optim_config.schedule)(
      optim_config.learning_rate, optim_config.warmup_steps, total_steps,
      optim_config.end_lr_factor)
  weight_decay = optim_config.weight_decay if optim_config.name != "adam" else 0.0
  transforms = []
  if optim_config.grad_clip > 0:
    transforms.append(optax.clip_by_global_norm(optim_config.grad_clip))
  transforms.append(make(schedule, b1=optim_config.b1, b2=optim_config.b2,
                         weight_decay=weight_decay))
  return optax.chain(*transforms)
