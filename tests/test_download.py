"""The fallback download, against an HTTP server on 127.0.0.1 (never the internet)."""

from __future__ import annotations

import gzip
import hashlib
import shutil

import numpy as np
import pytest
from helpers import closed_port_url, idx_bytes, serve_directory, write_gz

import mnist

STEM = "tiny-images-idx3-ubyte"


@pytest.fixture
def tiny(tmp_path):
    """A served folder with one small generated IDX file; returns (folder, content, sha)."""
    served = tmp_path / "served"
    served.mkdir()
    content = idx_bytes(np.arange(3 * 28 * 28, dtype=np.uint32).astype(np.uint8).reshape(3, 28, 28))
    write_gz(served / f"{STEM}.gz", content)
    return served, content, hashlib.sha256(content).hexdigest()


def test_download_succeeds_and_verifies(tiny, tmp_path, capsys):
    served, content, sha = tiny
    dest = tmp_path / "dest"
    with serve_directory(served) as url:
        path = mnist.download(STEM, dest, [url], sha256=sha)
    assert path == dest / f"{STEM}.gz"
    assert gzip.decompress(path.read_bytes()) == content
    assert sorted(p.name for p in dest.iterdir()) == [f"{STEM}.gz"]
    assert f"{STEM}.gz" in capsys.readouterr().err  # the progress display


@pytest.mark.parametrize("first", ["closed port", "404"])
def test_first_mirror_down_second_used(tiny, tmp_path, first):
    served, content, sha = tiny
    dest = tmp_path / "dest"
    with serve_directory(served) as url:
        bad = closed_port_url() if first == "closed port" else url + "missing/"
        path = mnist.download(STEM, dest, [bad, url], sha256=sha, progress=False)
    assert gzip.decompress(path.read_bytes()) == content


def test_wrong_checksum_is_refused_and_nothing_left(tiny, tmp_path):
    served, _, _ = tiny
    dest = tmp_path / "dest"
    with serve_directory(served) as url, pytest.raises(mnist.MNISTDownloadError) as info:
        mnist.download(STEM, dest, [url], sha256="0" * 64, progress=False)
    assert "checksum mismatch" in str(info.value)
    assert not dest.exists()  # the folder this call created is not left behind, empty


def test_all_mirrors_down_gives_one_clear_error(tmp_path):
    mirrors = [closed_port_url(), closed_port_url()]
    dest = tmp_path / "dest"
    with pytest.raises(mnist.MNISTDownloadError) as info:
        mnist.download(STEM, dest, mirrors, sha256="0" * 64, timeout=5, progress=False)
    message = str(info.value)
    for mirror in mirrors:
        assert mirror.rstrip("/") + f"/{STEM}.gz" in message
    assert "by hand" in message and "MNIST_DIR" in message
    assert not dest.exists()


@pytest.mark.slow
def test_load_downloads_missing_canonical_files(tmp_path, mnist_arrays):
    """End to end: an empty data folder is filled from a (local) mirror and verified."""
    served = tmp_path / "served"
    served.mkdir()
    for stem in mnist.FILES:
        shutil.copyfile(mnist.default_data_dir() / f"{stem}.gz", served / f"{stem}.gz")
    empty = tmp_path / "data"
    with serve_directory(served) as url:
        arrays = mnist.load(empty, mirrors=[closed_port_url(), url])
    for got, want in zip(arrays, mnist_arrays, strict=True):
        np.testing.assert_array_equal(got, want)
    assert sorted(p.name for p in empty.iterdir()) == sorted(f"{s}.gz" for s in mnist.FILES)


@pytest.mark.slow
def test_load_refuses_an_altered_download(tmp_path):
    served = tmp_path / "served"
    served.mkdir()
    for stem in mnist.FILES:
        shutil.copyfile(mnist.default_data_dir() / f"{stem}.gz", served / f"{stem}.gz")
    labels = served / "train-labels-idx1-ubyte.gz"
    content = bytearray(gzip.decompress(labels.read_bytes()))
    content[8] = (content[8] + 1) % 10
    write_gz(labels, bytes(content))
    data = tmp_path / "data"
    with serve_directory(served) as url, pytest.raises(mnist.MNISTDownloadError,
                                                        match="train-labels"):
        mnist.load(data, mirrors=[url])
    assert not (data / "train-labels-idx1-ubyte.gz").exists()
    assert not list(data.glob(".*.part"))


def test_a_mirror_that_trickles_hits_the_deadline(tmp_path):
    import http.server
    import threading
    import time as _time

    class Trickle(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Length", "1000000")
            self.end_headers()
            for _ in range(40):  # bounded: at most ~2 s, one byte every 0.05 s
                try:
                    self.wfile.write(b"x")
                    self.wfile.flush()
                except OSError:
                    return
                _time.sleep(0.05)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Trickle)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                     daemon=True).start()
    dest = tmp_path / "dest"
    dest.mkdir()
    try:
        start = _time.monotonic()
        with pytest.raises(mnist.MNISTDownloadError, match=r"longer than 0\.3 s"):
            mnist.download(STEM, dest, f"http://127.0.0.1:{server.server_address[1]}/",
                           sha256="0" * 64, timeout=5, deadline=0.3, progress=False)
        assert _time.monotonic() - start < 1.5
    finally:
        server.shutdown()
        server.server_close()
    assert list(dest.iterdir()) == []


def test_bad_download_arguments_are_named(tmp_path):
    with pytest.raises(ValueError, match="unknown MNIST file 'train-imgs'"):
        mnist.download("train-imgs", tmp_path, [closed_port_url()])
    a_file = tmp_path / "file"
    a_file.write_text("mine")
    with pytest.raises(NotADirectoryError, match="is a file"):
        mnist.load(a_file)
    assert a_file.read_text() == "mine"
