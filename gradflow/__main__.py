"""``python -m gradflow ...``: the same command line as the ``gradflow`` script (for environments
where the script is not on PATH, or to pick the interpreter explicitly)."""
import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
