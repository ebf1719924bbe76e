"""The ``mlc`` command line: Typer command groups over the SDK, no business logic here."""
