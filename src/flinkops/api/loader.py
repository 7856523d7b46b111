"""Turn FlinkDeployment / FlinkSessionJob YAML into validated models, or explain everything wrong with it.

Called by the CLI (``apply``, ``plan``, ``lint``; it reads the files and passes the text here), by stores that
re-read persisted resources (``load_object``) and by ``-o json`` printing (``dump_resource``).

Invariants:

* All or nothing: ``load_documents`` returns every resource of the text or raises ``InvalidInput`` once with
  every problem of every document; it never returns a partial result.
* Problems speak YAML, not Python: paths use the camelCase field names a user wrote (``spec.job.parallelism``,
  ``spec.job.args[2]``, ``spec.flinkConfiguration["state.backend.type"]``) and messages never mention the
  validation library.
* Bounded: input is refused, as a problem and never an exception, before it can cost more than a bounded
  amount of time and memory: at most ``MAX_INPUT_BYTES`` of text, values nested at most ``MAX_DEPTH`` deep, at
  most ``MAX_VALUES`` values per document once aliases are expanded, at most ``MAX_DOCUMENTS`` documents,
  integers of at most ``MAX_INTEGER_DIGITS`` digits. ``decode_input`` turns bytes into text the same way
  (UTF-8, or UTF-16/32 with a byte order mark).
* Pure: no file, network or clock access.
"""

from __future__ import annotations

import difflib
import enum
import re
import types
import typing
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeAlias

import yaml
from pydantic import BaseModel, ValidationError
from pydantic.alias_generators import to_camel

from flinkops.api.models import API_VERSION, FlinkDeployment, FlinkSessionJob
from flinkops.errors import InvalidInput, Problem

__all__ = [
    "DOCUMENT_PATH",
    "MAX_DEPTH",
    "MAX_DOCUMENTS",
    "MAX_INPUT_BYTES",
    "MAX_INTEGER_DIGITS",
    "MAX_VALUES",
    "Resource",
    "decode_input",
    "dump_resource",
    "load_documents",
    "load_object",
    "parse_documents",
    "yaml_path",
]

Resource: TypeAlias = FlinkDeployment | FlinkSessionJob

# Path of problems that concern a whole document (malformed YAML, not a mapping) rather than one field.
DOCUMENT_PATH = "(document)"

_KINDS: dict[str, type[FlinkDeployment] | type[FlinkSessionJob]] = {
    "FlinkDeployment": FlinkDeployment,
    "FlinkSessionJob": FlinkSessionJob,
}
# Kinds of the reference API group that flinkops recognises but does not run (yet): a precise message beats
# "unknown kind".
_KNOWN_UNSUPPORTED_KINDS = ("FlinkStateSnapshot", "FlinkBlueGreenDeployment")

_PLAIN_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")

# Limits on input, after the Kubernetes API server's: it refuses a request body over 3 MiB, and its YAML decoder
# refuses documents whose aliases expand out of proportion (the fix for the "billion laughs" CVE-2019-11253).
# Nesting and values are bounded tighter than the API server does: the deepest part of a real FlinkDeployment
# (a pod template's container securityContext) is about 10 levels down, and a large one has a few thousand
# values, so these leave room by an order of magnitude while keeping the loader's recursion (about three Python
# frames per level) and memory (a few hundred bytes per value) small.
#: The largest input text (one file, or standard input), in bytes of UTF-8.
MAX_INPUT_BYTES = 3 * 2**20
#: How deep mappings and lists may nest inside one document.
MAX_DEPTH = 100
#: How many values (scalars, mappings and lists) one document may hold once every alias is expanded.
MAX_VALUES = 100_000
#: How many documents (``---`` sections) one input may hold.
MAX_DOCUMENTS = 1000
#: The longest integer, in digits (a Java long has 19; Python refuses to read more than 4300).
MAX_INTEGER_DIGITS = 100

_BOMS = (
    (b"\xef\xbb\xbf", "utf-8-sig"),
    (b"\xff\xfe\x00\x00", "utf-32"),
    (b"\x00\x00\xfe\xff", "utf-32"),
    (b"\xff\xfe", "utf-16"),
    (b"\xfe\xff", "utf-16"),
)


# --------------------------------------------------------------------------------------------- public API


