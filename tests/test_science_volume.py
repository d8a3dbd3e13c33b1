"""SeisFusion in 3D: volumes cut into sections and stacked back, the 3D interpolation
baselines against closed forms, the slice-by-slice reconstruction keeping recorded traces
exactly (with real input guidance on an exact Gaussian field), its averaging rule over
axes, the :tiny experiment end to end and bad input refused before the workdir."""
import os

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

import experiments
from diffjax.data import layered_volumes, trace_mask
from diffjax.data.gaussian_mixture import GaussianMixture
from diffjax.data.mixture_oracle import mixture_oracle
from diffjax.errors import ConfigError
from diffjax.guidance import ConditionalModel, GuidanceContext, build_guidance
from diffjax.paths import build_path
from diffjax.science import (interpolate_volumes, reconstruct_volumes, stack_slices,
                             volume_slices)
from diffjax.solvers import sample
from diffjax.train.workdir import read_metrics


def test_slices_along_both_axes_stack_back_to_the_volumes():
  volumes = np.random.default_rng(0).normal(size=(2, 5, 4, 3))
  masks = np.random.default_rng(1).integers(0, 2, (2, 5, 4))
  inline, inline_masks = volume_slices(volumes, masks, "x")
  crossline, crossline_masks = volume_slices(volumes, masks, "y")
  assert inline.shape == (8, 5, 3) and crossline.shape == (10, 4, 3)
  np.testing.assert_array_equal(inline[6], volumes[1, :, 2, :])
  np.testing.assert_array_equal(crossline[7], volumes[1, 2, :, :])
  np.testing.assert_array_equal(inline_masks[6], masks[1, :, 2])
  np.testing.assert_array_equal(crossline_masks[7], masks[1, 2, :])
  for axis, sections in (("x", inline), ("y", crossline)):
    np.testing.assert_array_equal(stack_slices(sections, 2, axis), volumes)
    draws = np.stack([sections, 2 * sections], 1)        # An extra (draws) axis.
    np.testing.assert_array_equal(stack_slices(draws, 2, axis)[:, 1], 2 * volumes)
  with pytest.raises(ConfigError, match="Unknown slicing axis 'z'"):
    volume_slices(volumes, masks, "z")


def test_3d_baselines_against_their_closed_forms():
  nx, ny, nz = 9, 7, 4
  x, y, z = np.meshgrid(np.arange(nx), np.arange(ny), np.arange(nz), indexing="ij")
  affine = 2.0 + 0.3 * x - 0.7 * y + 0.1 * z * x      # Affine in (x, y) at every depth.
  mask = trace_mask(3, (nx, ny), 0.6)
  mask[[0, 0, -1, -1], [0, -1, 0, -1]] = 1.0          # The corners: the hull is the grid.
  linear = interpolate_volumes("linear", affine[None], mask[None])[0]
  np.testing.assert_allclose(linear, affine, atol=1e-10)
  # Nearest: every missing trace is a copy of a recorded trace at the least distance.
  volume = layered_volumes(0, 1, (nx, ny, nz))[0]
  nearest = interpolate_volumes("nearest", volume[None], mask[None])[0]
  recorded = np.argwhere(mask > 0)
  for i, j in np.argwhere(mask == 0):
    distance = np.sum((recorded - (i, j)) ** 2, 1)
    closest = recorded[distance == distance.min()]
    assert any(np.array_equal(nearest[i, j], volume[a, b]) for a, b in closest)
  for filled in (linear, nearest):
    assert filled.shape == (nx, ny, nz)
  np.testing.assert_array_equal(nearest[mask > 0], volume[mask > 0])
  # Outside the hull of the recorded traces (one recorded row) linear falls back to
  # the nearest trace; a single recorded trace fills the whole volume.
  row = np.zeros((nx, ny))
  row[4] = 1.0
  np.testing.assert_allclose(interpolate_volumes("linear", affine[None], row[None])[0],
                             np.broadcast_to(affine[4:5], affine.shape))
  one = np.zeros((nx, ny))
  one[2, 3] = 1.0
  np.testing.assert_array_equal(interpolate_volumes("linear", volume[None], one[None])[0],
                                np.broadcast_to(volume[2, 3], volume.shape))


def test_axes_are_averaged_over_the_sections_that_record_a_trace():
  """restore fills missing traces with 1 along x and 3 along y: a missing trace whose
  inline and crossline sections both record something gets 2, one covered by a single
  axis that axis' value, one covered by neither the plain mean 2."""
  volumes = np.full((1, 4, 4, 2), 5.0)
  mask = np.ones((4, 4))
  mask[:, 0] = 0.0        # The inline section y = 0 records nothing.
  mask[1, :] = 0.0        # The crossline section x = 1 records nothing.
  mask[2, 2] = 0.0        # Covered by both axes.

  def restore(sections, section_masks, axis):
    fill = {"x": 1.0, "y": 3.0}[axis]
    out = np.where(section_masks[..., None] > 0, sections, fill)
    return out[:, None]

  combined, per_axis = reconstruct_volumes(restore, volumes, mask[None])
  got = combined[0, 0, :, :, 0]
  assert got[2, 2] == 2.0 and got[1, 0] == 2.0       # Both axes; neither axis.
  assert got[0, 0] == 3.0 and got[3, 0] == 3.0       # Only the crossline sections.
  assert got[1, 2] == 1.0 and got[1, 3] == 1.0       # Only the inline sections.
  np.testing.assert_array_equal(got[mask > 0], 5.0)
  assert set(per_axis) == {"x", "y"} and per_axis["x"].shape == (1, 1, 4, 4, 2)
  one_axis, _ = reconstruct_volumes(restore, volumes, mask[None], ("x",))
  np.testing.assert_array_equal(one_axis[0, 0, :, :, 0][mask == 0], 1.0)


