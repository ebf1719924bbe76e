"""MLC store table of the files a new-data watcher has fired the monitor for."""

from __future__ import annotations
