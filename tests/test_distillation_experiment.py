"""The distillation family end to end: every method's config builds on every data variant,
a run resumes bit for bit after losing its last checkpoint (as after a SIGKILL), a
class-conditional student distils a tiny digits teacher, and `load_student` samples a
finished run."""
import os
import shutil

import jax
import numpy as np

from configs.distillation import (base, consistency_distillation, consistency_training,
                                  meanflow, shortcut, teacher as teacher_config)
from diffjax.distillation import DISTILLATION_METHODS, load_student
from diffjax.train import train
from diffjax.train.workdir import read_metrics
from experiments import distillation, images
from tests.helpers import assert_trees_equal

CONFIGS = {"consistency_training": consistency_training,
           "consistency_distillation": consistency_distillation, "meanflow": meanflow,
           "shortcut": shortcut}


def test_every_method_has_a_config_for_every_data_variant():
  assert set(CONFIGS) <= set(DISTILLATION_METHODS.names())
  for name, module in CONFIGS.items():
    for data in base.DATA_VARIANTS:
      config = module.get_config(f"{data},tiny")
      assert config.method.name == name and config.train.num_steps == 20
      method = DISTILLATION_METHODS.get(name)
      method.check(config)
      if data == "oracle" or (not method.needs_teacher and data != "digits"):
        distillation.build_task(config)   # builds without compiling anything


def _host(tree):
  return jax.tree.map(np.asarray, tree)


def test_a_run_resumes_bit_for_bit_after_losing_its_last_checkpoint(tmp_path):
  """Consistency distillation of the exact 8-Gaussian oracle: checkpoints at 10 and 20;
  with the one at 20 gone, rerunning trains steps 11-20 again to the same state."""
  config = consistency_distillation.get_config("oracle,tiny")
  full = train(config, str(tmp_path / "full"), distillation.build_task(config))
  staged = str(tmp_path / "staged")
  shutil.copytree(str(tmp_path / "full"), staged)
  shutil.rmtree(os.path.join(staged, "checkpoints", "20"))
  resumed = train(config, staged, distillation.build_task(config))
  for field in ("params", "ema_params", "opt_state"):
    assert_trees_equal(_host(getattr(full, field)), _host(getattr(resumed, field)))
  last = read_metrics(staged)[-1]
  assert last["step"] == 20 and np.isfinite(last["w2_1step"])
  assert 0 <= last["modes_covered_1step"] <= 8

  student, params, context = load_student(staged)
  x = student.generate(params, jax.random.PRNGKey(0), 16, num_steps=2).x
  assert x.shape == (16, 2) and context.teacher.exact


def test_a_class_conditional_student_distils_a_tiny_digits_teacher(tmp_path):
  teacher_dir = str(tmp_path / "teacher")
  config = teacher_config.get_config("digits,tiny")
  train(config, teacher_dir, images.build_task(config))
  config = consistency_distillation.get_config("digits,tiny")
  config.teacher.workdir = teacher_dir
  config.eval.num_samples = 40
  train(config, str(tmp_path / "student"), distillation.build_task(config))
  last = read_metrics(str(tmp_path / "student"))[-1]
  for steps in config.eval.num_steps:
    assert np.isfinite(last[f"digits_frechet_proxy_{steps}step"])
    assert 0 <= last[f"digits_class_accuracy_{steps}step"] <= 1
