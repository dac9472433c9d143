"""``gradflow data``: put FashionMNIST's four files in the data folder."""
from __future__ import annotations


def add_arguments(dp) -> None:
    dp.add_argument("--data-dir", metavar="DIR",
                    help="an existing folder; the files go in DIR/FashionMNIST/raw/ (default: $GRADFLOW_DATA or "
                         "./data, created if missing)")


def run(args) -> int:
    from ..paths import check_data_dir
    if args.data_dir is not None:
        check_data_dir(args.data_dir)  # before importing torch: a typo answers at once
    from ..data import data_root, prepare_fashion_mnist
    root = data_root(args.data_dir)
    print(f"FashionMNIST ready in {root}/FashionMNIST/raw (from {prepare_fashion_mnist(root)})")
    return 0
