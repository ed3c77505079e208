// Client streams end to end over loopback (issue 16, deliverable 2): a
// scripted client on a real socket against C2sServer, with STARTTLS on a
// throwaway PKI (RFC 6120 §5), SASL (§6), resource binding (§7), the
// server's own iq (XEP-0199, XEP-0030, XEP-0092) and a message between two
// users through the Router (RFC 6121 §8.5).
#include "c2s_harness.h"

TEST_CASE("a stream to a domain this node does not serve gets host-unknown (RFC 6120 §4.9.3.6)") {
  Node node;
  imp::net::EventLoop loop;
  Client c(loop, node.server->clientPort());
  c.send("<?xml version='1.0'?><stream:stream to='elsewhere.org' version='1.0' xmlns='jabber:client' "
         "xmlns:stream='http://etherx.jabber.org/streams'>");
  REQUIRE(c.next().kind == StreamEvent::Kind::Opened);
  CHECK(c.streamError() == "host-unknown");
  CHECK(loop.runUntil([&] { return c.closed; }, kDeadline));
  CHECK(node.server->stats().streamErrors().at("host-unknown") == 1);
}

TEST_CASE("STARTTLS is mandatory: anything else first is a policy-violation (RFC 6120 §5.3.1)") {
  Node node;
  imp::net::EventLoop loop;
  Client c(loop, node.server->clientPort());
  c.open();
  REQUIRE(c.next().kind == StreamEvent::Kind::Opened);
  auto features = c.nextStanza();
  REQUIRE(features.child("starttls", ns::kTls));
  CHECK(features.child("starttls", ns::kTls)->child("required", ns::kTls));
  CHECK_FALSE(features.child("mechanisms", ns::kSasl));  // no SASL before TLS, not even PLAIN
  // XEP-0478: the pre-authentication limit is announced.
  auto* limits = features.child("limits", ns::kStreamLimits);
  REQUIRE(limits);
  CHECK(limits->childText("max-bytes", ns::kStreamLimits) == "10240");
  c.send("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AGFubgBhbm4tc2VjcmV0</auth>");
  CHECK(c.streamError() == "policy-violation");
}

TEST_CASE("after STARTTLS the SCRAM mechanisms with -PLUS and PLAIN are offered (RFC 6120 §6, RFC 5802, RFC 9266)") {
  Node node;
  imp::net::EventLoop loop;
  Client c(loop, node.server->clientPort());
  c.startTls();
  auto m = c.mechanisms();
  CHECK(std::find(m.begin(), m.end(), "SCRAM-SHA-256") != m.end());
  CHECK(std::find(m.begin(), m.end(), "SCRAM-SHA-256-PLUS") != m.end());
  CHECK(std::find(m.begin(), m.end(), "SCRAM-SHA-1") != m.end());
  CHECK(std::find(m.begin(), m.end(), "PLAIN") != m.end());
}

TEST_CASE("wrong password, unknown user and unlicensed user fail alike with not-authorized (RFC 6120 §6.5.10)") {
  Node node;
  imp::net::EventLoop loop;
  Client c(loop, node.server->clientPort());
  c.startTls();
  c.mechanisms();
  CHECK(c.plain("ann", "wrong") == "not-authorized");
  CHECK(c.plain("nobody", "whatever") == "not-authorized");
  CHECK(c.plain("dora", "dora-secret") == "not-authorized");  // not licensed for IM
  CHECK(c.plain("ann", "ann-secret") == "success");           // the client may try again (§6.4.5)
  CHECK(node.server->stats().authFailures == 3);
}

TEST_CASE("a user homed on another node is sent there with see-other-host (RFC 6120 §4.9.3.19)") {
  Node node;
  imp::net::EventLoop loop;
  Client c(loop, node.server->clientPort());
  c.startTls();
  c.mechanisms();
  CHECK(c.plain("carl", "carl-secret") == "success");
  // On the restarted stream (RFC 6120 §6.4.6), after its header: the old
  // stream's parser is gone on the client's side.
  c.open();
  REQUIRE(c.next().kind == StreamEvent::Kind::Opened);
  auto el = c.nextStanza();
  REQUIRE(el.is("error", ns::kStreams));
  CHECK(el.child("see-other-host", ns::kStreamErrors));
  CHECK(el.child("see-other-host", ns::kStreamErrors)->text() == "node-b.example.com:5222");
}

