#!/usr/bin/env python3
"""Writes spec/vectors/frames.txt: raw-Ethernet and recorded-UDP frames (§15, §16.1).

Built here with struct and hand-written checksums, independently of the Rust
code, so the vectors check it. Run: python3 spec/vectors/gen/frame_vectors.py
"""
import ipaddress
import os
import struct

OUT = os.path.join(os.path.dirname(__file__), "..", "frames.txt")


def csum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s > 0xFFFF:
        s = (s & 0xFFFF) + (s >> 16)
    return (~s) & 0xFFFF


def mac(s):
    return bytes(int(x, 16) for x in s.split(":"))


def synth_mac(ip):
    b = ipaddress.ip_address(ip).packed[-4:]
    return b"\x02\x00" + b


def rgtp(ptype, body_len, fill):
    """A header with a correct Length, then `fill` repeated (content is irrelevant here)."""
    total = 4 + body_len
    return bytes([1, ptype]) + struct.pack("!H", total) + bytes([fill]) * body_len


def udp4(src, sport, dst, dport, payload):
    ulen = 8 + len(payload)
    ip = bytearray(struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + ulen, 0, 0x4000, 64, 17, 0,
                               ipaddress.ip_address(src).packed, ipaddress.ip_address(dst).packed))
    ip[10:12] = struct.pack("!H", csum(bytes(ip)))
    pseudo = ipaddress.ip_address(src).packed + ipaddress.ip_address(dst).packed + struct.pack("!BBH", 0, 17, ulen)
    udp = bytearray(struct.pack("!HHHH", sport, dport, ulen, 0) + payload)
    c = csum(pseudo + bytes(udp)) or 0xFFFF
    udp[6:8] = struct.pack("!H", c)
    return synth_mac(dst) + synth_mac(src) + b"\x08\x00" + bytes(ip) + bytes(udp)


def udp6(src, sport, dst, dport, payload):
    ulen = 8 + len(payload)
    s6, d6 = ipaddress.ip_address(src).packed, ipaddress.ip_address(dst).packed
    ip = struct.pack("!IHBB16s16s", 6 << 28, ulen, 17, 64, s6, d6)
    pseudo = s6 + d6 + struct.pack("!I3xB", ulen, 17)
    udp = bytearray(struct.pack("!HHHH", sport, dport, ulen, 0) + payload)
    c = csum(pseudo + bytes(udp)) or 0xFFFF
    udp[6:8] = struct.pack("!H", c)
    return synth_mac(dst) + synth_mac(src) + b"\x86\xdd" + ip + bytes(udp)


def eth(dst, src, payload, vlan=None, pad_to=None):
    f = mac(dst) + mac(src)
    if vlan is not None:
        vid, pcp = vlan
        f += b"\x81\x00" + struct.pack("!H", (pcp << 13) | vid)
    f += b"\x88\xb5" + payload
    if pad_to and len(f) < pad_to:
        f += b"\0" * (pad_to - len(f))
    return f


records = []
ka = rgtp(0x08, 28, 0x11)  # Keepalive, 32 bytes
nak = rgtp(0x06, 24, 0x22)  # a 28-byte NAK-shaped packet
pr = rgtp(0x01, 32, 0x33)  # Pull_Request, 36 bytes
chunk = rgtp(0x03, 96, 0x44)  # 100-byte Chunk_Data-shaped packet

records.append(dict(name="raw Ethernet, untagged, padded to 60 bytes: the first Length bytes are the packet",
                    build="no", frame=eth("02:00:5e:10:00:02", "02:00:5e:10:00:01", ka, pad_to=60),
                    src="02-00-5e-10-00-01", dst="02-00-5e-10-00-02", vlan="none", payload=ka, padding=60 - 14 - 32))
records.append(dict(name="raw Ethernet, VLAN 100 PCP 5, as sent (built and decoded)",
                    build="yes", frame=eth("02:00:5e:10:00:01", "02:00:5e:10:00:02", nak, vlan=(100, 5)),
                    src="02-00-5e-10-00-02", dst="02-00-5e-10-00-01", vlan="100/5", payload=nak, padding=0))
records.append(dict(name="raw Ethernet broadcast, priority tag (VID 0, PCP 6), padded",
                    build="no", frame=eth("ff:ff:ff:ff:ff:ff", "02:00:5e:10:00:02", pr, vlan=(0, 6), pad_to=64),
                    src="02-00-5e-10-00-02", dst="ff-ff-ff-ff-ff-ff", vlan="0/6", payload=pr, padding=64 - 18 - 36))
long_pkt = chunk[:2] + struct.pack("!H", 90) + chunk[4:]
records.append(dict(name="raw Ethernet, a 100-byte payload whose Length says 90: not padding, kept whole (malformed)",
                    build="yes", frame=eth("02:00:5e:10:00:02", "02:00:5e:10:00:01", long_pkt),
                    src="02-00-5e-10-00-01", dst="02-00-5e-10-00-02", vlan="none", payload=long_pkt, padding=0))
records.append(dict(name="UDP over IPv4 as a recorder synthesises it",
                    build="yes", frame=udp4("192.0.2.2", 40000, "192.0.2.1", 9000, pr),
                    src="192.0.2.2:40000", dst="192.0.2.1:9000", vlan="none", payload=pr, padding=0))
records.append(dict(name="UDP over IPv4, odd-length payload (checksum pads with a zero byte)",
                    build="yes", frame=udp4("127.0.0.1", 9000, "127.0.0.1", 53966, rgtp(0x03, 25, 0x55)),
                    src="127.0.0.1:9000", dst="127.0.0.1:53966", vlan="none", payload=rgtp(0x03, 25, 0x55), padding=0))
records.append(dict(name="UDP over IPv6 as a recorder synthesises it",
                    build="yes", frame=udp6("2001:db8::1", 9000, "2001:db8::2", 40000, chunk),
                    src="[2001:db8::1]:9000", dst="[2001:db8::2]:40000", vlan="none", payload=chunk, padding=0))

with open(OUT, "w") as f:
    f.write("""# RGTP frame vectors: raw Ethernet (spec §15) and recorded UDP (spec §16.1).
# Generated by spec/vectors/gen/frame_vectors.py (struct, hand-written
# checksums); do not edit.
#
# Format: records separated by one blank line; each record is `key = value`.
#   name     what it shows
#   build    yes: a recorder given src, dst, vlan and payload writes exactly
#            `frame`; no: the frame comes from the wire (padding) and is only decoded
#   frame    the whole Ethernet frame, hex
#   src, dst MAC (02-00-5e-10-00-01) or IP:port; synthesised UDP frames use MAC
#            02:00 + the last four address bytes
#   vlan     none, or VID/PCP of the outer 802.1Q tag
#   payload  the datagram a receiver takes from the frame, hex
#   padding  bytes after it that are Ethernet padding
""")
    for r in records:
        f.write("\n")
        for k in ("name", "build", "frame", "src", "dst", "vlan", "payload", "padding"):
            v = r[k]
            if isinstance(v, bytes):
                v = v.hex()
            f.write(f"{k} = {v}\n")
print("wrote", OUT)
