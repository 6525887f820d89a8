"""The one place the package version lives (read by hatch and written into journals)."""

__version__ = "0.1.0"