TEST_CASE("two users log in, bind, talk to the server and exchange a message (RFC 6120 §7, RFC 6121 §8.5)") {
  Node node;
  imp::net::EventLoop loop;
  Client ann(loop, node.server->clientPort());
  Client bob(loop, node.server->clientPort());
  CHECK(ann.login("ann", "ann-secret", "pc") == "ann@example.com/pc");
  auto bobJid = bob.login("bob", "bob-secret", "");
  CHECK(bobJid.rfind("bob@example.com/imp-", 0) == 0);  // a server-generated resource (§7.6.2.1)
  CHECK(bobJid.size() == std::string("bob@example.com/imp-").size() + 12);
  // What `impctl session list` shows.
  auto sessions = node.server->sessions("ann");
  REQUIRE(sessions.size() == 1);
  CHECK(sessions[0].jid == "ann@example.com/pc");
  CHECK(sessions[0].userid == "ann");
  CHECK(sessions[0].remote.rfind("127.0.0.1:", 0) == 0);
  CHECK(sessions[0].tlsVersion.rfind("TLSv1.", 0) == 0);
  CHECK(node.server->sessions().size() == 2);

  SUBCASE("XEP-0199 ping, XEP-0030 disco#info and XEP-0092 version of the server") {
    ann.send("<iq type='get' id='p1' to='example.com'><ping xmlns='urn:xmpp:ping'/></iq>");
    auto pong = ann.nextStanza();
    CHECK(pong.attrOr("type", "") == "result");
    CHECK(pong.attrOr("id", "") == "p1");
    ann.send("<iq type='get' id='d1' to='example.com'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>");
    auto info = ann.nextStanza();
    REQUIRE(info.child("query", ns::kDiscoInfo));
    std::vector<std::string> features;
    for (auto* f : info.child("query", ns::kDiscoInfo)->children("feature", ns::kDiscoInfo))
      features.emplace_back(f->attrOr("var", ""));
    CHECK(std::find(features.begin(), features.end(), "urn:xmpp:ping") != features.end());
    CHECK(std::find(features.begin(), features.end(), "jabber:iq:version") != features.end());
    ann.send("<iq type='get' id='v1'><query xmlns='jabber:iq:version'/></iq>");
    auto version = ann.nextStanza();
    REQUIRE(version.child("query", ns::kVersion));
    CHECK(version.child("query", ns::kVersion)->childText("version", ns::kVersion) == "test-1");
  }
  SUBCASE("a chat message to the bare JID reaches the available resource with from stamped (RFC 6120 §8.1.2.1)") {
    // Initial presence makes bob's resource available (RFC 6121 §4.2); the
    // server echoes it to bob's own resources (§4.2.2), so it has been taken.
    bob.send("<presence/>");
    auto echo = bob.nextWhere([](const Element& e) { return e.name() == "presence"; });  // past the XEP-0092 query
    CHECK(echo.attrOr("from", "") == bobJid);
    ann.send("<message type='chat' id='m1' to='bob@example.com' from='someone@else.org'><body>hi bob</body></message>");
    auto m = bob.nextWhere([](const Element& e) { return e.name() == "message"; });
    CHECK(m.name() == "message");
    CHECK(m.attrOr("from", "") == "ann@example.com/pc");
    CHECK(m.childText("body", ns::kClient) == "hi bob");
    bob.send("<message type='chat' id='m2' to='ann@example.com/pc'><body>hi ann</body>"
             "<active xmlns='http://jabber.org/protocol/chatstates'/></message>");
    auto back = ann.nextStanza();
    CHECK(back.attrOr("from", "") == bobJid);
    CHECK(back.child("active", ns::kChatStates));  // XEP-0085 passes through
  }
  SUBCASE("a client's delay in the server's name is removed; its own is kept (XEP-0203)") {
    ann.send("<message type='chat' id='d1' to='" + bobJid + "'><body>late</body>"
             "<delay xmlns='urn:xmpp:delay' from='example.com' stamp='2001-01-01T00:00:00Z'/>"
             "<delay xmlns='urn:xmpp:delay' from='ann@example.com/pc' stamp='2002-02-02T00:00:00Z'/></message>");
    auto m = bob.nextWhere([](const Element& e) { return e.name() == "message"; });
    auto delays = m.children("delay", ns::kDelay);
    REQUIRE(delays.size() == 1);
    CHECK(delays[0]->attrOr("from", "") == "ann@example.com/pc");
  }
  SUBCASE("a message to an unknown local user comes back as service-unavailable (RFC 6121 §8.5.2.2.1)") {
    ann.send("<message type='chat' id='m3' to='nobody@example.com'><body>?</body></message>");
    auto err = ann.nextStanza();
    CHECK(err.attrOr("type", "") == "error");
    CHECK(err.attrOr("id", "") == "m3");
    REQUIRE(err.child("error", ns::kClient));
    CHECK(err.child("error", ns::kClient)->child("service-unavailable", ns::kStanzaErrors));
  }
  SUBCASE("a second session with the same full JID replaces the first, which gets conflict (RFC 6120 §7.7.2.2)") {
    Client ann2(loop, node.server->clientPort());
    CHECK(ann2.login("ann", "ann-secret", "pc") == "ann@example.com/pc");
    CHECK(ann.streamError() == "conflict");
    bob.send("<message type='chat' id='m4' to='ann@example.com/pc'><body>which?</body></message>");
    CHECK(ann2.nextStanza().childText("body", ns::kClient) == "which?");
  }
}

