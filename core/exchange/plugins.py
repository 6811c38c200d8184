"""Bring your own agent: any class with the Player or the Coach method plays, from code, the CLI or the app.

From Python, pass an instance to `run_exchange` like the house agents. From the command line,
`--player pkg.module:Class` (the user runs their own code there anyway) or the name of an installed
agent. In the app, only agents installed as entry points of the group `player_coach.agents` are
offered: the web page never imports a module path typed into it. A package declares one with

    [project.entry-points."player_coach.agents"]
    dip-buyer = "my_package.agents:DipBuyer"

A class plays the Player when it has `propose`, the Coach when it has `critique` (or both).
"""

from __future__ import annotations

import functools
import importlib
import logging
import sys
from dataclasses import dataclass
from importlib.metadata import entry_points

from core.exchange.errors import InvalidInput
from core.exchange.guard import AgentLimits, Guarded

log = logging.getLogger(__name__)
_reported: set[str] = set()  # broken entry points already logged: the pages list agents on every run

ENTRY_POINT_GROUP = "player_coach.agents"
METHODS = {"player": "propose", "coach": "critique"}
"""The method that makes an object a Player or a Coach (see core.agent)."""


def roles_of(agent: object) -> tuple[str, ...]:
    """The roles an agent (or its class) can play: ('player',), ('coach',), both or none."""
    return tuple(role for role, method in METHODS.items() if callable(getattr(agent, method, None)))


def agent_class(agent: object) -> str:
    """Where an agent's class lives, as `module:Class`: what the artifact records. A class `core`
    exports is named by its public name (`core:HousePlayer`), which no reorganisation inside core moves."""
    return _class_name(type(getattr(agent, "wrapped", agent)))  # a guarded agent is named by the class it guards


@functools.lru_cache(maxsize=256)
def _class_name(kind: type) -> str:
    # Worked out once per class, not twice an exchange: a class keeps its module and name, and core's exports are
    # all there once `core` is imported (it is imported before any of its modules).
    core = sys.modules["core"]
    if kind.__module__.startswith("core.") and getattr(core, kind.__qualname__, None) is kind:
        return f"core:{kind.__qualname__}"
    return f"{kind.__module__}:{kind.__qualname__}"


UNRULY = (Exception, SystemExit, KeyboardInterrupt)
"""What a user's module or class may raise while we load it: all of it is theirs, said in one line (a
SystemExit at import must not end the command with the APPROVE code, nor blank a page)."""


def _make(target: object, role: str, what: str, limits: AgentLimits) -> Guarded:
    """An instance from a class or a factory (an object that already plays the role is used as is),
    with a name that is text, run under `limits`."""
    try:
        if isinstance(target, type) or (callable(target) and not roles_of(target)):
            target = target()
        name = getattr(target, "name", type(target).__name__)
    except UNRULY as error:
        raise InvalidInput(f"{what}: cannot make one with no arguments ({type(error).__name__}: {error})") from None
    if not isinstance(name, str) or not name.strip():
        raise InvalidInput(f"{what}: its name must be non-empty text, not {type(name).__name__} {str(name)[:40]!r}")
    if role not in roles_of(target):
        raise InvalidInput(f"{what}: {type(target).__name__} has no {METHODS[role]}() method, so it cannot be the {role}")
    return Guarded(target, limits)


def _import(target: str, what: str) -> object:
    """The object `module:attribute` names; any failure of the user's module is an InvalidInput."""
    module_name, _, attribute = target.partition(":")
    if not module_name.strip() or not attribute.strip():
        raise InvalidInput(f"{what}: give module:Class, both parts (got {target!r})")
    try:
        found = importlib.import_module(module_name)
    except UNRULY as error:
        raise InvalidInput(f"{what}: cannot import {module_name} ({type(error).__name__}: {error})") from None
    for part in attribute.split("."):
        found = getattr(found, part, None)
        if found is None:
            raise InvalidInput(f"{what}: {module_name} has no {attribute}")
    return found


def load_agent(spec: str, role: str, limits: AgentLimits = AgentLimits()) -> Guarded:
    """An agent for `role` ('player' or 'coach') from `pkg.module:Class` or an installed agent's name,
    each of its turns run under `limits` (core.exchange.guard)."""
    what = f"--{role} {spec!r}"
    if ":" not in spec:
        installed = {agent.name: agent for agent in installed_agents()}
        if spec not in installed:
            names = ", ".join(sorted(installed)) or "none installed"
            raise InvalidInput(f"{what}: not module:Class and not an installed agent ({names})")
        return installed[spec].make(role, limits)
    return _make(_import(spec, what), role, what, limits)


@dataclass(frozen=True, slots=True)
class InstalledAgent:
    """An agent a package installed under the `player_coach.agents` entry point group."""

    name: str  # the entry point's name, shown in the app
    target: str  # module:Class
    roles: tuple[str, ...]  # what its class can play; empty when it cannot be loaded
    problem: str | None = None  # why it cannot be loaded

    def make(self, role: str, limits: AgentLimits = AgentLimits()) -> Guarded:
        """A fresh instance, to play `role` under `limits`."""
        what = f"agent {self.name!r}"
        if self.problem:
            raise InvalidInput(f"{what}: {self.problem}")
        return _make(_import(self.target, what), role, what, limits)


def installed_agents(role: str | None = None) -> list[InstalledAgent]:
    """The installed agents (those that can play `role`, when given), by name; broken ones carry their problem."""
    found = []
    for point in entry_points(group=ENTRY_POINT_GROUP):
        try:
            roles = roles_of(point.load())
            problem = None if roles else "it has neither propose() nor critique()"
        except UNRULY as error:  # an installed package that fails to import must not take the app down
            if point.value not in _reported:
                _reported.add(point.value)
                log.warning("agent %s (%s) cannot be loaded: %s", point.name, point.value, error)
            roles, problem = (), f"cannot be loaded ({type(error).__name__}: {error})"
        found.append(InstalledAgent(point.name, point.value, roles, problem))
    found.sort(key=lambda agent: agent.name)
    return [agent for agent in found if role is None or role in agent.roles]
