"""mnist.load: shapes, known facts, where it looks, integrity."""

from __future__ import annotations

import gzip
import shutil
import urllib.request

import numpy as np
import pytest

import mnist

FILE_STEMS = list(mnist.FILES)


# every test here reads and verifies copies of the full MNIST files (55 MB)
pytestmark = pytest.mark.slow


@pytest.fixture
def data_copy(tmp_path):
    """A private copy of the four canonical .gz files."""
    folder = tmp_path / "mnist"
    folder.mkdir()
    for stem in FILE_STEMS:
        shutil.copyfile(mnist.default_data_dir() / f"{stem}.gz", folder / f"{stem}.gz")
    return folder


def test_shapes_and_dtypes(mnist_arrays):
    X_train, Y_train, X_test, Y_test = mnist_arrays
    assert X_train.shape == (60000, 784) and X_train.dtype == np.uint8
    assert Y_train.shape == (60000,) and Y_train.dtype == np.uint8
    assert X_test.shape == (10000, 784) and X_test.dtype == np.uint8
    assert Y_test.shape == (10000,) and Y_test.dtype == np.uint8


def test_known_facts(mnist_arrays):
    X_train, Y_train, _, Y_test = mnist_arrays
    assert Y_train[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    assert Y_test[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]
    assert X_train.mean(dtype=np.float64) / 255 == pytest.approx(0.1307, abs=5e-5)
    assert X_train.std(dtype=np.float64) / 255 == pytest.approx(0.3081, abs=5e-5)
    assert set(np.unique(Y_train).tolist()) == set(range(10))


def test_independent_of_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MNIST_DIR", raising=False)
    _, Y_train, _, _ = mnist.load()
    assert Y_train[:3].tolist() == [5, 0, 4]


def test_mnist_dir_environment_variable(data_copy, monkeypatch):
    monkeypatch.setenv("MNIST_DIR", str(data_copy))
    assert mnist.default_data_dir() == data_copy
    (data_copy / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(mnist.MNISTDownloadError, match="t10k-labels"):
        mnist.load(download_missing=False)


def test_data_dir_argument_beats_environment(data_copy, tmp_path, monkeypatch):
    monkeypatch.setenv("MNIST_DIR", str(tmp_path / "nowhere"))
    _, Y_train, _, _ = mnist.load(data_copy)
    assert Y_train[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]


def test_decompressed_files_are_accepted(data_copy, mnist_arrays):
    for stem in FILE_STEMS:
        gz = data_copy / f"{stem}.gz"
        (data_copy / stem).write_bytes(gzip.decompress(gz.read_bytes()))
        gz.unlink()
    arrays = mnist.load(data_copy)
    for got, want in zip(arrays, mnist_arrays, strict=True):
        np.testing.assert_array_equal(got, want)


def test_truncated_training_images_are_refused(data_copy):
    path = data_copy / "train-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(mnist.MNISTIntegrityError, match="train-images") as info:
        mnist.load(data_copy)
    assert "damaged" in str(info.value)


def test_truncated_decompressed_file_names_sizes(data_copy):
    gz = data_copy / "train-labels-idx1-ubyte.gz"
    (data_copy / "train-labels-idx1-ubyte").write_bytes(gzip.decompress(gz.read_bytes())[:-100])
    gz.unlink()
    with pytest.raises(mnist.MNISTIntegrityError, match=r"train-labels.*59908.*expected 60008"):
        mnist.load(data_copy)


def _alter_one_byte(path, offset):
    content = bytearray(gzip.decompress(path.read_bytes()))
    content[offset] ^= 0x01
    path.write_bytes(gzip.compress(bytes(content), compresslevel=1))


def test_single_altered_byte_is_refused(data_copy):
    _alter_one_byte(data_copy / "train-images-idx3-ubyte.gz", 16 + 28 * 14 + 14)
    with pytest.raises(mnist.MNISTIntegrityError, match="train-images") as info:
        mnist.load(data_copy)
    message = str(info.value)
    assert mnist.FILES["train-images-idx3-ubyte"][0] in message  # the expected sum
    assert "altered" in message and "Replace" in message


def test_integrity_error_is_a_value_error(data_copy):
    _alter_one_byte(data_copy / "t10k-labels-idx1-ubyte.gz", 20)
    with pytest.raises(ValueError, match="t10k-labels"):
        mnist.load(data_copy)


def test_corrupted_gzip_stream_is_refused(data_copy):
    path = data_copy / "train-images-idx3-ubyte.gz"
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    path.write_bytes(bytes(raw))
    with pytest.raises(mnist.MNISTIntegrityError, match="train-images"):
        mnist.load(data_copy)


def test_no_network_when_files_are_present(data_copy, monkeypatch):
    def fail(*args, **kwargs):
        raise AssertionError("load() opened a URL although every file is present")

    monkeypatch.setattr(urllib.request, "urlopen", fail)
    mnist.load(data_copy)


def test_missing_file_without_download_says_how_to_fix(data_copy):
    (data_copy / "train-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(mnist.MNISTDownloadError) as info:
        mnist.load(data_copy, download_missing=False)
    message = str(info.value)
    assert "train-labels" in message and "MNIST_DIR" in message


def test_missing_file_offline_lists_every_mirror(data_copy):
    """With the network closed (the test guard), each default mirror fails and is listed."""
    (data_copy / "t10k-images-idx3-ubyte.gz").unlink()
    with pytest.raises(mnist.MNISTDownloadError) as info:
        mnist.load(data_copy)
    message = str(info.value)
    for mirror in mnist.MIRRORS:
        assert mirror in message
    assert "by hand" in message
    assert not list(data_copy.glob("*.part"))




def test_the_part_file_of_a_killed_download_is_removed_by_the_next_load(data_copy):
    """A download killed outright (SIGKILL) leaves its .part file; the next load removes it,
    and keeps the .part file of a download still running (its process is alive)."""
    import os

    dead = data_copy / ".train-images-idx3-ubyte.pid999999999.x1.part"
    live = data_copy / f".t10k-labels-idx1-ubyte.pid{os.getpid()}.x2.part"
    for part in (dead, live):
        part.write_bytes(b"half a download")
    mnist.load(data_copy)
    assert not dead.exists() and live.exists()


def test_a_mnist_dir_that_is_not_a_folder_is_one_line_naming_it(tmp_path, monkeypatch):
    for value in (tmp_path / "mistyped", tmp_path / "a-file"):
        if value.name == "a-file":
            value.write_text("mine")
        monkeypatch.setenv("MNIST_DIR", str(value))
        with pytest.raises(FileNotFoundError, match=f"MNIST_DIR={value} is not a folder") as info:
            mnist.load()
        assert "\n" not in str(info.value) and "unset it" in str(info.value)
    assert not (tmp_path / "mistyped").exists() and (tmp_path / "a-file").read_text() == "mine"


def test_an_empty_mnist_dir_offline_is_one_line_listing_the_mirrors(tmp_path, monkeypatch):
    monkeypatch.setenv("MNIST_DIR", str(tmp_path))
    with pytest.raises(mnist.MNISTDownloadError) as info:
        mnist.load()
    message = str(info.value)
    assert "\n" not in message and all(mirror in message for mirror in mnist.MIRRORS)
    assert list(tmp_path.iterdir()) == []  # nothing half-written left behind
