"""What the app is made of, for the Settings page's About section: versions, the database, data sources."""

from __future__ import annotations

import platform
from importlib import metadata
from pathlib import Path

from core.market import SNAPSHOT_DIR

APP_VERSION = "0.12.0"
"""The app's version (no releases yet: it follows the issue the code last answered)."""

LIBRARIES = ("streamlit", "anthropic", "pydantic", "pandas", "numpy", "plotly", "sqlite-utils", "yfinance")
"""The main libraries, as pinned in requirements.txt."""

_LICENCES = (("Apache License", "Apache-2.0"), ("MIT License", "MIT"), ("Permission is hereby granted", "MIT"),
             ("BSD", "BSD"))


def library_versions(names: tuple[str, ...] = LIBRARIES) -> dict[str, str]:
    """{library: installed version} ('not installed' when missing), Python included."""
    versions = {"python": platform.python_version()}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def licence_name(text: str) -> str:
    """The licence a LICENSE file's text is (Apache-2.0, MIT, BSD), or 'see the file'."""
    return next((name for marker, name in _LICENCES if marker in text[:2000]), "see the file")


def data_sources(snapshot_dir: Path = SNAPSHOT_DIR) -> list[dict]:
    """Where market data comes from: each package the shipped snapshot was cut from, with its licence,
    then Yahoo Finance (fetched on demand through yfinance). data/README.md has the file-by-file detail."""
    sources = []
    for path in sorted(Path(snapshot_dir).glob("*.LICENSE")):
        package, _, version = path.stem.rpartition("-")
        sources.append({"source": f"{package} {version} (shipped snapshot)", "licence": licence_name(path.read_text()),
                        "file": "/".join(path.parts[-3:])})
    sources.append({"source": "Yahoo Finance through yfinance (downloaded on demand, cached in data/cache)",
                    "licence": "Yahoo's terms of use: personal use; yfinance itself is Apache-2.0", "file": ""})
    return sources
