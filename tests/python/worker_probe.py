"""Imports nothing but sys: lets a test see what a worker loaded on its own."""

import sys


def loaded_modules() -> list:
    return sorted(sys.modules)
