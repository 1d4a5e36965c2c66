"""``redis_hotkey.Redis``: a ``redis.Redis`` whose calls go where the hotkey module says."""

from __future__ import annotations

import weakref
from typing import Any, ClassVar

import redis
from redis.client import Pipeline as _Pipeline

from ._flow import Views
from ._options import Options
from ._sync import Router


class Redis(Views, redis.Redis):
    """A drop-in ``redis.Redis``: writes and cold reads go to the master (this client's own
    pool), reads of hot keys to the local cache or a healthy replica. Every reply is what
    ``redis.Redis`` returns for the same call: the call is passed through to a real client of
    the chosen node, with this client's settings and response callbacks.

    Router settings: ``Redis(..., hotkey=Options(...))``, or a class with other defaults for
    code that builds the client itself (``sentinel.master_for(name,
    redis_class=redis_hotkey.Redis.using(Options(...)))``).
    """

    hotkey_options: ClassVar[Options] = Options()
    _hotkey: Router

    def __init__(self, *args: Any, hotkey: Options | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        router = Router(self, hotkey or type(self).hotkey_options)
        self._hotkey = router
        # The link thread holds the router, not this client: when the client goes, so does it.
        weakref.finalize(self, router.stop)
        router.ensure_started()

    @classmethod
    def using(cls, options: Options) -> type[Redis]:
        """This class with other router settings (for ``master_for(redis_class=…)``)."""
        return type(cls.__name__, (cls,), {"hotkey_options": options})

    def execute_command(self, *args: Any, **options: Any) -> Any:
        return self._hotkey.execute(super().execute_command, args, options)

    def pipeline(self, transaction: bool = True, shard_hint: Any = None) -> Pipeline:
        """A pipeline (MULTI/EXEC when ``transaction``) on the master; the keys its commands
        write count as this client's writes."""
        pipe = Pipeline(self.connection_pool, self.response_callbacks, transaction, shard_hint)
        pipe._hotkey = self._hotkey
        return pipe

    def close(self) -> None:
        self._hotkey.stop()
        super().close()


class Pipeline(_Pipeline):
    """``redis.client.Pipeline`` that tells the router which keys it wrote."""

    _hotkey: Router

    def execute(self, raise_on_error: bool = True) -> list[Any]:
        stack = [(args, options) for args, options in self.command_stack]
        try:
            return super().execute(raise_on_error)
        finally:
            if stack:
                self._hotkey.wrote_pipeline(stack)


def wrap(client: redis.Redis, hotkey: Options | None = None) -> Redis:
    """A router over an existing client: shares its pool (connections, credentials, TLS,
    Sentinel) and response callbacks."""
    routed = Redis(connection_pool=client.connection_pool, hotkey=hotkey)
    routed.response_callbacks = client.response_callbacks
    routed._hotkey.response_callbacks = client.response_callbacks
    routed._hotkey.fill.response_callbacks = client.response_callbacks
    return routed
