"""MNIST from four gzip files on disk to verified NumPy arrays, as the course's mnist.load().

Each file's decompressed bytes are checked against its SHA-256 in ``FILES`` before an array is
made of them. A missing file is downloaded from the mirrors into a ``.part`` file renamed into
place once its checksum matches; the next load removes the ``.part`` file of a killed download.
"""

from __future__ import annotations

import gzip
import hashlib
import math
import os
import sys
import tempfile
import time
import urllib.request
import zlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np

#: file stem -> (SHA-256 of the decompressed bytes, the shape of the uint8 values after its
#: IDX header)
FILES = {
    "train-images-idx3-ubyte": ("ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
                                (60_000, 28, 28)),
    "train-labels-idx1-ubyte": ("65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
                                (60_000,)),
    "t10k-images-idx3-ubyte": ("0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
                               (10_000, 28, 28)),
    "t10k-labels-idx1-ubyte": ("ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
                               (10_000,)),
}
#: Tried in order when a file is missing; each serves ``<stem>.gz`` below its URL.
MIRRORS = ("https://ossci-datasets.s3.amazonaws.com/mnist/",
           "https://storage.googleapis.com/cvdf-datasets/mnist/")
_PROJECT_DATA = Path(__file__).resolve().parent / "data" / "mnist"
_HOW_TO_FIX = ("To fix: copy the four MNIST .gz files (data/mnist/ has them) into {} by hand, "
               "or point MNIST_DIR or load(data_dir=...) at a folder that holds them.")


class MNISTIntegrityError(ValueError, OSError):
    """A data file is not the canonical MNIST file (an OSError too, as gzip's BadGzipFile)."""


class MNISTDownloadError(OSError):
    """A file is missing and could not be fetched from any mirror."""


def default_data_dir() -> Path:
    """``$MNIST_DIR`` if set, else ``data/mnist`` next to this module (never the CWD)."""
    env = os.environ.get("MNIST_DIR")
    return Path(env).expanduser() if env else _PROJECT_DATA


def download(stem: str, data_dir: str | os.PathLike, mirrors: Sequence[str] | str = MIRRORS, *,
             sha256: str | None = None, timeout: float = 30.0, deadline: float = 600.0,
             progress: bool = True) -> Path:
    """Fetch ``<stem>.gz`` into ``data_dir`` from the first of ``mirrors`` that serves it with
    the SHA-256 ``sha256`` (default the canonical one), through a ``.part`` file renamed once."""
    if stem not in FILES and sha256 is None:
        raise ValueError(f"download: unknown MNIST file {stem!r}; expected one of "
                         f"{', '.join(FILES)}")
    data_dir, failures = Path(data_dir), []
    created = not data_dir.exists()
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        for mirror in [mirrors] if isinstance(mirrors, str) else mirrors:
            url = mirror.rstrip("/") + f"/{stem}.gz"
            if progress:
                print(f"downloading {url}", file=sys.stderr)
            fd, part = tempfile.mkstemp(".part", f".{stem}.pid{os.getpid()}.", data_dir)
            try:
                with os.fdopen(fd, "wb") as out, \
                        urllib.request.urlopen(url, timeout=timeout) as response:
                    give_up = time.monotonic() + deadline
                    while chunk := response.read1(1 << 16):
                        out.write(chunk)
                        if time.monotonic() > give_up:
                            raise TimeoutError(f"the transfer took longer than {deadline:g} s")
                found = hashlib.sha256(gzip.decompress(Path(part).read_bytes())).hexdigest()
                if found != (sha256 or FILES[stem][0]):
                    raise ValueError(f"checksum mismatch: SHA-256 {found}")
                os.replace(part, data_dir / f"{stem}.gz")
                return data_dir / f"{stem}.gz"
            except (OSError, EOFError, zlib.error, ValueError) as exc:  # URLError is an OSError
                failures.append(f"{url}: {' '.join(str(exc).split())}")
            finally:
                Path(part).unlink(missing_ok=True)
    except PermissionError as exc:
        raise MNISTDownloadError(f"{stem}.gz is missing from {data_dir} and cannot be "
                                 f"downloaded there: the folder is not writable "
                                 f"({exc.strerror}). {_HOW_TO_FIX.format(data_dir)}") from exc
    finally:
        if created and data_dir.is_dir() and not any(data_dir.iterdir()):
            data_dir.rmdir()  # a folder this call made, left empty by a failure
    raise MNISTDownloadError(f"{stem}.gz is missing from {data_dir} and could not be downloaded "
                             f"(tried {'; '.join(failures) or 'no mirrors'}). "
                             f"{_HOW_TO_FIX.format(data_dir)}")


