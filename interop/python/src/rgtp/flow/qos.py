"""QoS specifications of flows, named and valued as in pyOuroboros' ``ouroboros.qos``,
with the presets of Ouroboros' ``qos.h`` (``qos_raw``, ``qos_best_effort``,
``qos_video``, ``qos_voice``, ``qos_data``, …).

The QoS of a flow selects its layers (``spec/flow.md`` section 2): ``loss=0``
retransmits what is lost, ``in_order=1`` hands SDUs out in order, ``bandwidth`` paces
the sender, ``timeout`` (ms) takes the flow down when the peer stays silent.
``cypher_s > 0`` seals the flow (ChaCha20-Poly1305 under per-flow keys derived from a
key both ends hold: ``RGTP_FLOW_KEY``, 64 hex digits, or ``RGTP_FLOW_KEY_FILE``); without
a key such a flow is refused with an error naming them. A loss-tolerant QoS with a small
``max_gap`` or ``delay`` (video, voice) adds Reed-Solomon parity instead of
retransmission.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "MILLION",
    "BILLION",
    "DEFAULT_PEER_TIMEOUT",
    "UINT32_MAX",
    "UINT64_MAX",
    "QoSSpec",
    "PRESETS",
    "qos_raw",
    "qos_raw_no_errors",
    "qos_raw_crypt",
    "qos_best_effort",
    "qos_best_effort_crypt",
    "qos_video",
    "qos_video_crypt",
    "qos_voice",
    "qos_voice_crypt",
    "qos_data",
    "qos_data_crypt",
]

# Some constants
MILLION = 1000 * 1000
BILLION = 1000 * 1000 * 1000

DEFAULT_PEER_TIMEOUT = 120000
UINT32_MAX = 0xFFFFFFFF
UINT64_MAX = 0xFFFFFFFFFFFFFFFF

_FIELDS = (
    "delay",
    "bandwidth",
    "availability",
    "loss",
    "ber",
    "in_order",
    "max_gap",
    "timeout",
    "cypher_s",
)


class QoSSpec:
    """
    delay:        In ms, default UINT32_MAX
    bandwidth:    In bits / s, default 0
    availability: Class of 9s, default 0
    loss:         Packet loss, default 1 (0: lost SDUs are retransmitted)
    ber:          Bit error rate, errors per billion bits, default 1
    in_order:     In-order delivery, default 0
    max_gap:      Maximum interruption in ms, default UINT32_MAX
    timeout:      Peer timeout (ms), default 120000 (2 minutes); 0: none
    cypher_s:     Requested encryption strength in bits, default 0 (none)
    """

    def __init__(
        self,
        delay: int = UINT32_MAX,
        bandwidth: int = 0,
        availability: int = 0,
        loss: int = 1,
        ber: int = 1,
        in_order: int = 0,
        max_gap: int = UINT32_MAX,
        timeout: int = DEFAULT_PEER_TIMEOUT,
        cypher_s: int = 0,
    ):
        self.delay = delay
        self.bandwidth = bandwidth
        self.availability = availability
        self.loss = loss
        self.ber = ber
        self.in_order = in_order
        self.max_gap = max_gap
        self.timeout = timeout
        self.cypher_s = cypher_s

    def __eq__(self, other: Any) -> bool:
        if not isinstance(other, QoSSpec):
            return NotImplemented
        return all(getattr(self, f) == getattr(other, f) for f in _FIELDS)

    def __hash__(self) -> int:
        return hash(tuple(getattr(self, f) for f in _FIELDS))

    def __repr__(self) -> str:
        args = ", ".join(f"{f}={getattr(self, f)!r}" for f in _FIELDS)
        return f"QoSSpec({args})"


def _preset(delay, bandwidth, availability, loss, ber, in_order, max_gap, cypher_s=0):
    return QoSSpec(
        delay=delay,
        bandwidth=bandwidth,
        availability=availability,
        loss=loss,
        ber=ber,
        in_order=in_order,
        max_gap=max_gap,
        timeout=DEFAULT_PEER_TIMEOUT,
        cypher_s=cypher_s,
    )


#: Raw datagrams: loss, errors and reordering all tolerated.
qos_raw = _preset(UINT32_MAX, 0, 0, 1, 1, 0, UINT32_MAX)
#: Raw datagrams without bit errors.
qos_raw_no_errors = _preset(UINT32_MAX, 0, 0, 1, 0, 0, UINT32_MAX)
#: Raw datagrams without bit errors, encrypted (both ends need the flow key).
qos_raw_crypt = _preset(UINT32_MAX, 0, 0, 1, 0, 0, UINT32_MAX, 256)
#: Best effort: loss tolerated, delivered in order.
qos_best_effort = _preset(UINT32_MAX, 0, 0, 1, 0, 1, UINT32_MAX)
#: Best effort, encrypted (both ends need the flow key).
qos_best_effort_crypt = _preset(UINT32_MAX, 0, 0, 1, 0, 1, UINT32_MAX, 256)
#: Video: 100 ms delay and gap, all the bandwidth there is, in order.
qos_video = _preset(100, UINT64_MAX, 3, 1, 0, 1, 100)
#: Video, encrypted (both ends need the flow key).
qos_video_crypt = _preset(100, UINT64_MAX, 3, 1, 0, 1, 100, 256)
#: Voice: 50 ms delay and gap, 100 kbit/s, in order.
qos_voice = _preset(50, 100000, 5, 1, 0, 1, 50)
#: Voice, encrypted (both ends need the flow key).
qos_voice_crypt = _preset(50, 100000, 5, 1, 0, 1, 50, 256)
#: Data: nothing lost, in order.
qos_data = _preset(1000, 0, 0, 0, 0, 1, 2000)
#: Data, encrypted (both ends need the flow key).
qos_data_crypt = _preset(1000, 0, 0, 0, 0, 1, 2000, 256)

#: Every preset by the name the C library knows it by (``rgtp_flow_qos_preset``).
PRESETS = {
    "raw": qos_raw,
    "raw_no_errors": qos_raw_no_errors,
    "raw_crypt": qos_raw_crypt,
    "best_effort": qos_best_effort,
    "best_effort_crypt": qos_best_effort_crypt,
    "video": qos_video,
    "video_crypt": qos_video_crypt,
    "voice": qos_voice,
    "voice_crypt": qos_voice_crypt,
    "data": qos_data,
    "data_crypt": qos_data_crypt,
}
