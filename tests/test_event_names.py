"""Event names: the enums, the code that emits them and the documentation agree.

``EventName`` names every health event (the feed's and the sinks'), ``StatusName`` every
status line of the runner. Three things must stay equal, and these tests say so:

- the names the code emits. Every call in ``src`` that hands an event name to an
  emitter (:data:`EMITTERS`: ``HealthBus.emit``, ``HealthEvent(...)``, a sink's
  ``_events``/``_say``/``_note``, the runner's ``status``, ...) is found with ``ast``.
  The name it passes must be a string literal or an enum member, and either way a
  member (a variable passes a name made elsewhere: it is checked where it was made);
  and every member must be emitted somewhere. So that a new emitter cannot hide, every
  function of the package with a parameter ``event: str`` (or an enum) must be listed,
  as an emitter or in :data:`NOT_EMITTERS` with the reason.
- the enums.
- the tables in ``docs/architecture.md`` and ``docs/sinks.md`` whose first column is
  ``event`` (health events) or ``status`` (the runner's lines), and their W marks: an
  event is marked W exactly when the code logs it at WARNING.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

import tickactors
from tickactors._actors.health_bus import _WARNINGS as FEED_WARNINGS
from tickactors._values import EventName, HealthEvent, StatusName
from tickactors.sinks._events import WARNINGS as SINK_WARNINGS

PACKAGE = Path(tickactors.__file__).parent
DOCS = PACKAGE.parents[1] / "docs"
ENUMS = {"EventName": EventName, "StatusName": StatusName}
ALL_NAMES = {member.value for enum in ENUMS.values() for member in enum}

# ------------------------------------------------------------------------------------
# the code

#: Who takes an event name, as called: name -> position of the name among the call's
#: positional arguments (or ``event=``).
EMITTERS = {
    "emit": 0,  # HealthBus.emit(event, connection, message, **detail)
    "HealthEvent": 0,
    "_events": 0,  # a sink's SinkEvents(event, message, **detail)
    "at": 1,  # SinkEvents.at(time, event, message, **detail)
    "_say": 0,  # the sinks' own reporting
    "_report": 0,
    "_note": 0,  # the NATS publisher thread's notes
    "status": 0,  # the runner's writers and the sinks' status(event, message, **detail)
    "_format_status": 0,
    "status_dict": 0,
}
#: Functions with a parameter ``event: str`` (or an enum) that are not emitters, and why.
NOT_EMITTERS = {
    "say": "the chaos soak's progress lines: a vocabulary of their own (tickactors chaos)",
    "health_subject": "a NATS subject for a name emitted elsewhere",
}
#: How an emitter is defined, when its name is not how it is called.
DEFINED_AS = {"_events": "__call__"}
_NAME_TYPES = ("str", "EventName", "StatusName")


def _sources() -> Iterator[tuple[Path, ast.Module]]:
    for path in sorted(PACKAGE.rglob("*.py")):
        yield path, ast.parse(path.read_text(), str(path))


def _functions(tree: ast.Module) -> Iterator[tuple[ast.FunctionDef | ast.AsyncFunctionDef, bool]]:
    """Every function of a module, and whether it is a method."""
    methods = {
        id(item) for cls in ast.walk(tree) if isinstance(cls, ast.ClassDef) for item in cls.body
    }
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            yield node, id(node) in methods


def _event_index(function: ast.FunctionDef | ast.AsyncFunctionDef, method: bool) -> int | None:
    """The position of the ``event`` parameter among the positional arguments of a call."""
    params = [*function.args.posonlyargs, *function.args.args]
    if method and params and params[0].arg in ("self", "cls"):
        params = params[1:]
    names = [a.arg for a in params]
    return names.index("event") if "event" in names else None


def _takes_a_name(function: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    """``event`` is a parameter annotated as a name (not a HealthEvent, a trio.Event, ...)."""
    args = function.args
    for arg in (*args.posonlyargs, *args.args, *args.kwonlyargs):
        if arg.arg == "event" and arg.annotation is not None:
            kinds = {part.strip() for part in ast.unparse(arg.annotation).split("|")}
            return bool(kinds) and kinds <= set(_NAME_TYPES)
    return False


def test_every_function_that_takes_a_name_is_classified():
    """A new emitter cannot hide: every function with ``event: str`` is one of the two."""
    defined = {"__call__" if n == "_events" else n for n in EMITTERS} - {"HealthEvent"}
    found = {}
    for path, tree in _sources():
        for function, _ in _functions(tree):
            if _takes_a_name(function):
                found.setdefault(function.name, str(path.relative_to(PACKAGE.parent)))
    unclassified = {n: where for n, where in found.items() if n not in defined | set(NOT_EMITTERS)}
    assert unclassified == {}, "add them to EMITTERS or NOT_EMITTERS"
    assert sorted(defined - set(found)) == [], "EMITTERS names a function that is gone"


def _own_methods(tree: ast.Module) -> dict[int, dict[str, int | None]]:
    """For each node inside a class (by id): that class's methods and their ``event``.

    ``self.emit(...)`` inside a class that defines ``emit`` is that method, whatever
    other classes call theirs (``OneLineParser.emit`` prints a line; no event).
    """
    owner: dict[int, dict[str, int | None]] = {}
    for cls in ast.walk(tree):
        if isinstance(cls, ast.ClassDef):
            methods = {
                item.name: _event_index(item, method=True)
                for item in cls.body
                if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef)
            }
            for node in ast.walk(cls):
                owner[id(node)] = methods
    return owner


def _emitted() -> list[tuple[str, int, ast.expr]]:
    """(file, line, the expression passed as the event name) for every emitting call."""
    without = set()  # names also defined without an ``event`` parameter (``_report``)
    for _, tree in _sources():
        for function, method in _functions(tree):
            if _event_index(function, method) is None:
                without.add(function.name)
    calls = []
    for path, tree in _sources():
        own = _own_methods(tree)
        where = str(path.relative_to(PACKAGE.parent))
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            if isinstance(func, ast.Name):
                name = func.id
            elif isinstance(func, ast.Attribute):
                name = func.attr
            else:
                continue
            index = EMITTERS.get(name)
            if index is None:
                continue
            if isinstance(func, ast.Attribute) and ast.unparse(func.value) == "self":
                methods = own.get(id(node), {})
                if name in methods and methods[name] is None:
                    continue  # this class's own method of that name takes no event
            keyword = next((k.value for k in node.keywords if k.arg == "event"), None)
            if keyword is not None:
                arg = keyword
            elif len(node.args) > index and not isinstance(node.args[index], ast.Starred):
                arg = node.args[index]
            elif name in without:
                continue  # another function of that name, which takes no event
            else:
                raise AssertionError(f"{where}:{node.lineno}: {name}() without a visible event")
            calls.append((where, node.lineno, arg))
    return calls


def _name_of(arg: ast.expr) -> str | None:
    """The event name a call passes, or None for a variable (a name made elsewhere)."""
    if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
        return arg.value
    if isinstance(arg, ast.Attribute) and isinstance(arg.value, ast.Name) and arg.value.id in ENUMS:
        enum = ENUMS[arg.value.id]
        assert arg.attr in enum.__members__, f"{arg.value.id}.{arg.attr} is no member"
        return str(enum[arg.attr].value)
    if isinstance(arg, ast.Name):
        return None
    raise AssertionError(f"an event name is a literal or an enum member: {ast.unparse(arg)}")


def test_the_scan_sees_every_kind_of_emitter():
    seen = {where.split("/")[1] for where, _, _ in _emitted()}
    assert {"_actors", "sinks", "_cli"} <= seen


def test_every_emitted_name_is_a_member_and_every_member_is_emitted():
    names: dict[str, list[str]] = {}
    for where, line, arg in _emitted():
        try:
            name = _name_of(arg)
        except AssertionError as exc:
            raise AssertionError(f"{where}:{line}: {exc}") from None
        if name is not None:
            names.setdefault(name, []).append(f"{where}:{line}")
    unknown = {name: sites for name, sites in names.items() if name not in ALL_NAMES}
    assert unknown == {}, "emitted, but not in EventName or StatusName"
    assert sorted(ALL_NAMES - set(names)) == [], "members nothing emits"


def test_a_member_is_its_string():
    assert EventName.STALE == "stale"
    assert f"{EventName.SINK_LOSS}" == str(EventName.SINK_LOSS) == "sink_loss"
    assert HealthEvent(EventName.GAP, 1.0).to_dict()["event"] == "gap"
    assert {member.value for member in EventName}.isdisjoint(member.value for member in StatusName)
    for enum in ENUMS.values():
        for member in enum:
            assert member.name == member.value.upper()


# ------------------------------------------------------------------------------------
# the documentation

_CELL = re.compile(r"`([a-z_]+)`( W)?")


def tables(path: Path) -> Iterator[tuple[str, list[str]]]:
    """Each markdown table of ``path``: its first header cell, and its rows' first cells."""
    lines = path.read_text().splitlines()
    i = 0
    while i < len(lines):
        if (
            lines[i].startswith("|")
            and i + 1 < len(lines)
            and re.fullmatch(r"\|( *:?-+:? *\|)+", lines[i + 1].replace(" ", ""))
        ):
            header = lines[i].strip("|").split("|")[0].strip()
            rows = []
            i += 2
            while i < len(lines) and lines[i].startswith("|"):
                rows.append(lines[i].strip("|").split("|")[0].strip())
                i += 1
            yield header, rows
        else:
            i += 1


