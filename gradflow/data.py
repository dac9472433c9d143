"""Datasets as resident tensors: loaded once, normalised once, batched by index.

FashionMNIST is looked for, in order, in ``<root>/FashionMNIST/raw/`` (gz or extracted), in the
Debian package ``dataset-fashion-mnist`` (``/usr/share/datasets/fashion-mnist/``), and through
torchvision's download when the machine is online. Users can pass their own tensors or any
``torch.utils.data.Dataset``; a small synthetic set of the same shape serves tests and smoke runs.
"""
from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import zlib
from dataclasses import dataclass
from pathlib import Path

import torch

from . import atomic
from .paths import check_data_dir

DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")
RAW_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
             "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
TRAIN_SIZE, VAL_SIZE = 50_000, 10_000
SPLIT_SEED = 42  # the tutorial's random_split generator seed
FASHION_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                   "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")


def default_data_root() -> Path:
    return Path(os.environ.get("GRADFLOW_DATA", "data"))


def data_root(root=None) -> Path:
    """The dataset root to use. One the user named (argument or $GRADFLOW_DATA) must exist: a typo is
    an error, not a new folder. Only the default ``./data`` is created when missing."""
    if root is not None:
        return check_data_dir(root, flag="root")
    if os.environ.get("GRADFLOW_DATA"):
        return check_data_dir(os.environ["GRADFLOW_DATA"], flag="$GRADFLOW_DATA")
    default = Path("data")
    default.mkdir(exist_ok=True)  # created here, so the callers that re-check the root find it
    return default


@dataclass
class DataSplits:
    """Train/validation/test tensors: x float (N, features) normalised, y int64 (N,)."""
    name: str
    train_x: torch.Tensor
    train_y: torch.Tensor
    val_x: torch.Tensor
    val_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    num_classes: int
    split_seed: int | None = None
    source: str = ""

    def __post_init__(self):
        for part in ("train", "val", "test"):
            x, y = getattr(self, f"{part}_x"), getattr(self, f"{part}_y")
            if x.shape[0] == 0:
                raise ValueError(f"dataset {self.name!r}: the {part} split is empty; every split needs examples")
            if x.shape[0] != y.shape[0]:
                raise ValueError(f"dataset {self.name!r}: {part} has {x.shape[0]} inputs but {y.shape[0]} labels")

    @property
    def input_size(self) -> int:
        return self.train_x[0].numel()

    def to(self, device) -> DataSplits:
        moved = {k: getattr(self, k).to(device) for k in
                 ("train_x", "train_y", "val_x", "val_y", "test_x", "test_y")}
        return DataSplits(self.name, **moved, num_classes=self.num_classes,
                          split_seed=self.split_seed, source=self.source)

    def fingerprint(self) -> str:
        """A short hash of the tensors' shapes and sums: tells user datasets apart in run names."""
        parts = [self.name, str(self.num_classes)]
        for k in ("train_x", "train_y", "val_x", "val_y", "test_x", "test_y"):
            t = getattr(self, k)
            parts += [str(tuple(t.shape)), f"{t.double().sum().item():.6e}", f"{t.double().abs().sum().item():.6e}"]
        return hashlib.sha256("|".join(parts).encode()).hexdigest()[:8]

    def describe(self) -> dict:
        return {"name": self.name, "source": self.source, "split_seed": self.split_seed,
                "sizes": {"train": len(self.train_y), "val": len(self.val_y), "test": len(self.test_y)},
                "num_classes": self.num_classes}


def normalise_pixels(images_uint8: torch.Tensor) -> torch.Tensor:
    """uint8 images (N, 28, 28) -> float (N, 784) in [-1, 1], like ToTensor + Normalize(0.5, 0.5)."""
    x = images_uint8.reshape(images_uint8.shape[0], -1).to(torch.float32).div_(255.0)
    return x.sub_(0.5).div_(0.5)