def yaml_path(*parts: str | int) -> str:
    """Render a field path the way a user reads YAML: ``spec.job.args[2]``.

    Keys that are not plain identifiers (Flink configuration keys such as ``state.backend.type``, annotation
    keys with ``/``) are bracketed and quoted so the path stays unambiguous.
    """
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        elif _PLAIN_KEY.match(part):
            out += f".{part}" if out else part
        else:
            out += f'["{part}"]'
    return out


def decode_input(data: bytes, source: str = "<stdin>") -> str:
    """The text of an input file: UTF-8 (as Kubernetes reads YAML), or UTF-16/UTF-32 when the file starts with
    their byte order mark (YAML allows both). Raises ``InvalidInput`` for anything larger than
    ``MAX_INPUT_BYTES`` or not text in those encodings (a Latin-1 file, a binary), naming the first bad byte."""
    if len(data) > MAX_INPUT_BYTES:
        raise InvalidInput([_too_large(source)])
    encoding = next((name for bom, name in _BOMS if data.startswith(bom)), "utf-8")
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        byte = data[exc.start]
        what = "UTF-8" if encoding.startswith("utf-8") else encoding.upper()
        problem = Problem(
            DOCUMENT_PATH,
            f"not {what} text: byte 0x{byte:02x} at line {line}, column {column} cannot be decoded",
            "save the file as UTF-8 (Kubernetes and flinkops read YAML as UTF-8); a binary file is not a resource",
            source,
        )
        raise InvalidInput([problem]) from exc


def _too_large(source: str) -> Problem:
    return Problem(
        DOCUMENT_PATH,
        f"the input is larger than {MAX_INPUT_BYTES // 2**20} MiB, the most the Kubernetes API server accepts "
        "in one request",
        "split it into several files, or move large data (jars, scripts, config files) out of the resource",
        source,
    )


def load_documents(text: str, source: str = "<stdin>") -> list[Resource]:
    """Parse multi-document YAML into resources; empty documents are skipped.

    ``kind: List`` documents (``kubectl get -o yaml`` output) contribute their ``items``. Raises
    ``InvalidInput`` carrying every problem in every document; ``Problem.source`` is ``"{source}#{n}"`` with
    ``n`` the 1-based index of the non-empty document. Text over ``MAX_INPUT_BYTES`` is refused unread.
    """
    if len(text) > MAX_INPUT_BYTES // 4 and len(text.encode("utf-8", "surrogatepass")) > MAX_INPUT_BYTES:
        raise InvalidInput([_too_large(source)])
    resources: list[Resource] = []
    problems: list[Problem] = []
    for index, document in enumerate(_documents(text), start=1):
        where = f"{source}#{index}"
        if isinstance(document, _Malformed):
            problems.append(document.problem(where))
            continue
        resources_here, problems_here = _load_document(document, where)
        resources.extend(resources_here)
        problems.extend(problems_here)
    if problems:
        raise InvalidInput(problems)
    return resources


def parse_documents(text: str, source: str = "<stdin>") -> list[Any]:
    """The non-empty documents of a YAML stream as plain data, under the same limits as ``load_documents`` (size,
    document count, alias expansion, depth): for a front end that edits a resource (its name, its namespace)
    before validating it with ``load_object``. Raises ``InvalidInput`` with the line and column of what does not
    parse."""
    if len(text) > MAX_INPUT_BYTES // 4 and len(text.encode("utf-8", "surrogatepass")) > MAX_INPUT_BYTES:
        raise InvalidInput([_too_large(source)])
    documents: list[Any] = []
    problems: list[Problem] = []
    for index, document in enumerate(_documents(text), start=1):
        if isinstance(document, _Malformed):
            problems.append(document.problem(f"{source}#{index}"))
        else:
            documents.append(document)
    if problems:
        raise InvalidInput(problems)
    return documents


def load_object(obj: Any, source: str = "<object>") -> Resource:
    """Validate one already-parsed resource (a JSON/YAML mapping) with the same checks and messages as
    ``load_documents``. Raises ``InvalidInput``."""
    resource, problems = _load_resource(obj, source, ())
    if problems or resource is None:
        raise InvalidInput(problems or [Problem(DOCUMENT_PATH, "not a resource", "", source)])
    return resource


