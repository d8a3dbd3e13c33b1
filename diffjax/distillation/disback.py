"""Distribution Backtracking (DisBack): distil along the degradation path of the teacher.

"Distribution Backtracking Builds A Faster Convergence Trajectory for Diffusion
Distillation" (Zhang et al., 2024), Algorithm 1. Stage 1, degradation recording: a copy of
the teacher's score network is fine-tuned by denoising score matching on samples of the
initial generator, and checkpoints s'_0 = teacher, s'_1, ..., s'_K along the way form the
degradation path (s'_K fits the initial generator). Stage 2, distribution backtracking:
the generator is distilled (score distillation, here DMD's reverse-KL gradient,
`distribution_matching`) against s'_K, then s'_{K-1}, ..., and finally the teacher itself,
the fake score starting from s'_K. The claim: the intermediate targets are closer to the
generator than the teacher is, so the early score mismatch is smaller and the generator
converges in fewer steps.

As engine phases and players (`diffjax.train.task`), parameters {"generator", "copy",
"nodes"}, nodes the K + 1 recorded checkpoints stacked on a leading axis:

  fit          (an exact oracle teacher only) the copy learns the teacher by denoising
               score matching on the oracle's exact draws; a run teacher's copy starts as
               its parameters, so s'_0 is the teacher exactly;
  record_k     one step of SGD with learning rate 1 on 0.5 |node_k - copy|^2: node_k
               becomes the copy (a checkpoint written by the optimizer; other nodes have
               zero gradient and stay as they are);
  degrade_k    the "fake" player fits the copy to the (frozen) initial generator's
               samples, degrade_steps / K steps each;
  backtrack_k  for k = K, ..., 1, 0: "fake" (still the copy, so the fake score starts
               from s'_K) and "generator" distil against node k, node_steps each; the last
               stage's target, for final_steps, is the teacher itself (for an oracle its
               exact fields, not the fitted copy).

The nodes a backtrack phase reads come in its context (`Phase.prepare`), so every
backtrack phase shares one compiled step; the run resumes bit for bit like any phased
task. Time: diffjax's t (t = 0 noise).
"""
import jax
import jax.numpy as jnp
import optax

from diffjax.distillation.distribution_matching import (FDistill, MATCHING_KEYS,
                                                        check_matching, one_step_generate)
from diffjax.distillation.divergences import get_divergence
from diffjax.distillation.methods import (DISTILLATION_METHODS, DistillationMethod, Student,
                                          player)
from diffjax.distillation.score_distillation import (core_from_context, section_or_default,
                                                     teacher_completed)
from diffjax.errors import ConfigError
from diffjax.train.task import Phase, Player
from diffjax.train.validation import Key

sg = jax.lax.stop_gradient

DISBACK_KEYS = MATCHING_KEYS + (
    Key("method.num_nodes", "int", 1, meaning="intermediate teachers K"),
    Key("method.fit_steps", "int", 0, meaning="steps fitting the copy to an oracle"),
    Key("method.degrade_steps", "int", 1, meaning="degradation steps over all nodes"),
    Key("method.node_steps", "int", 1, meaning="generator steps per intermediate node"),
    Key("method.final_steps", "int", 1, meaning="generator steps against the teacher"),
)


def node(nodes, k):
  """The parameters of node k (a pytree) from the stacked nodes."""
  return jax.tree.map(lambda u: u[k], nodes)


def record_loss(params, key, shard, step, batch, slot):
  """0.5 sum_i slot_i |nodes_i - copy|^2: with SGD at learning rate 1 one step writes the
  copy into the nodes the one-hot `slot` (K + 1,) marks, and leaves the others."""
  del key, shard, step, batch
  copy = sg(params["copy"])

  def squared(nodes, leaf):
    gap = (nodes - leaf[None]).reshape(nodes.shape[0], -1)
    return jnp.sum(slot * jnp.sum(gap ** 2, -1))
  total = sum(jax.tree.leaves(jax.tree.map(squared, params["nodes"], copy)))
  return 0.5 * total, {}


