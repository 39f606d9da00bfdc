"""What the worker needs from Celery and kombu to outlive a lost broker (settings: CELERY_WORKER_CONSUMER,
CELERY_BROKER_TRANSPORT). Each class changes one thing, and says why."""
from __future__ import annotations

import os

from celery.utils.threads import bound_open_broker_sockets
from celery.worker.consumer import Consumer as CeleryConsumer
from celery.worker.consumer.consumer import COLLECT_SOCKET_TIMEOUT
from kombu.transport import filesystem


class Consumer(CeleryConsumer):
    """Celery's consumer, without the second close of a connection it has just collected.

    Celery 5.7.0 (celery/celery#10242) closes the connection again after `collect()` when the broker goes away.
    `collect()` has already detached the transport from its connection, but it leaves the task channel half
    closed when its BRPOP socket failed first (the worker had free slots, so it was polling). The second close then
    restores that channel's unacknowledged messages through a transport with no address: kombu's redis
    `_connparams` raises AttributeError("'NoneType' object has no attribute 'hostname'"), which Celery's
    `ignore_errors` does not ignore, and the worker dies ("Unrecoverable error") with its tasks in flight.
    Celery 5.6.3 only collected. So collect here, bounded as 5.7.0 does, and hand Celery no connection to close:
    the rest of its handling (the warning, the reconnection with back-off) is unchanged. The unacknowledged
    messages stay in Redis; an in-flight task still acknowledges its message when it ends."""

    def on_connection_error_after_connected(self, exc):
        connection, self.connection = self.connection, None
        if connection is not None:
            bound_open_broker_sockets(connection, COLLECT_SOCKET_TIMEOUT)
            try:
                connection.collect(socket_timeout=COLLECT_SOCKET_TIMEOUT)
            except Exception:  # pylint: disable=broad-except  # as Celery: a dead connection may fail to close
                pass
        super().on_connection_error_after_connected(exc)


class FilesystemTransport(filesystem.Transport):
    """The embedded broker (`make run`): a folder that goes away is a lost connection, not a crash.

    kombu treats the FileNotFoundError of a missing folder as an unknown error, so the worker dies
    ("Unrecoverable error"). Counted as a connection error, the worker reconnects with back-off, and connecting
    fails while the folder is missing instead of spinning."""

    connection_errors = filesystem.Transport.connection_errors + (OSError,)

    def establish_connection(self):
        folder = self.client.transport_options.get("data_folder_in", "data_in")
        if not os.path.isdir(folder):
            raise FileNotFoundError(f"the broker folder {folder} is missing")
        return super().establish_connection()