def dump_resource(r: Resource) -> dict[str, Any]:
    """The CRD-shaped JSON form of a resource: camelCase keys, ``null`` fields left out. This is the stable
    ``-o json`` shape; ``load_object(dump_resource(r)) == r``."""
    return r.model_dump(mode="json", by_alias=True, exclude_none=True)


# --------------------------------------------------------------------------------------------- YAML


_FIRST_DEFINED = "first defined"


class _LimitExceeded(yaml.MarkedYAMLError):
    """A document beyond one of the loader's bounds; ``hint`` says what to do about it."""

    def __init__(self, problem: str, mark: Any, hint: str) -> None:
        super().__init__(problem=problem, problem_mark=mark)
        self.hint = hint


class _Loader(yaml.SafeLoader):
    """Safe YAML loader with changes that match what the Kubernetes API server accepts.

    * Duplicate keys are an error (the API server rejects them; PyYAML would silently keep the last one, so
      a second ``state.checkpoints.dir`` would quietly win).
    * Unquoted timestamps stay strings (Kubernetes tooling reads them as strings; a ``date`` object would
      make ``metadata.creationTimestamp`` fail its type check).
    * Nesting, values after alias expansion and integer length are bounded (``MAX_DEPTH``, ``MAX_VALUES``,
      ``MAX_INTEGER_DIGITS``), checked while the document is composed so that nothing past a bound is built.
    """

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0
        self._values = 0  # values composed so far in this document, each alias counting as what it expands to
        self._aliases = 0
        self._sizes: dict[int, int] = {}  # id of an anchored node -> values it expands to

    def compose_document(self) -> yaml.Node | None:
        self._depth, self._values, self._aliases, self._sizes = 0, 0, 0, {}
        node: yaml.Node | None = super().compose_document()
        self._sizes = {}
        return node

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        event: yaml.Event = self.peek_event()  # type: ignore[no-untyped-call]
        if isinstance(event, yaml.AliasEvent):
            node: yaml.Node | None = super().compose_node(parent, index)
            self._aliases += 1
            self._count(self._sizes.get(id(node), 1), event.start_mark)
            return node
        if self._depth >= MAX_DEPTH:
            raise _LimitExceeded(
                f"values are nested more than {MAX_DEPTH} levels deep",
                event.start_mark,
                "no FlinkDeployment or FlinkSessionJob field nests this deep; check the indentation and brackets",
            )
        before = self._values
        self._depth += 1
        try:
            node = super().compose_node(parent, index)
        finally:
            self._depth -= 1
        self._count(1, event.start_mark)
        if getattr(event, "anchor", None) is not None and node is not None:
            self._sizes[id(node)] = self._values - before
        return node

    def _count(self, values: int, mark: Any) -> None:
        self._values += values
        if self._values <= MAX_VALUES:
            return
        if self._aliases:
            raise _LimitExceeded(
                f"the document expands to more than {MAX_VALUES} values through its aliases (*name)",
                mark,
                "write the values out, or use fewer aliases; aliases that repeat aliases grow exponentially",
            )
        raise _LimitExceeded(
            f"the document holds more than {MAX_VALUES} values",
            mark,
            "split it into several resources, or move large data out of the resource",
        )

    def construct_yaml_int(self, node: yaml.Node) -> int:
        assert isinstance(node, yaml.ScalarNode)
        digits = sum(c.isalnum() for c in str(node.value))
        if digits > MAX_INTEGER_DIGITS:
            raise _LimitExceeded(
                f"an integer of {digits} digits; at most {MAX_INTEGER_DIGITS} are read",
                node.start_mark,
                "use a number Flink and Kubernetes can hold (a Java long has at most 19 digits), or quote it",
            )
        value: int = super().construct_yaml_int(node)
        return value

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, yaml.Node] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            try:
                first = seen.get(key)
            except TypeError:  # an unhashable key; the base class reports it with its position
                break
            if first is not None:
                raise yaml.constructor.ConstructorError(
                    _FIRST_DEFINED, first.start_mark, f"duplicate key '{key}'", key_node.start_mark
                )
            seen[key] = key_node
        return super().construct_mapping(node, deep=deep)


