"""Resolve a notebook's relative paths against the project root.

Papermill and ``jupyter`` started in the repository root see ``data/history``; Jupyter
opened on ``notebooks/`` starts its kernel there. Relative paths fall back to the project
root (the nearest folder up holding ``dvc.yaml``) so both work.
"""

from __future__ import annotations

from pathlib import Path


def project_root(start: Path | None = None) -> Path | None:
    """The nearest folder from ``start`` (default: the working directory) up with ``dvc.yaml``."""
    here = (start or Path.cwd()).resolve()
    return next((p for p in (here, *here.parents) if (p / "dvc.yaml").is_file()), None)


def project_path(path: str | Path, start: Path | None = None) -> Path:
    """``path`` itself when absolute or present from the working directory, else under the
    project root (when there is one)."""
    path = Path(path)
    if path.is_absolute() or (start or Path.cwd()).joinpath(path).exists():
        return (start or Path.cwd()).joinpath(path)
    root = project_root(start)
    return root / path if root is not None else (start or Path.cwd()).joinpath(path)
