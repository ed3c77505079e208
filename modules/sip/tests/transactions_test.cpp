// RFC 3261 §17 with an injected clock: retransmission and timeout behaviour
// of INVITE and non-INVITE transactions over UDP and TCP, transport errors
// surfacing at once, request matching (RFC 3261 and RFC 2543), CANCEL.
#include <doctest/doctest.h>
#include <imp/sip/parser.h>
#include <imp/sip/transactions.h>

#include <memory>

using namespace imp::sip;
using namespace imp::net;
using namespace std::chrono_literals;

namespace {

Message parse(const std::string& text) {
  auto r = Parser().parseDatagram(text);
  REQUIRE_MESSAGE(std::holds_alternative<Message>(r), std::get<ParseError>(r).reason);
  return std::get<Message>(std::move(r));
}

struct Req {
  std::string method = "INVITE";
  std::string branch = "z9hG4bKclient1";
  int cseq = 1;
  std::string cseqMethod;  // empty = method
  std::string sentBy = "192.0.2.1:5060";
  std::string toTag;
  std::string extra;  // more header lines, each ending in CRLF
};

std::string request(const Req& r) {
  return r.method + " sip:bob@example.com SIP/2.0\r\n"
         "Via: SIP/2.0/UDP " + r.sentBy + ";branch=" + r.branch + "\r\n" + r.extra +
         "Max-Forwards: 70\r\n"
         "From: <sip:ann@example.com>;tag=a1\r\n"
         "To: <sip:bob@example.com>" + (r.toTag.empty() ? "" : ";tag=" + r.toTag) + "\r\n"
         "Call-ID: call-1@192.0.2.1\r\n"
         "CSeq: " + std::to_string(r.cseq) + " " + (r.cseqMethod.empty() ? r.method : r.cseqMethod) + "\r\n"
         "Content-Length: 0\r\n\r\n";
}

std::string request(const std::string& method, const std::string& branch = "z9hG4bKclient1", int cseq = 1,
                    const std::string& cseqMethod = "") {
  Req r;
  r.method = method;
  r.branch = branch;
  r.cseq = cseq;
  r.cseqMethod = cseqMethod;
  return request(r);
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
  std::optional<TransportError> failNow;  // fail synchronously, inside send()
  std::vector<std::function<void(const TransportError&)>> onErrors;  // to fail later, per send
  void send(const Message& msg, const Endpoint& dest, std::function<void(const TransportError&)> onError) override {
    REQUIRE(onError);  // the layer promises a callable handler
    onErrors.push_back(onError);
    if (failNow) onError(*failNow);
    // Read the message after the error: the layer must keep it alive.
    sent.push_back({msg.serialize(), dest});
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
  std::vector<TxId> timeouts, terminated;
  std::vector<std::pair<TxId, TransportErrorKind>> sendErrors;
  std::function<void(TxId, const Message&)> hook;  // runs inside onRequest
  void onRequest(TxId tx, const Message& m, const Source&) override {
    requests.push_back(tx);
    if (hook) hook(tx, m);
    methods.emplace_back(m.method());  // after the hook: m must still be valid
  }
  void onStrayResponse(const Message&, const Source&) override { ++strayResponses; }
  void onStrayAck(const Message&, const Source&) override { ++strayAcks; }
  void onServerTimeout(TxId tx) override { timeouts.push_back(tx); }
  void onServerTransportError(TxId tx, const TransportError& e) override { sendErrors.emplace_back(tx, e.kind); }
  void onServerTerminated(TxId tx) override { terminated.push_back(tx); }
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
  explicit Fixture(TransactionConfig cfg = {}) : layer(transport, timers, tu, cfg) {}
  ManualTimers timers;
  FakeTransport transport;
  RecordingTu tu;
  TransactionLayer layer;
  Endpoint udp{"192.0.2.9", 5060, Transport::Udp};
  Endpoint tcp{"192.0.2.9", 5060, Transport::Tcp};
  Source from(Transport t) { return Source{Endpoint{"192.0.2.1", 5060, t}, Endpoint{"192.0.2.9", 5060, t}, 0, ""}; }
};

const TransportError kRefused{TransportErrorKind::ConnectionRefused, "refused"};

}  // namespace

// ------------------------------------------------------------ client INVITE

TEST_CASE("client INVITE over UDP: timer A doubles, timer B times out at 64*T1") {
  Fixture f;
  ClientLog log;
  f.layer.sendRequest(parse(request("INVITE")), f.udp, log.callbacks());
  CHECK(f.transport.count("INVITE") == 1);
  CHECK(f.transport.sent.at(0).dest == f.udp);
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
  CHECK(log.finals + log.transportErrors == 0);
  CHECK(f.layer.counts().clientInvite == 0);
  CHECK(f.layer.counts().clientTimeouts == 1);
  CHECK(f.layer.counts().retransmissions == 6);
  f.timers.advance(60s);
  CHECK(f.transport.count("INVITE") == 7);  // nothing after the timeout
  CHECK(f.timers.pending() == 0);
}

TEST_CASE("client INVITE: 1xx stops retransmissions and timer B; non-2xx final is ACKed, absorbed, then timer D") {
  Fixture f;
  ClientLog log;
  auto req = parse(request("INVITE"));
  f.layer.sendRequest(req, f.udp, log.callbacks());
  f.layer.onMessage(responseTo(req, 180), f.from(Transport::Udp));
  CHECK(log.provisional == 1);
  f.timers.advance(100s);  // ringing longer than 64*T1: not a timeout (timer C is the TU's)
  CHECK(f.transport.count("INVITE") == 1);
  CHECK(log.timeouts == 0);
  CHECK(f.layer.counts().clientInvite == 1);
  f.layer.onMessage(responseTo(req, 183), f.from(Transport::Udp));
  CHECK(log.provisional == 2);
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
  f.layer.onMessage(responseTo(req, 486), f.from(Transport::Udp));  // now a stray
  CHECK(f.tu.strayResponses == 1);
  CHECK(f.transport.count("ACK") == 2);
}

TEST_CASE("client INVITE: the TU ends a transaction stuck in Proceeding (timer C is its own)") {
  Fixture f;
  ClientLog log;
  auto req = parse(request("INVITE"));
  auto tx = f.layer.sendRequest(req, f.udp, log.callbacks());
  f.layer.onMessage(responseTo(req, 180), f.from(Transport::Udp));
  f.timers.advance(180s);
  CHECK(f.layer.counts().clientInvite == 1);
  f.layer.terminateClient(tx);
  CHECK(f.layer.counts().clientInvite == 0);
  CHECK(f.timers.pending() == 0);
  f.layer.onMessage(responseTo(req, 487), f.from(Transport::Udp));  // too late: a stray, no ACK
  CHECK(f.tu.strayResponses == 1);
  CHECK(log.finals == 0);
  CHECK(log.timeouts + log.transportErrors == 0);
  CHECK(f.transport.count("ACK") == 0);
  f.layer.terminateClient(tx);  // already gone: ignored
  f.layer.terminateClient(999);

  // A transaction still in Calling stops retransmitting too.
  auto tx2 = f.layer.sendRequest(parse(request("INVITE", "z9hG4bKc2")), f.udp, log.callbacks());
  f.layer.terminateClient(tx2);
  f.timers.advance(60s);
  CHECK(f.transport.count("INVITE") == 2);
}

TEST_CASE("client INVITE: the ACK for a non-2xx copies what §17.1.1.3 says") {
  Fixture f;
  ClientLog log;
  Req r;
  r.extra = "Via: SIP/2.0/UDP 198.51.100.7;branch=z9hG4bKdownstream\r\n"
            "Route: <sip:edge.example.com;lr>\r\n"
            "Subject: lunch\r\n";
  r.cseq = 314;
  auto req = parse(request(r));
  f.layer.sendRequest(req, f.udp, log.callbacks());
  f.layer.onMessage(responseTo(req, 603), f.from(Transport::Udp));
  REQUIRE(f.transport.count("ACK") == 1);
  CHECK(f.transport.sent.back().dest == f.udp);
  auto ack = parse(f.transport.sent.back().text);
  CHECK(ack.method() == "ACK");
  CHECK(ack.requestUri() == req.requestUri());
  REQUIRE(ack.vias().size() == 1);  // only the top Via
  CHECK(ack.vias()[0].raw == req.vias()[0].raw);
  CHECK(ack.callId() == req.callId());
  CHECK(ack.from()->raw == req.from()->raw);
  CHECK(ack.cseq()->seq == 314);
  REQUIRE(ack.routes().size() == 1);
  CHECK(ack.routes()[0].uri == "sip:edge.example.com;lr");
  CHECK_FALSE(ack.header("Subject"));
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
  CHECK(g.layer.counts().clientInvite == 1);
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
  CHECK(log.lastStatus == 200);
  CHECK(f.transport.count("ACK") == 0);
  CHECK(f.layer.counts().clientInvite == 0);
  f.layer.onMessage(responseTo(req, 200), f.from(Transport::Udp));  // retransmitted 2xx
  CHECK(f.tu.strayResponses == 1);
  CHECK(log.finals == 1);
  f.timers.advance(60s);
  CHECK(f.transport.count("INVITE") == 1);
  CHECK(log.timeouts == 0);
}

// -------------------------------------------------------- client non-INVITE

TEST_CASE("client non-INVITE over UDP: timer E capped at T2, T2 in Proceeding, F at 32 s, K = T4") {
  Fixture f;
  ClientLog log;
  auto req = parse(request("MESSAGE"));
  f.layer.sendRequest(req, f.udp, log.callbacks());
  // E: 0.5, 1.5, 3.5, 7.5, 11.5, 15.5 s (1, 2, 4, 4, 4 s gaps)
  std::vector<std::pair<std::chrono::milliseconds, std::size_t>> expect = {
      {500ms, 2}, {1000ms, 3}, {2000ms, 4}, {3999ms, 4}, {1ms, 5}, {4000ms, 6}, {4000ms, 7}};
  for (auto [step, n] : expect) {
    f.timers.advance(step);
    CHECK(f.transport.count("MESSAGE") == n);
  }
  f.layer.onMessage(responseTo(req, 100), f.from(Transport::Udp));
  CHECK(log.provisional == 1);
  f.timers.advance(4000ms);  // still T2 in Proceeding
  CHECK(f.transport.count("MESSAGE") == 8);
  f.timers.advance(12499ms);
  CHECK(log.timeouts == 0);
  f.timers.advance(1ms);  // t = 32 s: timer F, in Proceeding too
  CHECK(log.timeouts == 1);
  CHECK(f.layer.counts().clientNonInvite == 0);

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
  CHECK(log2.timeouts == 0);
}

TEST_CASE("client non-INVITE: an early provisional makes the next timer E interval T2") {
  Fixture f;
  ClientLog log;
  auto req = parse(request("NOTIFY"));
  f.layer.sendRequest(req, f.udp, log.callbacks());
  f.timers.advance(100ms);
  f.layer.onMessage(responseTo(req, 100), f.from(Transport::Udp));
  f.timers.advance(400ms);  // t = 0.5 s: E fires in Proceeding
  CHECK(f.transport.count("NOTIFY") == 2);
  f.timers.advance(3999ms);  // not at 1.5 s (doubling), only at 4.5 s (T2)
  CHECK(f.transport.count("NOTIFY") == 2);
  f.timers.advance(1ms);
  CHECK(f.transport.count("NOTIFY") == 3);
  f.timers.advance(4000ms);
  CHECK(f.transport.count("NOTIFY") == 4);
}

TEST_CASE("client non-INVITE over TCP: no retransmission, timer F, K zero") {
  Fixture f;
  ClientLog log;
  f.layer.sendRequest(parse(request("OPTIONS")), f.tcp, log.callbacks());
  f.timers.advance(31999ms);
  CHECK(f.transport.count("OPTIONS") == 1);
  CHECK(log.timeouts == 0);
  f.timers.advance(1ms);
  CHECK(log.timeouts == 1);

  Fixture g;
  ClientLog log2;
  auto req = parse(request("OPTIONS"));
  g.layer.sendRequest(req, g.tcp, log2.callbacks());
  g.layer.onMessage(responseTo(req, 200), g.from(Transport::Tcp));
  CHECK(g.layer.counts().clientNonInvite == 1);
  g.timers.advance(0ms);
  CHECK(g.layer.counts().clientNonInvite == 0);
}

TEST_CASE("configurable timers: T1 = 100 ms, T2 = 400 ms, T4 = 1 s") {
  TransactionConfig cfg;
  cfg.t1 = 100ms;
  cfg.t2 = 400ms;
  cfg.t4 = 1s;
  Fixture f(cfg);
  ClientLog log;
  auto req = parse(request("MESSAGE"));
  f.layer.sendRequest(req, f.udp, log.callbacks());
  f.timers.advance(100ms);  // E: 0.1, 0.3, 0.7, 1.1 s
  CHECK(f.transport.count("MESSAGE") == 2);
  f.timers.advance(200ms);
  CHECK(f.transport.count("MESSAGE") == 3);
  f.timers.advance(400ms);
  CHECK(f.transport.count("MESSAGE") == 4);
  f.timers.advance(400ms);
  CHECK(f.transport.count("MESSAGE") == 5);
  f.timers.advance(5299ms);
  CHECK(log.timeouts == 0);
  f.timers.advance(1ms);  // F = 64 * 100 ms
  CHECK(log.timeouts == 1);

  ClientLog log2;
  f.layer.sendRequest(parse(request("OPTIONS", "z9hG4bKk")), f.udp, log2.callbacks());
  f.layer.onMessage(responseTo(parse(request("OPTIONS", "z9hG4bKk")), 200), f.from(Transport::Udp));
  f.timers.advance(999ms);
  CHECK(f.layer.counts().clientNonInvite == 1);
  f.timers.advance(1ms);  // K = T4
  CHECK(f.layer.counts().clientNonInvite == 0);

  TransactionConfig bad;
  bad.t1 = 0ms;
  CHECK_THROWS_AS(Fixture{bad}, std::invalid_argument);
  bad.t1 = 500ms;
  bad.t2 = 100ms;
  CHECK_THROWS_AS(Fixture{bad}, std::invalid_argument);
}

// ---------------------------------------------------------- transport errors

TEST_CASE("transport errors reach the TU at once, sync or async, never as a timeout") {
  Fixture f;
  ClientLog sync;
  f.transport.failNow = kRefused;
  f.layer.sendRequest(parse(request("INVITE")), f.tcp, sync.callbacks());
  CHECK(sync.transportErrors == 1);
  REQUIRE(sync.error);
  CHECK(sync.error->kind == TransportErrorKind::ConnectionRefused);
  CHECK(f.layer.counts().clientInvite == 0);
  f.transport.failNow.reset();

  ClientLog async;
  f.layer.sendRequest(parse(request("MESSAGE", "z9hG4bKclient2")), f.tcp, async.callbacks());
  CHECK(async.transportErrors == 0);
  f.timers.advance(100ms);
  CHECK(f.layer.counts().clientNonInvite == 1);
  f.transport.onErrors.back()(TransportError{TransportErrorKind::TlsHandshakeFailed, "bad cert"});
  CHECK(async.transportErrors == 1);
  CHECK(async.error->kind == TransportErrorKind::TlsHandshakeFailed);
  CHECK(f.layer.counts().clientNonInvite == 0);
  f.transport.onErrors.back()(kRefused);  // a second report changes nothing
  CHECK(async.transportErrors == 1);
  f.timers.advance(60s);
  CHECK(async.timeouts == 0);
  CHECK(sync.timeouts == 0);
  CHECK(f.layer.counts().transportErrors == 2);
  CHECK(f.timers.pending() == 0);
}

TEST_CASE("transport errors: a retransmission failing over UDP ends the transaction; after the final they are ignored") {
  Fixture f;
  ClientLog log;
  f.layer.sendRequest(parse(request("INVITE")), f.udp, log.callbacks());
  f.transport.failNow = TransportError{TransportErrorKind::NoRoute, "no route"};
  f.timers.advance(500ms);  // timer A retransmission fails inside send()
  CHECK(log.transportErrors == 1);
  CHECK(f.layer.counts().clientInvite == 0);
  f.transport.failNow.reset();
  f.timers.advance(60s);
  CHECK(f.transport.count("INVITE") == 2);
  CHECK(log.timeouts == 0);

  ClientLog log2;
  auto req = parse(request("MESSAGE", "z9hG4bKlate"));
  f.layer.sendRequest(req, f.udp, log2.callbacks());
  auto firstSend = f.transport.onErrors.back();
  f.layer.onMessage(responseTo(req, 202), f.from(Transport::Udp));
  firstSend(kRefused);  // late error for a request already answered
  CHECK(log2.transportErrors == 0);
  CHECK(log2.finals == 1);
  CHECK(f.layer.counts().clientNonInvite == 1);  // still absorbing in Completed
}

TEST_CASE("transport errors: a report after the layer is gone is dropped") {
  std::function<void(const TransportError&)> pending;
  ClientLog log;
  {
    Fixture f;
    f.layer.sendRequest(parse(request("OPTIONS")), f.tcp, log.callbacks());
    pending = f.transport.onErrors.back();
  }
  pending(kRefused);
  CHECK(log.transportErrors == 0);
}

TEST_CASE("transport errors on responses end the server transaction and reach the TU") {
  Fixture f;
  auto req = parse(request("MESSAGE", "z9hG4bKsrvErr"));
  f.layer.onMessage(req, f.from(Transport::Tcp));
  auto tx = f.tu.requests.at(0);
  f.transport.failNow = TransportError{TransportErrorKind::ConnectionClosed, "closed"};
  f.layer.respond(tx, TransactionLayer::makeResponse(req, 200, "OK", "s9"));
  REQUIRE(f.tu.sendErrors.size() == 1);
  CHECK(f.tu.sendErrors[0] == std::pair{tx, TransportErrorKind::ConnectionClosed});
  CHECK(f.tu.terminated == std::vector<TxId>{tx});
  CHECK(f.layer.counts().serverNonInvite == 0);
  CHECK(f.timers.pending() == 0);  // no timer J for a transaction already gone
  f.transport.failNow.reset();

  auto inv = parse(request("INVITE", "z9hG4bKsrvErr2"));
  f.layer.onMessage(inv, f.from(Transport::Udp));
  auto tx2 = f.tu.requests.at(1);
  f.layer.respond(tx2, TransactionLayer::makeResponse(inv, 500, "Server Internal Error", "s10"));
  f.timers.advance(500ms);  // timer G
  CHECK(f.transport.count("SIP/2.0 500") == 2);
  f.transport.onErrors.back()(kRefused);  // async failure of the retransmission
  CHECK(f.tu.sendErrors.size() == 2);
  CHECK(f.tu.terminated == std::vector<TxId>{tx, tx2});
  f.timers.advance(60s);
  CHECK(f.transport.count("SIP/2.0 500") == 2);
  CHECK(f.tu.timeouts.empty());

  // TCP: timer J is zero, so the transaction has ended before an
  // asynchronous send failure arrives; the loss still reaches the TU, once.
  auto late = parse(request("MESSAGE", "z9hG4bKsrvErr3"));
  f.layer.onMessage(late, f.from(Transport::Tcp));
  auto tx3 = f.tu.requests.at(2);
  f.layer.respond(tx3, TransactionLayer::makeResponse(late, 200, "OK", "s11"));
  f.timers.advance(1ms);  // timer J (zero)
  REQUIRE(f.tu.terminated.size() == 3);
  f.transport.onErrors.back()(kRefused);
  REQUIRE(f.tu.sendErrors.size() == 3);
  CHECK(f.tu.sendErrors[2].first == tx3);
  CHECK(f.tu.terminated.size() == 3);
}

// ------------------------------------------------------------ server INVITE

TEST_CASE("server INVITE over UDP: timer G retransmits the final until ACK; H without ACK") {
  Fixture f;
  auto req = parse(request("INVITE", "z9hG4bKsrv1"));
  f.layer.onMessage(req, f.from(Transport::Udp));
  REQUIRE(f.tu.requests.size() == 1);
  auto tx = f.tu.requests[0];
  REQUIRE(f.layer.serverRequest(tx));
  CHECK(f.layer.serverRequest(tx)->method() == "INVITE");
  f.timers.advance(199ms);
  CHECK(f.transport.count("SIP/2.0 100") == 0);
  f.timers.advance(1ms);  // automatic 100 Trying at 200 ms
  CHECK(f.transport.count("SIP/2.0 100") == 1);
  CHECK(f.transport.sent.back().dest == f.from(Transport::Udp).remote);
  f.layer.onMessage(req, f.from(Transport::Udp));  // retransmitted INVITE: last provisional again
  CHECK(f.transport.count("SIP/2.0 100") == 2);
  CHECK(f.tu.requests.size() == 1);
  f.layer.respond(tx, TransactionLayer::makeResponse(req, 486, "Busy Here", "s1"));
  CHECK(f.transport.count("SIP/2.0 486") == 1);
  // G: 0.5, 1.5, 3.5, 7.5, 11.5 s
  std::vector<std::pair<std::chrono::milliseconds, std::size_t>> expect = {
      {499ms, 1}, {1ms, 2}, {1000ms, 3}, {2000ms, 4}, {4000ms, 5}, {4000ms, 6}};
  for (auto [step, n] : expect) {
    f.timers.advance(step);
    CHECK(f.transport.count("SIP/2.0 486") == n);
  }
  f.layer.onMessage(req, f.from(Transport::Udp));  // INVITE again in Completed
  CHECK(f.transport.count("SIP/2.0 486") == 7);
  CHECK(f.tu.timeouts.empty());
  CHECK(f.tu.terminated.empty());
  f.timers.advance(20499ms);
  CHECK(f.tu.timeouts.empty());
  f.timers.advance(1ms);  // t = 32.2 s: timer H, 64*T1 after the final
  CHECK(f.tu.timeouts == std::vector<TxId>{tx});
  CHECK(f.tu.terminated == std::vector<TxId>{tx});
  CHECK(f.layer.counts().serverInvite == 0);
  CHECK(f.layer.counts().serverTimeouts == 1);
  CHECK_FALSE(f.layer.serverRequest(tx));
  auto sent = f.transport.sent.size();
  f.timers.advance(60s);
  CHECK(f.transport.sent.size() == sent);
}

TEST_CASE("server INVITE: ACK confirms, timer I absorbs ACKs then ends; over TCP no G, I zero") {
  Fixture f;
  auto req = parse(request("INVITE", "z9hG4bKsrv2"));
  f.layer.onMessage(req, f.from(Transport::Udp));
  auto tx = f.tu.requests.at(0);
  f.layer.respond(tx, TransactionLayer::makeResponse(req, 404, "Not Found", "s2"));
  auto ack = parse(request("ACK", "z9hG4bKsrv2", 1, "ACK"));
  f.layer.onMessage(ack, f.from(Transport::Udp));
  f.timers.advance(4999ms);
  CHECK(f.transport.count("SIP/2.0 404") == 1);  // no G after the ACK
  f.layer.onMessage(ack, f.from(Transport::Udp));  // absorbed in Confirmed
  f.layer.onMessage(req, f.from(Transport::Udp));  // so is the INVITE
  CHECK(f.transport.count("SIP/2.0 404") == 1);
  CHECK(f.tu.strayAcks == 0);
  CHECK(f.tu.requests.size() == 1);
  CHECK(f.layer.counts().serverInvite == 1);
  f.timers.advance(1ms);  // I = T4
  CHECK(f.layer.counts().serverInvite == 0);
  CHECK(f.tu.terminated == std::vector<TxId>{tx});
  CHECK(f.tu.timeouts.empty());
  f.layer.onMessage(ack, f.from(Transport::Udp));
  CHECK(f.tu.strayAcks == 1);

  Fixture g;
  g.layer.onMessage(req, g.from(Transport::Tcp));
  g.layer.respond(g.tu.requests.at(0), TransactionLayer::makeResponse(req, 404, "Not Found", "s2"));
  g.timers.advance(10s);
  CHECK(g.transport.count("SIP/2.0 404") == 1);
  CHECK(g.layer.counts().serverInvite == 1);
  g.layer.onMessage(ack, g.from(Transport::Tcp));
  g.timers.advance(0ms);
  CHECK(g.layer.counts().serverInvite == 0);
}

TEST_CASE("server INVITE: a 2xx ends the transaction; its ACK is a stray; a synchronous 2xx is safe") {
  Fixture f;
  f.tu.hook = [&f](TxId tx, const Message& m) {
    f.layer.respond(tx, TransactionLayer::makeResponse(m, 200, "OK", "s3"));
  };
  auto req = parse(request("INVITE", "z9hG4bKsrv3"));
  f.layer.onMessage(req, f.from(Transport::Udp));
  CHECK(f.tu.methods == std::vector<std::string>{"INVITE"});  // read after the transaction ended
  CHECK(f.transport.count("SIP/2.0 200") == 1);
  CHECK(f.tu.terminated == f.tu.requests);
  CHECK(f.layer.counts().serverInvite == 0);
  f.timers.advance(10s);
  CHECK(f.transport.count("SIP/2.0 200") == 1);  // 2xx retransmission is the TU's job
  CHECK(f.transport.count("SIP/2.0 100") == 0);
  f.layer.onMessage(parse(request("ACK", "z9hG4bKsrv3ack", 1, "ACK")), f.from(Transport::Udp));
  CHECK(f.tu.strayAcks == 1);
}

TEST_CASE("server INVITE: automatic 100 Trying is configurable and skipped when the TU answers first") {
  TransactionConfig cfg;
  cfg.autoTrying = 0ms;
  Fixture off(cfg);
  off.layer.onMessage(parse(request("INVITE", "z9hG4bKt1")), off.from(Transport::Udp));
  off.timers.advance(10s);
  CHECK(off.transport.sent.empty());

  cfg.autoTrying = 50ms;
  Fixture early(cfg);
  auto req = parse(request("INVITE", "z9hG4bKt2"));
  early.layer.onMessage(req, early.from(Transport::Udp));
  early.timers.advance(49ms);
  CHECK(early.transport.sent.empty());
  early.timers.advance(1ms);
  CHECK(early.transport.count("SIP/2.0 100") == 1);

  Fixture answered;
  answered.layer.onMessage(req, answered.from(Transport::Udp));
  answered.layer.respond(answered.tu.requests.at(0), TransactionLayer::makeResponse(req, 180, "Ringing", "s4"));
  answered.timers.advance(1s);
  CHECK(answered.transport.count("SIP/2.0 100") == 0);
  CHECK(answered.transport.count("SIP/2.0 180") == 1);
  answered.layer.onMessage(req, answered.from(Transport::Udp));  // retransmission: the 180 again
  CHECK(answered.transport.count("SIP/2.0 180") == 2);
}

// -------------------------------------------------------- server non-INVITE

TEST_CASE("server non-INVITE: retransmissions get the same final; timer J 64*T1 on UDP, 0 on TCP") {
  Fixture f;
  auto req = parse(request("MESSAGE", "z9hG4bKsrv3"));
  f.layer.onMessage(req, f.from(Transport::Udp));
  f.layer.onMessage(req, f.from(Transport::Udp));  // before the answer: absorbed
  CHECK(f.tu.requests.size() == 1);
  f.timers.advance(1s);
  CHECK(f.transport.sent.empty());  // no automatic 100 for non-INVITE
  f.layer.respond(f.tu.requests[0], TransactionLayer::makeResponse(req, 200, "OK", "s3"));
  f.layer.respond(f.tu.requests[0], TransactionLayer::makeResponse(req, 500, "Oops", "s3"));  // ignored
  f.layer.onMessage(req, f.from(Transport::Udp));
  CHECK(f.transport.count("SIP/2.0 200") == 2);
  CHECK(f.transport.count("SIP/2.0 500") == 0);
  CHECK(f.tu.requests.size() == 1);
  f.timers.advance(31999ms);
  CHECK(f.layer.counts().serverNonInvite == 1);
  f.timers.advance(1ms);
  CHECK(f.layer.counts().serverNonInvite == 0);
  CHECK(f.tu.terminated == f.tu.requests);
  CHECK(f.transport.count("SIP/2.0 200") == 2);  // no timer-driven retransmission

  Fixture g;
  g.layer.onMessage(req, g.from(Transport::Tcp));
  g.layer.respond(g.tu.requests[0], TransactionLayer::makeResponse(req, 200, "OK", "s3"));
  CHECK(g.layer.counts().serverNonInvite == 1);
  g.timers.advance(0ms);
  CHECK(g.layer.counts().serverNonInvite == 0);
}

TEST_CASE("server non-INVITE: a provisional is re-sent on request retransmission") {
  Fixture f;
  auto req = parse(request("SUBSCRIBE", "z9hG4bKsub"));
  f.layer.onMessage(req, f.from(Transport::Udp));
  f.layer.respond(f.tu.requests.at(0), TransactionLayer::makeResponse(req, 100, "Trying"));
  f.layer.onMessage(req, f.from(Transport::Udp));
  CHECK(f.transport.count("SIP/2.0 100") == 2);
  CHECK(f.tu.requests.size() == 1);
  CHECK_THROWS_AS(f.layer.respond(f.tu.requests.at(0), req), std::invalid_argument);
}

// ----------------------------------------------------------------- matching

TEST_CASE("matching: responses by branch and CSeq method; requests by branch, sent-by and method") {
  Fixture f;
  ClientLog invite, cancel;
  auto inv = parse(request("INVITE", "z9hG4bKm1"));
  auto can = parse(request("CANCEL", "z9hG4bKm1", 1, "CANCEL"));
  f.layer.sendRequest(inv, f.udp, invite.callbacks());
  f.layer.sendRequest(can, f.udp, cancel.callbacks());  // same branch, other method
  CHECK(f.layer.counts().clientInvite == 1);
  CHECK(f.layer.counts().clientNonInvite == 1);
  f.layer.onMessage(responseTo(can, 200), f.from(Transport::Udp));
  CHECK(cancel.finals == 1);
  CHECK(invite.finals == 0);
  f.layer.onMessage(responseTo(inv, 487), f.from(Transport::Udp));
  CHECK(invite.finals == 1);
  CHECK(invite.lastStatus == 487);
  f.layer.onMessage(responseTo(parse(request("INVITE", "z9hG4bKm2")), 200), f.from(Transport::Udp));
  CHECK(f.tu.strayResponses == 1);

  // Server side: the same branch from another sent-by is another transaction.
  Req a;
  a.method = "MESSAGE";
  a.branch = "z9hG4bKsame";
  Req b = a;
  b.sentBy = "192.0.2.77:5070";
  f.layer.onMessage(parse(request(a)), f.from(Transport::Udp));
  f.layer.onMessage(parse(request(b)), f.from(Transport::Udp));
  f.layer.onMessage(parse(request(b)), f.from(Transport::Udp));
  CHECK(f.tu.requests.size() == 2);
}

TEST_CASE("RFC 2543 requests (no magic cookie) match their retransmissions and ACK") {
  Fixture f;
  auto req = parse(request("INVITE", "old2543branch"));
  f.layer.onMessage(req, f.from(Transport::Udp));
  f.layer.onMessage(req, f.from(Transport::Udp));
  CHECK(f.tu.requests.size() == 1);
  auto tx = f.tu.requests[0];
  f.layer.respond(tx, TransactionLayer::makeResponse(req, 480, "Temporarily Unavailable", "s4"));
  // An ACK naming another response (To tag) is not this transaction's.
  Req wrong;
  wrong.method = "ACK";
  wrong.branch = "old2543branch";
  wrong.toTag = "other";
  f.layer.onMessage(parse(request(wrong)), f.from(Transport::Udp));
  CHECK(f.tu.strayAcks == 1);
  Req right = wrong;
  right.toTag = "s4";
  f.layer.onMessage(parse(request(right)), f.from(Transport::Udp));
  CHECK(f.tu.strayAcks == 1);
  f.timers.advance(4999ms);
  CHECK(f.transport.count("SIP/2.0 480") == 1);  // confirmed: no timer G
  f.timers.advance(1ms);
  CHECK(f.layer.counts().serverInvite == 0);
  CHECK(f.tu.timeouts.empty());
  // another CSeq, another To tag, another Via: other transactions
  f.layer.onMessage(parse(request("INVITE", "old2543branch", 2)), f.from(Transport::Udp));
  CHECK(f.tu.requests.size() == 2);
  Req tagged;
  tagged.method = "MESSAGE";
  tagged.branch = "old2543branch";
  tagged.toTag = "x";
  f.layer.onMessage(parse(request(tagged)), f.from(Transport::Udp));
  tagged.toTag = "y";
  f.layer.onMessage(parse(request(tagged)), f.from(Transport::Udp));
  f.layer.onMessage(parse(request(tagged)), f.from(Transport::Udp));
  CHECK(f.tu.requests.size() == 4);
  Req noBranch;
  noBranch.method = "MESSAGE";
  noBranch.branch = "1";
  noBranch.sentBy = "192.0.2.2";
  noBranch.toTag = "y";
  f.layer.onMessage(parse(request(noBranch)), f.from(Transport::Udp));
  CHECK(f.tu.requests.size() == 5);
}

TEST_CASE("CANCEL is its own server transaction and finds its INVITE") {
  Fixture f;
  auto invite = parse(request("INVITE", "z9hG4bKsrv5"));
  f.layer.onMessage(invite, f.from(Transport::Udp));
  auto cancel = parse(request("CANCEL", "z9hG4bKsrv5", 1, "CANCEL"));
  f.layer.onMessage(cancel, f.from(Transport::Udp));
  REQUIRE(f.tu.requests.size() == 2);
  CHECK(f.tu.methods == std::vector<std::string>{"INVITE", "CANCEL"});
  CHECK(f.tu.requests[0] != f.tu.requests[1]);
  CHECK(f.layer.inviteFor(cancel) == f.tu.requests[0]);
  CHECK_FALSE(f.layer.inviteFor(parse(request("CANCEL", "z9hG4bKother", 1, "CANCEL"))));
  // The CANCEL's 200 and the INVITE's 487 go their own ways.
  f.layer.respond(f.tu.requests[1], TransactionLayer::makeResponse(cancel, 200, "OK", "s5"));
  f.layer.respond(f.tu.requests[0], TransactionLayer::makeResponse(invite, 487, "Request Terminated", "s5"));
  CHECK(f.transport.count("SIP/2.0 200") == 1);
  CHECK(f.transport.count("SIP/2.0 487") == 1);
  f.layer.onMessage(cancel, f.from(Transport::Udp));  // CANCEL retransmission: its 200 again
  CHECK(f.transport.count("SIP/2.0 200") == 2);
  CHECK(f.transport.count("SIP/2.0 487") == 1);

  // RFC 2543 CANCEL: same Request-URI, Call-ID, tags, CSeq number and Via.
  auto old = parse(request("INVITE", "oldbranch", 7));
  f.layer.onMessage(old, f.from(Transport::Udp));
  auto oldTx = f.tu.requests.back();
  CHECK(f.layer.inviteFor(parse(request("CANCEL", "oldbranch", 7, "CANCEL"))) == oldTx);
  CHECK_FALSE(f.layer.inviteFor(parse(request("CANCEL", "oldbranch", 8, "CANCEL"))));
  f.layer.respond(oldTx, TransactionLayer::makeResponse(old, 200, "OK", "s6"));
  CHECK_FALSE(f.layer.inviteFor(parse(request("CANCEL", "oldbranch", 7, "CANCEL"))));  // ended with the 2xx
}

// ------------------------------------------------------------------ helpers

TEST_CASE("branches are random with the magic cookie; misuse is refused") {
  auto a = TransactionLayer::newBranch(), b = TransactionLayer::newBranch();
  CHECK(a.rfind("z9hG4bK", 0) == 0);
  CHECK(a.size() == 7 + 32);
  CHECK(a.find_first_not_of("0123456789abcdef", 7) == std::string::npos);
  CHECK(a != b);
  Fixture f;
  ClientLog log;
  CHECK_THROWS_AS(f.layer.sendRequest(parse(request("OPTIONS", "nocookie")), f.udp, log.callbacks()), std::invalid_argument);
  CHECK_THROWS_AS(f.layer.sendRequest(parse(request("ACK", "z9hG4bKack", 1, "ACK")), f.udp, log.callbacks()),
                  std::invalid_argument);
  f.layer.sendRequest(parse(request("OPTIONS", "z9hG4bKdup")), f.udp, log.callbacks());
  CHECK_THROWS_AS(f.layer.sendRequest(parse(request("OPTIONS", "z9hG4bKdup")), f.udp, log.callbacks()),
                  std::invalid_argument);
  CHECK(f.layer.counts().clientNonInvite == 1);
  CHECK(f.transport.sent.size() == 1);
}

TEST_CASE("prependVia puts a fresh branch on top; the response to it matches") {
  Fixture f;
  ClientLog log;
  auto req = parse(request("OPTIONS", "z9hG4bKupstream"));
  auto branch = TransactionLayer::prependVia(req, Transport::Tls, "proxy.example.com:5061", ";rport");
  CHECK(branch.rfind("z9hG4bK", 0) == 0);
  auto wire = parse(req.serialize());
  REQUIRE(wire.vias().size() == 2);
  CHECK(wire.vias()[0].transport == "TLS");
  CHECK(wire.vias()[0].host == "proxy.example.com");
  CHECK(wire.vias()[0].port == 5061);
  CHECK(wire.vias()[0].branch() == branch);
  CHECK(wire.vias()[0].param("rport"));
  CHECK(wire.vias()[1].branch() == "z9hG4bKupstream");
  f.layer.sendRequest(wire, f.tcp, log.callbacks());
  f.layer.onMessage(responseTo(wire, 200), f.from(Transport::Tcp));
  CHECK(log.finals == 1);
}

TEST_CASE("makeResponse copies Via, From, To, Call-ID, CSeq; tags To; 100 echoes Timestamp") {
  Req r;
  r.method = "INVITE";
  r.extra = "Via: SIP/2.0/TCP 198.51.100.7;branch=z9hG4bKdown\r\nTimestamp: 54\r\nSubject: x\r\n";
  auto req = parse(request(r));
  auto ok = parse(TransactionLayer::makeResponse(req, 200, "OK", "t1").serialize());
  CHECK(ok.statusCode() == 200);
  CHECK(ok.vias().size() == 2);
  CHECK(ok.to()->tag() == "t1");
  CHECK(ok.from()->tag() == "a1");
  CHECK(ok.callId() == req.callId());
  CHECK(ok.cseq()->seq == 1);
  CHECK(ok.cseq()->method == "INVITE");
  CHECK_FALSE(ok.header("Timestamp"));
  CHECK_FALSE(ok.header("Subject"));
  auto trying = parse(TransactionLayer::makeResponse(req, 100, "Trying").serialize());
  CHECK(trying.header("Timestamp") == "54");
  CHECK(trying.to()->tag().empty());
  r.toTag = "keep";
  auto inDialog = parse(TransactionLayer::makeResponse(parse(request(r)), 200, "OK", "t2").serialize());
  CHECK(inDialog.to()->tag() == "keep");
}
