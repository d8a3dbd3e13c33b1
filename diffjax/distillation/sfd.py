"""Score Forgetting Distillation (SFD), its distillation side: a class-conditional teacher
distilled, without data, into a one-step class-conditional generator that has forgotten
one class.

"Score Forgetting Distillation: A Swift, Data-Free Method for Machine Unlearning in
Diffusion Models" (Chen, Zhang & Zhou, ICLR 2025), eq. 7-9 and Algorithm 1, on the
generator loss of "Score identity Distillation" (Zhou et al., ICML 2024, eq. 21-22 with
its alpha). With generator samples x = G(z, c), x_t = alpha(t) x + sigma(t) eps, the
teacher's data prediction D_p and the fake network's D_f (both completed fields,
`diffjax.fields`):

  L_G = E[ (D_p(x_t; c_p) - D_f(x_t; c)) . ((D_p(x_t; c_p) - x) - alpha (D_p - D_f)) / omega ],
  omega = mean_d |D_p(x_t; c_p) - x|  (no gradient),

differentiated through x and x_t (the networks' parameters fixed), where c_p = c for the
classes kept and c_p = the override class for the class to forget: the forgotten class's
generator is pulled onto another class's teacher score (the paper's cross-class score
matching, eq. 8). The fake network is fitted by denoising score matching to the
generator's samples of every class, the forgotten one included, with the generator's own
labels. Labels are drawn uniformly: no real image is read (the task has no data).
Both networks start from the teacher (SiD's initialisation, `denoiser_generator`).
Time: diffjax's t (t = 0 noise); the papers' sigma grows with their t.
"""
import dataclasses
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

from diffjax.core import Fields
from diffjax.distillation.distribution_matching import one_step_generate
from diffjax.distillation.methods import (DISTILLATION_METHODS, DistillationMethod, Student,
                                          player)
from diffjax.distillation.score_distillation import (SCORE_KEYS, ScoreDistillation,
                                                     check_score_options, core_from_context,
                                                     per_example_mean_abs, section_or_default,
                                                     teacher_completed)
from diffjax.errors import ConfigError
from diffjax.image_metrics import frechet_distance_from_features
from diffjax.train.validation import Key

sg = jax.lax.stop_gradient
RANDOM_OVERRIDE = -1


def check_forgetting(forget: int, override: int, num_classes: int):
  """ConfigError (one line) for a class to forget or an override out of range."""
  if num_classes < 2:
    raise ConfigError(f"SFD forgets one class of a class-conditional teacher; this teacher "
                      f"has {num_classes} classes: give a run trained with "
                      "model.num_classes > 1.")
  valid = f"0..{num_classes - 1}"
  if not (isinstance(forget, int) and 0 <= forget < num_classes):
    raise ConfigError(f"method.forget_class={forget!r} is out of range: the teacher has "
                      f"{num_classes} classes ({valid}).")
  if not (isinstance(override, int) and (override == RANDOM_OVERRIDE or
                                         0 <= override < num_classes)) or override == forget:
    raise ConfigError(f"method.override_class={override!r} must be another class than "
                      f"forget_class={forget} ({valid}), or {RANDOM_OVERRIDE} for a random "
                      "other class per sample.")


