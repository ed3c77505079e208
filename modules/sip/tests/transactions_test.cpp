// RFC 3261 §17 with an injected clock: retransmission and timeout behaviour
// of INVITE and non-INVITE transactions over UDP and TCP, transport errors
// surfacing at once, request matching (RFC 3261 and RFC 2543), CANCEL.
#include <doctest/doctest.h>
#include <imp/sip/parser.h>
#include <imp/sip/transactions.h>

using namespace imp::sip;
using namespace std::chrono_literals;

namespace {

Message parse(const std::string& text) {
  auto r = Parser().parseDatagram(text);
  REQUIRE_MESSAGE(std::holds_alternative<Message>(r), std::get<ParseError>(r).reason);
  return std::get<Message>(std::move(r));
}

std::string request(const std::string& method, const std::string& branch = "z9hG4bKclient1", int cseq = 1,
                    const std::string& cseqMethod = "") {
  return method + " sip:bob@example.com SIP/2.0\r\n"
         "Via: SIP/2.0/UDP 192.0.2.1:5060;branch=" + branch + "\r\n"
         "Max-Forwards: 70\r\n"
         "From: <sip:ann@example.com>;tag=a1\r\n"
         "To: <sip:bob@example.com>\r\n"
         "Call-ID: call-1@192.0.2.1\r\n"
         "CSeq: " + std::to_string(cseq) + " " + (cseqMethod.empty() ? method : cseqMethod) + "\r\n"
         "Content-Length: 0\r\n\r\n";
}

Message responseTo(const Message& req, int code) {
  auto r = TransactionLayer::makeResponse(req, code, code == 100 ? "Trying" : code < 300 ? "OK" : "Busy Here",
                                          code > 100 ? "b1" : "");
  return parse(r.serialize());
}

struct FakeTransport : TransactionTransport {
  struct Sent {
    std::string text;
    Endpoint dest;
  };
  std::vector<Sent> sent;
  std::optional<TransportError> failNow;          // fail synchronously
  std::function<void(const TransportError&)> lastOnError;  // to fail later
  void send(const Message& msg, const Endpoint& dest, std::function<void(const TransportError&)> onError) override {
    sent.push_back({msg.serialize(), dest});
    lastOnError = onError;
    if (failNow && onError) onError(*failNow);
  }
  std::size_t count(std::string_view startLine) const {
    std::size_t n = 0;
    for (const auto& s : sent) n += s.text.rfind(startLine, 0) == 0;
    return n;
  }
};

struct RecordingTu : TransactionUser {
  std::vector<TxId> requests;
  std::vector<std::string> methods;
  int strayResponses = 0, strayAcks = 0;
  std::vector<TxId> timeouts;
  void onRequest(TxId tx, const Message& m, const Source&) override {
    requests.push_back(tx);
    methods.emplace_back(m.method());
  }
  void onStrayResponse(const Message&, const Source&) override { ++strayResponses; }
  void onStrayAck(const Message&, const Source&) override { ++strayAcks; }
  void onServerTimeout(TxId tx) override { timeouts.push_back(tx); }
};

struct ClientLog {
  int provisional = 0, finals = 0, timeouts = 0, transportErrors = 0;
  int lastStatus = 0;
  std::optional<TransportError> error;
  ClientCallbacks callbacks() {
    return {[this](const Message&) { ++provisional; },
            [this](const Message& m) {
              ++finals;
              lastStatus = m.statusCode();
            },
            [this] { ++timeouts; },
            [this](const TransportError& e) {
              ++transportErrors;
              error = e;
            }};
  }
};

struct Fixture {
  ManualTimers timers;
  FakeTransport transport;
  RecordingTu tu;
  TransactionLayer layer{transport, timers, tu};
  Endpoint udp{"192.0.2.9", 5060, Transport::Udp};
  Endpoint tcp{"192.0.2.9", 5060, Transport::Tcp};
  Source from(Transport t) { return Source{Endpoint{"192.0.2.1", 5060, t}, Endpoint{"192.0.2.9", 5060, t}, 0, ""}; }
};

}  // namespace

