"""Celery's filesystem broker (the embedded default), with each message made visible only once fully written.

kombu's own transport creates `<name>.msg` and then writes into it, while a consumer lists the folder and takes
any `*.msg` it sees: under load a worker took a file still empty, failed to decode it and exited (bin/start then
stopped the whole stack), and the message written into the file it had taken away was lost. Here a message is
written under a name no consumer picks (`.partial`) and renamed into place, which is atomic within a folder.
"""
from __future__ import annotations

import os
import uuid
from time import monotonic

from kombu.exceptions import ChannelError
from kombu.transport import filesystem
from kombu.utils.encoding import str_to_bytes
from kombu.utils.json import dumps


class Channel(filesystem.Channel):
    def _put(self, queue: str, payload: dict, **kwargs) -> None:
        # The same name as kombu's (ordered by time, then unique), so consumers keep their order.
        final = os.path.join(self.data_folder_out, f"{int(round(monotonic() * 1000))}_{uuid.uuid4()}.{queue}.msg")
        partial = f"{final}.partial"
        try:
            with open(partial, "wb") as file:
                file.write(str_to_bytes(dumps(payload)))
            os.replace(partial, final)
        except OSError as exc:
            raise ChannelError(f"Cannot add file {final!r} to directory") from exc


class Transport(filesystem.Transport):
    Channel = Channel
