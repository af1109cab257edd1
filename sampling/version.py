"""The installed toolkit's version, recorded with every draw, score and report."""
from importlib import metadata


def software_version() -> str:
    try:
        return metadata.version("tpa")
    except metadata.PackageNotFoundError:  # running from a source tree that is not installed
        return "0.0.0+source"
