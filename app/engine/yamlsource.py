"""Safe YAML loading that keeps yes/no and dates as strings and remembers line numbers."""

import re
from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.nodes import MappingNode, SequenceNode


class _Loader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2-style booleans, string dates, and duplicate-key errors."""

    lines: dict[int, Any]
    keep: list[Any]


# YAML 1.1 reads yes/no/on/off as booleans and 2026-01-01 as a date; clinicians write
# "yes" meaning the answer "yes". Only true/false are booleans here, dates stay strings.
_DROPPED_TAGS = {"tag:yaml.org,2002:bool", "tag:yaml.org,2002:timestamp"}
_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag not in _DROPPED_TAGS]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool",
    re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
    list("tTfF"),
)


def _construct_mapping(loader: _Loader, node: MappingNode) -> dict[Any, Any]:
    loader.flatten_mapping(node)
    result: dict[Any, Any] = {}
    lines: dict[Any, int] = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if key in result:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark
            )
        result[key] = loader.construct_object(value_node, deep=True)
        lines[key] = key_node.start_mark.line + 1
    loader.lines[id(result)] = lines
    loader.keep.append(result)
    return result


def _construct_sequence(loader: _Loader, node: SequenceNode) -> list[Any]:
    result = [loader.construct_object(child, deep=True) for child in node.value]
    loader.lines[id(result)] = [child.start_mark.line + 1 for child in node.value]
    loader.keep.append(result)
    return result


_Loader.add_constructor("tag:yaml.org,2002:map", _construct_mapping)
_Loader.add_constructor("tag:yaml.org,2002:seq", _construct_sequence)


@dataclass(slots=True)
class Source:
    """A parsed YAML file and the line of every key and list element in it."""

    name: str
    data: Any
    lines: dict[int, Any] = field(default_factory=dict)
    keep: list[Any] = field(default_factory=list)

    def line_of(self, path: tuple[int | str, ...]) -> int | None:
        """Return the line of the deepest key or element of ``path`` found, if any."""
        node, line = self.data, None
        for step in path:
            positions = self.lines.get(id(node))
            if isinstance(node, dict) and step in node:
                line = positions.get(step, line) if positions else line
                node = node[step]
            elif isinstance(node, list) and isinstance(step, int) and 0 <= step < len(node):
                line = positions[step] if positions else line
                node = node[step]
            else:
                break
        return line

    def where(self, path: tuple[int | str, ...]) -> str:
        """Return ``file:line`` for a path (``file`` alone when the line is not known)."""
        line = self.line_of(path)
        return f"{self.name}:{line}" if line else self.name


def parse_yaml(text: str, name: str) -> Source:
    """Parse one YAML document.

    Raises:
        yaml.YAMLError: on a syntax error or a duplicate key (with its position).
    """
    loader = _Loader(text)
    loader.lines = {}
    loader.keep = []
    try:
        data = loader.get_single_data()
    finally:
        loader.dispose()
    return Source(name=name, data=data, lines=loader.lines, keep=loader.keep)


def plain_source(name: str, data: Any) -> Source:
    """Wrap already-parsed data (a stored document) as a source without line numbers."""
    return Source(name=name, data=data)
