"""Tests of the HTML pages, in a real browser where it matters."""
