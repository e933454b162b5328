"""Running the sandbox simulator beside the API, in a thread of the server process."""

from __future__ import annotations

import threading

import structlog

from issuance.platform import Platform

log = structlog.get_logger("issuance.simulator")


class SimulatorThread:
    """Calls `Simulator.tick` every `simulator_interval_seconds` until stopped."""

    def __init__(self, platform: Platform) -> None:
        self.platform = platform
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, name="simulator", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join(timeout=10)

    def _run(self) -> None:
        simulator = self.platform.simulator()
        interval = self.platform.settings.simulator_interval_seconds
        while not self.stopping.wait(interval):
            try:
                moved = simulator.tick()
            except Exception:  # a failed round must not stop the sandbox; the next one retries
                log.exception("simulator round failed")
                continue
            if moved:
                log.info("simulator round", moved=moved)