def _running(pid: int) -> bool:
    """Whether process ``pid`` exists, asked as psutil.pid_exists asks it, with the standard
    library only (this module needs nothing beyond NumPy, as in the course's environment)."""
    if os.name != "nt":
        try:
            os.kill(pid, 0)  # signal 0 delivers nothing: it only asks
        except (ProcessLookupError, OverflowError):
            return False
        except PermissionError:  # another user's process
            return True
        return True
    import ctypes  # os.kill would end the process on Windows: ask the kernel instead

    kernel32, code = ctypes.WinDLL("kernel32", use_last_error=True), ctypes.c_ulong()
    kernel32.OpenProcess.restype = handle_type = ctypes.c_void_p
    handle = kernel32.OpenProcess(0x1000, False, pid)  # PROCESS_QUERY_LIMITED_INFORMATION
    if not handle:
        return ctypes.get_last_error() == 5  # ERROR_ACCESS_DENIED: another user's process
    asked = kernel32.GetExitCodeProcess(handle_type(handle), ctypes.byref(code))
    kernel32.CloseHandle(handle_type(handle))
    return not asked or code.value == 259  # STILL_ACTIVE


def load(data_dir: str | os.PathLike | None = None, *, download_missing: bool = True,
         mirrors: Sequence[str] = MIRRORS) -> tuple[np.ndarray, np.ndarray, np.ndarray,
                                                    np.ndarray]:
    """X_train (60000, 784), Y_train (60000,), X_test (10000, 784), Y_test (10000,), uint8, from
    the four files in ``data_dir`` (``.gz`` or not; default ``default_data_dir()``), the missing
    ones downloaded when ``download_missing``. MNISTIntegrityError names a damaged file."""
    env = os.environ.get("MNIST_DIR") if data_dir is None else None
    data_dir = Path(data_dir).expanduser() if data_dir is not None else default_data_dir()
    if env and not data_dir.is_dir():
        raise FileNotFoundError(f"MNIST_DIR={env} is not a folder: point it at the folder that "
                                f"holds the four MNIST files, or unset it to use the "
                                f"project's copy in {_PROJECT_DATA}")
    if data_dir.exists() and not data_dir.is_dir():
        raise NotADirectoryError(f"load: data_dir {data_dir} is a file, not a folder; pass the "
                                 f"folder holding the four MNIST files")
    for part in data_dir.glob(".*.pid*.part"):  # a download's; if its process has ended, stale
        pid = part.name.rpartition(".pid")[2].partition(".")[0]
        if not (pid.isdigit() and _running(int(pid))):
            part.unlink(missing_ok=True)
    arrays = []
    for stem, (sha, shape) in FILES.items():
        path = next((p for p in (data_dir / f"{stem}.gz", data_dir / stem) if p.is_file()), None)
        if path is None and not download_missing:
            raise MNISTDownloadError(f"{stem}(.gz) is missing from {data_dir}. "
                                     f"{_HOW_TO_FIX.format(data_dir)}")
        path = path or download(stem, data_dir, mirrors)
        try:
            content = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else \
                path.read_bytes()
        except (OSError, EOFError, zlib.error) as exc:
            raise MNISTIntegrityError(f"{path}: damaged gzip file ({exc}). Delete it and load "
                                      f"again to download a fresh copy, or copy the canonical "
                                      f"file from the project's data/mnist/ folder.") from exc
        size, found = 4 + 4 * len(shape) + math.prod(shape), hashlib.sha256(content).hexdigest()
        if len(content) != size or found != sha:
            raise MNISTIntegrityError(
                f"{path}: {stem} is {'altered' if len(content) == size else 'truncated'}: "
                f"{len(content)} decompressed bytes with SHA-256 {found}, expected {size} bytes "
                f"with {sha}. Replace it with the canonical file (see README, 'Data').")
        arrays.append(np.frombuffer(content, np.uint8, offset=size - math.prod(shape))
                      .reshape(shape))  # the bytes after the IDX header: canonical, so known
    return arrays[0].reshape(-1, 784), arrays[1], arrays[2].reshape(-1, 784), arrays[3]


if __name__ == "__main__":
    X_train, Y_train, X_test, Y_test = load()
    print("train", X_train.shape, Y_train.shape, "test", X_test.shape, Y_test.shape)
    print("first ten training labels:", *Y_train[:10])