def _timestamp_as_string(loader: yaml.SafeLoader, node: yaml.Node) -> Any:
    assert isinstance(node, yaml.ScalarNode)
    return loader.construct_scalar(node)


_Loader.add_constructor("tag:yaml.org,2002:timestamp", _timestamp_as_string)
_Loader.add_constructor("tag:yaml.org,2002:int", _Loader.construct_yaml_int)


@dataclass(frozen=True)
class _Malformed:
    """A document that is not valid YAML, or is beyond the loader's bounds (then ``hint`` says what to do), with
    the position (1-based, in the whole text) of the problem."""

    line: int | None
    column: int | None
    what: str
    hint: str | None = None

    def problem(self, source: str) -> Problem:
        where = f" at line {self.line}, column {self.column}" if self.line is not None else ""
        if self.hint is not None:  # well-formed, but beyond the loader's bounds
            return Problem(DOCUMENT_PATH, f"{self.what}{where}", self.hint, source)
        if "'\\t'" in self.what:
            hint = "YAML indentation must use spaces, not tabs"
        elif "duplicate key" in self.what:
            hint = "remove one of the two entries; YAML mappings cannot repeat a key"
        else:
            hint = "check the indentation and the ': ' after each key on and just before that line"
        return Problem(DOCUMENT_PATH, f"malformed YAML{where}: {self.what}", hint, source)


_DOC_START = re.compile(r"^---(?:[ \t]|\r?$)")


def _chunks(text: str) -> Iterator[tuple[int, str]]:
    """Split a YAML stream at ``---`` lines, yielding ``(first line number - 1, chunk text)``.

    Parsing chunk by chunk means a syntax error in one document does not hide the problems of the others. A
    ``---`` at the start of a line always starts a document in YAML (it can never be content), so the split
    is exact; directives (``%YAML``) stay attached to the document they precede.
    """
    start = 0
    current: list[str] = []
    only_directives = False
    for number, line in enumerate(text.splitlines(keepends=True)):
        if _DOC_START.match(line) and not only_directives:
            if current:
                yield start, "".join(current)
            start, current = number, []
        if line.startswith("%"):
            only_directives = True
        elif line.strip() and not line.lstrip().startswith("#"):
            only_directives = False
        current.append(line)
    if current:
        yield start, "".join(current)


def _documents(text: str) -> Iterator[Any]:
    """Every non-empty document of the stream, or a ``_Malformed`` for a chunk that does not parse."""
    for number, (offset, chunk) in enumerate(_chunks(text), start=1):
        if number > MAX_DOCUMENTS:
            hint = "split the input into several files; no deployment needs this many resources in one apply"
            yield _Malformed(offset + 1, 1, f"the input holds more than {MAX_DOCUMENTS} documents", hint)
            return
        try:
            for document in yaml.load_all(chunk, Loader=_Loader):  # a SafeLoader subclass: no arbitrary objects
                if document is not None:
                    yield document
        except _LimitExceeded as exc:
            mark = exc.problem_mark
            line, column = (offset + mark.line + 1, mark.column + 1) if mark is not None else (None, None)
            yield _Malformed(line, column, exc.problem or "beyond the loader's limits", exc.hint)
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            what = exc.problem or exc.context or "not valid YAML"
            if exc.context == _FIRST_DEFINED and exc.context_mark is not None:
                what = f"{exc.problem} (first defined at line {offset + exc.context_mark.line + 1})"
            elif exc.context and exc.problem:
                what = f"{exc.problem} ({exc.context})"
            if mark is None:
                yield _Malformed(None, None, what)
            else:
                yield _Malformed(offset + mark.line + 1, mark.column + 1, what)
        except yaml.YAMLError as exc:
            yield _Malformed(None, None, str(exc) or "not valid YAML")


# --------------------------------------------------------------------------------------------- dispatch


def _load_document(document: Any, source: str) -> tuple[list[Resource], list[Problem]]:
    if isinstance(document, dict) and document.get("kind") == "List" and "items" in document:
        items = document["items"]
        if not isinstance(items, list):
            return [], [
                Problem(
                    "items",
                    f"expected a list of resources, got {_describe(items)}",
                    "write each resource as a '- apiVersion: ...' entry under 'items'",
                    source,
                )
            ]
        resources: list[Resource] = []
        problems: list[Problem] = []
        for index, item in enumerate(items):
            resource, found = _load_resource(item, source, ("items", index))
            problems.extend(found)
            if resource is not None:
                resources.append(resource)
        return resources, problems
    resource, problems = _load_resource(document, source, ())
    return ([resource] if resource is not None else []), problems


