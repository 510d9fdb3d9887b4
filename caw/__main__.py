"""``python -m caw``: the same command as the ``caw`` script."""

from caw.cli import main

if __name__ == "__main__":
    main()
