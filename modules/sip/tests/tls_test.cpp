// SIP over TLS (TLS-1..TLS-3): mutual TLS with a peer-subject CN check,
// TLS 1.0 only when allowed, CN (never SAN) as the peer identity. The test
// PKI is generated here with the OpenSSL API.
#include <doctest/doctest.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdlib.h>

#include <cstdio>
#include <filesystem>
#include <memory>
#include <set>

#include "imp/net/tls.h"
#include "transport_test_util.h"
#include <fakes/test_pki.h>

using namespace imp::sip;
using namespace imp::net;
using namespace imp::sip::testing;
namespace fs = std::filesystem;

namespace {

using Identity = imp::testing::PkiIdentity;

// CA, a server certificate and client certificates (tests/fakes/test_pki.h).
struct Pki {
  imp::testing::TestPki ca{"IMP Test Root CA", "imp-tls-test"};
  std::filesystem::path dir = ca.dir();
  std::string caFile = ca.caFile();
  Identity server = ca.leaf("server", "proxy.test", "DNS:proxy.test");
  Identity lync = ca.leaf("lync", "lync.example.com", "DNS:lync.example.com");
  Identity intruder = ca.leaf("intruder", "intruder.example.com", "DNS:intruder.example.com");
  // SAN names the trusted peer, CN does not: the CN is what counts (TLS-2).
  Identity sanIsLync = ca.leaf("san-lync", "intruder.example.com", "DNS:lync.example.com");
  Identity lyncOtherSan = ca.leaf("lync-other-san", "lync.example.com", "DNS:pool.other.example.net");
  // Right CN, wrong CA.
  Identity rogue = ca.foreignLeaf("rogue", "lync.example.com", "DNS:lync.example.com");
};

const Pki& pki() {
  static Pki p;
  return p;
}

TlsContextConfig serverConfig() {
  TlsContextConfig c;
  c.certFile = pki().server.cert;
  c.keyFile = pki().server.key;
  c.caFile = pki().caFile;
  c.verifyPeer = true;  // Peer Auth listener (TLS-1)
  return c;
}

TlsContextConfig clientConfig(const Identity* id, TlsVersion maxVersion = TlsVersion::Tls13) {
  TlsContextConfig c;
  if (id != nullptr) {
    c.certFile = id->cert;
    c.keyFile = id->key;
  }
  c.caFile = pki().caFile;
  c.verifyPeer = true;  // check the server's chain too
  c.maxVersion = maxVersion;
  return c;
}

// One TLS listener and any number of clients on one loop.
struct TlsRig {
  EventLoop loop;
  TransportLayer server;
  Endpoint listener;
  Inbox atServer;
  std::vector<std::string> cnsChecked;

  explicit TlsRig(std::shared_ptr<const TlsContext> ctx, std::set<std::string> peerSubjects = {})
      : server(loop) {
    ListenerConfig lc{.transport = Transport::Tls, .address = "127.0.0.1", .tls = std::move(ctx)};
    if (!peerSubjects.empty())
      lc.acceptPeer = [this, subjects = std::move(peerSubjects)](std::string_view cn) {
        cnsChecked.emplace_back(cn);
        return subjects.contains(std::string(cn));
      };
    listener = server.listen(lc);
    server.setMessageHandler([this](Message m, const Source& s) {
      atServer.sources.push_back(s);
      server.send(responseTo(m, 200, "OK"), s.remote);
      atServer.messages.push_back(std::move(m));
    });
  }

  struct Client {
    std::unique_ptr<TransportLayer> t;
    Inbox in;
    ErrorLog errs;
  };
  std::unique_ptr<Client> client(const TlsContextConfig& cfg) {
    auto c = std::make_unique<Client>();
    TransportConfig tc;
    tc.tlsClient = TlsContext::client(cfg);
    c->t = std::make_unique<TransportLayer>(loop, tc);
    c->in.attach(*c->t);
    return c;
  }
  void send(Client& c, const std::string& callId) {
    c.t->send(parse(request("OPTIONS", Transport::Tls, callId)), listener, c.errs.handler());
  }
};

}  // namespace

