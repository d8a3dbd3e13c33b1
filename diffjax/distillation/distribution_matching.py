"""Distribution-matching distillation with an f-divergence: f-distill (and VSD / DMD).

"One-step Diffusion Models with f-Divergence Distribution Matching" (Xu, Nie & Vahdat,
2025), eq. 6 and Algorithm 1; reverse KL is "One-step Diffusion with Distribution Matching
Distillation" (Yin et al., 2024, eq. 7) / variational score distillation. Three players
update in this order inside one engine step (`diffjax.train.task`, "Players"):

  fake           denoising score matching of the fake network on generator samples;
  discriminator  binary cross entropy, noised teacher samples (1) against noised generator
                 samples (0), on the fake network's features (`discriminator`); only for a
                 divergence whose weight reads the ratio (not reverse KL);
  generator      the gradient E_t[w(t) h(r) (s_fake(x_t, t) - s_teacher(x_t, t)) dx_t/dtheta]
                 with x_t = alpha(t) G(z) + sigma(t) eps, h(r) = f''(r) r^2 normalised over
                 the batch (`divergences`), r = exp(discriminator logit).

Time weights w(t) (`TIME_WEIGHTS`): "dmd" is DMD's eq. 8 in score form,
w = sigma^2 / (alpha^2 mean_d|x - D_teacher(x_t)|) (per sample), so that w (s_fake -
s_teacher) dx_t/dtheta = (D_fake - D_teacher) / mean|x - D_teacher| dx/dtheta; "unit" is
w = 1, the bare gradient of D_f(p_t || q_t) at each t (the closed-form tests).
diffjax time: t = 0 noise, t = 1 data (the papers' t is 1 - t).
"""
import dataclasses
from typing import Any, Callable, Optional

import jax
import jax.numpy as jnp

from diffjax.core import Fields, time_column
from diffjax.distillation.discriminator import (Head, discriminator_head, discriminator_loss,
                                                layer_output, ratio_from_logits)
from diffjax.distillation.divergences import (DIVERGENCES, Divergence, batch_normalized,
                                              binned_ratio, get_divergence)
from diffjax.distillation.methods import (DISTILLATION_METHODS, DistillationMethod, Student,
                                          player, sampler_generate)
from diffjax.distillation.score_distillation import (SCORE_KEYS, ScoreDistillation,
                                                     check_score_options, core_from_context,
                                                     direction_loss, per_example_mean_abs,
                                                     section_or_default, teacher_completed)
from diffjax.errors import ConfigError
from diffjax.train.task import Phase
from diffjax.train.validation import Key

sg = jax.lax.stop_gradient


def unit_weight(view, t, x, teacher_data):
  del view, teacher_data
  return jnp.ones((x.shape[0],), x.dtype) + 0 * t


def dmd_weight(view, t, x, teacher_data):
  """sigma^2 / (alpha^2 mean_d|x - D_teacher(x_t)|), (B,) (DMD, eq. 8)."""
  alpha, sigma = view.alpha(t), view.sigma(t)
  norm = jnp.maximum(per_example_mean_abs(x - teacher_data), 1e-4)
  return sigma ** 2 / (jnp.maximum(alpha, 1e-4) ** 2 * norm)


TIME_WEIGHTS = {"unit": unit_weight, "dmd": dmd_weight}


def check_time_weight(name: str):
  if name not in TIME_WEIGHTS:
    raise ConfigError(f"distill.time_weight={name!r} is not one of: "
                      f"{', '.join(sorted(TIME_WEIGHTS))}.")


def fake_params_of(params, context):
  """The fake network's parameters: params["fake"] (DisBack shifts them, `disback`)."""
  del context
  return params["fake"]


