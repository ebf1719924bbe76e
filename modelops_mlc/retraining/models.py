"""MLC store tables of training jobs and retrain claims."""

from __future__ import annotations
