"""Space one process's requests by when they actually went out (see `SendGate`)."""

from __future__ import annotations

import threading
import time


class SendGate:
    """Space this process's requests by when they actually went out, not when permitted.

    A thread that got its permit can still be held up before it writes the request (the
    interpreter lock is busy while answers are parsed and stored); the next thread, on time,
    would then send too soon after it. The gate lets one request at a time go between its
    permit and the moment its headers are written (`sent`), and only `interval_s` after the
    previous one went out. A request that never reaches `sent` frees the gate after
    `stuck_s`.

    Between the gate and the headers going out there are a few milliseconds (the connection,
    the interpreter lock); waited for after each request, they would add up to a few percent
    of the rate. So the gate opens that much early, as measured (a moving average), but never
    more than `lead_cap_s` (what the policy keeps above 1/rate): two requests still leave at
    least `interval_s - lead_cap_s` apart.

    A server that refuses requests as too fast (a spike arrest) may allow less than the
    policy says: an independent gateway, a sandbox, a stricter rule. Each refusal of a request
    sent since the last widening spaces requests 25 % more (`widen`, up to `SLOWEST` times
    the policy's interval); each answer that is not a refusal takes back 2 % of the policy's
    interval (`eased`). So the pace settles just under what the server allows, and comes back
    to the policy's when the refusals stop.
    """

    SLOWEST = 4.0
    WIDEN_BY, EASE_BY = 1.25, 0.02

    def __init__(self, interval_s: float, *, stuck_s: float = 1.0, lead_cap_s: float = 0.0) -> None:
        self.interval_s = interval_s
        self._base_s = interval_s
        self._widest_s = interval_s * self.SLOWEST
        self._widened_at = float("-inf")
        self._stuck_s = stuck_s
        self._lead_cap_s = max(0.0, lead_cap_s)
        self._lead_s = 0.0  # moving average of the time from the gate to the headers
        self._cond = threading.Condition()
        self._last_sent = float("-inf")
        self._passing_since: float | None = None

    def wait_turn(self) -> float:
        """Block until this thread may write its request; return its pass for `sent`."""
        with self._cond:
            while True:
                now = time.monotonic()
                if self._passing_since is not None and now - self._passing_since < self._stuck_s:
                    self._cond.wait(self._stuck_s - (now - self._passing_since))
                    continue
                wait = self._last_sent + self.interval_s - min(self._lead_s, self._lead_cap_s) - now
                if wait > 0:
                    self._cond.wait(wait)
                    continue
                self._passing_since = now
                return now

    def widen(self, ticket: float) -> None:
        """A request that passed the gate at `ticket` was refused as too fast: space requests
        more, unless it left before the last widening (that one answered for it already)."""
        with self._cond:
            if ticket <= self._widened_at:
                return
            self._widened_at = time.monotonic()
            self.interval_s = min(self._widest_s, self.interval_s * self.WIDEN_BY)

    def eased(self) -> None:
        """A request was answered (not refused as too fast): come back toward the policy's pace."""
        with self._cond:
            if self.interval_s > self._base_s:
                self.interval_s = max(self._base_s, self.interval_s - self._base_s * self.EASE_BY)

    def sent(self, ticket: float) -> None:
        """Record that the request holding `ticket` went out now (again: no effect)."""
        with self._cond:
            if self._passing_since == ticket:
                self._last_sent = time.monotonic()
                self._lead_s += 0.2 * ((self._last_sent - ticket) - self._lead_s)
                self._passing_since = None
                self._cond.notify_all()

