"""The API's methods, written once for ``Client`` and ``AsyncClient``.

Each method is its call builder (``parley.client.calls``) run through the client's own ``call``: a value from
``Client``, an awaitable from ``AsyncClient``. The descriptor's overloads give each client its typed signature,
so a method is listed here once and type checkers and IDEs still see ``client.post(...) -> Posted`` and
``await aclient.post(...)``.
"""

from __future__ import annotations

import types
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any, Concatenate, Generic, ParamSpec, TypeVar, overload

from parley.client import calls

if TYPE_CHECKING:
    from parley.client.aio import AsyncClient
    from parley.client.sync import Client

T = TypeVar("T")
P = ParamSpec("P")


class Method(Generic[P, T]):
    def __init__(self, build: Callable[P, calls.Call[T]]) -> None:
        def method(self: Any, /, *args: Any, **kwargs: Any) -> Any:
            return self.call(build(*args, **kwargs))

        self.function = calls.like(build, method)  # as help() and IDEs show it
        self.__doc__ = build.__doc__

    @overload
    def __get__(self, client: None, owner: type[Any]) -> Callable[Concatenate[Any, P], Any]: ...

    @overload
    def __get__(self, client: AsyncClient, owner: type[Any]) -> Callable[P, Coroutine[Any, Any, T]]: ...

    @overload
    def __get__(self, client: Client, owner: type[Any]) -> Callable[P, T]: ...

    def __get__(self, client: Any, owner: type[Any]) -> Callable[..., Any]:
        return self.function if client is None else types.MethodType(self.function, client)


class Methods:
    """The relay's API; the operator's methods need ``admin_token=``."""

    me = Method(calls.me)
    board = Method(calls.board)
    channels = Method(calls.channels)
    join = Method(calls.join)
    leave = Method(calls.leave)
    add_member = Method(calls.add_member)
    agents = Method(calls.agents)
    post = Method(calls.post)
    dm = Method(calls.dm)
    read = Method(calls.read)
    events = Method(calls.events)
    claim = Method(calls.claim)
    release = Method(calls.release)
    mentions = Method(calls.mentions)
    mark_mentions_read = Method(calls.mark_mentions_read)
    search = Method(calls.search)
    upload = Method(calls.upload)
    download = Method(calls.download)
    create_key = Method(calls.create_key)
    list_keys = Method(calls.list_keys)
    revoke = Method(calls.revoke)
    archive = Method(calls.archive)
    stats = Method(calls.stats)