@dataclasses.dataclass(frozen=True)
class FDistill:
  """The losses of the three players (module docstring).

  Attributes:
    core: the shared `ScoreDistillation` parts (generator, fake pipeline, source, times).
    teacher_fields: teacher_fields(labels, context) -> completed `Fields` (score and data)
      of the teacher the generator matches; context is the phase's (DisBack's
      intermediate teachers), None otherwise.
    divergence: the `Divergence` (its weight h(r)).
    head: the discriminator's `Head`; None when the divergence does not read the ratio.
    feature_layer: the fake network's layer the head reads (`layer_output`).
    time_weight: a `TIME_WEIGHTS` name.
    max_log_ratio: |log r| clip (`ratio_from_logits`).
    ratio_bins: per-time normalisation of r over this many bins (0: none).
    normalize: normalise h over the batch (the paper's; off only in closed-form tests).
    train_features: the discriminator's loss also trains the fake network's features
      (DMD2's shared encoder); otherwise it trains its head alone.
    fake_params: fake_params(params, context) -> the fake network's parameters.
  """
  core: ScoreDistillation
  teacher_fields: Callable[[Any, Any], Fields]
  divergence: Divergence
  head: Optional[Head] = None
  feature_layer: str = ""
  time_weight: str = "dmd"
  max_log_ratio: float = 10.0
  ratio_bins: int = 0
  normalize: bool = True
  train_features: bool = False
  fake_params: Callable[[Any, Any], Any] = fake_params_of

  def __post_init__(self):
    check_time_weight(self.time_weight)
    if self.divergence.uses_ratio and self.head is None:
      raise ValueError(f"The {self.divergence.name} weight reads the density ratio: give "
                       "a discriminator head.")

  def fake_outputs(self, fake_params, x_t, t, labels):
    """(the fake network's completed predictions, its features (B, F) or None)."""
    evaluate = self.core.fake_fields(fake_params, labels).evaluate
    if self.head is None:
      return evaluate(x_t, t), None
    return layer_output(evaluate, self.feature_layer)(x_t, t)

  def ratio(self, params, features):
    """r = p_t / q_t (B,) from the discriminator on the fake network's features (B, F) at
    x_t (no gradient)."""
    return ratio_from_logits(sg(self.head.apply(params["discriminator"], sg(features))),
                             self.max_log_ratio)

  def fake_loss(self, params, key, shard, step, batch, context=None):
    del step, batch
    return self.core.fake_loss(self.fake_params(params, context), sg(params["generator"]),
                               key, shard)

  def discriminator_loss(self, params, key, shard, step, batch, context):
    """BCE on noised teacher samples (the phase context's "teacher_samples" and
    "teacher_labels", `teacher_cache`) against noised generator samples."""
    del step, batch
    k_gen, k_real, k_fake_t, k_real_t = jax.random.split(key, 4)
    x, labels = self.core.generate(sg(params["generator"]), k_gen, shard)
    cache = context["teacher_samples"]
    index = jax.random.randint(k_real, (x.shape[0],), 0, cache.shape[0])
    real = shard(cache[index])
    real_labels = None if labels is None else context["teacher_labels"][index]
    t_fake, x_fake, _ = self.core.noise(k_fake_t, sg(x))
    t_real, x_real, _ = self.core.noise(k_real_t, real)
    fake_params = self.fake_params(params, context)
    if not self.train_features:
      fake_params = sg(fake_params)
    both = lambda u, v: None if u is None else jnp.concatenate([u, v])
    _, features = self.fake_outputs(fake_params, both(x_real, x_fake), both(t_real, t_fake),
                                    both(real_labels, labels))
    logits = self.head.apply(params["discriminator"], features)
    n = x.shape[0]
    loss = discriminator_loss(logits[:n], logits[n:])
    return loss, {"real_logit": jnp.mean(logits[:n]), "fake_logit": jnp.mean(logits[n:])}

  def generator_loss(self, params, key, shard, step, batch, context=None):
    """The f-divergence's generator gradient as a loss (module docstring)."""
    del step, batch
    k_gen, k_noise = jax.random.split(key)
    x, labels = self.core.generate(params["generator"], k_gen, shard)
    t, x_t, _ = self.core.noise(k_noise, x)
    held = sg(x_t)
    teacher = self.teacher_fields(labels, context).evaluate(held, t)
    fake, features = self.fake_outputs(sg(self.fake_params(params, context)), held, t,
                                       labels)
    weight = TIME_WEIGHTS[self.time_weight](self.core.view, t, sg(x), teacher.data)
    aux = {}
    if self.head is not None:   # Reverse KL ignores r but logs it.
      r = self.ratio(params, features)
      h = self.divergence.weight(binned_ratio(r, t, self.ratio_bins))
      h = batch_normalized(h) if self.normalize else h
      aux = {"ratio_mean": jnp.mean(r), "h_max": jnp.max(h)}
      weight = weight * h
    gap = fake.score - teacher.score
    loss = direction_loss(x_t, time_column(weight, x) * gap)
    return loss, {"score_gap": jnp.mean(per_example_mean_abs(gap)), **aux}


# ---- The registered methods: f_distill (three players) and dmd (reverse KL, two) ----
MATCHING_KEYS = SCORE_KEYS + (
    Key("method.time_weight", "name", names=lambda: tuple(sorted(TIME_WEIGHTS))),)
DISCRIMINATOR_KEYS = (
    Key("method.divergence", "name", names=DIVERGENCES.names),
    Key("method.disc_width", "int", 1),
    Key("method.disc_depth", "int", 1),
    Key("method.max_log_ratio", "float", 0.0, open_low=True),
    Key("method.ratio_bins", "int", 0, meaning="0: no per-time normalisation"),
    Key("method.train_features", "bool"),
    Key("method.teacher_samples", "int", 1, meaning="teacher samples the discriminator "
        "draws its real examples from"),
    Key("method.teacher_steps", "int", 1, meaning="sampler steps of a run teacher's samples"),
)


