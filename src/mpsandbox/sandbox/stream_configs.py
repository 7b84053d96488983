"""The stream configs in force: loaded at start, refreshed while running.

A part of :class:`~mpsandbox.sandbox.Sandbox` (a mixin): the state it reads and writes is
set up in ``Sandbox.__init__``.
"""

from __future__ import annotations

import asyncio
import logging

from mpsandbox.platform.stream_configs import StreamConfigs

log = logging.getLogger(__name__)


class StreamConfigsInForce:
    """Loads --stream-config off the event loop and keeps the pipeline's copy current."""

    @property
    def stream_configs(self) -> StreamConfigs | None:
        """The stream configs in force (None: no --stream-config, every stream allowed)."""
        return self.pipeline.stream_configs

    async def load_stream_configs(self) -> None:
        """First load of --stream-config, off the event loop; raises StreamConfigError."""
        if self.stream_source is None:
            return
        loop = asyncio.get_running_loop()
        configs = await loop.run_in_executor(None, self.stream_source.load)
        self.pipeline.stream_configs = configs

    def _stream_configs_changed(self, configs: StreamConfigs) -> None:
        self.pipeline.stream_configs = configs

    async def start_stream_refresh(self) -> None:
        if self.stream_source is None or self.stream_source.refresh_s <= 0:
            return
        self._stream_stop = asyncio.Event()
        self._stream_task = asyncio.create_task(
            self.stream_source.run(self._stream_stop), name="stream-config-refresh"
        )
