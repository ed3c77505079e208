// XEP-0198 stream management, XEP-0280 carbons and the per-session rate
// limits over loopback (issue 16, deliverables 2 and 5; IM-5): scripted
// clients on real sockets against C2sServer, the Router and the session
// manager. Every wait is on an event with a deadline.
#include "c2s_harness.h"

namespace {

// Logs in and enables stream management with resumption: the <enabled/>.
Element enableSm(Client& c, const std::string& resume = "true") {
  c.send("<enable xmlns='urn:xmpp:sm:3' resume='" + resume + "'/>");
  auto e = c.nextStanza();
  REQUIRE(e.is("enabled", ns::kSm));
  return e;
}

// The next stanza that is not an XEP-0198 <r/> (answered with `h`, when given).
Element nextSkippingRequests(Client& c, std::optional<std::uint32_t> answer = std::nullopt) {
  for (;;) {
    auto el = c.nextStanza();
    if (!el.is("r", ns::kSm)) return el;
    if (answer) c.send("<a xmlns='urn:xmpp:sm:3' h='" + std::to_string(*answer) + "'/>");
  }
}

// A round trip on `c`'s stream: what it sent before has been handled. The
// number of messages that arrived before the answer.
int roundTrip(Client& c, const std::string& id) {
  c.send("<iq type='get' id='" + id + "'><ping xmlns='urn:xmpp:ping'/></iq>");
  int messages = 0;
  for (;;) {
    auto el = c.nextStanza();
    if (el.name() == "message") ++messages;
    if (el.name() == "iq" && el.attrOr("id", "") == id) return messages;
  }
}

// Enables XEP-0280 carbons on `c`'s session.
void enableCarbons(Client& c) {
  c.send("<iq type='set' id='c1'><enable xmlns='urn:xmpp:carbons:2'/></iq>");
  CHECK(c.nextStanza().attrOr("type", "") == "result");
}

std::string body(const Element& m) { return m.childText("body", ns::kClient).value_or(""); }

// The next <message/>, past <r/> and iq answers.
Element nextMessage(Client& c) {
  for (;;) {
    auto el = nextSkippingRequests(c);
    if (el.name() == "message") return el;
  }
}

}  // namespace

TEST_CASE("XEP-0198: <sm/> and the XEP-0478 limits are offered after authentication; enable, <r/> and <a/>") {
  Node node;
  imp::net::EventLoop loop;
  Client ann(loop, node.server->clientPort());
  Client bob(loop, node.server->clientPort());
  auto features = ann.authenticate("ann", "ann-secret");
  CHECK(features.child("sm", ns::kSm));
  auto* limits = features.child("limits", ns::kStreamLimits);
  REQUIRE(limits);
  CHECK(limits->childText("max-bytes", ns::kStreamLimits) == "262144");
  CHECK(limits->childText("idle-seconds", ns::kStreamLimits) == "900");
  SUBCASE("<enable/> before binding fails with unexpected-request (§3)") {
    ann.send("<enable xmlns='urn:xmpp:sm:3'/>");
    auto f = ann.nextStanza();
    REQUIRE(f.is("failed", ns::kSm));
    CHECK(f.child("unexpected-request", ns::kStanzaErrors));
  }
  SUBCASE("counting both ways") {
    ann.send("<iq type='set' id='b1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>pc</resource></bind></iq>");
    REQUIRE(ann.nextStanza().attrOr("type", "") == "result");
    bob.login("bob", "bob-secret", "pc");
    auto enabled = enableSm(ann);
    CHECK(enabled.attrOr("resume", "") == "true");
    CHECK(enabled.attrOr("max", "") == "300");
    CHECK(enabled.attrOr("id", "").size() == 32);
    ann.send("<r xmlns='urn:xmpp:sm:3'/>");
    auto a = ann.nextStanza();
    REQUIRE(a.is("a", ns::kSm));
    CHECK(a.attrOr("h", "") == "0");  // §4: counting starts at <enable/>
    roundTrip(ann, "p1");
    ann.send("<r xmlns='urn:xmpp:sm:3'/>");
    a = nextSkippingRequests(ann);
    REQUIRE(a.is("a", ns::kSm));
    CHECK(a.attrOr("h", "") == "1");  // the ping
    ann.send("<a xmlns='urn:xmpp:sm:3' h='1'/>");  // the pong: nothing outstanding now
    // The server asks for an ack after writing (§4).
    bob.send("<message type='chat' to='ann@example.com/pc'><body>one</body></message>");
    CHECK(body(ann.nextStanza()) == "one");
    auto r = ann.nextStanza();
    CHECK(r.is("r", ns::kSm));
    SUBCASE("an ack of everything sent") {
      ann.send("<a xmlns='urn:xmpp:sm:3' h='2'/>");  // the pong and the message
      roundTrip(ann, "p2");
      CHECK(node.server->stats().smAckRequests >= 1);
    }
    SUBCASE("an ack of more than was sent ends the stream (handled-count-too-high)") {
      ann.send("<a xmlns='urn:xmpp:sm:3' h='7'/>");
      CHECK(ann.streamError() == "undefined-condition");
    }
    SUBCASE("an h that is no 32-bit count is refused precisely") {
      ann.send("<a xmlns='urn:xmpp:sm:3' h='4294967296'/>");
      CHECK(ann.streamError() == "invalid-xml");
    }
  }
}