def check_matching(config, keys=MATCHING_KEYS):
  """ConfigError (one line) for a bad option of a distribution-matching method."""
  strings = ()
  if "divergence" in config.method:
    get_divergence(config.method.divergence)
    strings = ("feature_layer",)   # Checked against the network when the task is built.
  check_score_options(config, keys, strings)


def teacher_cache(teacher, num_classes: int, num_samples: int, num_steps: int):
  """prepare(params, key) -> {"teacher_samples" (n, *shape), "teacher_labels" (n,)}: the
  real examples of the discriminator, drawn once when the phase starts (and again, the
  same, when a run resumes): exact draws of an oracle's target, or a run teacher's own
  `num_steps`-step Heun samples for uniform labels. No training data is read."""
  def prepare(params, key):
    del params
    k_labels, k_sample = jax.random.split(key)
    labels = (jax.random.randint(k_labels, (num_samples,), 0, num_classes) if num_classes
              else jnp.zeros((num_samples,), jnp.int32))
    if teacher.exact:
      drawn = teacher.target_sample(k_sample, num_samples)
      x, labels = drawn if isinstance(drawn, tuple) else (drawn, labels)
    else:
      x = teacher.sample(k_sample, num_samples, solver="heun", num_steps=num_steps,
                         labels=labels if num_classes else None).x
    return {"teacher_samples": x, "teacher_labels": labels.astype(jnp.int32)}
  return prepare


def one_step_generate(context, core: ScoreDistillation):
  """The student's `generate`: DDIM's single step on the generator's fields (= G(z))."""
  return sampler_generate(
      context, "ddim", lambda params, labels: core.generator.fields(params["generator"],
                                                                   labels), 1)


def _feature_dim(matching: FDistill, core: ScoreDistillation, fake_params):
  shape = (core.batch_size, *core.fake.spec.shape)
  labels = jnp.zeros((core.batch_size,), jnp.int32) if core.num_classes else None
  features = jax.eval_shape(
      lambda p: matching.fake_outputs(p, jnp.zeros(shape), jnp.full(shape[:1], 0.5),
                                      labels)[1], fake_params)
  return features.shape[-1]


def build_matching(context, *, discriminator: bool) -> Student:
  """The f_distill (discriminator True) or dmd student of `context` (module docstring)."""
  options, config = context.options, context.config
  core, init_core = core_from_context(context)
  divergence = get_divergence(options.divergence if discriminator else "reverse_kl")
  head = (discriminator_head(options.disc_width, options.disc_depth) if discriminator
          else None)
  teacher = teacher_completed(context.teacher.fields, context.path)
  matching = FDistill(core, lambda labels, phase_context: teacher(labels), divergence, head,
                      options.get("feature_layer", ""), options.time_weight,
                      options.get("max_log_ratio", 10.0), options.get("ratio_bins", 0),
                      train_features=options.get("train_features", False))

  def init(key):
    k_core, k_head = jax.random.split(key)
    params = init_core(k_core)
    if head is not None:
      params["discriminator"] = head.init(k_head, _feature_dim(matching, core,
                                                               params["fake"]))
    return params

  players = [player("fake", matching.fake_loss, ("fake",),
                    section_or_default(config, "optim_fake"))]
  prepare = None
  if head is not None:
    trained = ("discriminator", "fake") if matching.train_features else ("discriminator",)
    players.append(player("discriminator", matching.discriminator_loss, trained,
                          section_or_default(config, "optim_discriminator")))
    prepare = teacher_cache(context.teacher, context.num_classes, options.teacher_samples,
                            options.teacher_steps)
  players.append(player("generator", matching.generator_loss, ("generator",)))
  if head is not None:   # A bad feature_layer fails here, before any workdir is touched.
    _feature_dim(matching, core, jax.eval_shape(init_core, jax.random.PRNGKey(0))["fake"])
  names = tuple(p.name for p in players)
  phases = (Phase("distill", config.train.num_steps, players=names, prepare=prepare),)
  return Student(init, tuple(players), one_step_generate(context, core), phases)


DISTILLATION_METHODS.register("f_distill", DistillationMethod(
    "f_distill", lambda context: build_matching(context, discriminator=True),
    check=lambda config: check_matching(config, MATCHING_KEYS + DISCRIMINATOR_KEYS),
    players=("fake", "discriminator", "generator"), sampler="ddim", num_steps=1,
    paper="One-step Diffusion Models with f-Divergence Distribution Matching"))
DISTILLATION_METHODS.register("dmd", DistillationMethod(
    "dmd", lambda context: build_matching(context, discriminator=False),
    check=check_matching, players=("fake", "generator"), sampler="ddim", num_steps=1,
    paper="One-step Diffusion with Distribution Matching Distillation"))
