"""A small authoritative DNS server on 127.0.0.1 for tests: answers from zone text, never recurses.

The DNS checks (F2 `domain check`, F75 inbound SPF/DKIM/DMARC) are tested against this server,
never against a real resolver. dnspython builds every answer: zones come from `dns.zone.from_text`
and responses from `dns.message.make_response`. It listens on one ephemeral port over UDP and
TCP; an answer too big for the client's UDP size goes back truncated (TC), so the client's TCP
retry is exercised too (long DKIM keys).

    server = ZoneServer().start()
    server.load("example.test", '@ TXT "v=spf1 -all"')
    ... Settings(dns=server.dns_settings()) ...
    server.stop()

The `dns_server` and `silent_dns_port` fixtures in conftest.py wrap it.
"""

from __future__ import annotations

import contextlib
import socket
import socketserver
import struct
import threading
from collections.abc import Iterator

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import dns.zone

from tui_helpdesk.config import DnsSettings

ZONE_HEADER = """
$TTL 300
@ SOA ns.{origin}. hostmaster.{origin}. 1 3600 600 86400 300
@ NS ns.{origin}.
"""
UDP_LIMIT_WITHOUT_EDNS = 512


class ZoneServer:
    """Authoritative answers from the zones loaded; REFUSED for names outside all of them."""

    def __init__(self) -> None:
        self._zones: dict[dns.name.Name, dns.zone.Zone] = {}
        self._lock = threading.Lock()
        self._servers: list[socketserver.BaseServer] = []
        self.port = 0
        self.queries: list[tuple[str, str]] = []

    # --- zone data -------------------------------------------------------------------------

    def load(self, origin: str, records: str) -> None:
        """Add (or replace) a zone; SOA and NS are added, `records` are zone-file lines."""
        origin = origin.rstrip(".") + "."
        text = ZONE_HEADER.format(origin=origin.rstrip(".")) + records
        zone = dns.zone.from_text(text, origin=origin, relativize=False, check_origin=False)
        with self._lock:
            self._zones[dns.name.from_text(origin)] = zone

    def _zone_for(self, name: dns.name.Name) -> dns.zone.Zone | None:
        with self._lock:
            matches = [origin for origin in self._zones if name.is_subdomain(origin)]
            return self._zones[max(matches, key=len)] if matches else None

    # --- answering -------------------------------------------------------------------------

    def respond(self, query: dns.message.Message) -> dns.message.Message:
        response = dns.message.make_response(query)
        response.flags |= dns.flags.AA
        question = query.question[0]
        self.queries.append((question.name.to_text(), dns.rdatatype.to_text(question.rdtype)))
        name, rdtype = question.name, question.rdtype
        for _ in range(8):  # follow a CNAME chain through the zones we serve
            zone = self._zone_for(name)
            if zone is None:
                if not response.answer:
                    response.set_rcode(dns.rcode.REFUSED)
                return response
            target = self._answer_from(zone, name, rdtype, response)
            if target is None:
                return response
            name = target
        return response

    def _answer_from(
        self,
        zone: dns.zone.Zone,
        name: dns.name.Name,
        rdtype: dns.rdatatype.RdataType,
        response: dns.message.Message,
    ) -> dns.name.Name | None:
        """Add what the zone holds for the name; return a CNAME target to follow, else None."""
        node = zone.get_node(name)
        if node is None:
            if not any(existing.is_subdomain(name) for existing in zone.nodes):
                response.set_rcode(dns.rcode.NXDOMAIN)
            return None
        found = node.get_rdataset(dns.rdataclass.IN, rdtype)
        if found is not None:
            response.answer.append(_rrset(name, found))
            return None
        cname = node.get_rdataset(dns.rdataclass.IN, dns.rdatatype.CNAME)
        if cname is None or rdtype == dns.rdatatype.CNAME:
            return None
        response.answer.append(_rrset(name, cname))
        return cname[0].target

    def wire_answer(self, wire: bytes, *, udp: bool) -> bytes | None:
        try:
            query = dns.message.from_wire(wire)
        except dns.exception.DNSException:
            return None
        response = self.respond(query)
        if not udp:
            return response.to_wire()
        limit = max(query.payload, UDP_LIMIT_WITHOUT_EDNS) if query.edns >= 0 else 512
        try:
            return response.to_wire(max_size=limit)
        except dns.exception.TooBig:
            truncated = dns.message.make_response(query)
            truncated.flags |= dns.flags.AA | dns.flags.TC
            return truncated.to_wire()

    # --- sockets ---------------------------------------------------------------------------

    def start(self) -> ZoneServer:
        for _ in range(20):  # the TCP port may be taken even though the UDP one was free
            udp = _UdpServer(("127.0.0.1", 0), _UdpHandler, zone_server=self)
            port = udp.server_address[1]
            try:
                tcp = _TcpServer(("127.0.0.1", port), _TcpHandler, zone_server=self)
            except OSError:
                udp.server_close()
                continue
            self.port = port
            self._servers = [udp, tcp]
            for server in self._servers:  # a short poll: stop() (each test's teardown) is quick
                threading.Thread(
                    target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
                ).start()
            return self
        raise RuntimeError("no free port for the test DNS server")

    def stop(self) -> None:
        for server in self._servers:
            server.shutdown()
            server.server_close()
        self._servers = []

    def dns_settings(self, timeout_seconds: float = 5.0, **values: object) -> DnsSettings:
        return DnsSettings(
            nameservers=("127.0.0.1",), port=self.port, timeout_seconds=timeout_seconds, **values
        )

    def environ(self) -> dict[str, str]:
        """The same resolver as environment variables (for CLI runs)."""
        return {
            "TUI_HELPDESK_DNS_NAMESERVERS": "127.0.0.1",
            "TUI_HELPDESK_DNS_PORT": str(self.port),
        }


def _rrset(name: dns.name.Name, rdataset: dns.rdataset.Rdataset) -> dns.rrset.RRset:
    rrset = dns.rrset.RRset(name, rdataset.rdclass, rdataset.rdtype)
    rrset.update(rdataset)
    return rrset


class _UdpServer(socketserver.ThreadingUDPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], handler: type, *, zone_server: ZoneServer):
        self.zone_server = zone_server
        super().__init__(address, handler)


class _TcpServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], handler: type, *, zone_server: ZoneServer):
        self.zone_server = zone_server
        super().__init__(address, handler)


class _UdpHandler(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        data, sock = self.request
        answer = self.server.zone_server.wire_answer(data, udp=True)  # type: ignore[attr-defined]
        if answer is not None:
            sock.sendto(answer, self.client_address)


class _TcpHandler(socketserver.StreamRequestHandler):
    def handle(self) -> None:
        while True:
            head = self.rfile.read(2)
            if len(head) < 2:
                return
            data = self.rfile.read(struct.unpack("!H", head)[0])
            answer = self.server.zone_server.wire_answer(data, udp=False)  # type: ignore[attr-defined]
            if answer is None:
                return
            self.wfile.write(struct.pack("!H", len(answer)) + answer)


@contextlib.contextmanager
def silent_port() -> Iterator[int]:
    """A UDP port that receives queries and never answers: a nameserver that is down."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    try:
        yield sock.getsockname()[1]
    finally:
        sock.close()