TEST_CASE("client INVITE over UDP: timer A doubles, timer B times out at 64*T1") {
  Fixture f;
  ClientLog log;
  f.layer.sendRequest(parse(request("INVITE")), f.udp, log.callbacks());
  CHECK(f.transport.count("INVITE") == 1);
  // retransmissions at 0.5, 1.5, 3.5, 7.5, 15.5, 31.5 s
  std::vector<std::pair<std::chrono::milliseconds, std::size_t>> expect = {
      {499ms, 1}, {1ms, 2}, {999ms, 2}, {1ms, 3}, {2000ms, 4}, {4000ms, 5}, {8000ms, 6}, {16000ms, 7}};
  for (auto [step, n] : expect) {
    f.timers.advance(step);
    CHECK(f.transport.count("INVITE") == n);
  }
  CHECK(log.timeouts == 0);
  f.timers.advance(500ms);  // t = 32 s
  CHECK(log.timeouts == 1);
  CHECK(f.layer.counts().clientInvite == 0);
  f.timers.advance(60s);
  CHECK(f.transport.count("INVITE") == 7);  // nothing after the timeout
}

TEST_CASE("client INVITE: 1xx stops retransmissions; non-2xx final is ACKed, absorbed, then timer D") {
  Fixture f;
  ClientLog log;
  auto req = parse(request("INVITE"));
  f.layer.sendRequest(req, f.udp, log.callbacks());
  f.layer.onMessage(responseTo(req, 180), f.from(Transport::Udp));
  CHECK(log.provisional == 1);
  f.timers.advance(10s);
  CHECK(f.transport.count("INVITE") == 1);
  f.layer.onMessage(responseTo(req, 486), f.from(Transport::Udp));
  CHECK(log.finals == 1);
  CHECK(log.lastStatus == 486);
  REQUIRE(f.transport.count("ACK") == 1);
  auto ack = parse(f.transport.sent.back().text);
  CHECK(ack.topVia()->branch() == "z9hG4bKclient1");
  CHECK(ack.cseq()->method == "ACK");
  CHECK(ack.to()->tag() == "b1");
  f.layer.onMessage(responseTo(req, 486), f.from(Transport::Udp));  // retransmitted final
  CHECK(f.transport.count("ACK") == 2);
  CHECK(log.finals == 1);
  f.timers.advance(31s);
  CHECK(f.layer.counts().clientInvite == 1);
  f.timers.advance(2s);  // timer D (32 s) over
  CHECK(f.layer.counts().clientInvite == 0);
  CHECK(log.timeouts == 0);
}

TEST_CASE("client INVITE over TCP: no retransmissions, timeout at 32 s, timer D zero") {
  Fixture f;
  ClientLog log;
  f.layer.sendRequest(parse(request("INVITE")), f.tcp, log.callbacks());
  f.timers.advance(31900ms);
  CHECK(f.transport.count("INVITE") == 1);
  CHECK(log.timeouts == 0);
  f.timers.advance(100ms);
  CHECK(log.timeouts == 1);

  Fixture g;
  ClientLog log2;
  auto req = parse(request("INVITE"));
  g.layer.sendRequest(req, g.tcp, log2.callbacks());
  g.layer.onMessage(responseTo(req, 603), g.from(Transport::Tcp));
  CHECK(g.transport.count("ACK") == 1);
  g.timers.advance(0ms);
  CHECK(g.layer.counts().clientInvite == 0);
}

TEST_CASE("client INVITE: 2xx goes to the TU and ends the transaction") {
  Fixture f;
  ClientLog log;
  auto req = parse(request("INVITE"));
  f.layer.sendRequest(req, f.udp, log.callbacks());
  f.layer.onMessage(responseTo(req, 200), f.from(Transport::Udp));
  CHECK(log.finals == 1);
  CHECK(f.transport.count("ACK") == 0);
  CHECK(f.layer.counts().clientInvite == 0);
  f.layer.onMessage(responseTo(req, 200), f.from(Transport::Udp));  // retransmitted 2xx
  CHECK(f.tu.strayResponses == 1);
}

TEST_CASE("client non-INVITE over UDP: timer E capped at T2, T2 in Proceeding, F at 32 s, K = T4") {
  Fixture f;
  ClientLog log;
  auto req = parse(request("MESSAGE"));
  f.layer.sendRequest(req, f.udp, log.callbacks());
  // E: 0.5, 1.5, 3.5, 7.5, 11.5, 15.5 s (1, 2, 4, 4, 4 s gaps)
  std::vector<std::pair<std::chrono::milliseconds, std::size_t>> expect = {
      {500ms, 2}, {1000ms, 3}, {2000ms, 4}, {4000ms, 5}, {4000ms, 6}, {4000ms, 7}};
  for (auto [step, n] : expect) {
    f.timers.advance(step);
    CHECK(f.transport.count("MESSAGE") == n);
  }
  f.layer.onMessage(responseTo(req, 100), f.from(Transport::Udp));
  CHECK(log.provisional == 1);
  f.timers.advance(4000ms);  // still T2 in Proceeding
  CHECK(f.transport.count("MESSAGE") == 8);
  f.timers.advance(12500ms);  // t = 32 s: timer F
  CHECK(log.timeouts == 1);

  Fixture g;
  ClientLog log2;
  g.layer.sendRequest(req, g.udp, log2.callbacks());
  g.layer.onMessage(responseTo(req, 200), g.from(Transport::Udp));
  CHECK(log2.finals == 1);
  g.layer.onMessage(responseTo(req, 200), g.from(Transport::Udp));  // absorbed in Completed
  CHECK(log2.finals == 1);
  CHECK(g.tu.strayResponses == 0);
  g.timers.advance(4999ms);
  CHECK(g.layer.counts().clientNonInvite == 1);
  g.timers.advance(1ms);  // timer K = T4
  CHECK(g.layer.counts().clientNonInvite == 0);
  g.timers.advance(60s);
  CHECK(g.transport.count("MESSAGE") == 1);  // no retransmission after the final
}

