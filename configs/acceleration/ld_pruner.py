"""LD-Pruner on the class-conditional digits DiT: 30% of the MLP channels of every block
removed by the task-agnostic output-distribution score, then a short fine-tune.

  python -m experiments.main --config=configs/acceleration/ld_pruner.py \\
      --workdir=workdirs/ld_pruner_digits --config.source.workdir=workdirs/guided_digits

model.mlp_ratio 4 -> 2.8 (MLP width 384 -> 268 of hidden_dim 96, 30.2% removed) and
model.depth (4: no block removed; 3 removes the lowest-scoring block) set the pruned
architecture; method.score is ld (`diffjax.acceleration.ld_pruner`), magnitude or random
(the baselines); method.calibration_samples draws (x_t, t, label) score each candidate.
The pruned DiT is fine-tuned for train.num_steps steps with the run's own loss (flow
matching, label dropout 0.15) and evaluated with 20 DDIM steps: digits accuracy, proxy
Fréchet distance, parameters and GFLOPs per call, each also for the source run and for the
pruned network before fine-tuning (`*_source`, `*_before_finetune`). The workdir is a run
`diffjax.runs.load` reads (`--mode=sample` as any run). Variants: `blocks` (depth 3,
mlp_ratio 4), `magnitude`, `random`; `:tiny` runs in seconds.
"""
from configs.acceleration.base import acceleration_config
from configs.common import parse_arg

VARIANTS = ("blocks", "magnitude", "random")


def get_config(arg=None):
  variants, tiny = parse_arg(arg, VARIANTS)
  score = next((v for v in variants if v in ("magnitude", "random")), "ld")
  config = acceleration_config(tiny, dict(name="ld_pruner", score=score,
                                          calibration_samples=32, seed=0))
  if "blocks" in variants:
    config.model.depth = 3
  else:
    config.model.mlp_ratio = 2.8
  if tiny:
    config.method.calibration_samples = 8
  else:
    config.train.update(num_steps=300, eval_every=300, checkpoint_every=300)
  config.optim.update(learning_rate=2e-4, warmup_steps=0 if tiny else 20, ema_decay=0.99)
  return config