TEST_CASE("XEP-0198 §5: a dropped session resumes on a new stream and gets what it had not acknowledged, in order") {
  Node node;
  imp::net::EventLoop loop;
  Client bob(loop, node.server->clientPort());
  bob.login("bob", "bob-secret", "pc");
  auto ann = std::make_unique<Client>(loop, node.server->clientPort());
  ann->login("ann", "ann-secret", "mobile");
  ann->available("ann@example.com/mobile");  // m4, to the bare JID, is for an available resource
  auto enabled = enableSm(*ann);
  std::string previd(enabled.attrOr("id", ""));
  bob.send("<message type='chat' to='ann@example.com/mobile'><body>m1</body></message>");
  CHECK(body(nextSkippingRequests(*ann)) == "m1");
  ann->send("<a xmlns='urn:xmpp:sm:3' h='1'/>");
  bob.send("<message type='chat' to='ann@example.com/mobile'><body>m2</body></message>");
  CHECK(body(nextSkippingRequests(*ann)) == "m2");  // seen, never acknowledged
  roundTrip(*ann, "p0");                           // the ack of m1 has been handled
  // The connection drops (no </stream:stream>).
  ann->conn->close();
  ann.reset();
  REQUIRE(loop.runUntil([&] { return node.server->stats().hibernating.load() == 1; }, kDeadline));
  bob.send("<message type='chat' to='ann@example.com/mobile'><body>m3</body></message>");
  bob.send("<message type='chat' to='ann@example.com'><body>m4</body></message>");
  roundTrip(bob, "p1");

  Client back(loop, node.server->clientPort());
  back.authenticate("ann", "ann-secret");
  SUBCASE("resumed") {
    back.send("<resume xmlns='urn:xmpp:sm:3' previd='" + previd + "' h='1'/>");
    auto resumed = back.nextStanza();
    REQUIRE(resumed.is("resumed", ns::kSm));
    CHECK(resumed.attrOr("previd", "") == previd);
    CHECK(resumed.attrOr("h", "") == "1");  // the server handled ann's ping
    // The answer to ann's ping (p0) was not acknowledged either: it comes
    // again between m2 and m3.
    auto first = nextSkippingRequests(back);
    CHECK(body(first) == "m2");
    auto pong = nextSkippingRequests(back);
    CHECK(pong.attrOr("id", "") == "p0");
    std::vector<std::string> got;
    while (got.size() < 2) got.push_back(body(nextMessage(back)));
    CHECK(got == std::vector<std::string>{"m3", "m4"});
    CHECK(node.server->stats().smResumed == 1);
    // The full JID is the same and the session carries on.
    bob.send("<message type='chat' to='ann@example.com/mobile'><body>m5</body></message>");
    CHECK(body(nextMessage(back)) == "m5");
    back.send("<message type='chat' to='bob@example.com/pc'><body>hello again</body></message>");
    auto m = bob.nextStanza();
    CHECK(m.attrOr("from", "") == "ann@example.com/mobile");
  }
  SUBCASE("an unknown id, or another user's, is item-not-found, and binding still works") {
    back.send("<resume xmlns='urn:xmpp:sm:3' previd='0000' h='0'/>");
    auto f = back.nextStanza();
    REQUIRE(f.is("failed", ns::kSm));
    CHECK(f.child("item-not-found", ns::kStanzaErrors));
    Client other(loop, node.server->clientPort());
    other.authenticate("bob", "bob-secret");
    other.send("<resume xmlns='urn:xmpp:sm:3' previd='" + previd + "' h='0'/>");
    f = other.nextStanza();
    REQUIRE(f.is("failed", ns::kSm));
    CHECK(f.child("item-not-found", ns::kStanzaErrors));
    back.send("<iq type='set' id='b2'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>pc</resource></bind></iq>");
    CHECK(back.nextStanza().attrOr("type", "") == "result");
  }
}

