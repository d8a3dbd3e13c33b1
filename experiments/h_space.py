"""h-space directions and BoundaryDiffusion edits on the digits U-Net
(`diffjax.diagnostics.h_space`, `diffjax.diagnostics.boundary`).

Training is that of `experiments.images` (here an unconditional U-Net); the evaluation:
  1. DDIM-inverts held-out digits of eval.source_class and training digits of the source
     and eval.target_class from t = 1 to the edit time t_c = eval.edit_time, and reads h
     there;
  2. directions: the class-mean difference (supervised), the normal of a linear SVM
     between the two classes' h (BoundaryDiffusion), the top principal component of h over
     generated samples and times, the top right singular vector of the Jacobian of the
     denoiser's output w.r.t. h (image-specific), and eval.num_random random directions;
  3. regenerates the inverted source digits from t_c with h + lambda * direction on
     [t_c, eval.edit_until] for each lambda of eval.strengths (the class-mean, SVM and
     random directions all of the class-mean difference's norm; BoundaryDiffusion's
     crossing edit moves each h to lambda times the target class's mean signed distance),
     and reports the digits classifier's mean probability of the target class and the
     share classified as the target at each strength; curves and image grids in plots/;
  4. with eval.search_critical_time, BoundaryDiffusion's automatic critical step
     (`diffjax.diagnostics.boundary.critical_time`: the training digits DDIM-inverted to
     the source, the least noisy time from which their norms stay in the Gaussian annulus,
     relative tolerance eval.critical_tolerance, 0: two annulus widths) reported as
     `critical_time_found` beside the hand-picked eval.edit_time, and the boundary-crossing
     edit repeated there (SVM refitted on h at the found time): `p_target_found_<lambda>`,
     `share_target_found_<lambda>`.
"""
import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np

from diffjax import image_metrics, image_plots
from diffjax.data.digits import digits_bin_centres
from diffjax.diagnostics import boundary as boundary_lib
from diffjax.diagnostics import h_space
from diffjax.diagnostics import plots
from diffjax.errors import ConfigError
from diffjax.fields import complete
from diffjax.solvers import ddim, integrate
from diffjax.pipeline import DataSpec, build_pipeline
from diffjax.train.validation import Key, check_keys
from experiments import images

H_SPACE_KEYS = (
    Key("eval.source_class", "int", 0, 9), Key("eval.target_class", "int", 0, 9),
    Key("eval.edit_time", "float", 0.0, 1.0, open_low=True, open_high=True,
        meaning="the critical step t_c where h is read and edits start"),
    Key("eval.edit_until", "float", 0.0, 1.0), Key("eval.num_random", "int", 1),
    Key("eval.num_edited", "int", 1), Key("eval.svm_c", "float", 0.0, open_low=True),
    Key("eval.search_critical_time", "bool"),
    Key("eval.critical_tolerance", "float", 0.0, meaning="0: two annulus widths"),
)
# Inversion starts just below t = 1, where sigma = 0 leaves DDIM's noise estimate undefined.
T_DATA = 0.999


