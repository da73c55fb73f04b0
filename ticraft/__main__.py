"""``python -m ticraft`` runs the CLI (for machines where the console script is not installed)."""

from ticraft.cli.main import main

if __name__ == "__main__":
    main()