TEST_CASE("RFC 6121 §3.4: pre-approval is a stream feature; a pre-approved request is answered for the user") {
  Node node({}, true);
  node.stores->setSettings({.autoApprove = false});  // without an approval ann would be asked (PS-2)
  imp::net::EventLoop loop;
  Client ann(loop, node.server->clientPort());
  Client bob(loop, node.server->clientPort());
  auto features = ann.authenticate("ann", "ann-secret");
  CHECK(features.child("sub", ns::kPreApproval));  // §3.4.1
  CHECK(features.child("ver", ns::kRosterVer));    // §2.6.1
  ann.send("<iq type='set' id='b1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>pc</resource></bind></iq>");
  REQUIRE(ann.nextStanza().attrOr("type", "") == "result");
  ann.send("<iq type='get' id='r1'><query xmlns='jabber:iq:roster'/></iq>");
  ann.nextWhere([](const Element& e) { return e.attrOr("id", "") == "r1"; });
  ann.available("ann@example.com/pc");
  auto rosterPush = [](const Element& e) { return e.name() == "iq" && e.child("query", ns::kRoster); };
  auto itemOf = [](const Element& push) { return *push.child("query", ns::kRoster)->child("item", ns::kRoster); };
  // §3.4.2: "subscribed" with no request pending is stored as a pre-approval.
  ann.send("<presence to='bob@example.com' type='subscribed'/>");
  auto push = ann.nextWhere(rosterPush);
  CHECK(itemOf(push).attrOr("jid", "") == "bob@example.com");
  CHECK(itemOf(push).attrOr("approved", "") == "true");
  CHECK(itemOf(push).attrOr("subscription", "") == "none");
  // §3.4.3: bob's request meets it: "subscribed" and ann's presence come
  // back at once, ann is not asked.
  CHECK(bob.login("bob", "bob-secret", "pc") == "bob@example.com/pc");
  bob.available("bob@example.com/pc");
  bob.send("<presence to='ann@example.com' type='subscribe'/>");
  auto answer = bob.nextWhere([](const Element& e) { return e.name() == "presence" && e.attrOr("type", "") != ""; });
  CHECK(answer.attrOr("type", "") == "subscribed");
  CHECK(answer.attrOr("from", "") == "ann@example.com");
  auto presence = bob.nextWhere([](const Element& e) { return e.name() == "presence"; });
  CHECK(presence.attrOr("from", "") == "ann@example.com/pc");
  CHECK(presence.attrOr("type", "") == "");
  push = ann.nextWhere(rosterPush);
  CHECK(itemOf(push).attrOr("subscription", "") == "from");
  CHECK_FALSE(itemOf(push).attr("approved"));
  CHECK(ann.countReceived([](const Element& e) { return e.attrOr("type", "") == "subscribe"; }) == 0);
  auto item = node.stores->roster.item("ann", "bob@example.com");
  REQUIRE(item);
  CHECK(item->state.name() == "From");  // Appendix A.3.1: None + pre-approval -> From
  CHECK_FALSE(item->state.preApproved);
  CHECK(node.stores->roster.item("bob", "ann@example.com")->state.name() == "To");
}

