"""Read the operator image's Dockerfile (deploy/docker/Dockerfile) without a Docker engine: a parser for its
logical instructions (continuations joined, comments dropped, exec or shell form), its build stages, the ARGs a
FROM line may use, and the top-level paths its .dockerignore admits into the build context.

Used by tests/unit/test_operator_image.py (the instructions) and tests/kubernetes/test_operator_image_live.py
(the wheel built from what the context admits). Reads files only.
"""

from __future__ import annotations

import fnmatch
import json
import re
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "DOCKERFILE",
    "DOCKERIGNORE",
    "FLINK_PACKAGES",
    "REPO",
    "Instruction",
    "admitted_paths",
    "expand",
    "global_args",
    "parse",
    "stages",
]

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "deploy" / "docker" / "Dockerfile"
DOCKERIGNORE = REPO / "deploy" / "docker" / "Dockerfile.dockerignore"
FLINK_PACKAGES = re.compile(r"apache[-_]flink|pyflink|flinkops\[[^\]]*flink", re.IGNORECASE)


@dataclass(frozen=True)
class Instruction:
    keyword: str  # upper case
    args: str  # the rest of the logical line, continuations joined
    line: int  # where it starts, for failure messages

    def exec_form(self) -> list[str] | None:
        """The JSON-array ("exec") form's arguments, or None for the shell form."""
        try:
            parsed = json.loads(self.args)
        except ValueError:
            return None
        return parsed if isinstance(parsed, list) and all(isinstance(a, str) for a in parsed) else None

    def flags(self) -> dict[str, str]:
        """Leading ``--name=value`` options (``COPY --from=build``)."""
        return dict(re.findall(r"--([a-z-]+)=(\S+)", self.args.split(" ", 1)[0] if self.args else ""))


def parse(text: str) -> list[Instruction]:
    """Logical instructions: ``\\`` continuations joined, comment lines (also inside a continuation) dropped."""
    instructions: list[Instruction] = []
    pending: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), 1):
        stripped = raw.strip()
        if stripped.startswith("#") or (not stripped and not pending):
            continue
        if not pending:
            start = number
        continued = stripped.endswith("\\")
        pending.append(stripped[:-1].strip() if continued else stripped)
        if continued:
            continue
        keyword, _, args = " ".join(part for part in pending if part).partition(" ")
        instructions.append(Instruction(keyword.upper(), args.strip(), start))
        pending = []
    assert not pending, "the Dockerfile ends inside a line continuation"
    return instructions


def stages(instructions: list[Instruction]) -> list[list[Instruction]]:
    """Instructions per build stage, each starting with its FROM."""
    result: list[list[Instruction]] = []
    for instruction in instructions:
        if instruction.keyword == "FROM":
            result.append([])
        if result:
            result[-1].append(instruction)
    return result


def global_args(instructions: list[Instruction]) -> dict[str, str]:
    """ARGs declared before the first FROM (the only ones a FROM line may use), with their defaults."""
    found: dict[str, str] = {}
    for instruction in instructions:
        if instruction.keyword == "FROM":
            break
        if instruction.keyword == "ARG":
            name, _, default = instruction.args.partition("=")
            found[name.strip()] = default.strip().strip('"')
    return found


def expand(text: str, variables: dict[str, str]) -> str:
    return re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: variables.get(m.group(1) or m.group(2), m.group(0)), text)


def admitted_paths() -> set[str]:
    """Top-level paths the .dockerignore lets into the build context (its rules are "exclude all, re-admit")."""
    rules = [r.strip() for r in DOCKERIGNORE.read_text().splitlines() if r.strip() and not r.startswith("#")]
    assert rules[0] == "*", "the context should start from nothing and admit what the build needs"
    kept: set[str] = set()
    for entry in REPO.iterdir():
        keep = False
        for rule in rules:
            negated = rule.startswith("!")
            pattern = rule.lstrip("!").rstrip("/")
            if fnmatch.fnmatchcase(entry.name, pattern):
                keep = negated
        if keep:
            kept.add(entry.name)
    return kept
