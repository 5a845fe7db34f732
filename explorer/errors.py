"""Errors that reach a person as one line naming what was wrong."""

from collections.abc import Iterable


class ExplorerError(Exception):
    """A problem with the reader's or contributor's input, reported on one line."""


class UnknownName(ExplorerError, KeyError, ValueError):
    """A name (figure id, model, method, regime, layer...) that is not one of the known ones."""

    def __init__(self, kind: str, name: object, known: Iterable[object]):
        self.kind, self.name, self.known = kind, name, sorted(map(str, known))
        super().__init__(f"unknown {kind} {name!r}; known: {', '.join(self.known)}")

    def __str__(self) -> str:  # KeyError would otherwise wrap the message in quotes
        return self.args[0]


class ModelUnavailable(ExplorerError):
    """A model's weights are not on this machine; figures that need it are skipped, not failed."""


def check_choice(kind: str, name: object, known: Iterable[object]) -> None:
    """Raise UnknownName unless `name` is in `known`."""
    known = list(known)
    if name not in known:
        raise UnknownName(kind, name, known)