TEST_CASE("XEP-0191 §3.3: nothing from a blocked JID reaches the user; what the user sends to it is refused with <blocked/>") {
  Node node({}, true);
  // Blocked before ann logs in: her binding loads the list.
  node.stores->blocks.block("ann", {"bob@example.com"});
  imp::net::EventLoop loop;
  Client ann(loop, node.server->clientPort());
  Client bob(loop, node.server->clientPort());
  CHECK(ann.login("ann", "ann-secret", "pc") == "ann@example.com/pc");
  CHECK(bob.login("bob", "bob-secret", "pc") == "bob@example.com/pc");
  ann.available("ann@example.com/pc");
  bob.available("bob@example.com/pc");
  auto byId = [](std::string id) { return [id](const Element& e) { return e.attrOr("id", "") == id; }; };
  auto condition = [](const Element& e) {
    const Element* err = e.child("error", ns::kClient);
    REQUIRE(err);
    for (const auto& n : err->nodes())
      if (n.isElement() && n.element().ns() == ns::kStanzaErrors && n.element().name() != "text")
        return n.element().name();
    return std::string();
  };
  // Inbound: a message and an iq get to ann's full JID and a message to her
  // bare JID come back service-unavailable (she looks offline to bob); a
  // presence and an iq result are dropped without an answer.
  bob.send("<presence to='ann@example.com/pc'/>");
  bob.send("<iq type='result' id='r0' to='ann@example.com/pc'/>");
  bob.send("<message type='chat' id='m1' to='ann@example.com/pc'><body>psst</body></message>");
  auto e = bob.nextWhere(byId("m1"));
  CHECK(e.attrOr("type", "") == "error");
  CHECK(condition(e) == "service-unavailable");
  CHECK(e.attrOr("from", "") == "ann@example.com/pc");
  bob.send("<iq type='get' id='q1' to='ann@example.com/pc'><ping xmlns='urn:xmpp:ping'/></iq>");
  e = bob.nextWhere(byId("q1"));
  CHECK(e.attrOr("type", "") == "error");
  CHECK(condition(e) == "service-unavailable");
  bob.send("<message type='chat' id='m2' to='ann@example.com'><body>psst</body></message>");
  CHECK(condition(bob.nextWhere(byId("m2"))) == "service-unavailable");
  // Outbound: not routed, not-acceptable with the blocking error condition.
  ann.send("<message type='chat' id='a1' to='bob@example.com'><body>go away</body></message>");
  e = ann.nextWhere(byId("a1"));
  CHECK(e.attrOr("type", "") == "error");
  CHECK(condition(e) == "not-acceptable");
  CHECK(e.child("error", ns::kClient)->attrOr("type", "") == "cancel");
  CHECK(e.child("error", ns::kClient)->child("blocked", ns::kBlockingErrors));
  CHECK(e.attrOr("from", "") == "bob@example.com");
  ann.send("<presence id='a2' to='bob@example.com/pc'/>");
  CHECK(condition(ann.nextWhere(byId("a2"))) == "not-acceptable");
  ann.send("<iq type='get' id='a3' to='bob@example.com/pc'><ping xmlns='urn:xmpp:ping'/></iq>");
  CHECK(condition(ann.nextWhere(byId("a3"))) == "not-acceptable");
  // A round trip on each stream: everything above has been handled.
  ann.send("<iq type='get' id='p1'><ping xmlns='urn:xmpp:ping'/></iq>");
  ann.nextWhere(byId("p1"));
  bob.send("<iq type='get' id='p2'><ping xmlns='urn:xmpp:ping'/></iq>");
  bob.nextWhere(byId("p2"));
  // bob's presence went through his session-manager strand (directed
  // presence, RFC 6121 §4.6.3) on a worker: it reaches ann's stream last.
  CHECK(loop.runUntil([&] { return node.server->stats().blockedIn.load() == 4; }, kDeadline));
  auto fromBob = [](const Element& el) { return el.attrOr("from", "").rfind("bob@example.com", 0) == 0; };
  CHECK(ann.countReceived([&](const Element& el) { return fromBob(el) && el.attrOr("type", "") != "error"; }) == 0);
  CHECK(bob.countReceived([](const Element& el) { return el.attrOr("from", "").rfind("ann@", 0) == 0 &&
                                                         el.attrOr("type", "") != "error"; }) == 0);
  CHECK(node.server->stats().blockedOut.load() == 3);
  // §3.4: unblocked, bob gets through.
  ann.send("<iq type='set' id='u1'><unblock xmlns='urn:xmpp:blocking'><item jid='bob@example.com'/></unblock></iq>");
  CHECK(ann.nextWhere(byId("u1")).attrOr("type", "") == "result");
  bob.send("<message type='chat' id='m3' to='ann@example.com/pc'><body>friends?</body></message>");
  auto m = ann.nextWhere([](const Element& el) { return el.name() == "message"; });
  CHECK(m.childText("body", ns::kClient) == "friends?");
}