def _load_resource(document: Any, source: str, prefix: tuple[str | int, ...]) -> tuple[Resource | None, list[Problem]]:
    """Check ``apiVersion`` and ``kind`` by hand (clearer messages than a type check), then validate the
    rest against the model of that kind. Both steps report, so one pass shows every problem."""
    if not isinstance(document, dict):
        path = yaml_path(*prefix) if prefix else DOCUMENT_PATH
        return None, [
            Problem(
                path,
                f"expected a resource (a mapping with apiVersion, kind, metadata and spec), got {_describe(document)}",
                "start the document with 'apiVersion: flink.apache.org/v1beta1' and 'kind: FlinkDeployment'",
                source,
            )
        ]
    problems: list[Problem] = []
    api_version = document.get("apiVersion")
    kind = document.get("kind")
    if _other_api_group(api_version) and isinstance(kind, str) and kind not in _KINDS:
        # A Kubernetes object kept next to Flink resources (a Secret, a cert-manager Certificate, an HPA).
        return None, [
            Problem(
                yaml_path(*prefix, "kind"),
                f"'{kind}' ({api_version}) is not a Flink resource; flinkops applies FlinkDeployment and "
                "FlinkSessionJob",
                "apply it with kubectl on Kubernetes, or remove this document from the file",
                source,
            )
        ]
    if api_version is None:
        problems.append(
            Problem(
                yaml_path(*prefix, "apiVersion"),
                "missing required field",
                f"add 'apiVersion: {API_VERSION}'",
                source,
            )
        )
    elif api_version != API_VERSION:
        problems.append(
            Problem(
                yaml_path(*prefix, "apiVersion"),
                f"unsupported apiVersion {_describe(api_version, bare=True)}; expected '{API_VERSION}'",
                f"set 'apiVersion: {API_VERSION}'",
                source,
            )
        )
    model = _KINDS.get(kind) if isinstance(kind, str) else None
    if model is None:
        problems.append(_kind_problem(kind, yaml_path(*prefix, "kind"), source))
        return None, problems

    body = dict(document)
    body["apiVersion"] = API_VERSION  # already reported above; do not report it twice
    try:
        resource: Resource = model.model_validate(body, by_alias=True, by_name=False)
    except ValidationError as exc:
        problems.extend(_translate(exc, model, source, prefix))
        return None, problems
    return (None if problems else resource), problems


def _other_api_group(api_version: Any) -> bool:
    """True for the apiVersion of a Kubernetes object outside Flink's group (``v1``, ``cert-manager.io/v1``)."""
    return isinstance(api_version, str) and bool(api_version) and not api_version.startswith("flink.apache.org/")


def _kind_problem(kind: Any, path: str, source: str) -> Problem:
    supported = "FlinkDeployment or FlinkSessionJob"
    if kind is None:
        return Problem(path, "missing required field", "add 'kind: FlinkDeployment' or 'kind: FlinkSessionJob'", source)
    if kind in _KNOWN_UNSUPPORTED_KINDS:
        hint = f"flinkops runs {supported} resources; remove this document"
        if kind == "FlinkStateSnapshot":
            hint += " and take savepoints with 'flinkops savepoint NAME'"
        return Problem(path, f"kind '{kind}' is not supported by flinkops", hint, source)
    guess = _suggest(str(kind), list(_KINDS))
    hint = f"did you mean '{guess}'?" if guess else f"use kind {supported}"
    return Problem(path, f"unsupported kind {_describe(kind, bare=True)}; expected {supported}", hint, source)


# --------------------------------------------------------------------------------------------- errors


@dataclass(frozen=True)
class _Location:
    """Where a validation error points, resolved against the model structure."""

    parts: tuple[str | int, ...]  # YAML path parts, union member tags removed
    owner: type[BaseModel] | None  # the model whose field the last part names (for suggestions)
    leaf: Any  # the declared type at that path (for enum/literal choices)
    via_union: bool  # the error is one member's complaint of a union; merge with its siblings
    on_key: bool  # the error is about a mapping key, not its value


