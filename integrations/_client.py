"""Check that a connector's client library is installed and recent enough."""

from __future__ import annotations

import re
from importlib import metadata

from integrations.base import ConnectorUnavailable


def version_tuple(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", version)[:3])


def require_package(connector: str, package: str, minimum: tuple[int, ...], imported: bool) -> None:
    """Raise ConnectorUnavailable unless `package` imported and is at least `minimum`.

    The message names the package, the version needed and the pip command to run.
    """
    needed = ".".join(map(str, minimum))
    try:
        installed = metadata.version(package)
    except metadata.PackageNotFoundError:
        installed = None

    if not imported or installed is None:
        raise ConnectorUnavailable(
            f"the {connector} connector needs {package} {needed} or newer: pip install '{package}>={needed}'"
        )
    if version_tuple(installed) < minimum:
        raise ConnectorUnavailable(
            f"the {connector} connector needs {package} {needed} or newer, found {installed}: "
            f"pip install --upgrade '{package}>={needed}'"
        )
