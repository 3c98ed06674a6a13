"""``python -m generators`` is ``qrmi-gen``."""

from generators.cli import main

if __name__ == "__main__":
    main()
