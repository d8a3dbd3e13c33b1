"""Where a run's files live: a local directory or an object store, behind one path type.

Every reader and writer of a workdir goes through the `etils.epath` paths made here
(`workdir_path`): `--workdir` is a local directory or a URL, `gs://bucket/run` (Google Cloud
Storage through gcsfs; orbax writes checkpoint arrays through tensorstore), or another
store that epath reaches through fsspec (`s3://`, `az://`: untested, and without a lock).

An object store has no rename, no append and no file locks. What this module does instead:
- **Replacing a file** (`write_bytes`): locally a temporary file, fsync and a rename, as
  ever; on an object store one upload of the whole object, which readers see only when it
  is complete (an interrupted upload leaves the previous object, or none).
- **Read-modify-write** (`update_file`, for metrics.jsonl): on gs:// a compare-and-swap on
  the object's generation (`ifGenerationMatch`): the new content is written only if the
  object is still the one read, else it is read again and the change reapplied, so a
  record written meanwhile by another process is never lost. (Writing a new object and
  then renaming it is a copy and a delete on GCS: neither atomic nor cheaper.)
- **Creating an object only if absent, replacing or deleting it only at a known
  generation** (`write_object`, `delete_object`): what `diffjax.train.locks.ObjectLock`
  builds the workdir's lock from.

Credentials: on GCS, gcsfs, tensorstore and the google-cloud-storage client each read
Application Default Credentials: GOOGLE_APPLICATION_CREDENTIALS (a key file), the file
written by `gcloud auth application-default login`, or the metadata server of a Google
Cloud VM or TPU. With STORAGE_EMULATOR_HOST set (a local emulator) none are needed: gcsfs
goes there anonymously and tensorstore is pointed there too (TENSORSTORE_GCS_HTTP_URL and
a dummy GOOGLE_AUTH_TOKEN_FOR_TESTING, unless they are set).
"""
import functools
import importlib.util
import os
import re
import shutil
import tempfile
import threading
import types
from typing import Callable, Optional, Tuple

import fsspec
from etils import epath

from diffjax.errors import ConfigError

# The fsspec client of each object-store scheme that epath reaches: (module, pip package).
CLIENTS = {"gs": ("gcsfs", "diffjax[gcs]"), "s3": ("s3fs", "s3fs"), "az": ("adlfs", "adlfs")}
# Schemes with generation preconditions, hence a lock and compare-and-swap updates.
VERSIONED_SCHEMES = ("gs",)
_URL = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*)://(.*)$")
_TMP_PREFIX, _TMP_SUFFIX = ".diffjax-", ".tmp"
_TIMEOUT = 60.0   # Seconds for one request of the checks and the lock.
_CAS_ATTEMPTS = 20


class WorkdirError(ConfigError):
  """--workdir cannot be used: a file, not writable, a bucket that does not exist, no
  credentials, no client for its URL scheme, or (eval, sample) it holds no run."""


class GenerationMismatch(RuntimeError):
  """A conditional write or delete found another generation of the object."""


def url_scheme(workdir) -> Optional[str]:
  """'gs' for 'gs://bucket/run', None for a local path."""
  match = _URL.match(os.fspath(workdir))
  return match.group(1).lower() if match else None


def is_remote(path) -> bool:
  return url_scheme(path) is not None


def is_versioned(path) -> bool:
  """True on stores with generation preconditions (gs://)."""
  return url_scheme(path) in VERSIONED_SCHEMES


def on_emulator() -> bool:
  return bool(os.environ.get("STORAGE_EMULATOR_HOST"))


def workdir_path(workdir) -> epath.Path:
  """The workdir as an epath.Path: an absolute local path, or the URL without a trailing
  slash."""
  text = os.fspath(workdir)
  if is_remote(text):
    _configure_clients()
    return epath.Path(text.rstrip("/"))
  return epath.Path(os.path.abspath(text))


def _configure_clients():
  """fsspec settings for every gcsfs filesystem diffjax opens (through epath): no listing
  cache (tensorstore and other hosts write objects that a cached listing would miss),
  and on an emulator anonymous access, gcsfs's plain client (its default one first asks
  a gRPC storage-control API for the bucket's layout, which emulators lack, and waits a
  minute for each answer) and tensorstore pointed at it."""
  settings = fsspec.config.conf.setdefault("gcs", {})
  settings.setdefault("use_listings_cache", False)
  if not on_emulator():
    return
  host = os.environ["STORAGE_EMULATOR_HOST"]
  url = host if "://" in host else f"http://{host}"
  settings.setdefault("token", "anon")
  os.environ.setdefault("GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT", "false")
  os.environ.setdefault("TENSORSTORE_GCS_HTTP_URL", url)
  os.environ.setdefault("GOOGLE_AUTH_TOKEN_FOR_TESTING", "emulator")
  for name in ("gs", "gcs"):  # Also if gcsfs was imported before the line above.
    fsspec.register_implementation(name, "gcsfs.core.GCSFileSystem", clobber=True)