def test_input_guidance_slice_by_slice_keeps_recorded_traces_exactly():
  """Every inline and crossline section (4 traces x 3 depths) restored by input guidance
  with 8 ancestral steps on the exact field of a correlated Gaussian: the recorded traces
  of the averaged 3D volume equal the data bit for bit; the missing ones move from the
  prior's mean 0 towards the recorded level 1."""
  path = build_path("rectified_flow")
  dim = 12
  cov = 0.5 * jnp.eye(dim) + 0.5
  oracle = mixture_oracle(path, GaussianMixture(jnp.ones((1,)), jnp.zeros((1, dim)),
                                                cov[None]))
  volumes = (1.0 + 1e-3 * np.random.default_rng(0).normal(size=(2, 4, 4, 3))).astype(
      np.float32)
  masks = np.stack([trace_mask(s, (4, 4), 0.5) for s in (1, 2)])

  def restore(sections, section_masks, axis):
    observed = jnp.asarray(sections.reshape(len(sections), -1))
    known = jnp.asarray(np.repeat(section_masks[..., None], 3, -1).reshape(len(sections), -1))
    context = GuidanceContext(ConditionalModel(lambda cond: oracle.fields(), None), path,
                              "ancestral", observed=observed, mask=known)
    guidance = build_guidance(ml_collections.ConfigDict(dict(method="input", renoise=True)),
                              context)
    key = jax.random.PRNGKey({"x": 0, "y": 1}[axis])
    x0 = path.source_sample(key, observed.shape)
    out = sample("ancestral", None, path, x0, jax.random.fold_in(key, 1), num_steps=8,
                 guidance=guidance).x
    return np.asarray(out).reshape(sections.shape)[:, None]

  combined, _ = reconstruct_volumes(restore, volumes, masks)
  known = np.broadcast_to(masks[..., None] > 0, volumes.shape)
  np.testing.assert_array_equal(combined[:, 0][known], volumes[known])
  assert np.all(np.isfinite(combined))
  assert 0.15 < combined[:, 0][~known].mean() < 1.0


def test_volume_masks_of_the_wrong_shape_and_bad_axes_are_refused():
  volumes = np.zeros((2, 4, 4, 3))
  restore = lambda sections, masks, axis: sections[:, None]
  with pytest.raises(ConfigError, match=r"masks of shape \(2, 4, 3\) do not fit volumes of "
                                        r"shape \(2, 4, 4, 3\)"):
    reconstruct_volumes(restore, volumes, np.ones((2, 4, 3)))
  with pytest.raises(ConfigError, match=r"masks of shape \(4, 4\)"):
    interpolate_volumes("linear", volumes, np.ones((4, 4)))
  with pytest.raises(ConfigError, match="must be distinct"):
    reconstruct_volumes(restore, volumes, np.ones((2, 4, 4)), ("x", "x"))
  with pytest.raises(ConfigError, match="no recorded trace"):
    interpolate_volumes("nearest", volumes, np.zeros((2, 4, 4)))


def test_seisfusion_3d_tiny_keeps_recorded_traces_and_scores(tmp_path):
  from configs.science import seisfusion_3d  # pylint: disable=g-import-not-at-top
  workdir = str(tmp_path / "run")
  experiments.run(seisfusion_3d.get_config("tiny"), workdir)
  record = read_metrics(workdir)[-1]
  for p in ("30", "50", "70"):
    assert record[f"known_change_volume_{p}"] == 0.0
    for estimate in ("diffusion", "diffusion_mean", "diffusion_mean_x", "diffusion_mean_y",
                     "linear", "nearest"):
      assert np.isfinite(record[f"snr_volume_{estimate}_{p}"])
  assert os.path.exists(os.path.join(workdir, "plots", "volume_0000010.png"))


@pytest.mark.parametrize("change,message", [
    (dict(mask=np.ones((6, 5))), r"has shape \(6, 5\); traces of volumes \(6, 6, 8\) need "
                                 r"a mask of shape \(6, 6\)"),
    (dict(shape=(6, 4, 8)), r"crossline sections of 4 traces, but the model is of inline "
                            r"sections of 6"),
    (dict(axes=("y", "y")), r"names an axis twice"),
    (dict(axes=("z",)), r"eval.volume_axes='z' is not one of the valid names: x, y"),
])
def test_bad_3d_settings_fail_in_one_line_before_the_workdir(tmp_path, change, message):
  from configs.science import seisfusion_3d  # pylint: disable=g-import-not-at-top
  config = seisfusion_3d.get_config("tiny")
  if "mask" in change:
    path = str(tmp_path / "mask.npz")
    np.savez(path, mask=change["mask"])
    config.data.mask_file = path
  if "shape" in change:
    config.data.shape = change["shape"]
  if "axes" in change:
    config.eval.volume_axes = change["axes"]
  with pytest.raises(ConfigError, match=message) as error:
    experiments.run(config, str(tmp_path / "run"))
  assert "\n" not in str(error.value)
  assert not os.path.exists(tmp_path / "run")
