"""Connections the router opens besides the caller's pool, made from that pool's settings
(user, password, TLS, database, timeouts), so credentials and TLS need no second configuration."""

from __future__ import annotations

from typing import Any

from redis.backoff import NoBackoff
from redis.connection import Connection, SSLConnection
from redis.retry import Retry

# Settings of the caller's connections the router's own RESP2 links must not take: a parser
# or client-side cache chosen for RESP3, push handlers.
_NOT_FOR_LINKS = ("parser_class", "maint_notifications_config", "cache", "cache_config")


def link_kwargs(pool: Any, connect_timeout: float) -> tuple[type[Any], dict[str, Any]]:
    """Class and settings of a RESP2, undecoded connection to the master ``pool`` reaches
    (through Sentinel when the pool asks Sentinel)."""
    kwargs = dict(pool.connection_kwargs)
    for name in _NOT_FOR_LINKS:
        kwargs.pop(name, None)
    kwargs.update(
        protocol=2,
        decode_responses=False,
        socket_connect_timeout=connect_timeout,
        socket_timeout=connect_timeout,
    )
    return pool.connection_class, kwargs


def link_connection(pool: Any, connect_timeout: float) -> Any:
    cls, kwargs = link_kwargs(pool, connect_timeout)
    return cls(**kwargs)


def node_kwargs(
    pool: Any,
    host: str,
    port: int,
    timeout: float,
    plain: type[Any] = Connection,
    tls: type[Any] = SSLConnection,
) -> tuple[type[Any], dict[str, Any]]:
    """Class and settings of a connection to the node at ``host:port`` (a replica) with the
    caller's settings: the same protocol and decoding, so replies parse the same. ``plain`` and
    ``tls`` are the connection classes to use (sync or asyncio)."""
    kwargs = dict(pool.connection_kwargs)
    kwargs.pop("connection_pool", None)
    kwargs.pop("path", None)
    cls = tls if issubclass(pool.connection_class, (SSLConnection, tls)) else plain
    kwargs.update(host=host, port=port, socket_timeout=timeout, socket_connect_timeout=timeout)
    # A replica that fails leaves the rotation at once and the read goes elsewhere: retrying
    # it (redis-py 6+ retries timeouts by default) would only delay the read.
    kwargs.update(retry=retry_class(plain)(NoBackoff(), 0), retry_on_timeout=False)
    return cls, kwargs


def retry_class(plain: type[Any]) -> type[Any]:
    """redis-py's ``Retry`` of the same flavour (sync or asyncio) as ``plain``."""
    if plain.__module__.startswith("redis.asyncio"):
        from redis.asyncio.retry import Retry as AsyncRetry

        return AsyncRetry
    return Retry
