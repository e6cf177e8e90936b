"""Write the service's OpenAPI schema: ``python -m serving.openapi [docs/openapi.json]``.

``tests/serving/test_api_ops.py`` fails when ``docs/openapi.json`` is out of date.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

DEFAULT_PATH = Path("docs/openapi.json")


def openapi_schema() -> dict[str, Any]:
    from serving.app import create_app
    from serving.settings import Settings

    # keys and store are never used to build the schema; the app is not started
    return create_app(Settings(api_keys=["schema-only"], model=None)).openapi()


def render() -> str:
    return json.dumps(openapi_schema(), indent=2, sort_keys=True) + "\n"


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    path = Path(args[0]) if args else DEFAULT_PATH
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render())
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
