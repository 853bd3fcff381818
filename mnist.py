"""MNIST: from four gzip files on disk to verified NumPy arrays.

The MNIST database (LeCun, Cortes, Burges) is four IDX files. An IDX file is a
big-endian header followed by raw values:

    bytes 0-1   zero
    byte  2     value type (0x08 = uint8, ...)
    byte  3     number of dimensions D
    4*D bytes   the size of each dimension, uint32 big-endian
    the rest    prod(sizes) values, row-major

Images are (count, 28, 28) uint8 with 0 = background, 255 = ink; labels are
(count,) uint8 digits 0-9. ``load()`` returns the images flattened to
(count, 784).

Nothing here is trusted blindly. Each file's *decompressed* bytes must match a
SHA-256 sum recorded below before any array is built from them; a missing,
truncated, corrupt or altered file raises an error that names the file.
When files are absent they are downloaded from a list of mirrors, into a
temporary file that is renamed into place only after its checksum matches.
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

__all__ = ["FILES", "MIRRORS", "MNISTDownloadError", "MNISTError", "MNISTIntegrityError",
           "default_data_dir", "download", "load", "parse_idx"]

#: file stem -> (SHA-256 of the decompressed bytes, decompressed size in bytes, shape)
FILES: dict[str, tuple[str, int, tuple[int, ...]]] = {
    "train-images-idx3-ubyte": (
        "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
        47_040_016,
        (60_000, 28, 28),
    ),
    "train-labels-idx1-ubyte": (
        "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
        60_008,
        (60_000,),
    ),
    "t10k-images-idx3-ubyte": (
        "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
        7_840_016,
        (10_000, 28, 28),
    ),
    "t10k-labels-idx1-ubyte": (
        "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
        10_008,
        (10_000,),
    ),
}

#: Tried in order when a file is missing; each serves ``<stem>.gz`` below its URL.
MIRRORS: tuple[str, ...] = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
)

_PROJECT_DIR = Path(__file__).resolve().parent

# IDX type byte -> big-endian NumPy dtype
_IDX_DTYPES = {code: np.dtype(name) for code, name in
               ((0x08, ">u1"), (0x09, ">i1"), (0x0B, ">i2"), (0x0C, ">i4"), (0x0D, ">f4"),
                (0x0E, ">f8"))}


class MNISTError(Exception):
    """Base class of every error this module raises on purpose."""


class MNISTIntegrityError(MNISTError, ValueError):
    """A data file exists but is not the canonical MNIST file."""


class MNISTDownloadError(MNISTError, OSError):
    """A file is missing and could not be fetched from any mirror."""


def default_data_dir() -> Path:
    """``$MNIST_DIR`` if set, else ``data/mnist`` next to this module (never the CWD)."""
    env = os.environ.get("MNIST_DIR")
    return Path(env).expanduser() if env else _PROJECT_DIR / "data" / "mnist"


def parse_idx(data: bytes, name: str = "<bytes>") -> np.ndarray:
    """Parse the bytes of one IDX file into an array in native byte order.

    Args:
        data: the whole decompressed file.
        name: used in error messages only.
    Returns:
        array of the shape and type the header declares.
    Raises:
        ValueError: naming ``name``, when the header is malformed or the number
            of bytes does not match the header.
    """
    if len(data) < 4:
        raise ValueError(f"{name}: not an IDX file: {len(data)} bytes, a header needs at least 4")
    if data[0] != 0 or data[1] != 0:
        raise ValueError(f"{name}: not an IDX file: magic number starts with bytes "
                         f"{data[0]:#04x} {data[1]:#04x}, expected 0x00 0x00")
    type_code, ndim = data[2], data[3]
    if type_code not in _IDX_DTYPES:
        known = ", ".join(f"{c:#04x}" for c in _IDX_DTYPES)
        raise ValueError(f"{name}: unknown IDX value type {type_code:#04x}; known types: {known}")
    if ndim == 0:
        raise ValueError(f"{name}: IDX header declares 0 dimensions, expected at least 1")
    header_len = 4 + 4 * ndim
    if len(data) < header_len:
        raise ValueError(f"{name}: truncated header: {ndim} dimensions need {header_len} "
                         f"header bytes, file has {len(data)}")
    shape = tuple(int(d) for d in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    dtype = _IDX_DTYPES[type_code]
    expected = math.prod(shape) * dtype.itemsize  # Python ints: no overflow
    found = len(data) - header_len
    if found != expected:
        what = "truncated" if found < expected else "trailing bytes"
        raise ValueError(f"{name}: {what}: header declares shape {shape} of {dtype.name} "
                         f"({expected} data bytes), file has {found} data bytes")
    array = np.frombuffer(data, dtype=dtype, offset=header_len).reshape(shape)
    return array.astype(dtype.newbyteorder("="), copy=True)


def _decompress(raw: bytes, path: Path) -> bytes:
    if not path.name.endswith(".gz"):
        return raw
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as exc:
        raise MNISTIntegrityError(f"{path}: damaged gzip file ({exc}). Delete it and load again "
                                  f"to download a fresh copy, or copy the canonical file from "
                                  f"the project's data/mnist/ folder.") from exc


def _verify(stem: str, content: bytes, origin: str) -> None:
    """Raise MNISTIntegrityError unless ``content`` is the canonical decompressed ``stem``."""
    sha, size, _ = FILES[stem]
    if len(content) != size:
        raise MNISTIntegrityError(f"{origin}: {stem} has {len(content)} decompressed bytes, "
                                  f"expected {size} (truncated or wrong file). Replace it with "
                                  f"the canonical file (see README, 'Data').")
    found = hashlib.sha256(content).hexdigest()
    if found != sha:
        raise MNISTIntegrityError(f"{origin}: {stem} is altered: SHA-256 of its decompressed "
                                  f"bytes is {found}, expected {sha}. Replace it with the "
                                  f"canonical file (see README, 'Data').")


def _find(stem: str, data_dir: Path) -> Path | None:
    for candidate in (data_dir / f"{stem}.gz", data_dir / stem):
        if candidate.is_file():
            return candidate
    return None


def _progress(stem: str, done: int, total: int | None) -> None:
    if total:
        sys.stderr.write(f"\r  {stem}.gz: {done / 1e6:6.1f} / {total / 1e6:.1f} MB")
    else:
        sys.stderr.write(f"\r  {stem}.gz: {done / 1e6:6.1f} MB")
    sys.stderr.flush()


def _publish_mode(path: Path) -> None:
    """Give a file the permissions the user's umask asks for (mkstemp creates 0600)."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, 0o666 & ~umask)