TEST_CASE("stanzas pipelined after <bind/> wait for the binding (the block list is loaded first) and keep their order") {
  Node node({}, true);
  imp::net::EventLoop loop;
  Client ann(loop, node.server->clientPort());
  ann.authenticate("ann", "ann-secret");
  ann.send("<iq type='set' id='b1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>pc</resource></bind></iq>"
           "<iq type='get' id='p1'><ping xmlns='urn:xmpp:ping'/></iq>"
           "<iq type='get' id='p2'><ping xmlns='urn:xmpp:ping'/></iq>");
  auto bound = ann.nextStanza();
  CHECK(bound.attrOr("id", "") == "b1");
  CHECK(bound.attrOr("type", "") == "result");
  CHECK(ann.nextStanza().attrOr("id", "") == "p1");
  CHECK(ann.nextStanza().attrOr("id", "") == "p2");
}

TEST_CASE("XEP-0092: a client whose presence has no caps node is asked its version once; `session list` shows the answer") {
  Node node;
  imp::net::EventLoop loop;
  Client ann(loop, node.server->clientPort());
  Client bob(loop, node.server->clientPort());
  Client cy(loop, node.server->clientPort());
  CHECK(ann.login("ann", "ann-secret", "pc") == "ann@example.com/pc");
  CHECK(bob.login("bob", "bob-secret", "pc") == "bob@example.com/pc");
  node.accounts->users["cy@example.com"] = {"cy", true, "node-a", "cy-secret"};
  node.directory.licensed["cy@example.com"] = "node-a";
  CHECK(cy.login("cy", "cy-secret", "pc") == "cy@example.com/pc");
  auto versionQuery = [](const Element& e) {
    return e.name() == "iq" && e.attrOr("type", "") == "get" && e.child("query", ns::kVersion);
  };
  auto clientOf = [&](const std::string& userid) {
    auto s = node.server->sessions(userid);
    REQUIRE(s.size() == 1);
    return s[0].client;
  };
  auto roundTrip = [](Client& c, const std::string& id) {
    c.send("<iq type='get' id='" + id + "'><ping xmlns='urn:xmpp:ping'/></iq>");
    c.nextWhere([&](const Element& e) { return e.attrOr("id", "") == id; });
  };
  // ann: no caps; asked after her initial presence, from the server.
  ann.send("<presence/>");
  auto q = ann.nextWhere(versionQuery);
  CHECK(q.attrOr("from", "") == "example.com");
  CHECK(q.attrOr("to", "") == "ann@example.com/pc");
  std::string id(q.attrOr("id", ""));
  CHECK(clientOf("ann").empty());
  ann.send("<iq type='result' id='" + id + "' to='example.com'><query xmlns='jabber:iq:version'>"
           "<name>Gajim</name><version>1.8.4</version><os>Linux</os></query></iq>");
  roundTrip(ann, "p1");
  CHECK(clientOf("ann") == "Gajim 1.8.4");
  // bob: a caps node; never asked, the node is the column.
  bob.send("<presence><c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='https://conversations.im' "
           "ver='q07IKJEyjvHSyhy//CH0CxmKi8w='/></presence>");
  roundTrip(bob, "p2");
  CHECK(clientOf("bob") == "https://conversations.im");
  // cy answers with an error: the column stays empty; later presence does
  // not ask again (one query per session).
  cy.send("<presence/>");
  q = cy.nextWhere(versionQuery);
  cy.send("<iq type='error' id='" + std::string(q.attrOr("id", "")) + "' to='example.com'>"
          "<error type='cancel'><service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>");
  cy.send("<presence><show>away</show></presence>");
  roundTrip(cy, "p3");
  CHECK(clientOf("cy").empty());
  // A second answer to the same id (after the one taken) is ignored.
  ann.send("<iq type='result' id='" + id + "' to='example.com'><query xmlns='jabber:iq:version'>"
           "<name>Spoofed</name><version>0</version></query></iq>");
  ann.send("<presence><show>dnd</show></presence>");
  roundTrip(ann, "p4");
  CHECK(clientOf("ann") == "Gajim 1.8.4");
  for (Client* c : {&ann, &bob, &cy}) CHECK(c->countReceived(versionQuery) == (c == &bob ? 0u : 1u));
  // None of the answers went anywhere but the server.
  CHECK(bob.countReceived([](const Element& e) { return e.name() == "iq" && e.attrOr("type", "") != "result"; }) == 0);
  CHECK(ann.countReceived([](const Element& e) { return e.attrOr("type", "") == "error"; }) == 0);
}

