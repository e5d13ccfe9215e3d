"""Version of the lab-db distribution (read by hatchling and at run time)."""

__version__ = "1.0.0"
