"""Figures of the diagnostics (matplotlib `Figure`, no pyplot): detector histograms,
samples against modes, curves along an edit."""
import numpy as np


def detector_histogram_figure(scores, hallucinated, threshold, title=""):
  """Histogram of log10 detector scores (B,) of in-support and hallucinated samples, with
  the threshold as a vertical line."""
  # Imported here, not at the top: matplotlib takes about 0.5 s to import.
  from matplotlib.figure import Figure  # pylint: disable=g-import-not-at-top
  logs = np.log10(np.maximum(np.asarray(scores, np.float64), 1e-30))
  hallucinated = np.asarray(hallucinated, bool)
  bins = np.linspace(logs.min(), logs.max() + 1e-9, 60)
  fig = Figure(figsize=(6, 3.5), layout="constrained")
  ax = fig.subplots()
  ax.hist(logs[~hallucinated], bins=bins, alpha=0.6, label=f"in support ({(~hallucinated).sum()})")
  ax.hist(logs[hallucinated], bins=bins, alpha=0.6, label=f"hallucinated ({hallucinated.sum()})")
  ax.axvline(np.log10(max(threshold, 1e-30)), color="k", ls="--", label="threshold")
  ax.set_yscale("log")
  ax.set_xlabel("log10 variance of x1_hat over the last steps")
  ax.set_ylabel("samples")
  ax.legend()
  ax.set_title(title)
  return fig


def mode_samples_figure(samples, means, hallucinated, title=""):
  """1D: histogram of samples with the mode centres; 2D: scatter, hallucinations in red."""
  # Imported here, not at the top: matplotlib takes about 0.5 s to import.
  from matplotlib.figure import Figure  # pylint: disable=g-import-not-at-top
  samples, means = np.asarray(samples), np.asarray(means)
  hallucinated = np.asarray(hallucinated, bool)
  fig = Figure(figsize=(6, 3.5 if samples.shape[1] == 1 else 5), layout="constrained")
  ax = fig.subplots()
  if samples.shape[1] == 1:
    ax.hist(samples[:, 0], bins=300, color="tab:blue")
    ax.set_yscale("log")
    for m in means[:, 0]:
      ax.axvline(m, color="tab:orange", lw=0.8)
    ax.set_xlabel("x")
  else:
    ax.scatter(*samples[~hallucinated].T, s=1, alpha=0.3, label="in support")
    ax.scatter(*samples[hallucinated].T, s=2, color="tab:red", label="hallucinated")
    ax.scatter(*means.T, s=12, color="tab:orange", marker="x", label="modes")
    ax.set_aspect("equal")
    ax.legend(loc="upper right", fontsize=7)
  ax.set_title(title)
  return fig


def edit_curves_figure(strengths, curves, title="", ylabel=""):
  """curves: {label: (S,) values, or (R, S) for several random controls} along the edit
  strengths (S,)."""
  # Imported here, not at the top: matplotlib takes about 0.5 s to import.
  from matplotlib.figure import Figure  # pylint: disable=g-import-not-at-top
  fig = Figure(figsize=(6, 3.5), layout="constrained")
  ax = fig.subplots()
  for label, values in curves.items():
    values = np.asarray(values)
    if values.ndim == 2:
      ax.plot(strengths, values.mean(0), ls="--", label=label)
      ax.fill_between(strengths, values.min(0), values.max(0), alpha=0.2)
    else:
      ax.plot(strengths, values, marker="o", label=label)
  ax.set_xlabel("edit strength")
  ax.set_ylabel(ylabel)
  ax.legend()
  ax.set_title(title)
  return fig


def spectra_figure(spectra, threshold, title=""):
  """spectra: {noise label: (B, D) singular values of sigma^2 J}; their mean per index,
  with the vanishing threshold."""
  # Imported here, not at the top: matplotlib takes about 0.5 s to import.
  from matplotlib.figure import Figure  # pylint: disable=g-import-not-at-top
  fig = Figure(figsize=(6, 3.5), layout="constrained")
  ax = fig.subplots()
  for label, values in spectra.items():
    values = np.asarray(values)
    ax.plot(np.arange(1, values.shape[1] + 1), values.mean(0), marker=".",
            label=f"sigma/alpha = {label}")
  ax.axhline(threshold, color="k", ls="--", label="threshold")
  ax.set_yscale("log")
  ax.set_xlabel("singular value index")
  ax.set_ylabel("sigma^2 x singular value of the score Jacobian")
  ax.legend(fontsize=7)
  ax.set_title(title)
  return fig
