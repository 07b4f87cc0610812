"""The error tree drawn in continuum.errors is the real one, and every class follows its rule.

Every module of the package is imported first, so a subtree defined beside its code
(``continuum.kube.errors``, ``continuum.server.errors``, ``continuum.server.model``) or a new
exception class anywhere is seen.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re
from types import ModuleType

import continuum
from continuum import errors
from continuum.errors import ContinuumError

Tree = dict[str, str | None]  # class name -> parent's name (None for the root)

# A drawn line: the branches' prefix, a connector and the class name (the root has neither).
LINE = re.compile(r"^(?P<prefix>(?:│   |    )*)(?:├── |└── )(?P<name>\w+)|^(?P<root>\w+)")
# Words that name an outcome: a leaf starting with one has its subject last (InvalidInput).
OUTCOME_WORDS = {"Invalid", "Not", "Bad", "Incompatible", "Already", "Unknown", "Missing"}
FIRST_WORD = re.compile(r"[A-Z][a-z]*")


def package_modules() -> list[ModuleType]:
    """Every module of continuum except ``__main__`` ones, which run when imported."""
    names = [m.name for m in pkgutil.walk_packages(continuum.__path__, "continuum.")]
    return [importlib.import_module(n) for n in names if not n.endswith(".__main__")]


MODULES = package_modules()


def drawn_tree(doc: str) -> Tree:
    """The tree drawn after ``Tree::`` in ``doc``, from its prefixes and connectors."""
    block = doc.split("Tree::", 1)[1].strip("\n").splitlines()
    tree: Tree = {}
    path: list[str] = []
    for line in (text[4:] for text in block if text.strip()):
        found = LINE.match(line)
        if found is None:  # a description's continuation line
            continue
        name, depth = found["root"] or found["name"], 0
        if found["name"]:
            depth = len(found["prefix"]) // 4 + 1
        del path[depth:]
        tree[name] = path[-1] if path else None
        path.append(name)
    return tree


def classes_under(root: type[ContinuumError]) -> list[type[ContinuumError]]:
    """``root`` and every class below it that the package defines (none from tests)."""
    found = [root]
    for sub in root.__subclasses__():
        if sub.__module__.startswith("continuum."):
            found += classes_under(sub)
    return found


def real_tree() -> Tree:
    tree: Tree = {ContinuumError.__name__: None}
    for cls in classes_under(ContinuumError)[1:]:
        tree[cls.__name__] = cls.__bases__[0].__name__
    return tree


def exception_classes() -> list[type[BaseException]]:
    """Every exception class a module of the package defines."""
    return [
        cls
        for module in MODULES
        for _, cls in inspect.getmembers(module, inspect.isclass)
        if issubclass(cls, BaseException) and cls.__module__ == module.__name__
    ]


def test_the_drawn_tree_parses_as_drawn() -> None:
    doc = """Tree::

    Root
    ├── Area           a description
    │   ├── Leaf       that wraps
    │   │              onto a second line
    │   └── Other
    └── Last
        └── Deep
"""
    assert drawn_tree(doc) == {
        "Root": None,
        "Area": "Root",
        "Leaf": "Area",
        "Other": "Area",
        "Last": "Root",
        "Deep": "Last",
    }


def test_the_tree_drawn_in_the_module_docstring_is_the_real_one() -> None:
    assert errors.__doc__ is not None
    drawn = drawn_tree(errors.__doc__)
    assert "RequestThrottled" in drawn  # the subtrees defined elsewhere are drawn too
    assert drawn == real_tree()


def test_every_class_has_exactly_one_parent_in_the_tree() -> None:
    for cls in classes_under(ContinuumError)[1:]:
        assert len(cls.__bases__) == 1, cls


def test_every_exception_class_of_the_package_is_under_the_root() -> None:
    # A private class is a control-flow signal caught in its own module (the decoder's
    # "not the common shape" leaves its fast branch): never an error anybody else sees.
    public = [cls for cls in exception_classes() if not cls.__name__.startswith("_")]
    assert len(public) > 30
    assert [cls for cls in public if not issubclass(cls, ContinuumError)] == []


def test_no_two_classes_share_a_name() -> None:
    names = [cls.__name__ for cls in classes_under(ContinuumError)]
    assert sorted({n for n in names if names.count(n) > 1}) == []


def test_areas_end_in_error_and_outcomes_put_the_subject_first() -> None:
    classes = classes_under(ContinuumError)
    branches = {c.__name__ for c in classes if any(s in classes for s in c.__subclasses__())}
    outcomes = {c.__name__ for c in classes if not c.__name__.endswith("Error")}
    assert sorted(n for n in branches if not n.endswith("Error")) == []
    assert sorted(n for n in outcomes if _first_word(n) in OUTCOME_WORDS) == []
    assert {"ConfigError", "TrainingError"} <= {c.__name__ for c in classes} - branches


def _first_word(name: str) -> str:
    found = FIRST_WORD.match(name)
    return found.group() if found else ""
