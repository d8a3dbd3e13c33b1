"""Figures of the science experiments (built with `matplotlib.figure.Figure`, no pyplot):
a reconstructed seismic section beside its baselines, ensemble rank histograms, and the
stylised facts of simulated markets."""
import numpy as np


def section_figure(name, truth, mask, linear, draw, mean):
  """One 2D section (traces x depth) in five panels: the truth, the recorded traces
  (`mask` (traces,) > 0; `name` the missing percentage), linear interpolation, one draw
  of input guidance and the mean of the draws; every array (traces, depth)."""
  # Imported here, not at the top: matplotlib takes about 0.5 s to import.
  from matplotlib.figure import Figure  # pylint: disable=g-import-not-at-top
  panels = (("truth", truth), (f"recorded ({name}% missing)",
                               np.where(mask[:, None] > 0, truth, np.nan)),
            ("linear", linear), ("input guidance, one draw", draw),
            ("input guidance, mean", mean))
  figure = Figure(figsize=(3 * len(panels), 3))
  axes = figure.subplots(1, len(panels))
  for ax, (title, image) in zip(axes, panels):
    ax.imshow(image.T, aspect="auto", cmap="viridis", vmin=truth.min(), vmax=truth.max())
    ax.set_title(title, fontsize=8)
    ax.set_xlabel("trace (x)", fontsize=7)
  axes[0].set_ylabel("depth (z)", fontsize=7)
  return figure


def volume_figure(name, truth, mask, linear, draw, mean):
  """One 3D volume in two rows of five panels (truth, recorded traces, 3D linear
  interpolation, one draw and the mean of the slice-by-slice input-guidance
  reconstruction): a depth slice (x, y), and the inline section
  (x, z) with the most missing traces. The depth slice is the one whose velocities vary
  most over (x, y) (a layer boundary or the fault crosses it). Volumes (nx, ny, nz), mask
  (nx, ny) > 0 recorded, `name` the missing percentage."""
  from matplotlib.figure import Figure  # pylint: disable=g-import-not-at-top
  recorded = np.where(mask[..., None] > 0, truth, np.nan)
  volumes = (("truth", truth), (f"recorded ({name}% missing)", recorded),
             ("3D linear", linear), ("input guidance, one draw", draw),
             ("input guidance, mean", mean))
  depth = int(np.argmax(truth.reshape(-1, truth.shape[2]).std(0)))
  inline = int(np.argmin((mask > 0).sum(0)))
  cuts = ((f"depth {depth}: x", "y", lambda v: v[:, :, depth]),
          (f"inline y = {inline}: x", "depth (z)", lambda v: v[:, inline, :]))
  figure = Figure(figsize=(3 * len(volumes), 6))
  axes = figure.subplots(2, len(volumes))
  for row, (xlabel, ylabel, cut) in zip(axes, cuts):
    for ax, (title, volume) in zip(row, volumes):
      ax.imshow(cut(volume).T, aspect="auto", cmap="viridis", vmin=truth.min(),
                vmax=truth.max())
      ax.set_title(title, fontsize=8)
      ax.set_xlabel(xlabel, fontsize=7)
    row[0].set_ylabel(ylabel, fontsize=7)
  figure.tight_layout()
  return figure


def rank_histogram_figure(histograms, total):
  """Rank histograms {"true" | "seeds_generated" | "seeds": counts (members + 1,)} of
  the truth among ensemble members, each beside the flat line; `total` members."""
  from matplotlib.figure import Figure  # pylint: disable=g-import-not-at-top
  shown = [k for k in ("true", "seeds_generated", "seeds") if k in histograms]
  figure = Figure(figsize=(3.5 * len(shown), 2.8))
  axes = np.atleast_1d(figure.subplots(1, len(shown)))
  for ax, name in zip(axes, shown):
    counts = np.asarray(histograms[name], np.float64)
    ax.bar(np.arange(len(counts)), counts / counts.sum())
    ax.axhline(1 / len(counts), color="k", lw=0.8, ls="--")
    ax.set_title(f"{name} ({len(counts) - 1} members)", fontsize=8)
    ax.set_xlabel("rank of the truth", fontsize=7)
  figure.suptitle(f"Lorenz-96 rank histograms ({total} members vs 2 seeds)", fontsize=8)
  return figure


def forecast_figure(windows, draws, naive, context, values):
  """Probabilistic forecasts of up to four held-out windows: the observed series
  (windows (n, length)), the 90% band and median of the forecast draws (n, samples,
  length - context), the seasonal-naive forecast (n, length - context) or None, and the
  CRPS values of `values` (keys ending in _crps, and "crps") in the title."""
  from matplotlib.figure import Figure  # pylint: disable=g-import-not-at-top
  shown = min(4, len(windows))
  figure = Figure(figsize=(4 * shown, 3))
  axes = figure.subplots(1, shown, squeeze=False)
  steps = np.arange(windows.shape[1])
  for i, (ax, window, ensemble) in enumerate(zip(axes[0], windows, draws)):
    ax.plot(steps, window, "k", lw=1, label="observed")
    lo, mid, hi = np.percentile(ensemble, [5, 50, 95], axis=0)
    ax.fill_between(steps[context:], lo, hi, alpha=0.3, label="90% band")
    ax.plot(steps[context:], mid, "C0", label="median")
    if naive is not None:
      ax.plot(steps[context:], naive[i], "C3--", label="seasonal naive")
  axes[0][0].legend(fontsize=7)
  scores = ", ".join(f"{k.replace('_crps', '')} {v:.3f}" for k, v in values.items()
                     if k.endswith("_crps"))
  figure.suptitle(f"Self-guided forecasts: CRPS {values['crps']:.3f}; {scores}", fontsize=8)
  return figure


def stylised_fact_figure(facts, lags=tuple(range(1, 21))):
  """A figure of return tails, |return| autocorrelation and size distributions of several
  streams: facts {label: stylised_facts(stream)}."""
  from matplotlib.figure import Figure  # pylint: disable=g-import-not-at-top
  figure = Figure(figsize=(15, 4))
  axes = figure.subplots(1, 3)
  for i, (label, f) in enumerate(facts.items()):
    color = f"C{i}"    # One colour per stream in every panel.
    r = f["returns"] / (np.std(f["returns"]) + 1e-12)
    values = np.sort(np.abs(r))[::-1]
    axes[0].loglog(values, np.arange(1, len(values) + 1) / len(values), color=color,
                   label=f"{label} (excess kurtosis {f['excess_kurtosis']:.1f})")
    axes[1].plot(lags, f["abs_return_acf"], color=color, marker="o", ms=3,
                 label=f"{label} |r|")
    axes[1].plot(lags, f["return_acf"], color=color, ls=":", label=f"{label} r")
    sizes = np.sort(f["sizes"])[::-1]
    axes[2].loglog(sizes, np.arange(1, len(sizes) + 1) / len(sizes), color=color,
                   label=label)
  gauss = np.sort(np.abs(np.random.default_rng(0).standard_normal(4000)))[::-1]
  axes[0].loglog(gauss, np.arange(1, 4001) / 4000, "k--", lw=1, label="Gaussian")
  axes[0].set(title="Heavy tails: P(|r| / std > x)", xlabel="x")
  axes[1].axhline(0, color="k", lw=0.5)
  axes[1].set(title="Volatility clustering: autocorrelation", xlabel="lag (intervals)")
  axes[2].set(title="Order sizes: P(size >= s)", xlabel="s (lots)")
  for ax in axes:
    ax.legend(fontsize=7)
  figure.tight_layout()
  return figure
