"""`vethtrace schema`: the JSON schema of the recording format."""
from __future__ import annotations

import json

from ..tracer.schema import SCHEMA

NAME = "schema"


def add_parser(sub) -> None:
    sub.add_parser("schema", help="print the JSON schema of the recording format")


def run(args) -> int:
    print(json.dumps(SCHEMA, indent=2))
    return 0
