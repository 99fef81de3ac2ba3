"""Operating a node from the command line: serve, migrate, the worker, users, blocks, backups.

The top layer beside `app` and `cli`: it may import every other package.
"""