TEST_CASE("mutual TLS: the accepted CN is exposed, an unknown CN is refused (TLS-2)") {
  TlsVersion version = TlsVersion::Tls13;
  SUBCASE("TLS 1.3") { version = TlsVersion::Tls13; }
  SUBCASE("TLS 1.2") { version = TlsVersion::Tls12; }
  TlsRig rig(TlsContext::server(serverConfig()), {"lync.example.com"});

  auto lync = rig.client(clientConfig(&pki().lync, version));
  rig.send(*lync, "mtls-ok");
  REQUIRE(rig.loop.runUntil([&] { return !lync->in.messages.empty() || !lync->errs.errors.empty(); }, kDeadline));
  REQUIRE(lync->errs.errors.empty());
  REQUIRE(rig.atServer.sources.size() == 1);
  CHECK(rig.atServer.sources[0].peerCommonName == "lync.example.com");
  CHECK(rig.atServer.sources[0].remote.transport == Transport::Tls);
  CHECK(rig.atServer.sources[0].local == rig.listener);
  CHECK(lync->in.messages[0].statusCode() == 200);
  CHECK(lync->in.sources[0].peerCommonName == "proxy.test");  // the client verified the server

  auto intruder = rig.client(clientConfig(&pki().intruder, version));
  rig.send(*intruder, "mtls-refused");
  REQUIRE(rig.loop.runUntil([&] { return !intruder->errs.errors.empty(); }, kDeadline));
  CHECK(intruder->errs.errors[0].kind == TransportErrorKind::TlsHandshakeFailed);
  CHECK(intruder->in.messages.empty());
  CHECK(rig.atServer.messages.size() == 1);  // nothing from the intruder
  CHECK(rig.server.stats().tlsPeersRefused == 1);
  CHECK(rig.cnsChecked == std::vector<std::string>{"lync.example.com", "intruder.example.com"});
  REQUIRE(rig.loop.runUntil([&] { return rig.server.stats().connectionsActive == 1; }, kDeadline));
}

TEST_CASE("mutual TLS: a client without a certificate, or from another CA, fails the handshake") {
  TlsVersion version = TlsVersion::Tls13;
  SUBCASE("TLS 1.3") { version = TlsVersion::Tls13; }
  SUBCASE("TLS 1.2") { version = TlsVersion::Tls12; }
  TlsRig rig(TlsContext::server(serverConfig()));

  auto anonymous = rig.client(clientConfig(nullptr, version));
  rig.send(*anonymous, "no-cert");
  REQUIRE(rig.loop.runUntil([&] { return !anonymous->errs.errors.empty(); }, kDeadline));
  CHECK(anonymous->errs.errors[0].kind == TransportErrorKind::TlsHandshakeFailed);

  auto rogue = rig.client(clientConfig(&pki().rogue, version));
  rig.send(*rogue, "rogue");
  REQUIRE(rig.loop.runUntil([&] { return !rogue->errs.errors.empty(); }, kDeadline));
  CHECK(rogue->errs.errors[0].kind == TransportErrorKind::TlsHandshakeFailed);

  CHECK(rig.atServer.messages.empty());
  CHECK(rig.server.stats().tlsHandshakeFailures == 2);
  CHECK(rig.server.stats().connectionsActive == 0);
}

TEST_CASE("server-auth TLS listener: no client certificate needed, no peer CN claimed") {
  TlsContextConfig sc = serverConfig();
  sc.verifyPeer = false;
  TlsRig rig(TlsContext::server(sc));
  auto anonymous = rig.client(clientConfig(nullptr));
  rig.send(*anonymous, "server-auth");
  REQUIRE(rig.loop.runUntil([&] { return !anonymous->in.messages.empty(); }, kDeadline));
  CHECK(anonymous->errs.errors.empty());
  CHECK(rig.atServer.sources[0].peerCommonName.empty());
}

TEST_CASE("the peer identity is the subject CN, never a SAN (TLS-2)") {
  SUBCASE("SAN names the trusted peer, CN does not: CN reported, peer refused") {
    TlsRig open(TlsContext::server(serverConfig()));
    auto c = open.client(clientConfig(&pki().sanIsLync));
    open.send(*c, "san-1");
    REQUIRE(open.loop.runUntil([&] { return !c->in.messages.empty(); }, kDeadline));
    CHECK(open.atServer.sources[0].peerCommonName == "intruder.example.com");

    TlsRig checked(TlsContext::server(serverConfig()), {"lync.example.com"});
    auto c2 = checked.client(clientConfig(&pki().sanIsLync));
    checked.send(*c2, "san-2");
    REQUIRE(checked.loop.runUntil([&] { return !c2->errs.errors.empty(); }, kDeadline));
    CHECK(c2->errs.errors[0].kind == TransportErrorKind::TlsHandshakeFailed);
    CHECK(checked.atServer.messages.empty());
    CHECK(checked.cnsChecked == std::vector<std::string>{"intruder.example.com"});
  }
  SUBCASE("CN is the trusted peer, SAN is something else: accepted as the CN") {
    TlsRig checked(TlsContext::server(serverConfig()), {"lync.example.com"});
    auto c = checked.client(clientConfig(&pki().lyncOtherSan));
    checked.send(*c, "san-3");
    REQUIRE(checked.loop.runUntil([&] { return !c->in.messages.empty(); }, kDeadline));
    CHECK(checked.atServer.sources[0].peerCommonName == "lync.example.com");
  }
}

