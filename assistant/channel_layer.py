"""The Redis channel layer, waiting for a free Redis connection instead of failing.

channels_redis builds a plain redis-py pool, which raises MaxConnectionsError as soon as
all its connections are in use: when many sockets closed at once their group_discard
calls failed and left dead entries in their home's group for a day (group_expiry),
which every broadcast kept sending to. This layer's pool makes such a burst wait its turn
(up to the host's `timeout`, seconds) for one of its `max_connections`.
"""

from __future__ import annotations

from channels_redis.core import RedisChannelLayer
from redis.asyncio import BlockingConnectionPool


class PooledRedisChannelLayer(RedisChannelLayer):
    def create_pool(self, index: int) -> BlockingConnectionPool:
        host = dict(self.hosts[index])
        address = host.pop("address")
        return BlockingConnectionPool.from_url(address, **host)
