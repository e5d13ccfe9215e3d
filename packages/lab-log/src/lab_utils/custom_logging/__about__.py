"""Version of the lab-log distribution (read by hatchling and at run time)."""

__version__ = "1.0.0"
