"""W2SD between two checkpoints of the class-conditional digits DiT, as a config: strong =
the source run's newest checkpoint, weak = its checkpoint method.weak_step (or the newest
of another run, method.weak_workdir), evaluated only.

  python -m experiments.main --config=configs/acceleration/w2sd.py \\
      --workdir=workdirs/w2sd_digits --config.source.workdir=workdirs/guided_digits

A one-step run of loss 0 (a zero gradient moves no parameter) stores the pair (strong,
weak) in the workdir, bit for bit as loaded, then evaluates: eval.num_samples class-conditional digits (labels 0..9 in
turn) from one noise draw with config.sample (20 DDIM steps) for the strong and the weak
model alone and for W2SD (`diffjax.acceleration.w2sd`) at each reflection strength of
method.strengths on the window method.interval (diffjax time, 0 noise): digits accuracy
`digits_class_accuracy_<row>`, proxy Fréchet distance `digits_frechet_proxy_<row>`,
evaluations per sample `nfe_<row>` and the RMS distance to the strong model's samples
`rms_to_strong_<row>` (rows strong, weak, w2sd_l<lambda>); `--mode=eval` re-evaluates the
stored pair (e.g. with other strengths). The same figures as
`python -m experiments.acceleration_studies w2sd`, without writing into the source run.
A bad strength or window, a weak step the run does not hold, or a weak run of another
data shape is refused in one line, exit 2, before the workdir is touched. `:tiny`: weak =
strong (the newest checkpoint, method.weak_step=0), 20 samples, 4 steps, in seconds.
"""
from configs.acceleration.base import acceleration_config
from configs.common import parse_arg


def get_config(arg=None):
  _, tiny = parse_arg(arg)
  config = acceleration_config(tiny, dict(name="w2sd", weak_workdir="", weak_step=2000,
                                          strengths=(0.5, 1.0, 2.0), interval=(0.0, 0.5)))
  config.train.update(num_steps=1, steps_per_call=1, log_every=1, eval_every=1,
                      checkpoint_every=1, batch_size=2)
  # The pair stays as loaded: loss 0, and an EMA (decay 0) that is the parameters exactly.
  config.optim.update(warmup_steps=0, ema_decay=0.0)
  config.eval.use_ema = False
  if tiny:
    config.method.update(weak_step=0, strengths=(1.0,))
  return config
