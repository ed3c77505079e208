#!/usr/bin/env python3
"""Writes the seed replies for fuzz_dns_reply (and its corpus replay test).

Run from anywhere: python3 tests/corpus/dns/make_seeds.py
The .bin files are checked in; this script documents what they hold.
"""
import os
import socket
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
A, CNAME, PTR, AAAA, SRV, NAPTR = 1, 5, 12, 28, 33, 35


def name(n):
    out = b""
    for label in n.rstrip(".").split("."):
        out += bytes([len(label)]) + label.encode()
    return out + b"\0"


def header(ident, flags, qd=1, an=0, ns=0, ar=0):
    return struct.pack("!HHHHHH", ident, flags, qd, an, ns, ar)


def question(n, qtype):
    return name(n) + struct.pack("!HH", qtype, 1)


def rr(owner, rtype, rdata, ttl=300):
    return owner + struct.pack("!HHIH", rtype, 1, ttl, len(rdata)) + rdata


PTR_PTR = b"\xc0\x0c"  # the question name at offset 12

seeds = {}

# PTR, answer owner compressed to the question
seeds["ptr.bin"] = (header(0x1234, 0x8180, an=1) + question("1.2.0.192.in-addr.arpa", PTR)
                    + rr(PTR_PTR, PTR, name("lync.example.com")))

# PTR under ip6.arpa, two names, the second compressed into the first
q6 = "b.a.9.8.7.6.5.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa"
m = header(0x0001, 0x8580, an=2) + question(q6, PTR)
first_rdata_at = len(m) + 12  # after owner pointer (2) + type/class/ttl/rdlength (10)
m += rr(PTR_PTR, PTR, name("sip.example.com"))
m += rr(PTR_PTR, PTR, b"\x04edge" + struct.pack("!H", 0xC000 | (first_rdata_at + 4)))
seeds["ptr6_compressed.bin"] = m

# RFC 2317 classless delegation: CNAME then PTR
m = header(0x0202, 0x8180, an=2) + question("5.2.0.192.in-addr.arpa", PTR)
cname_rdata_at = len(m) + 12
m += rr(PTR_PTR, CNAME, b"\x010\x0225" + struct.pack("!H", 0xC000 | (12 + 2)))
m += rr(struct.pack("!H", 0xC000 | cname_rdata_at), PTR, name("host.example.net"))
seeds["ptr_rfc2317.bin"] = m

# A with a CNAME chain and an additional section
m = header(0x0a0a, 0x8180, an=3, ar=1) + question("www.example.com", A)
m += rr(PTR_PTR, CNAME, name("web.example.net"))
target_at = len(m) - len(name("web.example.net"))
m += rr(struct.pack("!H", 0xC000 | target_at), A, socket.inet_pton(socket.AF_INET, "192.0.2.5"))
m += rr(struct.pack("!H", 0xC000 | target_at), A, socket.inet_pton(socket.AF_INET, "192.0.2.6"))
m += rr(b"\0", 41, b"")  # OPT-like junk in the additional section
seeds["a_cname.bin"] = m

# AAAA
seeds["aaaa.bin"] = (header(0x0b0b, 0x8180, an=1) + question("v6.example.com", AAAA)
                     + rr(PTR_PTR, AAAA, socket.inet_pton(socket.AF_INET6, "2001:db8::10")))

# NXDOMAIN with an SOA in the authority section
soa = name("example.com") + struct.pack("!IIIII", 1, 3600, 600, 86400, 60)
seeds["nxdomain.bin"] = (header(0x0c0c, 0x8183, ns=1) + question("nowhere.example.com", A)
                         + rr(b"\xc0\x14", 6, name("ns.example.com") + soa))

# SERVFAIL, truncated
seeds["servfail.bin"] = header(0x0d0d, 0x8182) + question("1.2.0.192.in-addr.arpa", PTR)
seeds["truncated.bin"] = header(0x0e0e, 0x8380, an=1) + question("big.example.com", A) + b"\xc0\x0c\x00\x01"

# SRV (RFC 2782): two targets, one compressed into the other, and the root
m = header(0x0f0f, 0x8580, an=3) + question("_sip._tls.example.com", SRV)
srv1_at = len(m) + 12 + 6
m += rr(PTR_PTR, SRV, struct.pack("!HHH", 10, 60, 5061) + name("sip1.example.com"), ttl=600)
m += rr(PTR_PTR, SRV, struct.pack("!HHH", 20, 0, 5061) + b"\x04sip2" + struct.pack("!H", 0xC000 | (srv1_at + 5)), ttl=300)
m += rr(PTR_PTR, SRV, struct.pack("!HHH", 0, 0, 0) + b"\0")
seeds["srv.bin"] = m

# NAPTR (RFC 3403): RFC 3263 replacements and an ENUM regexp
def cs(t):
    return bytes([len(t)]) + t


m = header(0x1010, 0x8180, an=3) + question("example.com", NAPTR)
m += rr(PTR_PTR, NAPTR, struct.pack("!HH", 10, 50) + cs(b"S") + cs(b"SIPS+D2T") + cs(b"") + name("_sips._tcp.example.com"))
m += rr(PTR_PTR, NAPTR, struct.pack("!HH", 20, 50) + cs(b"s") + cs(b"SIP+D2U") + cs(b"") + name("_sip._udp.example.com"))
m += rr(PTR_PTR, NAPTR, struct.pack("!HH", 30, 10) + cs(b"u") + cs(b"E2U+sip") + cs(b"!^.*$!sip:info@example.com!") + b"\0")
seeds["naptr.bin"] = m

# NXDOMAIN for an SRV name, negative TTL from the SOA (RFC 2308)
seeds["srv_nxdomain.bin"] = (header(0x1111, 0x8183, ns=1) + question("_sip._udp.example.com", SRV)
                             + rr(b"\xc0\x16", 6, name("ns.example.com") + soa, ttl=900))

for fname, data in seeds.items():
    with open(os.path.join(HERE, fname), "wb") as f:
        f.write(data)
print(f"wrote {len(seeds)} seeds to {HERE}")