@dataclasses.dataclass(frozen=True)
class ScoreForgetting:
  """The losses of SFD's two players, fake then generator (module docstring).

  Attributes:
    core: the shared `ScoreDistillation` parts (class-conditional).
    teacher_fields: labels (B,) -> the teacher's completed `Fields` for those classes.
    forget: the class to forget.
    override: the class whose score the forgotten class is mapped onto, or -1 for a
      uniformly random other class per sample.
    alpha: SiD's alpha (1.2 in the papers).
    forget_weight: the weight of the forgotten class's samples in L_G (SFD's coefficient
      of its forgetting term relative to the distillation term).
  """
  core: ScoreDistillation
  teacher_fields: Callable[[Any], Fields]
  forget: int
  override: int = RANDOM_OVERRIDE
  alpha: float = 1.2
  forget_weight: float = 1.0

  def __post_init__(self):
    check_forgetting(self.forget, self.override, self.core.num_classes)

  def teacher_labels(self, key, labels):
    """(B,) the classes whose teacher score each sample is matched to: its own, or the
    override class for the class to forget."""
    if self.override == RANDOM_OVERRIDE:
      other = jax.random.randint(key, labels.shape, 0, self.core.num_classes - 1)
      target = other + (other >= self.forget).astype(other.dtype)
    else:
      target = jnp.full_like(labels, self.override)
    return jnp.where(labels == self.forget, target, labels)

  def forgetting_target(self, key, x_t, t, labels) -> Any:
    """The teacher's completed predictions at (x_t, t) for the matched classes."""
    return self.teacher_fields(self.teacher_labels(key, labels)).evaluate(x_t, t)

  def fake_loss(self, params, key, shard, step, batch):
    del step, batch
    return self.core.fake_loss(params["fake"], sg(params["generator"]), key, shard)

  def generator_loss(self, params, key, shard, step, batch):
    """SiD's L_G with the forgetting labels (module docstring)."""
    del step, batch
    k_gen, k_noise, k_override = jax.random.split(key, 3)
    x, labels = self.core.generate(params["generator"], k_gen, shard)
    t, x_t, _ = self.core.noise(k_noise, x)
    teacher = self.forgetting_target(k_override, x_t, t, labels).data
    fake = self.core.fake_fields(sg(params["fake"]), labels).evaluate(x_t, t).data
    omega = sg(jnp.maximum(per_example_mean_abs(teacher - x), 1e-5))
    gap = teacher - fake
    per_sample = jnp.sum((gap * ((teacher - x) - self.alpha * gap)).reshape(x.shape[0], -1),
                         -1) / omega
    forgotten = labels == self.forget
    weights = jnp.where(forgotten, self.forget_weight, 1.0)
    share = jnp.maximum(jnp.mean(forgotten), 1e-6)
    return jnp.mean(weights * per_sample), {
        "gap": jnp.mean(per_example_mean_abs(gap)),
        "forget_gap": jnp.sum(forgotten * per_example_mean_abs(gap)) / (share * x.shape[0])}


# ---- The registered method ----
SFD_KEYS = SCORE_KEYS + (
    Key("method.forget_class", "int", 0, meaning="the class to forget"),
    Key("method.override_class", "int", RANDOM_OVERRIDE,
        meaning=f"{RANDOM_OVERRIDE}: a random other class per sample"),
    Key("method.alpha", "float", 0.0, meaning="SiD's alpha"),
    Key("method.forget_weight", "float", 0.0, meaning="weight of the forgetting term"),
)


def check_sfd(config):
  """ConfigError (one line) before anything is loaded: the options, and the class to
  forget against the student's classes (model.num_classes, the teacher's)."""
  check_score_options(config, SFD_KEYS)
  check_forgetting(config.method.forget_class, config.method.override_class,
                   config.model.get("num_classes", 0))


def build_sfd(context) -> Student:
  """The SFD student of `context`: a class-conditional one-step generator whose players,
  fake then generator, never read the data (module docstring)."""
  options, config = context.options, context.config
  core, init = core_from_context(context)
  forgetting = ScoreForgetting(core, teacher_completed(context.teacher.fields, context.path),
                               options.forget_class, options.override_class, options.alpha,
                               options.forget_weight)
  players = (player("fake", forgetting.fake_loss, ("fake",),
                    section_or_default(config, "optim_fake")),
             player("generator", forgetting.generator_loss, ("generator",)))
  return Student(init, players, one_step_generate(context, core))


DISTILLATION_METHODS.register("sfd", DistillationMethod(
    "sfd", build_sfd, check=check_sfd, players=("fake", "generator"), sampler="ddim",
    num_steps=1, paper="Score Forgetting Distillation: A Swift, Data-Free Method for "
                       "Machine Unlearning in Diffusion Models"))


def forgetting_metrics(images, labels, forget: int, reference, reference_labels,
                       classifier) -> dict:
  """How well a class-conditional sampler has forgotten class `forget`, by a classifier
  (`diffjax.image_metrics.DigitsClassifier`): images (N, ...) generated for labels (N,).

  Returns {"forget_share": the share of the forgotten class's samples the classifier
  assigns to it (0 when forgotten), "kept_accuracy": its accuracy on the other classes'
  samples, "kept_frechet": the proxy Fréchet distance between the other classes' samples
  and the held-out reference images (M, ...) of those classes (reference_labels (M,))}.
  """
  labels, reference_labels = np.asarray(labels), np.asarray(reference_labels)
  predicted = np.argmax(classifier.logits(images), -1)
  forgotten, kept = labels == forget, labels != forget
  kept_reference = np.asarray(reference)[reference_labels != forget]
  return {
      "forget_share": float(np.mean(predicted[forgotten] == forget)),
      "kept_accuracy": float(np.mean(predicted[kept] == labels[kept])),
      "kept_frechet": float(frechet_distance_from_features(
          classifier.features(np.asarray(images)[kept]), classifier.features(kept_reference)))}