def _unwrap(tp: Any) -> Any:
    """Strip ``Annotated`` and ``Optional`` so only the shape a user writes remains."""
    while True:
        if typing.get_origin(tp) is typing.Annotated:
            tp = typing.get_args(tp)[0]
            continue
        if _is_union(tp):
            members = [m for m in typing.get_args(tp) if m is not type(None)]
            if len(members) == 1:
                tp = members[0]
                continue
        return tp


def _is_union(tp: Any) -> bool:
    return typing.get_origin(tp) in (typing.Union, types.UnionType)


def _model_fields_by_key(model: type[BaseModel]) -> dict[str, Any]:
    return {(info.alias or name): info.annotation for name, info in model.model_fields.items()}


def _locate(model: type[BaseModel], loc: tuple[str | int, ...]) -> _Location:
    parts: list[str | int] = []
    tp: Any = model
    owner: type[BaseModel] | None = None
    via_union = False
    on_key = False
    for element in loc:
        tp = _unwrap(tp)
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            owner = tp
            parts.append(element)
            tp = _model_fields_by_key(tp).get(str(element), Any)
        elif _is_union(tp):
            # A union member tag such as 'int' or 'float'; it is not part of the user's path.
            via_union = True
            tp = Any
        elif typing.get_origin(tp) is list:
            parts.append(element)
            tp = typing.get_args(tp)[0] if typing.get_args(tp) else Any
        elif typing.get_origin(tp) is dict:
            if element == "[key]":
                on_key = True
                continue
            parts.append(element)
            tp = typing.get_args(tp)[1] if typing.get_args(tp) else Any
        else:
            if element == "[key]":
                on_key = True
                continue
            parts.append(element)
            tp = Any
    return _Location(tuple(parts), owner, _unwrap(tp), via_union, on_key)


_EXPECTED = {
    "int_type": "an integer",
    "int_parsing": "an integer",
    "int_from_float": "an integer",
    "float_type": "a number",
    "float_parsing": "a number",
    "string_type": "a string",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "list_type": "a list",
    "dict_type": "a mapping",
    "model_type": "a mapping of fields",
    "model_attributes_type": "a mapping of fields",
}


def _translate(
    exc: ValidationError, model: type[BaseModel], source: str, prefix: tuple[str | int, ...]
) -> list[Problem]:
    problems: list[Problem] = []
    union_errors: dict[tuple[str | int, ...], list[tuple[str, Any]]] = {}
    for error in exc.errors(include_url=False):
        location = _locate(model, tuple(error["loc"]))
        if location.via_union and error["type"] in _EXPECTED:
            union_errors.setdefault(location.parts, []).append((error["type"], error.get("input")))
            continue
        problems.append(_problem_for(error, location, source, prefix))
    for parts, members in union_errors.items():
        kinds = {_EXPECTED[kind] for kind, _ in members}
        if {"a number", "an integer"} <= kinds:
            kinds.discard("an integer")  # "a number" already covers integers
        expected = " or ".join(sorted(kinds))
        value = members[0][1]
        message = f"expected {expected}, got {_describe(value)}"
        problems.append(Problem(yaml_path(*prefix, *parts), message, _type_hint(expected, value, parts), source))
    return problems


def _problem_for(error: Mapping[str, Any], location: _Location, source: str, prefix: tuple[str | int, ...]) -> Problem:
    kind = error["type"]
    value = error.get("input")
    parts = location.parts
    path = yaml_path(*prefix, *parts)
    field = str(parts[-1]) if parts else ""
    parent = yaml_path(*prefix, *parts[:-1]) or "the document"

    if kind == "missing":
        return Problem(path, "missing required field", _missing_hint(field, parent), source)
    if kind == "extra_forbidden":
        return Problem(path, f"unknown field '{field}'", _unknown_hint(field, location.owner, parent), source)
    if kind in ("enum", "literal_error"):
        choices = _choices(location.leaf)
        if choices:
            guess = _suggest(str(value), choices)
            got = f"got {_describe(value)}"
            hint = f"{got}; did you mean '{guess}'?" if guess else got
            return Problem(path, f"must be one of: {', '.join(choices)}", hint, source)
    if kind in _EXPECTED:
        expected = _EXPECTED[kind]
        if location.on_key:
            return Problem(
                path,
                f"keys here must be strings, got {_describe(field)}",
                f'quote the key: "{field}"',
                source,
            )
        return Problem(path, f"expected {expected}, got {_describe(value)}", _type_hint(expected, value, parts), source)
    if kind == "flink_configuration_conflict":
        return Problem(path, str(error.get("msg")), "keep one of the two, flat or nested", source)
    # Anything else: the library's own sentence is already phrased for people; keep it, minus its jargon.
    message = str(error.get("msg", "invalid value"))
    message = message[:1].lower() + message[1:]
    return Problem(path, message, "fix the value at this path", source)


