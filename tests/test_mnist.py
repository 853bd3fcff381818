"""mnist.load: shapes, known facts, where it looks, integrity and the cache."""

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


@pytest.fixture
def cache_dir(tmp_path):
    return tmp_path / "cache"


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


def test_independent_of_working_directory(tmp_path, monkeypatch, cache_dir):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MNIST_DIR", raising=False)
    _, Y_train, _, _ = mnist.load(cache_dir=cache_dir)
    assert Y_train[:3].tolist() == [5, 0, 4]


def test_mnist_dir_environment_variable(data_copy, monkeypatch, cache_dir):
    monkeypatch.setenv("MNIST_DIR", str(data_copy))
    assert mnist.default_data_dir() == data_copy
    (data_copy / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(mnist.MNISTDownloadError, match="t10k-labels"):
        mnist.load(download_missing=False, cache_dir=cache_dir)


def test_data_dir_argument_beats_environment(data_copy, tmp_path, monkeypatch, cache_dir):
    monkeypatch.setenv("MNIST_DIR", str(tmp_path / "nowhere"))
    _, Y_train, _, _ = mnist.load(data_copy, cache_dir=cache_dir)
    assert Y_train[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]


def test_decompressed_files_are_accepted(data_copy, cache_dir, mnist_arrays):
    for stem in FILE_STEMS:
        gz = data_copy / f"{stem}.gz"
        (data_copy / stem).write_bytes(gzip.decompress(gz.read_bytes()))
        gz.unlink()
    arrays = mnist.load(data_copy, use_cache=False)
    for got, want in zip(arrays, mnist_arrays, strict=True):
        np.testing.assert_array_equal(got, want)


def test_truncated_training_images_are_refused(data_copy, cache_dir):
    path = data_copy / "train-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(mnist.MNISTIntegrityError, match="train-images") as info:
        mnist.load(data_copy, cache_dir=cache_dir)
    assert "damaged" in str(info.value)
    assert not cache_dir.exists() or not list(cache_dir.iterdir())


def test_truncated_decompressed_file_names_sizes(data_copy, cache_dir):
    gz = data_copy / "train-labels-idx1-ubyte.gz"
    (data_copy / "train-labels-idx1-ubyte").write_bytes(gzip.decompress(gz.read_bytes())[:-100])
    gz.unlink()
    with pytest.raises(mnist.MNISTIntegrityError, match=r"train-labels.*59908.*expected 60008"):
        mnist.load(data_copy, cache_dir=cache_dir)


def _alter_one_byte(path, offset):
    content = bytearray(gzip.decompress(path.read_bytes()))
    content[offset] ^= 0x01
    path.write_bytes(gzip.compress(bytes(content), compresslevel=1))


def test_single_altered_byte_is_refused(data_copy, cache_dir):
    _alter_one_byte(data_copy / "train-images-idx3-ubyte.gz", 16 + 28 * 14 + 14)
    with pytest.raises(mnist.MNISTIntegrityError, match="train-images") as info:
        mnist.load(data_copy, cache_dir=cache_dir)
    message = str(info.value)
    assert mnist.FILES["train-images-idx3-ubyte"][0] in message  # the expected sum
    assert "altered" in message and "Replace" in message


def test_integrity_error_is_a_value_error(data_copy, cache_dir):
    _alter_one_byte(data_copy / "t10k-labels-idx1-ubyte.gz", 20)
    with pytest.raises(ValueError, match="t10k-labels"):
        mnist.load(data_copy, cache_dir=cache_dir)


def test_corrupted_gzip_stream_is_refused(data_copy, cache_dir):
    path = data_copy / "train-images-idx3-ubyte.gz"
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    path.write_bytes(bytes(raw))
    with pytest.raises(mnist.MNISTIntegrityError, match="train-images"):
        mnist.load(data_copy, cache_dir=cache_dir)


def test_cache_is_invalidated_when_a_file_changes(data_copy, cache_dir):
    mnist.load(data_copy, cache_dir=cache_dir)
    assert len(list(cache_dir.glob("mnist-*.npz"))) == 1
    _alter_one_byte(data_copy / "train-images-idx3-ubyte.gz", 1000)
    with pytest.raises(mnist.MNISTIntegrityError, match="train-images"):
        mnist.load(data_copy, cache_dir=cache_dir)


def test_cache_round_trip_is_exact_and_leaves_no_temp_files(data_copy, cache_dir, mnist_arrays):
    first = mnist.load(data_copy, cache_dir=cache_dir)
    files = sorted(p.name for p in cache_dir.iterdir())
    assert len(files) == 1 and files[0].startswith("mnist-") and files[0].endswith(".npz")
    with np.load(cache_dir / files[0], allow_pickle=False) as npz:  # plain arrays, no pickle
        assert sorted(set(npz.files) - {"assignment1_mnist_cache"}) == sorted(FILE_STEMS)
    second = mnist.load(data_copy, cache_dir=cache_dir)
    for a, b, c in zip(first, second, mnist_arrays, strict=True):
        np.testing.assert_array_equal(a, c)
        np.testing.assert_array_equal(b, c)


def test_damaged_cache_is_rebuilt(data_copy, cache_dir):
    mnist.load(data_copy, cache_dir=cache_dir)
    (cache_file,) = cache_dir.glob("mnist-*.npz")
    cache_file.write_bytes(b"not an npz file")
    _, Y_train, _, _ = mnist.load(data_copy, cache_dir=cache_dir)
    assert Y_train[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    with np.load(cache_file, allow_pickle=False) as npz:
        assert npz["train-labels-idx1-ubyte"].shape == (60000,)


def test_unwritable_cache_is_skipped(data_copy, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    _, Y_train, _, _ = mnist.load(data_copy, cache_dir=blocker / "cache")
    assert Y_train[0] == 5


def test_no_network_when_files_are_present(data_copy, cache_dir, monkeypatch):
    def fail(*args, **kwargs):
        raise AssertionError("load() opened a URL although every file is present")

    monkeypatch.setattr(urllib.request, "urlopen", fail)
    mnist.load(data_copy, cache_dir=cache_dir, use_cache=False)


def test_missing_file_without_download_says_how_to_fix(data_copy, cache_dir):
    (data_copy / "train-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(mnist.MNISTDownloadError) as info:
        mnist.load(data_copy, download_missing=False, cache_dir=cache_dir)
    message = str(info.value)
    assert "train-labels" in message and "MNIST_DIR" in message


def test_missing_file_offline_lists_every_mirror(data_copy, cache_dir):
    """With the network closed (the test guard), each default mirror fails and is listed."""
    (data_copy / "t10k-images-idx3-ubyte.gz").unlink()
    with pytest.raises(mnist.MNISTDownloadError) as info:
        mnist.load(data_copy, cache_dir=cache_dir)
    message = str(info.value)
    for mirror in mnist.MIRRORS:
        assert mirror in message
    assert "by hand" in message
    assert not list(data_copy.glob("*.part"))


def test_cache_clean_up_removes_only_this_loaders_stale_caches(data_copy, cache_dir):
    cache_dir.mkdir(parents=True, exist_ok=True)
    foreign = cache_dir / "mnist-fashion.npz"
    np.savez(foreign, x=np.zeros(3))
    lookalike = cache_dir / f"mnist-{'0' * 32}.npz"  # our name pattern, not our content
    np.savez(lookalike, x=np.zeros(3))
    stale = cache_dir / f"mnist-{'1' * 32}.npz"  # an older cache of this loader
    np.savez(stale, assignment1_mnist_cache=np.array(1))
    mnist.load(data_copy, cache_dir=cache_dir)
    assert foreign.exists() and lookalike.exists() and not stale.exists()


def test_an_interrupted_cache_write_leaves_no_partial_file(data_copy, cache_dir, monkeypatch):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(mnist.np, "savez", interrupted)
    with pytest.raises(KeyboardInterrupt):
        mnist.load(data_copy, cache_dir=cache_dir)
    assert list(cache_dir.iterdir()) == []


def test_a_failing_cache_write_does_not_fail_the_load(data_copy, cache_dir, monkeypatch):
    def broken(*args, **kwargs):
        raise ValueError("disk said no")

    monkeypatch.setattr(mnist.np, "savez", broken)
    X_train, *_ = mnist.load(data_copy, cache_dir=cache_dir)
    assert X_train.shape == (60_000, 784) and list(cache_dir.iterdir()) == []


def test_cache_files_follow_the_umask(data_copy, cache_dir):
    import os

    old = os.umask(0o022)
    try:
        mnist.load(data_copy, cache_dir=cache_dir)
    finally:
        os.umask(old)
    (cache,) = cache_dir.glob("mnist-*.npz")
    assert cache.stat().st_mode & 0o777 == 0o644