def documented(first_column: str) -> dict[str, bool]:
    """Names listed in the tables headed ``first_column``: name -> marked W."""
    found: dict[str, bool] = {}
    for doc in ("architecture.md", "sinks.md"):
        for header, rows in tables(DOCS / doc):
            if header != first_column:
                continue
            for cell in rows:
                match = _CELL.fullmatch(cell)
                assert match, f"{doc}: a first cell that names no event: {cell!r}"
                assert match[1] not in found, f"{doc}: {match[1]} listed twice"
                found[match[1]] = bool(match[2])
    return found


def test_the_table_parser_reads_a_table(tmp_path: Path):
    doc = tmp_path / "t.md"
    doc.write_text("text\n\n| event | who |\n| --- | --- |\n| `a` W | x |\n| `b` | y |\n\nmore\n")
    assert list(tables(doc)) == [("event", ["`a` W", "`b`"])]


@pytest.mark.parametrize(("header", "enum"), [("event", EventName), ("status", StatusName)])
def test_the_docs_list_every_name_once(header, enum):
    listed = documented(header)
    assert sorted(listed) == sorted(member.value for member in enum)


def test_the_docs_mark_w_exactly_what_is_logged_at_warning():
    marked = {name for name, w in documented("event").items() if w}
    assert sorted(marked) == sorted(set(FEED_WARNINGS) | set(SINK_WARNINGS))
