"""Shared test helpers: import them from here (``from helpers.models import make_full``), never from conftest."""