TEST_CASE("XEP-0198: when the window ends the unacknowledged messages go to the user's other resource (IM-5)") {
  imp::xcp::C2sConfig cfg;
  cfg.smResumeWindow = 1s;
  Node node(cfg);
  imp::net::EventLoop loop;
  Client bob(loop, node.server->clientPort());
  bob.login("bob", "bob-secret", "pc");
  Client desk(loop, node.server->clientPort());
  desk.login("ann", "ann-secret", "desk");
  desk.available("ann@example.com/desk");  // RFC 6121 §8.5.3.2.1: the fallback is an available resource
  auto ann = std::make_unique<Client>(loop, node.server->clientPort());
  ann->login("ann", "ann-secret", "mobile");
  enableSm(*ann);
  bob.send("<message type='chat' to='ann@example.com/mobile'><body>unacked</body></message>");
  bob.send("<message type='error' to='ann@example.com/mobile'><error type='cancel'>"
           "<item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></message>");
  CHECK(body(nextSkippingRequests(*ann)) == "unacked");
  CHECK(nextSkippingRequests(*ann).attrOr("type", "") == "error");
  ann->conn->close();
  ann.reset();
  // The window (1 s) ends: the chat message reaches ann/desk through the
  // session manager; the error stanza is not re-routed.
  auto m = desk.nextStanza();
  CHECK(body(m) == "unacked");
  CHECK(m.attrOr("from", "") == "bob@example.com/pc");
  CHECK(node.server->stats().smExpired == 1);
  CHECK(node.server->stats().rerouted == 1);
  CHECK(node.server->stats().notRerouted == 1);
  // The id is gone: item-not-found.
  Client late(loop, node.server->clientPort());
  late.authenticate("ann", "ann-secret");
  late.send("<resume xmlns='urn:xmpp:sm:3' previd='x' h='0'/>");
  CHECK(late.nextStanza().child("item-not-found", ns::kStanzaErrors));
}

TEST_CASE("XEP-0198 without resumption: the stream's end hands back what was not acknowledged") {
  Node node;
  imp::net::EventLoop loop;
  Client bob(loop, node.server->clientPort());
  bob.login("bob", "bob-secret", "pc");
  Client desk(loop, node.server->clientPort());
  desk.login("ann", "ann-secret", "desk");
  desk.available("ann@example.com/desk");
  Client ann(loop, node.server->clientPort());
  ann.login("ann", "ann-secret", "mobile");
  auto enabled = enableSm(ann, "false");
  CHECK_FALSE(enabled.attr("id"));
  bob.send("<message type='chat' to='ann@example.com/mobile'><body>not acked</body></message>");
  CHECK(body(nextSkippingRequests(ann)) == "not acked");
  ann.send("</stream:stream>");
  CHECK(body(desk.nextStanza()) == "not acked");
}

