import gzip
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import one_clear_line

from gradflow import data
from gradflow.cli import main
from gradflow.data import RAW_FILES


def _write_idx(directory, n_train=60, n_test=20, gz=True):
    """Tiny files in the real idx format: images magic 2051, labels magic 2049."""
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        labels = rng.integers(0, 10, size=n, dtype=np.uint8)
        blobs = {f"{prefix}-images-idx3-ubyte": np.array([2051, n, 28, 28], ">i4").tobytes() + images.tobytes(),
                 f"{prefix}-labels-idx1-ubyte": np.array([2049, n], ">i4").tobytes() + labels.tobytes()}
        for name, blob in blobs.items():
            if gz:
                with gzip.open(directory / f"{name}.gz", "wb") as f:
                    f.write(blob)
            else:
                (directory / name).write_bytes(blob)


@pytest.fixture
def no_debian(monkeypatch, tmp_path):
    monkeypatch.setattr(data, "DEBIAN_DIR", tmp_path / "no-debian")


def test_extracted_files_in_the_data_dir_come_first(tmp_path, monkeypatch):
    _write_idx(tmp_path / "root" / "FashionMNIST" / "raw", gz=False)
    _write_idx(tmp_path / "debian", n_train=90)
    monkeypatch.setattr(data, "DEBIAN_DIR", tmp_path / "debian")
    d = data.load_fashion_mnist(tmp_path / "root", val_size=10, download=False)
    assert "extracted" in d.source and len(d.train_y) + len(d.val_y) == 60


def test_gz_files_in_the_data_dir_are_extracted(tmp_path, no_debian):
    raw = tmp_path / "FashionMNIST" / "raw"
    _write_idx(raw)
    d = data.load_fashion_mnist(tmp_path, val_size=10, download=False)
    assert "gz" in d.source and all((raw / f).is_file() for f in RAW_FILES)


def test_debian_package_is_second(tmp_path, monkeypatch):
    _write_idx(tmp_path / "debian")
    monkeypatch.setattr(data, "DEBIAN_DIR", tmp_path / "debian")
    (tmp_path / "root").mkdir()
    d = data.load_fashion_mnist(tmp_path / "root", val_size=10, download=False)
    assert "dataset-fashion-mnist" in d.source
    assert (len(d.train_y), len(d.val_y), len(d.test_y)) == (50, 10, 20)


def test_download_is_third_and_the_error_names_all_three_ways(tmp_path, no_debian, monkeypatch):
    import torchvision.datasets

    calls = []

    class Offline:
        def __init__(self, root, train=True, download=False):
            calls.append(download)
            raise RuntimeError("no network")

    monkeypatch.setattr(torchvision.datasets, "FashionMNIST", Offline)
    with pytest.raises(FileNotFoundError) as err:
        data.load_fashion_mnist(tmp_path)
    message = str(err.value)
    assert calls == [True]  # it did try to download
    assert "FashionMNIST/raw" in message and "apt-get install dataset-fashion-mnist" in message
    assert "online" in message and "no network" in message


def test_normalisation_and_split_match_the_tutorial(tmp_path, monkeypatch):
    _write_idx(tmp_path / "debian")
    monkeypatch.setattr(data, "DEBIAN_DIR", tmp_path / "debian")
    (tmp_path / "root").mkdir()
    d = data.load_fashion_mnist(tmp_path / "root", val_size=10, download=False)
    from torchvision.datasets import FashionMNIST
    raw = FashionMNIST(str(tmp_path / "root"), train=True)
    train_idx, val_idx = torch.utils.data.random_split(range(60), [50, 10],
                                                       generator=torch.Generator().manual_seed(42))
    expected = (raw.data.float() / 255 - 0.5) / 0.5
    torch.testing.assert_close(d.train_x, expected[list(train_idx)].reshape(50, -1))
    torch.testing.assert_close(d.val_y, raw.targets[list(val_idx)])
    assert d.train_x.min() >= -1 and d.train_x.max() <= 1 and d.split_seed == 42


def test_a_data_root_that_does_not_exist_is_an_error_not_a_new_folder(tmp_path, monkeypatch):
    typo = tmp_path / "dtaa"
    with pytest.raises(ValueError, match=f"root {typo} does not exist; give an existing folder"):
        data.load_fashion_mnist(typo)
    monkeypatch.setenv("GRADFLOW_DATA", str(typo))
    with pytest.raises(ValueError, match=r"\$GRADFLOW_DATA .* does not exist"):
        data.prepare_fashion_mnist()
    assert not typo.exists()  # nothing created, nothing copied
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match="is a file, not a folder"):
        data.load_fashion_mnist(tmp_path / "file")


