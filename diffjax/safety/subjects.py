"""The unlearned models of the safety studies as `AttackSubject`s of UnlearnDiffAtk
(`diffjax.safety.adversarial_condition`), each sampling the forgotten class:

  run_subject       a trained run (the original model, or the erasing fine-tune of
                    `experiments.safety`), sampled with its own sampler;
  negative_subject  a run under negative guidance away from the forgotten class
                    (`diffjax.guidance.negative`): the attacked condition is the prompt
                    p_c, the avoided class's prediction p_n keeps the original embedding;
  student_subject   SFD's one-step student (`diffjax.distillation.sfd`): its generator
                    network is a denoiser of the teacher's architecture, whose denoising
                    loss the attack minimises and whose one step generates.
Each subject's fields(vector, n) are its `Fields` for a batch of n with the forgotten
class's embedding replaced by `vector`; generate(vector, key, n) its (n, ...) samples.
`SUBJECTS` loads each kind from a config section (kind, workdir and, for negative
guidance, scale and negative_scale): `load_subject(section, forget) -> (subject, path)`.
"""
import jax
import jax.numpy as jnp

from diffjax import conditioning
from diffjax import runs
from diffjax.distillation import load_student
from diffjax.errors import ConfigError
from diffjax.registry import Registry
from diffjax.guidance.negative import negative_mix
from diffjax.core import Fields
from diffjax.safety.adversarial_condition import (AttackSubject, class_embedding,
                                                  with_class_embedding)
from diffjax.solvers import sample


def _labels(n, label):
  return jnp.full((n,), label, jnp.int32)


def run_subject(run, forget: int, name="run") -> AttackSubject:
  """A trained class-conditional run (`diffjax.runs.Run`) sampling class `forget`."""
  def params_with(vector):
    return with_class_embedding(run.params, forget, vector)

  def fields(vector, n):
    return run.pipeline.fields(params_with(vector), _labels(n, forget))

  def generate(vector, key, n):
    return run.pipeline.generate(params_with(vector), key, n, _labels(n, forget)).x

  return AttackSubject(name, fields, generate, class_embedding(run.params, forget))


def negative_fields(run, forget, vector, n, scale, negative_scale) -> Fields:
  """p_u + scale (p_c - p_u) - negative_scale (p_n - p_u) with p_c under `vector` as the
  embedding of class `forget`, p_u the null class and p_n the original class `forget`."""
  pipeline = run.pipeline
  prompt = pipeline.fields(with_class_embedding(run.params, forget, vector), _labels(n, forget))
  null = pipeline.fields(run.params, conditioning.null_labels(n, pipeline.num_classes))
  avoided = pipeline.fields(run.params, _labels(n, forget))

  def evaluate(x, t):
    return negative_mix(prompt.evaluate(x, t), null.evaluate(x, t), avoided.evaluate(x, t),
                        scale, negative_scale)

  return Fields(evaluate, prompt.names)


def negative_subject(run, forget: int, scale=1.0, negative_scale=2.0,
                     name="negative_guidance") -> AttackSubject:
  """The run under negative guidance away from class `forget` (module docstring)."""
  pipeline = run.pipeline

  def fields(vector, n):
    return negative_fields(run, forget, vector, n, scale, negative_scale)

  def generate(vector, key, n):
    k_source, k_sampler = jax.random.split(key)
    return sample(pipeline.solver, fields(vector, n), pipeline.path,
                  pipeline.source(k_source, n), k_sampler, num_steps=pipeline.num_steps,
                  **dict(pipeline.sampler_options)).x

  return AttackSubject(name, fields, generate, class_embedding(run.params, forget))


def student_subject(student, params, teacher_run, forget: int, name="sfd") -> AttackSubject:
  """SFD's one-step student (`diffjax.distillation.load_student`) with the teacher run
  whose architecture its generator network has (module docstring)."""
  def generator_with(vector):
    return with_class_embedding(params["generator"], forget, vector)

  def fields(vector, n):
    return teacher_run.pipeline.fields(generator_with(vector), _labels(n, forget))

  def generate(vector, key, n):
    return student.generate({**params, "generator": generator_with(vector)}, key, n,
                            _labels(n, forget)).x

  return AttackSubject(name, fields, generate, class_embedding(params["generator"], forget))


# ---- Loading a subject from a config section ----
SUBJECTS = Registry("attack subject")


def _digits_run(workdir):
  run = runs.load(workdir)
  if run.pipeline is None or run.spec.num_classes != 10:
    raise ConfigError(f"subject.workdir={workdir!r} is not a class-conditional digits run.")
  return run


@SUBJECTS.register("run")
def _load_run(section, forget):
  run = _digits_run(section.workdir)
  return run_subject(run, forget), run.pipeline.path


@SUBJECTS.register("negative_guidance")
def _load_negative(section, forget):
  run = _digits_run(section.workdir)
  return (negative_subject(run, forget, section.scale, section.negative_scale),
          run.pipeline.path)


@SUBJECTS.register("sfd")
def _load_sfd(section, forget):
  student, params, _ = load_student(section.workdir)
  teacher = runs.load(runs.load(section.workdir).config.teacher.workdir)
  return student_subject(student, params, teacher, forget), teacher.pipeline.path


def load_subject(section, forget: int):
  """(the `AttackSubject` section.kind names from section.workdir, its path)."""
  return SUBJECTS.get(section.kind)(section, forget)