def disback_phases(options, exact: bool):
  """The phases of the module docstring: fit (exact teacher), record_0, degrade_k and
  record_k for k = 1..K, backtrack_K .. backtrack_1 (method.node_steps each) and
  backtrack_0 (method.final_steps). They do not depend on train.num_steps, which only
  stops a run earlier (`diffjax.train.task`)."""
  k_nodes = options.num_nodes
  if exact and not options.fit_steps:
    raise ConfigError("method.fit_steps=0: an oracle teacher has no network to degrade; "
                      "give the steps that fit its copy (e.g. 2000).")
  share = options.degrade_steps // k_nodes
  if share < 1:
    raise ConfigError(f"method.degrade_steps={options.degrade_steps} gives no step to "
                      f"each of the {k_nodes} nodes.")
  slot = lambda k: (lambda params, key: jax.nn.one_hot(k, k_nodes + 1))
  phases = [Phase("fit", options.fit_steps, players=("fit",))] if exact else []
  phases.append(Phase("record_0", 1, players=("record",), prepare=slot(0)))
  for k in range(1, k_nodes + 1):
    phases += [Phase(f"degrade_{k}", share, players=("fake",)),
               Phase(f"record_{k}", 1, players=("record",), prepare=slot(k))]
  for k in range(k_nodes, -1, -1):
    def target(params, key, k=k):
      del key
      return {"teacher": node(params["nodes"], k),
              "exact": jnp.float32(exact and k == 0)}
    steps = options.final_steps if k == 0 else options.node_steps
    phases.append(Phase(f"backtrack_{k}", steps, players=("fake", "generator"),
                        prepare=target))
  return tuple(phases)


def backtracking_start(options, exact: bool) -> int:
  """The step at which backtracking (the generator's first step) begins: the fit,
  degradation and record steps before it."""
  phases = disback_phases(options, exact)
  return sum(p.num_steps for p in phases if not p.name.startswith("backtrack_"))


def build_disback(context) -> Student:
  """The DisBack student of `context` (module docstring)."""
  options, config = context.options, context.config
  teacher = context.teacher
  if options.fake_init != "teacher" and teacher.run is not None:
    raise ConfigError("method.fake_init must be 'teacher' for DisBack with a run teacher: "
                      "the degradation path starts at the teacher's own network.")
  core, init_core = core_from_context(context)
  exact = teacher.exact
  teacher_fields = teacher_completed(teacher.fields, context.path)

  def target_fields(labels, phase_context):
    fields = core.fake_fields(phase_context["teacher"], labels)
    if not exact:
      return fields
    w = phase_context["exact"]
    exact_fields = teacher_fields(labels)
    blend = lambda a, b: None if a is None else w * a + (1 - w) * b
    return fields._replace(evaluate=lambda x, t: jax.tree.map(
        blend, exact_fields.evaluate(x, t), fields.evaluate(x, t),
        is_leaf=lambda u: u is None))

  matching = FDistill(core, target_fields, get_divergence("reverse_kl"),
                      time_weight=options.time_weight,
                      fake_params=lambda params, phase_context: params["copy"])

  def init(key):
    params = init_core(key)
    copy = params.pop("fake")
    return {**params, "copy": copy,
            "nodes": jax.tree.map(lambda u: jnp.zeros((options.num_nodes + 1,) + u.shape,
                                                      u.dtype), copy)}

  def fit_loss(params, key, shard, step, batch, phase_context):
    del step, batch, phase_context
    k_data, k_loss = jax.random.split(key)
    drawn = teacher.target_sample(k_data, core.batch_size)
    x, labels = drawn if isinstance(drawn, tuple) else (drawn, None)
    return core.fake.loss(params["copy"], k_loss, shard, shard(x),
                          labels if core.num_classes else None)

  players = (
      player("fit", fit_loss, ("copy",), section_or_default(config, "optim_fake")),
      Player("record", record_loss, optax.sgd(1.0),
             trainable=lambda params: {k: k == "nodes" for k in params}),
      player("fake", matching.fake_loss, ("copy",), section_or_default(config, "optim_fake")),
      player("generator", matching.generator_loss, ("generator",)))
  phases = disback_phases(options, exact)
  return Student(init, players, one_step_generate(context, core), phases)


DISTILLATION_METHODS.register("disback", DistillationMethod(
    "disback", build_disback, check=lambda config: check_matching(config, DISBACK_KEYS),
    players=("fit", "record", "fake", "generator"), sampler="ddim", num_steps=1,
    paper="Distribution Backtracking Builds A Faster Convergence Trajectory for Diffusion "
          "Distillation"))
