"""The command line's commands, one module per noun; dockless/cli.py gathers them."""
