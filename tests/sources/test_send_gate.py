"""The send gate spaces one process's requests by when their headers actually went out."""

from __future__ import annotations

import itertools
import threading
import time

from pipeline.sources.uscis.send_gate import SendGate


def send_through(gate: SendGate, senders: int, each: int, latencies: list[float]) -> list[float]:
    """Threads pass the gate, take the next of `latencies` to write their headers, say so."""
    sent: list[float] = []
    lock = threading.Lock()
    turn = iter(latencies * senders * each)

    def sender() -> None:
        for _ in range(each):
            ticket = gate.wait_turn()
            with lock:
                latency = next(turn)
            time.sleep(latency)  # the connection, the interpreter lock: time before the headers
            went_out = time.monotonic()
            gate.sent(ticket)
            with lock:
                sent.append(went_out)

    threads = [threading.Thread(target=sender) for _ in range(senders)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sorted(sent)


def test_requests_never_go_out_closer_than_one_over_the_rate_even_when_the_gate_opens_early() -> None:
    interval, cap = 0.020, 0.004
    gate = SendGate(interval, lead_cap_s=cap)
    # 12 ms then none, in turn: the gate learns about 6 ms but opens at most 4 ms early, so
    # a quick request after a slow one still leaves at least interval - cap after it
    sent = send_through(gate, senders=4, each=10, latencies=[0.012, 0.0])
    gaps = [b - a for a, b in itertools.pairwise(sent)]
    assert min(gaps) >= interval - cap
    assert len(sent) == 40


def test_without_a_lead_the_gate_keeps_the_whole_interval() -> None:
    interval = 0.020
    gate = SendGate(interval)
    sent = send_through(gate, senders=3, each=8, latencies=[0.003])
    gaps = [b - a for a, b in itertools.pairwise(sent)]
    assert min(gaps) >= interval


def test_a_server_stricter_than_the_policy_slows_the_gate_until_it_stops_refusing() -> None:
    """A gateway that refuses requests closer than twice the policy's interval: the gate settles
    just under its pace, then comes back to the policy's once the refusals stop."""
    interval = 0.010
    gate = SendGate(interval)

    def send(n: int, server_gap: float) -> list[bool]:
        refused: list[bool] = []
        last = float("-inf")
        for _ in range(n):
            ticket = gate.wait_turn()
            now = time.monotonic()
            gate.sent(ticket)
            refused.append(now - last < server_gap)
            last = now
            if refused[-1]:
                gate.widen(ticket)
            else:
                gate.eased()
        return refused

    stricter = send(160, server_gap=2 * interval)
    assert sum(stricter[:20]) >= 1  # refused at the policy's pace, until it slowed down
    assert sum(stricter[-80:]) <= 8  # then about one refusal in twenty
    assert 2 * interval <= gate.interval_s <= 3 * interval  # just slower than the server allows

    relaxed = send(120, server_gap=interval)
    assert not any(relaxed)
    assert gate.interval_s == interval  # back at the policy's pace


def test_refusals_of_requests_sent_before_the_gate_slowed_down_do_not_slow_it_again() -> None:
    gate = SendGate(0.010)
    earlier = gate.wait_turn()
    gate.sent(earlier)
    gate.widen(earlier)
    assert abs(gate.interval_s - 0.0125) < 1e-9
    gate.widen(earlier)  # three answers in flight, all refused: one slow-down, not three
    gate.widen(earlier)
    assert abs(gate.interval_s - 0.0125) < 1e-9
    later = gate.wait_turn()
    gate.sent(later)
    gate.widen(later)
    assert abs(gate.interval_s - 0.015625) < 1e-9
    for _ in range(1000):
        gate.eased()
    assert gate.interval_s == 0.010