def split_train_val(n: int, split_seed: int, val_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The same indices as ``random_split(range(n), [n - val_size, val_size], Generator().manual_seed(seed))``."""
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(split_seed))
    return perm[: n - val_size], perm[n - val_size:]


# --------------------------------------------------------------------------- FashionMNIST


def _raw_dir(root: Path) -> Path:
    return Path(root) / "FashionMNIST" / "raw"


def _has_extracted(raw: Path) -> bool:
    return all((raw / f).is_file() for f in RAW_FILES)


class DataFileError(ValueError):
    """A dataset file that is cut off or not what its name says; the message names it and the fix."""


def _bad_file(path: Path, problem: str) -> DataFileError:
    fix = ("the Debian package's copy is damaged: reinstall it (apt-get install --reinstall dataset-fashion-mnist)"
           if Path(path).parent == DEBIAN_DIR else "delete it and run `gradflow data` to put a good copy there")
    return DataFileError(f"{path} is damaged ({problem}); {fix}")


# idx format (what torchvision reads): a big-endian magic 0x00000800 + number of dimensions, one
# 4-byte size per dimension, then the uint8 values
IDX_SHAPES = {"images": (3, (28, 28)), "labels": (1, ())}


def idx_problem(path: Path, name: str | None = None) -> tuple[int, str | None]:
    """(examples, None) for a whole extracted FashionMNIST file, else (0, what is wrong): its header must be
    the one its name calls for and the file must hold exactly the bytes the header announces (a cut-off copy
    is caught here, by name, not as a reshape error deep in torchvision)."""
    path = Path(path)
    kind = "images" if "images" in (name or path.name) else "labels"
    ndim, tail = IDX_SHAPES[kind]
    size = path.stat().st_size
    with open(path, "rb") as f:
        header = f.read(4 + 4 * ndim)
    if len(header) < 4 + 4 * ndim:
        return 0, f"{size} bytes, shorter than an idx header"
    magic = int.from_bytes(header[:4], "big")
    if magic != 0x800 + ndim:
        return 0, f"not an idx {kind} file: magic number {magic}, expected {0x800 + ndim}"
    dims = tuple(int.from_bytes(header[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    if dims[1:] != tail:
        return 0, f"{kind} of shape {dims[1:]}, expected {tail}"
    expected = len(header) + dims[0] * (28 * 28 if kind == "images" else 1)
    if size != expected:
        return 0, (f"{size} bytes where its header announces {expected}: "
                   f"{'cut off' if size < expected else 'extra bytes at the end'}")
    return dims[0], None


def check_idx(path: Path) -> int:
    """The number of examples in one extracted file; DataFileError naming it when it is not whole."""
    count, problem = idx_problem(path)
    if problem:
        raise _bad_file(path, problem)
    return count


def _check_extracted(raw: Path) -> None:
    """Every extracted file whole, and each split's images and labels of the same count."""
    for split in ("train", "t10k"):
        n_images = check_idx(raw / f"{split}-images-idx3-ubyte")
        n_labels = check_idx(raw / f"{split}-labels-idx1-ubyte")
        if n_images != n_labels:
            raise _bad_file(raw / f"{split}-labels-idx1-ubyte",
                            f"{n_labels} labels for the {n_images} images of {split}-images-idx3-ubyte")


def _extract_from(src_dir: Path, raw: Path) -> bool:
    """Decompress the four ``.gz`` files of ``src_dir`` into ``raw``; False if any is missing. A file that
    does not decompress, or decompresses to no valid idx file, stops here naming the ``.gz``."""
    if not all((src_dir / f"{f}.gz").is_file() for f in RAW_FILES):
        return False
    raw.mkdir(parents=True, exist_ok=True)
    for f in RAW_FILES:
        if (raw / f).is_file():
            continue
        gz = src_dir / f"{f}.gz"
        try:
            with atomic.atomic_path(raw / f) as tmp:  # atomic: a half-written file never has the final name
                with gzip.open(gz, "rb") as zin, open(tmp, "wb") as out:
                    shutil.copyfileobj(zin, out)
                _, problem = idx_problem(tmp, name=f)  # checked before it takes the final name
                if problem:
                    raise _bad_file(gz, f"it decompresses to no valid {f}: {problem}")
        except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
            raise _bad_file(gz, f"it does not decompress: {exc}") from None
    return True


def prepare_fashion_mnist(root: Path | str | None = None, download: bool = True) -> str:
    """Make ``<root>/FashionMNIST/raw/`` hold the four extracted files; return where they came from."""
    root = data_root(root)
    raw = _raw_dir(root)
    source = None
    if _has_extracted(raw):
        source = f"{raw} (extracted files)"
    elif _extract_from(raw, raw):
        source = f"{raw} (gz files)"
    elif _extract_from(DEBIAN_DIR, raw):
        source = f"{DEBIAN_DIR} (Debian package dataset-fashion-mnist)"
    if source is not None:
        _check_extracted(raw)  # what is reported ready is read and whole
        return source
    problems = []
    if download:
        try:
            from torchvision.datasets import FashionMNIST
            FashionMNIST(str(root), train=True, download=True)
            FashionMNIST(str(root), train=False, download=True)
            if _has_extracted(raw):
                _check_extracted(raw)
                return "torchvision download"
        except DataFileError:
            raise
        except Exception as exc:  # offline, proxy, ...: reported below with the other ways
            problems.append(f"download failed: {type(exc).__name__}: {exc}")
    raise FileNotFoundError(
        "FashionMNIST not found. Provide it one of three ways: "
        f"(1) put the four *-ubyte files (gz or extracted) in {raw}/; "
        f"(2) install the Debian package (apt-get install dataset-fashion-mnist) which puts them in {DEBIAN_DIR}/; "
        "(3) be online so torchvision can download them."
        + (" " + "; ".join(problems) if problems else ""))


def load_fashion_mnist(root: Path | str | None = None, split_seed: int = SPLIT_SEED,
                       val_size: int = VAL_SIZE, download: bool = True) -> DataSplits:
    """FashionMNIST as resident tensors: 50,000 train / 10,000 validation (seeded split) / 10,000 test."""
    from torchvision.datasets import FashionMNIST

    root = data_root(root)
    source = prepare_fashion_mnist(root, download=download)  # checks every file it hands over
    try:
        train = FashionMNIST(str(root), train=True, download=False)
        test = FashionMNIST(str(root), train=False, download=False)
    except (AssertionError, RuntimeError, ValueError, TypeError, OSError) as exc:  # changed since the check
        raise DataFileError(f"FashionMNIST in {_raw_dir(root)} does not read ({type(exc).__name__}: {exc}); "
                            "delete the folder's files and run `gradflow data`") from None
    x_all, y_all = normalise_pixels(train.data), train.targets.long()
    tr, va = split_train_val(len(y_all), split_seed, val_size)
    return DataSplits("FashionMNIST", x_all[tr], y_all[tr], x_all[va], y_all[va],
                      normalise_pixels(test.data), test.targets.long(), num_classes=10,
                      split_seed=split_seed, source=source)


# --------------------------------------------------------------------------- user data


def from_tensors(train: tuple, test: tuple, val: tuple | None = None, name: str = "custom",
                 num_classes: int | None = None, split_seed: int = SPLIT_SEED,
                 val_fraction: float = 1 / 6) -> DataSplits:
    """User tensors ``(x, y)`` per split; without ``val`` a seeded fraction of train is held out.

    Inputs are flattened to (N, features) and used as given: normalise them yourself.
    """
    def clean(pair, part):
        if not isinstance(pair, (tuple, list)) or len(pair) != 2:
            raise ValueError(f"{part} must be a pair (x, y) of tensors")
        x, y = torch.as_tensor(pair[0]), torch.as_tensor(pair[1])
        if x.shape[0] == 0:
            raise ValueError(f"dataset {name!r}: the {part} split is empty; every split needs examples")
        if y.dtype.is_floating_point:
            raise ValueError(f"{part} labels must be integer class indices, got dtype {y.dtype}")
        return x.reshape(x.shape[0], -1).float(), y.long().reshape(-1)

    tx, ty = clean(train, "train")
    ex, ey = clean(test, "test")
    if val is None:
        if not 0 < val_fraction < 1:
            raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction}")
        n_val = max(1, int(round(len(ty) * val_fraction)))
        if n_val >= len(ty):
            raise ValueError(f"dataset {name!r}: {len(ty)} training examples are too few to hold out a validation set")
        tr, va = split_train_val(len(ty), split_seed, n_val)
        vx, vy, tx, ty = tx[va], ty[va], tx[tr], ty[tr]
    else:
        vx, vy = clean(val, "val")
    classes = num_classes or int(max(ty.max(), vy.max(), ey.max())) + 1
    return DataSplits(name, tx, ty, vx, vy, ex, ey, num_classes=classes,
                      split_seed=split_seed if val is None else None, source="user tensors")


