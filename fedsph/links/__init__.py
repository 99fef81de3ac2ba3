"""Solidarity links between projects (twinned with, mentors, …): proposed, answered and
withdrawn across servers, carried in both actors' documents; and their CLI commands.

May import `fedsph.projects`, `fedsph.federation`, `fedsph.core` and `fedsph.models`.
"""