def _filesystem(path):
  return fsspec.core.url_to_fs(os.fspath(path))[0]


# --- Checks of a --workdir URL, before anything is written. ---

def check_remote_workdir(workdir: str):
  """WorkdirError, with one line, unless `workdir` (a URL) can hold a run: a scheme with
  an installed client, a bucket name, and on gs:// credentials (unless on an emulator)
  and an existing bucket, where `workdir` is not an object itself. Writes nothing."""
  scheme, rest = _URL.match(workdir).groups()
  scheme = scheme.lower()
  if scheme not in CLIENTS:
    hint = " (give a local path without file://)" if scheme == "file" else ""
    raise WorkdirError(
        f"--workdir={workdir}: no client handles the URL scheme {scheme}://{hint}; use a "
        "local directory or gs://bucket/path (s3://, az:// with s3fs, adlfs installed).")
  module, package = CLIENTS[scheme]
  _configure_clients()
  if importlib.util.find_spec(module) is None:
    raise WorkdirError(f"--workdir={workdir}: {scheme}:// needs the {module} package: "
                       f"pip install '{package}'.") from None
  bucket = rest.split("/", 1)[0]
  if not bucket:
    raise WorkdirError(f"--workdir={workdir} names no bucket; give "
                       f"{scheme}://<bucket>/<path>.")
  if scheme == "gs":
    _check_credentials(workdir)
    _check_bucket(workdir, bucket, rest.split("/", 1)[1].strip("/") if "/" in rest else "")


def _check_credentials(workdir: str):
  if on_emulator():
    return
  google = _google()
  try:
    google.auth.default()
  except google.auth_exceptions.DefaultCredentialsError as error:
    reason = " ".join(str(error).split()).split(". ")[0].rstrip(".")
    raise WorkdirError(
        f"--workdir={workdir}: no Google Cloud credentials ({reason}); set "
        "GOOGLE_APPLICATION_CREDENTIALS to a service-account key file, run `gcloud auth "
        "application-default login`, or run on a Google Cloud VM or TPU (its metadata "
        "server); for a local emulator set STORAGE_EMULATOR_HOST.") from None


def _check_bucket(workdir: str, bucket: str, key: str):
  exceptions = _google().exceptions
  client = _client()
  try:
    found = client.bucket(bucket).exists(timeout=_TIMEOUT, retry=None)
    is_object = found and bool(key) and client.bucket(bucket).blob(key).exists(
        timeout=_TIMEOUT, retry=None)
  except exceptions.Forbidden:
    raise WorkdirError(f"--workdir={workdir}: the credentials found may not read the "
                       f"bucket {bucket}; grant them storage.objects.* on it, or use "
                       "another bucket.") from None
  except Exception as error:  # A network or service failure: one line, then stop.
    raise WorkdirError(f"--workdir={workdir}: cannot reach the bucket {bucket}: "
                       f"{type(error).__name__}: {' '.join(str(error).split())[:200]}"
                       ) from None
  if not found:
    raise WorkdirError(f"--workdir={workdir}: the bucket {bucket} does not exist; create "
                       f"it (gcloud storage buckets create gs://{bucket}) or choose "
                       "another --workdir.")
  if is_object:
    raise WorkdirError(f"--workdir={workdir} is a file (an object), not a directory; "
                       "choose another --workdir.")


# --- Files: whole reads and atomic replacements. ---

def _file_mode() -> int:
  umask = os.umask(0)
  os.umask(umask)
  return 0o666 & ~umask


def write_bytes(path, data: bytes):
  """Replaces the file at `path` atomically: readers, and a rerun after a kill, see the
  old or the new content, never part of it. Locally a temporary file, fsync and a
  rename (the file gets the usual permissions, 0644 under umask 022); on an object store
  one upload."""
  if is_remote(path):
    epath.Path(path).write_bytes(data)
    return
  directory = os.path.dirname(os.path.abspath(os.fspath(path)))
  with tempfile.NamedTemporaryFile("wb", dir=directory, delete=False, prefix=_TMP_PREFIX,
                                   suffix=_TMP_SUFFIX) as f:
    f.write(data)
    f.flush()
    os.fsync(f.fileno())
    tmp = f.name
  os.chmod(tmp, _file_mode())
  os.replace(tmp, os.fspath(path))


def write_text(path, text: str):
  write_bytes(path, text.encode())


def read_text(path) -> str:
  return epath.Path(path).read_text()


def makedirs(path):
  """Creates a local directory (and its parents); nothing on an object store, whose
  "directories" are the prefixes of its objects."""
  if not is_remote(path):
    os.makedirs(os.fspath(path), exist_ok=True)


def remove(path):
  """Deletes a file or a directory tree if it exists."""
  path = epath.Path(path)
  if path.is_dir():
    path.rmtree()
  elif path.exists():
    path.unlink()


