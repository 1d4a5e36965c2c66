"""redis-hotkey: route redis-py calls by the hotkey module's hot set.

Writes and cold reads go to the master; reads of hot keys go to a local cache (invalidated by
the server through client tracking) or a healthy replica, as the module advises.

    import redis_hotkey
    r = redis_hotkey.Redis.from_url("redis://127.0.0.1:7379/0")
    r.zadd("leaderboard:global", {"ada": 42})
    r.zrevrange("leaderboard:global", 0, 9, withscores=True)
"""

from ._cluster import NotRouted
from ._options import Metrics, Options
from .client import Pipeline, Redis, wrap
from .cluster import RedisCluster

__all__ = ["Metrics", "NotRouted", "Options", "Pipeline", "Redis", "RedisCluster", "wrap"]