def download(stem: str, data_dir: str | os.PathLike, mirrors: Sequence[str] | str = MIRRORS, *,
             sha256: str | None = None, timeout: float = 30.0, deadline: float = 600.0,
             progress: bool = True) -> Path:
    """Fetch ``<stem>.gz`` into ``data_dir``, trying ``mirrors`` in order.

    The body is streamed into a temporary file in ``data_dir``; it is renamed to
    ``<stem>.gz`` only after the SHA-256 of its decompressed bytes matches
    ``sha256`` (default: the canonical sum in ``FILES``). A failed or interrupted
    attempt leaves no file behind.
    ``timeout`` bounds each network read, ``deadline`` a whole transfer (seconds).

    Returns:
        the path of the verified file.
    Raises:
        ValueError: ``stem`` is not one of the four MNIST files.
        MNISTDownloadError: listing every URL tried and why it failed, and how
            to place the files by hand.
    """
    if stem not in FILES and sha256 is None:
        raise ValueError(f"download: unknown MNIST file {stem!r}; expected one of "
                         f"{', '.join(FILES)}")
    if isinstance(mirrors, str):
        mirrors = (mirrors,)
    data_dir = Path(data_dir)
    if data_dir.exists() and not data_dir.is_dir():
        raise NotADirectoryError(f"{data_dir} is a file, not a folder; pass the folder that "
                                 f"should hold the MNIST files")
    created = not data_dir.exists()
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        probe_fd, probe = tempfile.mkstemp(dir=data_dir, prefix=f".{stem}.pid{os.getpid()}.",
                                           suffix=".part")
        os.close(probe_fd)
        os.unlink(probe)
    except PermissionError as exc:
        raise MNISTDownloadError(f"{stem}.gz is missing from {data_dir} and cannot be downloaded "
                                 f"there: the folder is not writable ({exc.strerror}). "
                                 f"{_HOW_TO_PLACE.format(data_dir=data_dir)}") from exc
    expected_sha = sha256 if sha256 is not None else FILES[stem][0]
    target = data_dir / f"{stem}.gz"
    failures = []
    try:
        for mirror in mirrors:
            url = mirror.rstrip("/") + f"/{stem}.gz"
            fd, tmp_name = tempfile.mkstemp(dir=data_dir, prefix=f".{stem}.pid{os.getpid()}.",
                                            suffix=".part")
            tmp = Path(tmp_name)
            try:
                started = time.monotonic()
                with os.fdopen(fd, "wb") as out, \
                        urllib.request.urlopen(url, timeout=timeout) as resp:
                    total = resp.headers.get("Content-Length")
                    total = int(total) if total and total.isdigit() else None
                    done = 0
                    while chunk := resp.read1(1 << 16):
                        out.write(chunk)
                        done += len(chunk)
                        if time.monotonic() - started > deadline:
                            raise TimeoutError(f"the transfer took longer than {deadline:g} s "
                                               f"({done} bytes received)")
                        if progress:
                            _progress(stem, done, total)
                if progress:
                    sys.stderr.write("\n")
                content = gzip.decompress(tmp.read_bytes())
                found = hashlib.sha256(content).hexdigest()
                if found != expected_sha:
                    raise ValueError(f"checksum mismatch: SHA-256 {found}, expected "
                                     f"{expected_sha}")
                os.replace(tmp, target)
                _publish_mode(target)
                return target
            except (OSError, EOFError, zlib.error, ValueError) as exc:  # URLError is an OSError
                failures.append(f"  {url}: {exc}")
            finally:
                tmp.unlink(missing_ok=True)
    finally:
        if created and not target.exists() and not any(data_dir.iterdir()):
            data_dir.rmdir()  # a folder this call made, left empty by a failure
    tried = "\n".join(failures) if failures else "  (no mirrors were given)"
    raise MNISTDownloadError(f"{stem}.gz is missing from {data_dir} and could not be downloaded. "
                             f"Tried:\n{tried}\n{_HOW_TO_PLACE.format(data_dir=data_dir)}")