def move_tree(source, target, marker: Optional[str] = None):
  """Moves a directory tree: a rename locally; on an object store a copy, then a delete,
  where an interruption leaves the copy and the source whole or partly deleted. `marker`
  names a file of the tree whose presence makes the tree count (orbax's
  commit_success.txt): it is deleted first, so a partly deleted source never counts."""
  if not is_remote(source):
    shutil.move(os.fspath(source), os.fspath(target))
    return
  fs = _filesystem(source)
  fs.copy(os.fspath(source), os.fspath(target), recursive=True)
  if marker and fs.exists(os.fspath(source / marker)):
    fs.rm(os.fspath(source / marker))
  fs.rm(os.fspath(source), recursive=True)


def remove_stray_temporaries(directory):
  """Deletes temporary files left by a local write that a kill interrupted (an object
  store has none)."""
  directory = epath.Path(directory)
  if is_remote(directory) or not directory.is_dir():
    return
  for path in directory.iterdir():
    if path.name.startswith(_TMP_PREFIX) and path.name.endswith(_TMP_SUFFIX):
      path.unlink()


def update_file(path, change: Callable[[Optional[bytes]], Optional[bytes]]):
  """Replaces the file at `path` by `change(old content or None)`; nothing if it returns
  None. On gs:// a compare-and-swap on the object's generation (retried with the new
  content if another writer changed it in between: no update is lost); elsewhere a
  read and an atomic replacement (the workdir's lock keeps other writers out)."""
  if not is_versioned(path):
    path = epath.Path(path)
    new = change(path.read_bytes() if path.exists() else None)
    if new is not None:
      write_bytes(path, new)
    return
  for _ in range(_CAS_ATTEMPTS):
    old, generation = read_object(path)
    new = change(old)
    if new is None:
      return
    try:
      write_object(path, new, if_generation=generation)
      return
    except GenerationMismatch:
      continue
  raise GenerationMismatch(f"{path} kept changing while it was being updated "
                           f"({_CAS_ATTEMPTS} attempts); is another run writing to it?")


# --- Objects with generations (gs://), for the lock and compare-and-swap updates. ---

@functools.lru_cache(maxsize=None)
def _google():
  """The google-cloud-storage client library with its auth and error modules: optional
  peers (they come with gcsfs, `pip install 'diffjax[gcs]'`), imported for the first
  gs:// workdir only, so that local runs do not pay for them."""
  import google.auth  # pylint: disable=g-import-not-at-top
  import google.auth.credentials  # pylint: disable=g-import-not-at-top
  import google.auth.exceptions  # pylint: disable=g-import-not-at-top
  from google.api_core import exceptions  # pylint: disable=g-import-not-at-top
  from google.cloud import storage  # pylint: disable=g-import-not-at-top,redefined-outer-name
  return types.SimpleNamespace(auth=google.auth, credentials=google.auth.credentials,
                               auth_exceptions=google.auth.exceptions,
                               exceptions=exceptions, storage=storage)


@functools.lru_cache(maxsize=None)
def _client_for_thread(thread_id):
  del thread_id
  google = _google()
  if on_emulator():  # The client reads STORAGE_EMULATOR_HOST itself; no credentials.
    return google.storage.Client(project="emulator",
                                 credentials=google.credentials.AnonymousCredentials())
  return google.storage.Client()


def _client():
  """A google-cloud-storage client of the calling thread (the lock's heartbeat runs in
  its own)."""
  return _client_for_thread(threading.get_ident())


def _blob(path):
  match = _URL.match(os.fspath(path))
  bucket, _, key = match.group(2).partition("/")
  return _client().bucket(bucket).blob(key)


def read_object(path) -> Tuple[Optional[bytes], int]:
  """(content, generation) of the object at a gs:// path, (None, 0) if absent."""
  exceptions = _google().exceptions
  blob = _blob(path)
  try:
    data = blob.download_as_bytes(timeout=_TIMEOUT)
  except exceptions.NotFound:
    return None, 0
  return data, int(blob.generation)


def write_object(path, data: bytes, if_generation: int) -> int:
  """Writes the object only if its generation is `if_generation` (0: only if absent);
  returns the new generation. Raises GenerationMismatch otherwise."""
  exceptions = _google().exceptions
  blob = _blob(path)
  try:
    blob.upload_from_string(data, if_generation_match=if_generation, timeout=_TIMEOUT)
  except exceptions.PreconditionFailed:
    raise GenerationMismatch(f"{path} is not at generation {if_generation}.") from None
  return int(blob.generation)


def delete_object(path, if_generation: int):
  """Deletes the object only if its generation is `if_generation`; GenerationMismatch
  otherwise (also if it is absent)."""
  exceptions = _google().exceptions
  try:
    _blob(path).delete(if_generation_match=if_generation, timeout=_TIMEOUT)
  except (exceptions.PreconditionFailed, exceptions.NotFound):
    raise GenerationMismatch(f"{path} is not at generation {if_generation}.") from None