TEST_CASE("direct TLS (XEP-0368): the stream starts inside TLS and offers SASL at once") {
  Node node;
  imp::net::EventLoop loop;
  Client c(loop, node.server->tlsPort(), true);
  REQUIRE(loop.runUntil([&] { return c.conn->isOpen() || c.closed; }, kDeadline));
  auto m = c.mechanisms();
  CHECK(std::find(m.begin(), m.end(), "SCRAM-SHA-256") != m.end());
  CHECK(c.plain("ann", "ann-secret") == "success");
}

TEST_CASE("setTls (TLS-4): new STARTTLS and direct-TLS streams present the new certificate, open ones carry on") {
  Node node;
  imp::net::EventLoop loop;
  Client before(loop, node.server->clientPort());
  before.startTls();
  CHECK(before.conn->tls()->peerCommonName() == "example.com");

  auto renewed = pki().leaf("xmpp-renewed", "renewed.example.com", "DNS:example.com");
  imp::net::TlsContextConfig tc;
  tc.certFile = renewed.cert;
  tc.keyFile = renewed.key;
  auto tls = imp::net::TlsContext::server(tc);
  node.server->setTls(tls);
  CHECK(node.server->tls() == tls);

  Client starttls(loop, node.server->clientPort());
  starttls.startTls();
  CHECK(starttls.conn->tls()->peerCommonName() == "renewed.example.com");
  Client direct(loop, node.server->tlsPort(), true);
  REQUIRE(loop.runUntil([&] { return direct.conn->isOpen() || direct.closed; }, kDeadline));
  REQUIRE(direct.conn->isOpen());
  CHECK(direct.conn->tls()->peerCommonName() == "renewed.example.com");

  // The stream in TLS before the change keeps its session and logs in.
  auto m = before.mechanisms();
  CHECK(std::find(m.begin(), m.end(), "PLAIN") != m.end());
  CHECK(before.plain("ann", "ann-secret") == "success");
  CHECK(before.conn->tls()->peerCommonName() == "example.com");

  CHECK_THROWS_AS(node.server->setTls(nullptr), std::invalid_argument);
  CHECK(node.server->tls() == tls);
}