_HOW_TO_PLACE = ("To fix: copy the four MNIST .gz files into {data_dir} by hand (this project "
                 "ships them in data/mnist/), or point MNIST_DIR or load(data_dir=...) at a "
                 "folder that holds them.")


def load(data_dir: str | os.PathLike | None = None, *, download_missing: bool = True,
         mirrors: Sequence[str] = MIRRORS) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Load the verified MNIST arrays.

    Args:
        data_dir: folder holding the four files (``.gz`` or decompressed).
            Default: ``$MNIST_DIR``, else ``data/mnist`` next to this module.
        download_missing: fetch missing files from ``mirrors`` (no network is
            touched when every file is present).
        mirrors: base URLs tried in order.
    Returns:
        X_train (60000, 784) uint8, Y_train (60000,) uint8,
        X_test (10000, 784) uint8, Y_test (10000,) uint8.
    Raises:
        MNISTIntegrityError: a file is truncated, corrupt or altered.
        MNISTDownloadError: a file is missing and could not be downloaded.
    """
    data_dir = Path(data_dir).expanduser() if data_dir is not None else default_data_dir()
    if data_dir.exists() and not data_dir.is_dir():
        raise NotADirectoryError(f"load: data_dir {data_dir} is a file, not a folder; pass the "
                                 f"folder holding the four MNIST files")
    paths: dict[str, Path] = {}
    for stem in FILES:
        found = _find(stem, data_dir)
        if found is None:
            if not download_missing:
                raise MNISTDownloadError(f"{stem}(.gz) is missing from {data_dir}. Copy the four "
                                         f"MNIST files there (the project ships them in "
                                         f"data/mnist/), set MNIST_DIR to a folder that holds "
                                         f"them, or call load(download_missing=True).")
            found = download(stem, data_dir, mirrors)
        paths[stem] = found

    arrays = {}
    for stem, path in paths.items():
        content = _decompress(path.read_bytes(), path)
        _verify(stem, content, str(path))
        arrays[stem] = parse_idx(content, str(path))
    return _as_tuple(arrays)


def _as_tuple(arrays: dict[str, np.ndarray]):
    return (
        arrays["train-images-idx3-ubyte"].reshape(60_000, 784),
        arrays["train-labels-idx1-ubyte"],
        arrays["t10k-images-idx3-ubyte"].reshape(10_000, 784),
        arrays["t10k-labels-idx1-ubyte"],
    )


if __name__ == "__main__":
    X_train, Y_train, X_test, Y_test = load()
    print("train", X_train.shape, Y_train.shape, "test", X_test.shape, Y_test.shape)
    print("first ten training labels:", *Y_train[:10])
