"""The command line's commands, each family in a module of its own; core/__main__.py assembles them."""
