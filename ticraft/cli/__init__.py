"""The `ticraft` command line. Modules here import only typer/rich at the top; heavy work is imported
inside command bodies so that `ticraft --help` starts instantly."""