TEST_CASE("client non-INVITE over TCP: no retransmission, timer F, K zero") {
  Fixture f;
  ClientLog log;
  f.layer.sendRequest(parse(request("OPTIONS")), f.tcp, log.callbacks());
  f.timers.advance(31999ms);
  CHECK(f.transport.count("OPTIONS") == 1);
  f.timers.advance(1ms);
  CHECK(log.timeouts == 1);
}

TEST_CASE("transport errors reach the TU at once, sync or async, never as a timeout") {
  Fixture f;
  ClientLog sync;
  f.transport.failNow = TransportError{TransportErrorKind::ConnectionRefused, "refused"};
  f.layer.sendRequest(parse(request("INVITE")), f.tcp, sync.callbacks());
  CHECK(sync.transportErrors == 1);
  CHECK(sync.error->kind == TransportErrorKind::ConnectionRefused);
  CHECK(f.layer.counts().clientInvite == 0);
  f.transport.failNow.reset();

  ClientLog async;
  f.layer.sendRequest(parse(request("MESSAGE", "z9hG4bKclient2")), f.tcp, async.callbacks());
  CHECK(async.transportErrors == 0);
  f.timers.advance(100ms);
  f.transport.lastOnError(TransportError{TransportErrorKind::TlsHandshakeFailed, "bad cert"});
  CHECK(async.transportErrors == 1);
  CHECK(f.layer.counts().clientNonInvite == 0);
  f.timers.advance(60s);
  CHECK(async.timeouts == 0);
  CHECK(sync.timeouts == 0);
}

TEST_CASE("server INVITE over UDP: timer G retransmits the final until ACK; H without ACK") {
  Fixture f;
  auto req = parse(request("INVITE", "z9hG4bKsrv1"));
  f.layer.onMessage(req, f.from(Transport::Udp));
  REQUIRE(f.tu.requests.size() == 1);
  auto tx = f.tu.requests[0];
  f.timers.advance(200ms);  // automatic 100 Trying
  CHECK(f.transport.count("SIP/2.0 100") == 1);
  f.layer.onMessage(req, f.from(Transport::Udp));  // retransmitted INVITE: last provisional again
  CHECK(f.transport.count("SIP/2.0 100") == 2);
  CHECK(f.tu.requests.size() == 1);
  f.layer.respond(tx, TransactionLayer::makeResponse(req, 486, "Busy Here", "s1"));
  CHECK(f.transport.count("SIP/2.0 486") == 1);
  // G: 0.5, 1.5, 3.5, 7.5, 11.5 s
  std::vector<std::pair<std::chrono::milliseconds, std::size_t>> expect = {
      {500ms, 2}, {1000ms, 3}, {2000ms, 4}, {4000ms, 5}, {4000ms, 6}};
  for (auto [step, n] : expect) {
    f.timers.advance(step);
    CHECK(f.transport.count("SIP/2.0 486") == n);
  }
  f.layer.onMessage(req, f.from(Transport::Udp));  // INVITE again in Completed
  CHECK(f.transport.count("SIP/2.0 486") == 7);
  CHECK(f.tu.timeouts.empty());
  f.timers.advance(20500ms);  // t = 32 s: timer H
  CHECK(f.tu.timeouts == std::vector<TxId>{tx});
  CHECK(f.layer.counts().serverInvite == 0);
}