TEST_CASE("XEP-0280: carbons of received and sent chat messages to the other enabled resource; private is honoured") {
  Node node;
  imp::net::EventLoop loop;
  Client pc(loop, node.server->clientPort()), phone(loop, node.server->clientPort()), bob(loop, node.server->clientPort());
  pc.login("ann", "ann-secret", "pc");
  phone.login("ann", "ann-secret", "phone");
  bob.login("bob", "bob-secret", "pc");
  enableCarbons(pc);
  enableCarbons(phone);
  bob.send("<message type='chat' to='ann@example.com/pc'><body>to pc</body></message>");
  CHECK(body(pc.nextStanza()) == "to pc");
  auto copy = phone.nextStanza();
  CHECK(copy.attrOr("from", "") == "ann@example.com");
  CHECK(copy.attrOr("to", "") == "ann@example.com/phone");
  auto* received = copy.child("received", ns::kCarbons);
  REQUIRE(received);
  auto* fwd = received->child("forwarded", ns::kForward);
  REQUIRE(fwd);
  REQUIRE(fwd->child("message", ns::kClient));
  CHECK(body(*fwd->child("message", ns::kClient)) == "to pc");
  CHECK(fwd->child("message", ns::kClient)->attrOr("from", "") == "bob@example.com/pc");

  pc.send("<message type='chat' to='bob@example.com/pc'><body>from pc</body></message>");
  CHECK(body(bob.nextStanza()) == "from pc");
  copy = phone.nextStanza();
  auto* sent = copy.child("sent", ns::kCarbons);
  REQUIRE(sent);
  CHECK(sent->child("forwarded", ns::kForward)->child("message", ns::kClient)->attrOr("from", "") ==
        "ann@example.com/pc");

  // §9 private, XEP-0334 no-copy, headline: no copies; a later copyable
  // message shows none was sent before it.
  pc.send("<message type='chat' to='bob@example.com/pc'><body>secret</body><private xmlns='urn:xmpp:carbons:2'/></message>");
  pc.send("<message type='chat' to='bob@example.com/pc'><body>nocopy</body><no-copy xmlns='urn:xmpp:hints'/></message>");
  pc.send("<message type='headline' to='bob@example.com/pc'><body>news</body></message>");
  pc.send("<message type='chat' to='bob@example.com/pc'><body>last</body></message>");
  copy = phone.nextStanza();
  REQUIRE(copy.child("sent", ns::kCarbons));
  CHECK(body(*copy.child("sent", ns::kCarbons)->child("forwarded", ns::kForward)->child("message", ns::kClient)) ==
        "last");

  // disabled: no more copies
  phone.send("<iq type='set' id='c2'><disable xmlns='urn:xmpp:carbons:2'/></iq>");
  CHECK(phone.nextStanza().attrOr("type", "") == "result");
  bob.send("<message type='chat' to='ann@example.com/pc'><body>after disable</body></message>");
  CHECK(body(pc.nextStanza()) == "after disable");
  CHECK(roundTrip(phone, "p1") == 0);  // nothing came before the pong
}

TEST_CASE("abuse limits: a session over its stanza rate is throttled, not cut, and every stanza is answered") {
  imp::xcp::C2sConfig cfg;
  cfg.maxStanzasPerSecond = 50;
  cfg.stanzaBurst = 50;
  Node node(cfg);
  imp::net::EventLoop loop;
  Client ann(loop, node.server->clientPort());
  ann.login("ann", "ann-secret", "pc");
  std::string burst;
  for (int i = 0; i < 120; ++i) burst += "<iq type='get' id='q" + std::to_string(i) + "'><ping xmlns='urn:xmpp:ping'/></iq>";
  ann.send(burst);
  for (int i = 0; i < 120; ++i) CHECK(ann.nextStanza().attrOr("id", "") == "q" + std::to_string(i));
  CHECK(node.server->stats().throttled >= 1);
  CHECK_FALSE(ann.closed);
}

TEST_CASE("XEP-0280 §6: a message to the bare JID is copied to the enabled resources the session manager did not choose") {
  Node node;
  imp::net::EventLoop loop;
  Client pc(loop, node.server->clientPort()), phone(loop, node.server->clientPort()), bob(loop, node.server->clientPort());
  pc.login("ann", "ann-secret", "pc");
  phone.login("ann", "ann-secret", "phone");
  bob.login("bob", "bob-secret", "pc");
  enableCarbons(pc);
  enableCarbons(phone);
  // RFC 6121 §8.5.2.1.1: the highest priority gets the original.
  phone.available("ann@example.com/phone", 0);
  pc.available("ann@example.com/pc", 5);
  bob.send("<message type='chat' to='ann@example.com'><body>to ann</body></message>");
  auto original = nextMessage(pc);
  CHECK(body(original) == "to ann");
  CHECK_FALSE(original.child("received", ns::kCarbons));
  // phone saw pc's presence first (§4.2.2), then the copy.
  Element copy = nextMessage(phone);
  auto* received = copy.child("received", ns::kCarbons);
  REQUIRE(received);
  CHECK(copy.attrOr("to", "") == "ann@example.com/phone");
  CHECK(body(*received->child("forwarded", ns::kForward)->child("message", ns::kClient)) == "to ann");
  // Exactly one copy: pc's stream had made any second one before it wrote
  // the original; phone's ping answer comes with no message before it.
  CHECK(roundTrip(phone, "p1") == 0);
  CHECK(node.server->stats().carbonCopies == 1);
}