def test_real_fashion_mnist_when_installed():
    """CI installs the Debian package, so the real set must load: 50k / 10k / 10k."""
    d = data.load_fashion_mnist()
    assert (len(d.train_y), len(d.val_y), len(d.test_y)) == (50_000, 10_000, 10_000)
    assert d.train_x.shape == (50_000, 784) and d.name == "FashionMNIST"
    assert d.train_x.min().item() == -1.0 and d.train_x.max().item() == 1.0
    assert torch.bincount(d.test_y).tolist() == [1000] * 10


def test_user_tensors_and_datasets():
    x, y = torch.randn(120, 1, 28, 28), torch.randint(0, 3, (120,))
    d = data.from_tensors((x, y), (x[:10], y[:10]), name="mine")
    assert d.train_x.shape[1] == 784 and len(d.val_y) == 20 and len(d.train_y) == 100 and d.num_classes == 3
    ds = torch.utils.data.TensorDataset(x, y)
    d2 = data.from_datasets(ds, ds, val=ds)
    assert len(d2.train_y) == 120 and len(d2.val_y) == 120
    with pytest.raises(ValueError, match="test split is empty"):
        data.from_tensors((x, y), (x[:0], y[:0]))
    with pytest.raises(ValueError, match="train dataset is empty"):
        data.from_datasets(torch.utils.data.TensorDataset(x[:0], y[:0]), ds)
    with pytest.raises(ValueError, match="integer class indices"):
        data.from_tensors((x, y.float()), (x, y))


def test_synthetic_is_clearly_named_and_shaped_like_fashion_mnist():
    d = data.synthetic(n_train=100, n_val=20, n_test=20)
    assert d.name == "synthetic" and "FashionMNIST" not in d.source
    assert d.train_x.shape == (100, 784) and d.num_classes == 10
    with pytest.raises(ValueError, match="n_val must be at least 1"):
        data.synthetic(n_val=0)
    with pytest.raises(ValueError, match="unknown dataset 'mnist'"):
        data.load("mnist")


def test_the_default_root_works_from_any_folder(tmp_path, monkeypatch):
    """Run from a folder with no ./data (a sweep started in /tmp): the default root is created
    and the Debian copy found, instead of 'root data does not exist'."""
    _write_idx(tmp_path / "debian")
    monkeypatch.setattr(data, "DEBIAN_DIR", tmp_path / "debian")
    monkeypatch.delenv("GRADFLOW_DATA", raising=False)
    monkeypatch.chdir(tmp_path)
    d = data.load_fashion_mnist(val_size=10, download=False)
    assert "dataset-fashion-mnist" in d.source and (tmp_path / "data").is_dir()


# --------------------------------------------------------------------------- damaged files


def _damage(raw: Path, how: str) -> Path:
    if how == "cut gz":
        bad = raw / "train-images-idx3-ubyte.gz"
        bad.write_bytes(bad.read_bytes()[:1000])
    elif how == "garbage gz":
        bad = raw / "t10k-labels-idx1-ubyte.gz"
        bad.write_bytes(b"\x00" * 500)
    elif how == "garbage labels":
        bad = raw / "train-labels-idx1-ubyte"
        bad.write_bytes(np.random.default_rng(1).integers(0, 256, 1000, dtype=np.uint8).tobytes())
    elif how == "cut images":
        bad = raw / "train-images-idx3-ubyte"
        bad.write_bytes(bad.read_bytes()[:20_000])
    else:  # "short labels": a whole file of the wrong count
        bad = raw / "t10k-labels-idx1-ubyte"
        bad.write_bytes(np.array([2049, 19], ">i4").tobytes() + bytes(19))
    return bad


@pytest.mark.parametrize("how, problem", [
    ("cut gz", "does not decompress"), ("garbage gz", "does not decompress"),
    ("garbage labels", "not an idx labels file"), ("cut images", "cut off"), ("short labels", "19 labels for the 20"),
])
def test_a_damaged_dataset_file_is_named_by_data_and_train(tmp_path, no_debian, capsys, how, problem):
    root = tmp_path / "root"
    raw = root / "FashionMNIST" / "raw"
    _write_idx(raw, gz=how.endswith("gz"))
    bad = _damage(raw, how)
    with pytest.raises(data.DataFileError, match=problem):
        data.load_fashion_mnist(root, val_size=10, download=False)
    assert main(["data", "--data-dir", str(root)]) == 2  # never "FashionMNIST ready"
    one_clear_line(capsys, str(bad), problem, "delete it and run `gradflow data`")
    assert main(["train", "--act", "relu", "--preset", "smoke", "--dataset", "fashion_mnist", "--no-progress",
                 "--data-dir", str(root), "--out", str(tmp_path / "runs")]) == 2
    one_clear_line(capsys, str(bad), problem)
    assert not [p for p in raw.iterdir() if p.name.startswith(".")]  # no half-extracted file left
    bad.unlink()  # the advice works: delete it and run `gradflow data` (a good copy comes from the package)
    _write_idx(data.DEBIAN_DIR)
    assert main(["data", "--data-dir", str(root)]) == 0
    assert "FashionMNIST ready" in capsys.readouterr().out