TEST_CASE("server INVITE: ACK confirms, timer I absorbs ACKs then ends; over TCP no G") {
  Fixture f;
  auto req = parse(request("INVITE", "z9hG4bKsrv2"));
  f.layer.onMessage(req, f.from(Transport::Udp));
  auto tx = f.tu.requests.at(0);
  f.layer.respond(tx, TransactionLayer::makeResponse(req, 404, "Not Found", "s2"));
  auto ack = parse(request("ACK", "z9hG4bKsrv2", 1, "ACK"));
  f.layer.onMessage(ack, f.from(Transport::Udp));
  f.timers.advance(10s);
  CHECK(f.transport.count("SIP/2.0 404") == 1);  // no G after the ACK
  CHECK(f.tu.strayAcks == 0);
  CHECK(f.layer.counts().serverInvite == 0);  // I = T4 passed
  f.layer.onMessage(ack, f.from(Transport::Udp));
  CHECK(f.tu.strayAcks == 1);

  Fixture g;
  g.layer.onMessage(req, g.from(Transport::Tcp));
  g.layer.respond(g.tu.requests.at(0), TransactionLayer::makeResponse(req, 404, "Not Found", "s2"));
  g.timers.advance(10s);
  CHECK(g.transport.count("SIP/2.0 404") == 1);
  g.layer.onMessage(ack, g.from(Transport::Tcp));
  g.timers.advance(0ms);
  CHECK(g.layer.counts().serverInvite == 0);
}

TEST_CASE("server non-INVITE: retransmissions get the same final; timer J 64*T1 on UDP, 0 on TCP") {
  Fixture f;
  auto req = parse(request("MESSAGE", "z9hG4bKsrv3"));
  f.layer.onMessage(req, f.from(Transport::Udp));
  f.layer.onMessage(req, f.from(Transport::Udp));  // before the answer: absorbed
  CHECK(f.tu.requests.size() == 1);
  CHECK(f.transport.sent.empty());
  f.layer.respond(f.tu.requests[0], TransactionLayer::makeResponse(req, 200, "OK", "s3"));
  f.layer.onMessage(req, f.from(Transport::Udp));
  CHECK(f.transport.count("SIP/2.0 200") == 2);
  f.timers.advance(31900ms);
  CHECK(f.layer.counts().serverNonInvite == 1);
  f.timers.advance(100ms);
  CHECK(f.layer.counts().serverNonInvite == 0);

  Fixture g;
  g.layer.onMessage(req, g.from(Transport::Tcp));
  g.layer.respond(g.tu.requests[0], TransactionLayer::makeResponse(req, 200, "OK", "s3"));
  g.timers.advance(0ms);
  CHECK(g.layer.counts().serverNonInvite == 0);
}

TEST_CASE("RFC 2543 requests (no magic cookie) match their retransmissions and ACK") {
  Fixture f;
  auto req = parse(request("INVITE", "old2543branch"));
  f.layer.onMessage(req, f.from(Transport::Udp));
  f.layer.onMessage(req, f.from(Transport::Udp));
  CHECK(f.tu.requests.size() == 1);
  f.layer.respond(f.tu.requests[0], TransactionLayer::makeResponse(req, 480, "Temporarily Unavailable", "s4"));
  f.layer.onMessage(parse(request("ACK", "old2543branch", 1, "ACK")), f.from(Transport::Udp));
  CHECK(f.tu.strayAcks == 0);
  f.timers.advance(6s);
  CHECK(f.layer.counts().serverInvite == 0);
  // another CSeq is another transaction
  f.layer.onMessage(parse(request("INVITE", "old2543branch", 2)), f.from(Transport::Udp));
  CHECK(f.tu.requests.size() == 2);
}

TEST_CASE("CANCEL is its own server transaction and finds its INVITE") {
  Fixture f;
  auto invite = parse(request("INVITE", "z9hG4bKsrv5"));
  f.layer.onMessage(invite, f.from(Transport::Udp));
  auto cancel = parse(request("CANCEL", "z9hG4bKsrv5", 1, "CANCEL"));
  f.layer.onMessage(cancel, f.from(Transport::Udp));
  REQUIRE(f.tu.requests.size() == 2);
  CHECK(f.tu.methods == std::vector<std::string>{"INVITE", "CANCEL"});
  CHECK(f.layer.inviteFor(cancel) == f.tu.requests[0]);
  CHECK_FALSE(f.layer.inviteFor(parse(request("CANCEL", "z9hG4bKother", 1, "CANCEL"))));
}

TEST_CASE("branches are random with the magic cookie; requests without one are refused") {
  auto a = TransactionLayer::newBranch(), b = TransactionLayer::newBranch();
  CHECK(a.rfind("z9hG4bK", 0) == 0);
  CHECK(a.size() == 7 + 32);
  CHECK(a != b);
  Fixture f;
  ClientLog log;
  CHECK_THROWS_AS(f.layer.sendRequest(parse(request("OPTIONS", "nocookie")), f.udp, log.callbacks()), std::invalid_argument);
}