def from_datasets(train, test, val=None, name: str = "custom", **kwargs) -> DataSplits:
    """Any ``torch.utils.data.Dataset`` of ``(x, y)`` pairs, read once into tensors."""
    def read(ds, part):
        if ds is None:
            return None
        if len(ds) == 0:
            raise ValueError(f"dataset {name!r}: the {part} dataset is empty; every split needs examples")
        xs, ys = zip(*(ds[i] for i in range(len(ds))))
        return torch.stack([torch.as_tensor(x) for x in xs]), torch.as_tensor(ys)

    return from_tensors(read(train, "train"), read(test, "test"), read(val, "val"), name=name, **kwargs)


def synthetic(n_train: int = 2000, n_val: int = 500, n_test: int = 500, num_classes: int = 10,
              input_size: int = 784, seed: int = 0, noise: float = 0.8) -> DataSplits:
    """A small learnable stand-in of FashionMNIST's shape: class prototypes plus noise.

    Named 'synthetic' everywhere so it can never be mistaken for FashionMNIST in a report.
    """
    for label, n in (("n_train", n_train), ("n_val", n_val), ("n_test", n_test)):
        if n < 1:
            raise ValueError(f"synthetic dataset: {label} must be at least 1, got {n}")
    g = torch.Generator().manual_seed(seed)
    prototypes = torch.rand(num_classes, input_size, generator=g) * 2 - 1  # (classes, features) in [-1, 1]

    def make(n):
        y = torch.randint(0, num_classes, (n,), generator=g)
        x = prototypes[y] + noise * torch.randn(n, input_size, generator=g)
        return x.clamp_(-1, 1), y

    (tx, ty), (vx, vy), (ex, ey) = make(n_train), make(n_val), make(n_test)
    return DataSplits("synthetic", tx, ty, vx, vy, ex, ey, num_classes=num_classes,
                      split_seed=seed, source=f"gradflow.data.synthetic(seed={seed})")


def load(name: str = "fashion_mnist", root=None, **kwargs) -> DataSplits:
    """Load a dataset by name: 'fashion_mnist' or 'synthetic'."""
    key = name.lower().replace("-", "_")
    if key in ("fashion_mnist", "fashionmnist"):
        return load_fashion_mnist(root, **kwargs)
    if key == "synthetic":
        return synthetic(**kwargs)
    raise ValueError(f"unknown dataset {name!r}; accepted: fashion_mnist, synthetic "
                     "(or pass your own with gradflow.data.from_tensors / from_datasets)")