def build_h_space(config):
  """The h-space study of the module docstring, as the evaluation of a digits run."""
  check_keys(config, H_SPACE_KEYS)
  ev = config.eval
  source, target = ev.source_class, ev.target_class
  if source == target:
    raise ConfigError(f"eval.source_class and eval.target_class are both {source}; "
                      "choose two different digits.")
  if not ev.edit_time <= ev.edit_until:
    raise ConfigError(f"eval.edit_until={ev.edit_until} must be >= eval.edit_time="
                      f"{ev.edit_time}.")
  if config.data.name != "digits" or config.data.image_size != 8:
    raise ConfigError("The h-space study uses the 8x8 digits (data.name=digits, "
                      "data.image_size=8).")
  task = images.build_task(config)
  pipeline = build_pipeline(config, DataSpec((8, 8, 1), 10))
  model = h_space.require_bottleneck(pipeline.model, config.model.name)
  if pipeline.conditional:
    raise ConfigError("The h-space study edits an unconditional model; set "
                      "model.num_classes=0.")
  path = pipeline.path
  stepper = ddim(path)
  num_steps = config.sample.num_steps

  def edit_grids(t_c):
    """The inversion grid from the data down to t_c and the regeneration grid back up."""
    steps = max(1, round(num_steps * (1 - t_c)))
    return jnp.linspace(T_DATA, t_c, steps + 1), jnp.linspace(t_c, 1.0, steps + 1)

  strengths = tuple(float(s) for s in ev.strengths)
  fields_of = lambda apply, params: complete(pipeline.objective.fields(apply, params), path)

  @functools.partial(jax.jit, static_argnums=(2,))
  def invert(params, x1, t_c=ev.edit_time):
    x_c = integrate(stepper, fields_of(model.apply, params), x1, edit_grids(t_c)[0]).x
    return x_c, h_space.bottleneck(model, params, x_c, t_c)

  @functools.partial(jax.jit, static_argnums=(4,))
  def regenerate(params, x_c, direction, strength, t_c=ev.edit_time):
    apply = h_space.edited_apply(model, direction, strength,
                                 (t_c, max(t_c, ev.edit_until)))
    x = integrate(stepper, fields_of(apply, params), x_c, edit_grids(t_c)[1]).x
    return jnp.clip(x, -1, 1)

  @jax.jit
  def inversion_to_source(params, x1):
    """DDIM inversion from the data to t = 0 on num_steps steps: (num_steps + 1, N, ...)."""
    ts = jnp.linspace(T_DATA, 0.0, num_steps + 1)
    return integrate(stepper, fields_of(model.apply, params), x1, ts,
                     return_trajectory=True).trajectory, ts

  def found_time_edits(params, train_x, train_y, test_x):
    """The automatic critical time and the boundary-crossing edit there (item 4)."""
    trajectory, ts = inversion_to_source(params, jnp.asarray(train_x))
    t_found = boundary_lib.critical_time(trajectory, ts, path.source_std,
                                         ev.critical_tolerance or None)
    t_found = min(max(round(t_found, 3), 0.001), 0.999)
    _, h_train = invert(params, jnp.asarray(train_x), t_found)
    x_c, h_test = invert(params, jnp.asarray(test_x), t_found)
    found = boundary_lib.fit_linear_boundary(h_train, train_y, source, target, ev.svm_c)
    distances = found.signed_distance(h_train)
    target_distance = float(jnp.mean(distances[jnp.asarray(train_y) == target]))
    crossing = found.crossing_strength(h_test, target_distance)
    edits = [np.asarray(regenerate(params, x_c, found.normal, lam * crossing, t_found))
             for lam in strengths]
    return t_found, found.accuracy, edits

  @jax.jit
  def generated_h(params, key):
    """h over 64 generated samples at every grid time (PCA's sample of h-space)."""
    x0 = pipeline.source(key, 64)
    ts = jnp.linspace(0.0, T_DATA, num_steps + 1)
    trajectory = integrate(stepper, fields_of(model.apply, params), x0, ts,
                           return_trajectory=True).trajectory
    return jax.vmap(lambda x, t: h_space.bottleneck(model, params, x, t))(trajectory, ts)

  def study(params, key):
    classifier = image_metrics.digits_classifier()
    train_x, train_y = digits_bin_centres("train", [source, target])
    test_x, _ = digits_bin_centres("test", [source], ev.num_edited)
    _, h_train = invert(params, jnp.asarray(train_x))
    x_c, h_test = invert(params, jnp.asarray(test_x))
    k_pca, k_jac, k_rand = jax.random.split(key, 3)
    mean_diff = h_space.class_mean_direction(h_train, train_y, source, target)
    norm = jnp.linalg.norm(mean_diff)
    boundary = boundary_lib.fit_linear_boundary(h_train, train_y, source, target, ev.svm_c)
    h_all = generated_h(params, k_pca)
    pcs, explained = h_space.principal_directions(h_all.reshape((-1,) + h_all.shape[2:]), 3)
    denoise = lambda h: model.apply(params, x_c[:1], ev.edit_time,
                                    bottleneck_edit=lambda _: h)
    jac_dirs, jac_values = h_space.jacobian_directions(denoise, h_test[:1], 3, k_jac)
    randoms = h_space.random_directions(k_rand, mean_diff, ev.num_random)
    directions = {"class_mean": mean_diff, "svm_normal": boundary.normal * norm,
                  "pca_1": pcs[0] * norm, "jacobian_1": jac_dirs[0] * norm}
    distances = boundary.signed_distance(h_train)
    target_distance = float(jnp.mean(distances[jnp.asarray(train_y) == target]))
    crossing = boundary.crossing_strength(h_test, target_distance)

    def probabilities(x):
      p = jax.nn.softmax(classifier.logits(x), -1)
      return np.asarray(p[:, target]), np.asarray(np.argmax(p, -1) == target)

    curves, shares, grids = {}, {}, {}
    for name, direction in list(directions.items()) + [("boundary_crossing", boundary.normal)]:
      rows, p_curve, s_curve = [], [], []
      for lam in strengths:
        strength = lam * crossing if name == "boundary_crossing" else jnp.float32(lam)
        x = np.asarray(regenerate(params, x_c, direction, strength))
        p, hit = probabilities(x)
        p_curve.append(float(p.mean()))
        s_curve.append(float(hit.mean()))
        rows.append(x[:10])
      curves[name], shares[name] = p_curve, s_curve
      grids[name] = np.concatenate(rows)
    random_p = np.zeros((ev.num_random, len(strengths)))
    random_s = np.zeros_like(random_p)
    for r in range(ev.num_random):
      for j, lam in enumerate(strengths):
        x = np.asarray(regenerate(params, x_c, randoms[r], jnp.float32(lam)))
        p, hit = probabilities(x)
        random_p[r, j], random_s[r, j] = p.mean(), hit.mean()
      if r == 0:
        grids["random"] = np.concatenate([np.asarray(regenerate(
            params, x_c, randoms[0], jnp.float32(lam)))[:10] for lam in strengths])
    curves["random (same norm)"] = random_p
    values = {"svm_accuracy": boundary.accuracy, "direction_norm": float(norm),
              "pca_explained_1": float(explained[0]),
              "jacobian_singular_1": float(jac_values[0]),
              "jacobian_singular_2": float(jac_values[1])}
    for name in list(shares):
      for lam, p, s in zip(strengths, curves[name], shares[name]):
        values[f"p_target_{name}_{lam:g}"] = p
        values[f"share_target_{name}_{lam:g}"] = s
    for j, lam in enumerate(strengths):
      values[f"p_target_random_{lam:g}"] = float(random_p[:, j].mean())
      values[f"p_target_random_max_{lam:g}"] = float(random_p[:, j].max())
    if ev.get("search_critical_time", False):
      t_found, svm_accuracy, edits = found_time_edits(params, train_x, train_y, test_x)
      values.update(critical_time_found=t_found, critical_time_hand=ev.edit_time,
                    svm_accuracy_found=svm_accuracy)
      for lam, x in zip(strengths, edits):
        p, hit = probabilities(x)
        values[f"p_target_found_{lam:g}"] = float(p.mean())
        values[f"share_target_found_{lam:g}"] = float(hit.mean())
      grids["boundary_crossing_found"] = np.concatenate([x[:10] for x in edits])
    figures = {"edit_curves": plots.edit_curves_figure(
        strengths, curves, f"digit {source} -> {target}: edits of h at t >= {ev.edit_time}",
        f"classifier P(digit {target})")}
    for name, grid in grids.items():
      figures[f"edit_{name}"] = image_plots.sample_grid_figure(
          grid, num_columns=10, title=f"{name}: rows = strengths {strengths}")
    return values, figures

  def sample(params, key):
    values, figures = study(params, key)
    return {k: np.asarray(v) for k, v in values.items()}, figures

  return dataclasses.replace(task, evaluate=study, sample=sample)


