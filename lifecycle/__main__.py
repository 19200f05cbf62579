import sys

from lifecycle.cli import main

if __name__ == "__main__":  # not when a worker process (lifecycle.drift.offload) starts
    sys.exit(main())
