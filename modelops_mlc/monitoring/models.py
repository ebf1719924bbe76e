"""MLC store tables of monitor runs and their per-feature results."""

from __future__ import annotations
