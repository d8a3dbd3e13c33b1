"""Inpainting digits with DPS: the run of configs/guidance/digits.py, evaluated on
held-out digits whose right half is hidden.

  python -m experiments.main --config=configs/guidance/digits.py --workdir=workdirs/guided_digits
  python -m experiments.main --config=configs/guidance/digits_inpainting.py \
      --workdir=workdirs/guided_digits --mode=eval

DPS (Chung et al.) with the unconditional (null-class) model, 20 DDIM steps and step size
sample.guidance.step_size; reports `inpainting_psnr` of the restored half against
`nearest_neighbour_psnr` (the training digit closest on the observed half) and writes
plots/inpainting_<step>.png (rows: observed, restored, nearest neighbour, truth).
--config.eval.mask=centre hides the centre instead; --config.sample.guidance.method=
reconstruction uses the score-form reconstruction guidance. `:tiny` runs in seconds.
"""
from configs.guidance import digits


def get_config(arg=None):
  config = digits.get_config(arg)
  config.eval.study = "inpainting"
  config.sample.guidance.update(method="dps", step_size=1.0)
  if "tiny" in (arg or ""):
    config.eval.num_inpainting = 8
  return config
