"""Few-shot adaptation of the class-conditional digits run to a new style (family
`few_shot`, `experiments.few_shot`): plain fine-tuning, DomainStudio or phasic content
fusing on 10 thick digits (one per class).

  python -m experiments.main --config=configs/adaptation/few_shot.py:domainstudio \
      --workdir=workdirs/few_shot_domainstudio --config.source.workdir=workdirs/guided_digits

The argument names the method (plain, domainstudio, phasic; default plain); `tiny` shrinks
the run to seconds (4 steps, 16 samples). The source is a finished
configs/guidance/digits.py run; target.style is thick, inverted or rotated
(`diffjax.adaptation.TARGET_STYLES`). Each evaluation reports the proxy Fréchet distance
to the held-out target digits and the samples' diversity (`experiments.few_shot`).
"""
import ml_collections

from configs.adaptation.common import adaptation_config
from configs.common import parse_arg
from diffjax.errors import ConfigError

METHODS = ("plain", "domainstudio", "phasic")

OPTIONS = {
    "plain": {},
    # The paper's weights of its three extra terms.
    "domainstudio": dict(lambda_img=2.5, lambda_hf=0.6, lambda_hfmse=0.3),
    "phasic": dict(intervals=((0.0, 0.3), (0.3, 1.0)), phases=("source", "target"),
                   ddc_weight=0.1, encoder_seed=1),
}


def get_config(arg=None):
  variants, tiny = parse_arg(arg, METHODS)
  if len(variants) > 1:
    raise ConfigError(f"configs/adaptation/few_shot.py takes one of {', '.join(METHODS)} "
                      f"(and optionally tiny); got {arg!r}.")
  name = (variants or ("plain",))[0]
  config = adaptation_config("few_shot", num_steps=400, batch_size=8, eval_every=100,
                              learning_rate=1e-4, num_samples=500, tiny=tiny)
  config.target = ml_collections.ConfigDict(dict(style="thick", num_shots=10, seed=0))
  config.method = ml_collections.ConfigDict(dict(name=name, **OPTIONS[name]))
  return config