TEST_CASE("a stanza over the pre-authentication limit ends the stream with policy-violation (RFC 6120 §13.12)") {
  imp::xcp::C2sConfig cfg;
  cfg.preAuthStanzaLimit = 2048;
  Node node(cfg);
  imp::net::EventLoop loop;
  Client c(loop, node.server->clientPort());
  c.open();
  REQUIRE(c.next().kind == StreamEvent::Kind::Opened);
  c.nextStanza();
  c.send("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'>" + std::string(4096, 'x') + "</starttls>");
  CHECK(c.streamError() == "policy-violation");
}

TEST_CASE("abuse limits: connections per IP address (XEP-0205)") {
  imp::xcp::C2sConfig cfg;
  cfg.maxConnectionsPerIp = 1;
  Node node(cfg);
  imp::net::EventLoop loop;
  Client first(loop, node.server->clientPort());
  first.open();
  REQUIRE(first.next().kind == StreamEvent::Kind::Opened);
  Client second(loop, node.server->clientPort());
  REQUIRE(second.next().kind == StreamEvent::Kind::Opened);
  CHECK(second.streamError() == "policy-violation");
  CHECK(node.server->stats().refusedPerIp == 1);
}

TEST_CASE("a client that never logs in is closed with connection-timeout") {
  imp::xcp::C2sConfig cfg;
  cfg.authTimeout = 200ms;
  Node node(cfg);
  imp::net::EventLoop loop;
  Client c(loop, node.server->clientPort());
  c.open();
  REQUIRE(c.next().kind == StreamEvent::Kind::Opened);
  c.nextStanza();
  CHECK(c.streamError() == "connection-timeout");
}

TEST_CASE("an idle stream gives its XML parser back and still parses what comes next, split across reads") {
  imp::xcp::C2sConfig cfg;
  cfg.compactIdleAfter = 20ms;
  Node node(cfg);
  imp::net::EventLoop loop;
  Client ann(loop, node.server->clientPort());
  Client bob(loop, node.server->clientPort());
  REQUIRE(ann.login("ann", "ann-secret", "pc") == "ann@example.com/pc");
  const auto bobJid = bob.login("bob", "bob-secret", "phone");
  bob.available(bobJid);
  // Both streams fall idle: the sweep compacts them.
  REQUIRE(loop.runUntil([&] { return node.server->stats().compacted >= 2; }, kDeadline));
  const auto before = node.server->stats().compacted.load();
  // A complete ping, then half of another: the server answers the first
  // and holds the second, rebuilt parser and all, until the rest arrives
  // in a later read.
  ann.send("<iq type='get' id='p1' to='example.com'><ping xmlns='urn:xmpp:ping'/></iq><iq type='get' id='p2' to='exa");
  auto p1 = ann.nextStanza();
  CHECK(p1.attrOr("id", "") == "p1");
  ann.send("mple.com'><ping xmlns='urn:x");
  ann.send("mpp:ping'/></iq>");
  auto p2 = ann.nextStanza();
  CHECK(p2.attrOr("id", "") == "p2");
  CHECK(p2.attrOr("type", "") == "result");
  // Idle again, compacted again; a message from the other side reaches it
  // and its own message reaches bob.
  REQUIRE(loop.runUntil([&] { return node.server->stats().compacted > before; }, kDeadline));
  ann.send("<message type='chat' id='m1' to='" + bobJid + "'><body>after a pause</body></message>");
  auto m = bob.nextStanza();
  CHECK(m.attrOr("from", "") == "ann@example.com/pc");
  CHECK(m.childText("body", ns::kClient) == "after a pause");
  // The stream's own prefix still resolves on a rebuilt parser: a clean close.
  REQUIRE(loop.runUntil([&] { return node.server->stats().compacted > before + 1; }, kDeadline));
  ann.send("</stream:stream>");
  REQUIRE(ann.next().kind == StreamEvent::Kind::Closed);
  CHECK(node.server->stats().streamErrors().empty());
}
