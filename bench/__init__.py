"""Benchmarks for fedsph: each one measures fedsph and a bare baseline in the same run.

Run with `make bench` (or `python -m bench --quick` for a smoke run). See bench/README.md.
"""
