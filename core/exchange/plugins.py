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

import importlib
import logging
from dataclasses import dataclass
from importlib.metadata import entry_points

from core.exchange.errors import InvalidInput

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
    import core

    kind = type(agent)
    if kind.__module__.startswith("core.") and getattr(core, kind.__qualname__, None) is kind:
        return f"core:{kind.__qualname__}"
    return f"{kind.__module__}:{kind.__qualname__}"


def _make(target: object, role: str, what: str) -> object:
    """An instance from a class or a factory; an object that already plays the role is used as is."""
    if isinstance(target, type) or (callable(target) and not roles_of(target)):
        try:
            target = target()
        except Exception as error:  # a user's constructor: any failure is theirs, said in one line
            raise InvalidInput(f"{what}: cannot make one with no arguments ({type(error).__name__}: {error})") from None
    if role not in roles_of(target):
        raise InvalidInput(f"{what}: {type(target).__name__} has no {METHODS[role]}() method, so it cannot be the {role}")
    return target


def load_agent(spec: str, role: str) -> object:
    """An agent for `role` ('player' or 'coach') from `pkg.module:Class` or an installed agent's name."""
    what = f"--{role} {spec!r}"
    if ":" not in spec:
        installed = {agent.name: agent for agent in installed_agents()}
        if spec not in installed:
            names = ", ".join(sorted(installed)) or "none installed"
            raise InvalidInput(f"{what}: not module:Class and not an installed agent ({names})")
        return installed[spec].make(role)
    module_name, _, attribute = spec.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise InvalidInput(f"{what}: cannot import {module_name} ({error})") from None
    target = module
    for part in attribute.split("."):
        target = getattr(target, part, None)
        if target is None:
            raise InvalidInput(f"{what}: {module_name} has no {attribute}")
    return _make(target, role, what)


@dataclass(frozen=True, slots=True)
class InstalledAgent:
    """An agent a package installed under the `player_coach.agents` entry point group."""

    name: str  # the entry point's name, shown in the app
    target: str  # module:Class
    roles: tuple[str, ...]  # what its class can play; empty when it cannot be loaded
    problem: str | None = None  # why it cannot be loaded

    def make(self, role: str) -> object:
        """A fresh instance, to play `role`."""
        if self.problem:
            raise InvalidInput(f"agent {self.name!r}: {self.problem}")
        module_name, _, attribute = self.target.partition(":")
        target = importlib.import_module(module_name)
        for part in attribute.split("."):
            target = getattr(target, part)
        return _make(target, role, f"agent {self.name!r}")


def installed_agents(role: str | None = None) -> list[InstalledAgent]:
    """The installed agents (those that can play `role`, when given), by name; broken ones carry their problem."""
    found = []
    for point in entry_points(group=ENTRY_POINT_GROUP):
        try:
            roles = roles_of(point.load())
            problem = None if roles else "it has neither propose() nor critique()"
        except Exception as error:  # an installed package that fails to import must not take the app down
            if point.value not in _reported:
                _reported.add(point.value)
                log.warning("agent %s (%s) cannot be loaded: %s", point.name, point.value, error)
            roles, problem = (), f"cannot be loaded ({type(error).__name__}: {error})"
        found.append(InstalledAgent(point.name, point.value, roles, problem))
    found.sort(key=lambda agent: agent.name)
    return [agent for agent in found if role is None or role in agent.roles]