TEST_CASE("TLS 1.0 is refused unless the context allows it (OCS 2007 R2)") {
  TlsContextConfig legacy = clientConfig(&pki().lync, TlsVersion::Tls10);
  legacy.minVersion = TlsVersion::Tls10;

  // Asking for it without allowTls10 is a configuration error.
  CHECK_THROWS_WITH_AS(TlsContext::client(legacy), doctest::Contains("allowTls10"), std::runtime_error);
  legacy.allowTls10 = true;

  SUBCASE("server default: handshake fails") {
    TlsRig rig(TlsContext::server(serverConfig()));
    auto old = rig.client(legacy);
    rig.send(*old, "tls10-refused");
    REQUIRE(rig.loop.runUntil([&] { return !old->errs.errors.empty(); }, kDeadline));
    CHECK(old->errs.errors[0].kind == TransportErrorKind::TlsHandshakeFailed);
    CHECK(rig.atServer.messages.empty());
    CHECK(rig.server.stats().tlsHandshakeFailures == 1);
  }
  SUBCASE("allowed on both sides: TLS 1.0 is negotiated") {
    REQUIRE_MESSAGE(tlsVersionCompiledIn(TlsVersion::Tls10), "this OpenSSL build has no TLS 1.0 at all");
    TlsContextConfig sc = serverConfig();
    sc.allowTls10 = true;
    sc.minVersion = TlsVersion::Tls10;
    TlsRig rig(TlsContext::server(sc), {"lync.example.com"});
    auto old = rig.client(legacy);
    rig.send(*old, "tls10-ok");
    REQUIRE(rig.loop.runUntil([&] { return !old->in.messages.empty() || !old->errs.errors.empty(); }, kDeadline));
    // Fails here if this OpenSSL cannot do TLS 1.0 even at @SECLEVEL=0.
    REQUIRE_MESSAGE(old->errs.errors.empty(), old->errs.errors[0].detail);
    CHECK(rig.atServer.sources[0].peerCommonName == "lync.example.com");
  }
}

TEST_CASE("TLS context configuration errors name the setting") {
  auto throwsWith = [](TlsContextConfig c, TlsRole role, const char* text) {
    CHECK_THROWS_WITH_AS(TlsContext(c, role), doctest::Contains(text), std::runtime_error);
  };
  TlsContextConfig c = serverConfig();
  c.minVersion = TlsVersion::Tls13;
  c.maxVersion = TlsVersion::Tls12;
  throwsWith(c, TlsRole::Server, "above maxVersion");

  c = serverConfig();
  c.minVersion = TlsVersion::Tls11;
  throwsWith(c, TlsRole::Server, "allowTls10");

  c = serverConfig();
  c.cipherList = "NO-SUCH-CIPHER";
  throwsWith(c, TlsRole::Server, "cipherList 'NO-SUCH-CIPHER'");

  c = serverConfig();
  c.certFile = (pki().dir / "missing.crt").string();
  throwsWith(c, TlsRole::Server, "missing.crt': no such file");

  c = serverConfig();
  c.keyFile = pki().lync.key;
  throwsWith(c, TlsRole::Server, "does not match");

  c = serverConfig();
  c.certFile = pki().caFile + ".nope";
  throwsWith(c, TlsRole::Server, "certFile");

  c = serverConfig();
  c.keyFile = pki().caFile;  // a certificate where a key should be
  throwsWith(c, TlsRole::Server, "keyFile");

  c = serverConfig();
  c.caFile.clear();
  throwsWith(c, TlsRole::Server, "verifyPeer needs caFile");

  c = TlsContextConfig{};
  throwsWith(c, TlsRole::Server, "needs certFile and keyFile");

  // A client without its own certificate is fine.
  CHECK_NOTHROW(TlsContext(clientConfig(nullptr), TlsRole::Client));
  // Empty-fragment toggle both ways.
  c = serverConfig();
  c.disableEmptyFragments = false;
  CHECK_NOTHROW(TlsContext(c, TlsRole::Server));
}

TEST_CASE("setTlsClient (TLS-4): connections opened after the change use the new context, an open one stays") {
  TlsRig rig(TlsContext::server(serverConfig()));
  auto c = rig.client(clientConfig(&pki().rogue));
  rig.send(*c, "before");
  REQUIRE(rig.loop.runUntil([&] { return !c->errs.errors.empty(); }, kDeadline));
  CHECK(c->errs.errors[0].kind == TransportErrorKind::TlsHandshakeFailed);

  c->t->setTlsClient(TlsContext::client(clientConfig(&pki().lync)));
  rig.send(*c, "after");
  REQUIRE(rig.loop.runUntil([&] { return !c->in.messages.empty() || c->errs.errors.size() > 1; }, kDeadline));
  REQUIRE(c->errs.errors.size() == 1);
  REQUIRE(rig.atServer.sources.size() == 1);
  CHECK(rig.atServer.sources[0].peerCommonName == "lync.example.com");
  auto open = c->t->connectionTo(rig.listener);
  CHECK(open != 0);

  // The open connection keeps its session; the next one would present the other certificate.
  c->t->setTlsClient(TlsContext::client(clientConfig(&pki().intruder)));
  rig.send(*c, "same-connection");
  REQUIRE(rig.loop.runUntil([&] { return c->in.messages.size() == 2 || c->errs.errors.size() > 1; }, kDeadline));
  CHECK(c->errs.errors.size() == 1);
  CHECK(c->t->connectionTo(rig.listener) == open);
  CHECK(rig.atServer.sources[1].peerCommonName == "lync.example.com");

  CHECK_THROWS_AS(c->t->setTlsClient(TlsContext::server(serverConfig())), std::invalid_argument);
}