def _choices(tp: Any) -> list[str]:
    tp = _unwrap(tp)
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return [str(member.value) for member in tp]
    if typing.get_origin(tp) is typing.Literal:
        return [str(arg) for arg in typing.get_args(tp)]
    return []


def _missing_hint(field: str, parent: str) -> str:
    specific = {
        "name": "add a lowercase name such as 'fraud-scoring' under metadata",
        "metadata": "add 'metadata:' with at least 'name:'",
        "spec": "add 'spec:' describing the cluster or job",
        "deploymentName": "set it to the name of the session-cluster FlinkDeployment this job runs on",
    }
    return specific.get(field, f"add '{field}' under {parent}")


def _unknown_hint(field: str, owner: type[BaseModel] | None, parent: str) -> str:
    if owner is None:
        return "remove it"
    allowed = list(_model_fields_by_key(owner))
    camel = to_camel(field)
    if camel != field and camel in allowed:
        return f"did you mean '{camel}'? YAML field names are camelCase"
    guess = _suggest(field, allowed)
    if guess:
        return f"did you mean '{guess}'?"
    # A field written one level too high, e.g. 'spec.jarURI' instead of 'spec.job.jarURI'.
    homes: list[tuple[str, str]] = []
    for key, annotation in _model_fields_by_key(owner).items():
        child = _unwrap(annotation)
        if isinstance(child, type) and issubclass(child, BaseModel):
            homes.extend((key, name) for name in dict.fromkeys((field, camel)) if name in _model_fields_by_key(child))
    if len(homes) == 1:
        home, name = homes[0]
        return f"'{name}' belongs under {parent}.{home}"
    return f"remove it; the fields allowed under {parent} are: {', '.join(sorted(allowed))}"


def _suggest(word: str, candidates: Sequence[str]) -> str | None:
    lowered = {c.lower(): c for c in candidates}
    if word.lower() in lowered:
        return lowered[word.lower()]
    close = difflib.get_close_matches(word.lower(), list(lowered), n=1, cutoff=0.6)
    return lowered[close[0]] if close else None


def _type_hint(expected: str, value: Any, parts: tuple[str | int, ...]) -> str:
    field = str(parts[-1]) if parts else "value"
    if value is None:
        return f"give '{field}' a value, or remove the line"
    if isinstance(value, str) and expected in ("an integer", "a number") and _is_number(value):
        return f"write {value.strip()} without quotes"
    if isinstance(value, str) and expected == "true or false" and value.strip().lower() in ("true", "false"):
        return f"write {value.strip().lower()} without quotes"
    if expected == "an integer":
        return "use a whole number, e.g. 2"
    if expected in ("a number", "a number or an integer"):
        return "use a number, e.g. 1 or 0.5"
    if expected == "a string" and isinstance(value, bool | int | float):
        shown = ("true" if value else "false") if isinstance(value, bool) else str(value)
        return f'quote the value: "{shown}"'
    if expected == "true or false":
        return "use true or false"
    if expected == "a list":
        return f"write {field} as a YAML list, one '- item' per line"
    if expected.startswith("a mapping"):
        return f"write {field} as indented 'key: value' lines"
    return f"change {field} to {expected}"


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _describe(value: Any, *, bare: bool = False) -> str:
    """A short, user-facing description of a YAML value (never a Python repr of a big structure)."""
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value) if bare else f"the number {value}"
    if isinstance(value, str):
        shown = value if len(value) <= 40 else value[:37] + "..."
        return f"'{shown}'" if bare else f"the string '{shown}'"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return f"'{value}'"
