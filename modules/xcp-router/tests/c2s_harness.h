#pragma once
// The loopback harness of the client-stream tests (c2s_test.cpp,
// c2s_sm_test.cpp): a Node (directory, router, session manager and
// C2sServer on its own loop) and a scripted Client on the test's loop.
#include <doctest/doctest.h>
#include <fakes/fake_directory.h>
#include <fakes/test_pki.h>

#include <imp/directory/directory.h>
#include <imp/net/loop_group.h>
#include <imp/net/stream.h>
#include <imp/net/tls.h>
#include <imp/net/worker_pool.h>
#include <imp/testing/fake_database.h>
#include <imp/xcp_router/c2s.h>
#include <imp/xcp_router/offline_store.h>
#include <imp/xcp_router/presence_settings.h>
#include <imp/xcp_router/privacy_policy.h>
#include <imp/xcp_router/privacy_store.h>
#include <imp/xcp_router/roster_store.h>
#include <imp/xcp_router/router.h>
#include <imp/xcp_router/session.h>
#include <imp/xmpp/ns.h>
#include <imp/xmpp/sasl.h>
#include <imp/xmpp/stream_parser.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <mutex>

using namespace std::chrono_literals;
namespace ns = imp::xmpp::ns;
using imp::xmpp::Element;
using imp::xmpp::StreamEvent;

namespace {

constexpr auto kDeadline = std::chrono::seconds(20);

imp::testing::TestPki& pki() {
  static imp::testing::TestPki p("IMP XMPP Test CA", "imp-c2s-test");
  return p;
}

// Users as the directory and the credential store would give them.
class FakeAccounts : public imp::xcp::C2sAccounts {
 public:
  struct User {
    std::string userid;
    bool licensed = true;
    std::string home = "node-a";
    std::string password;
  };
  std::map<std::string, User> users;  // address -> user
  std::map<std::string, std::string> nodes = {{"node-b", "node-b.example.com:5222"}};

  std::optional<Account> account(const std::string& address) override {
    std::lock_guard lock(mu_);
    auto it = users.find(address);
    if (it == users.end()) return std::nullopt;
    return Account{it->second.userid, address, it->second.licensed, it->second.home};
  }
  std::optional<imp::xmpp::ScramCredential> credential(const std::string& userid, imp::xmpp::ScramHash hash) override {
    std::lock_guard lock(mu_);
    for (auto& [address, u] : users)
      if (u.userid == userid) return imp::xmpp::deriveScramCredential(hash, u.password, 4096, "0123456789abcdef");
    return std::nullopt;
  }
  std::optional<std::string> clientAddressOf(const std::string& nodeId) override {
    std::lock_guard lock(mu_);
    auto it = nodes.find(nodeId);
    if (it == nodes.end()) return std::nullopt;
    return it->second;
  }

 private:
  std::mutex mu_;
};

// The session manager's stores on the fake database (tests/support), for
// the tests that need rosters, subscriptions, blocking and offline messages.
struct NodeStores {
  imp::testing::FakeDatabase db;
  imp::xcp::PresenceSettingsStore settingsStore{db};
  imp::xcp::LivePresenceSettings live{settingsStore};
  imp::xcp::RosterStore roster{db};
  imp::xcp::PrivacyStore decisions{db};
  imp::xcp::BlockList blocks{db};
  imp::xcp::OfflineStore offline{db};
  imp::xcp::PrivacyPolicy policy{decisions, blocks, live};

  NodeStores() {
    db.migrate();
    db.exec("INSERT INTO core_node (node_id, role, hostname, admin_url, version) VALUES ('node-a', 'single', 'a', '', '0')");
    imp::directory::Directory dir(db);
    for (const char* id : {"ann", "bob"}) {
      imp::directory::User u;
      u.userid = id;
      u.imAddress = std::string(id) + "@example.com";
      u.homeNode = "node-a";
      dir.addUser(u);
    }
    live.reload();
  }
  imp::xcp::SessionManagerData data() {
    return {&roster, &blocks, &policy, &offline, &live, [](const std::string& bare) -> std::optional<std::string> {
              if (bare == "ann@example.com") return "ann";
              if (bare == "bob@example.com") return "bob";
              return std::nullopt;
            }};
  }
  void setSettings(imp::xcp::PresenceSettingsUpdate u) {
    settingsStore.update(u);
    live.reload();
  }
};

// The node side: directory, router, session manager, C2sServer on its own
// loop. With `withStores` the session manager works on NodeStores (its
// database work on the node's worker pool); without, in memory only.
struct Node {
  imp::testing::FakeDirectory directory;
  imp::net::LoopGroup loops{{"c2s-test", 1}};
  imp::net::WorkerPool workers{{"c2s-work", 1, 64}};
  std::shared_ptr<FakeAccounts> accounts = std::make_shared<FakeAccounts>();
  std::unique_ptr<NodeStores> stores;
  std::unique_ptr<imp::xcp::Router> router;
  std::shared_ptr<imp::xcp::SessionManager> sm;  // shared: its pool jobs hold it weakly
  std::unique_ptr<imp::xcp::C2sServer> server;

  explicit Node(imp::xcp::C2sConfig cfg = {}, bool withStores = false) {
    directory.domains = {"example.com"};
    directory.licensed = {{"ann@example.com", "node-a"}, {"bob@example.com", "node-a"}, {"carl@example.com", "node-b"}};
    accounts->users = {{"ann@example.com", {"ann", true, "node-a", "ann-secret"}},
                       {"bob@example.com", {"bob", true, "node-a", "bob-secret"}},
                       {"carl@example.com", {"carl", true, "node-b", "carl-secret"}},
                       {"dora@example.com", {"dora", false, "node-a", "dora-secret"}}};
    router = std::make_unique<imp::xcp::Router>("node-a", directory, &workers);
    router->setLocalDomains({"example.com"});
    if (withStores) {
      stores = std::make_unique<NodeStores>();
      sm = std::make_shared<imp::xcp::SessionManager>(*router, nullptr, &workers, stores->data());
    } else {
      sm = std::make_shared<imp::xcp::SessionManager>(*router, nullptr);
    }
    sm->attach();
    auto leaf = pki().leaf("xmpp-server", "example.com", "DNS:example.com");
    imp::net::TlsContextConfig tc;
    tc.certFile = leaf.cert;
    tc.keyFile = leaf.key;
    cfg.nodeId = "node-a";
    cfg.listenAddress = "127.0.0.1";
    cfg.clientPort = 0;
    cfg.tlsPort = 0;
    cfg.serverVersion = "test-1";
    auto sasl = std::make_shared<imp::xmpp::SaslConfig>();
    sasl->domain = "example.com";
    sasl->fakeCredentialSecret = "a test secret of enough length";
    cfg.sasl = sasl;
    loops.start();
    server = std::make_unique<imp::xcp::C2sServer>(cfg, imp::net::TlsContext::server(tc), *router, accounts, loops,
                                                   workers, nullptr);
    server->start();
  }
  ~Node() {
    server->stop();
    // Directory decisions still queued (stanzas handed back at shutdown)
    // run while the router and the loops they post to exist.
    workers.stop(imp::net::StopMode::Drain);
    loops.stop();
  }
};

// A scripted client: its own loop on the test thread, the server's bytes
// parsed with the stream parser.
struct Client {
  imp::net::EventLoop& loop;
  std::shared_ptr<imp::net::StreamGroup> group;
  std::unique_ptr<imp::net::StreamConnection> conn;
  imp::xmpp::StreamParser parser{16 * 1024 * 1024};
  std::vector<StreamEvent> events;
  std::size_t seen = 0;
  bool closed = false, tlsReady = false;

  Client(imp::net::EventLoop& l, int port, bool directTls = false) : loop(l), group(imp::net::StreamGroup::create(l)) {
    imp::net::ConnectorOptions opt;
    if (directTls) opt.tls = clientTls();
    imp::net::Connector connector(group, opt);
    imp::net::CloseReason err;
    conn = connector.connect(*imp::net::SocketAddress::fromIp("127.0.0.1", static_cast<std::uint16_t>(port)), &err);
    REQUIRE(conn);
    imp::net::StreamCallbacks cb;
    cb.onData = [this](std::string_view d) {
      for (auto& e : parser.feed(d)) events.push_back(std::move(e));
    };
    cb.onTlsReady = [this] { tlsReady = true; };
    cb.onClose = [this](const imp::net::CloseReason&) { closed = true; };
    conn->setCallbacks(std::move(cb));
  }

  static std::shared_ptr<const imp::net::TlsContext> clientTls() {
    imp::net::TlsContextConfig c;
    c.caFile = pki().caFile();
    c.verifyPeer = true;
    return imp::net::TlsContext::client(c);
  }

  void send(std::string_view xml) { conn->write(xml); }
  void open() {
    send("<?xml version='1.0'?><stream:stream to='example.com' version='1.0' xmlns='jabber:client' "
         "xmlns:stream='http://etherx.jabber.org/streams'>");
  }
  // The next event, waiting for it.
  StreamEvent next() {
    REQUIRE(loop.runUntil([&] { return events.size() > seen || closed; }, kDeadline));
    REQUIRE(events.size() > seen);
    return events[seen++];
  }
  Element nextStanza() {
    auto e = next();
    if (e.kind != StreamEvent::Kind::Stanza) FAIL("expected a stanza, got event kind " << static_cast<int>(e.kind));
    return e.stanza;
  }
  // The next stanza `match` accepts; those before it are skipped.
  template <class Match>
  Element nextWhere(Match match) {
    for (;;) {
      auto el = nextStanza();
      if (match(el)) return el;
    }
  }
  // Every stanza received so far that `match` accepts, skipped ones included.
  template <class Match>
  std::size_t countReceived(Match match) const {
    std::size_t n = 0;
    for (const auto& e : events)
      if (e.kind == StreamEvent::Kind::Stanza && match(e.stanza)) ++n;
    return n;
  }
  // The stream error the server ends the stream with.
  std::string streamError() {
    auto el = nextStanza();
    REQUIRE(el.is("error", ns::kStreams));
    for (const auto& n : el.nodes())
      if (n.isElement() && n.element().ns() == ns::kStreamErrors && n.element().name() != "text")
        return n.element().name();
    return "";
  }
  std::string streamErrorText(const Element& error) { return error.childText("text", ns::kStreamErrors).value_or(""); }
  void startTls() {
    open();
    REQUIRE(next().kind == StreamEvent::Kind::Opened);
    auto features = nextStanza();
    REQUIRE(features.child("starttls", ns::kTls));
    send("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
    REQUIRE(nextStanza().is("proceed", ns::kTls));
    REQUIRE(conn->startTls(clientTls()));
    REQUIRE(loop.runUntil([&] { return tlsReady || closed; }, kDeadline));
    REQUIRE(tlsReady);
    parser.reset();
  }
  // After TLS: the features with the mechanisms.
  std::vector<std::string> mechanisms() {
    open();
    REQUIRE(next().kind == StreamEvent::Kind::Opened);
    auto features = nextStanza();
    std::vector<std::string> out;
    if (auto* m = features.child("mechanisms", ns::kSasl))
      for (auto* x : m->children("mechanism", ns::kSasl)) out.push_back(x->text());
    return out;
  }
  // PLAIN (RFC 4616) over TLS: "success" or the failure condition.
  std::string plain(const std::string& user, const std::string& password) {
    std::string msg = std::string("\0", 1) + user + std::string("\0", 1) + password;
    send("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>" + imp::xmpp::base64Encode(msg) +
         "</auth>");
    auto el = nextStanza();
    if (el.is("success", ns::kSasl)) {
      parser.reset();
      return "success";
    }
    REQUIRE(el.is("failure", ns::kSasl));
    auto kids = el.children();
    REQUIRE(!kids.empty());
    return kids[0]->name();
  }
  // The post-authentication stream and resource binding: the bound JID.
  std::string bind(const std::string& resource) {
    open();
    REQUIRE(next().kind == StreamEvent::Kind::Opened);
    auto features = nextStanza();
    REQUIRE(features.child("bind", ns::kBind));
    send("<iq type='set' id='b1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>" +
         (resource.empty() ? std::string() : "<resource>" + resource + "</resource>") + "</bind></iq>");
    auto r = nextStanza();
    REQUIRE(r.attrOr("type", "") == "result");
    REQUIRE(r.attrOr("id", "") == "b1");
    auto* b = r.child("bind", ns::kBind);
    REQUIRE(b);
    return b->childText("jid", ns::kBind).value_or("");
  }
  // TLS and SASL, then the restarted stream: its features.
  Element authenticate(const std::string& user, const std::string& password) {
    startTls();
    mechanisms();
    REQUIRE(plain(user, password) == "success");
    open();
    REQUIRE(next().kind == StreamEvent::Kind::Opened);
    return nextStanza();
  }
  std::string login(const std::string& user, const std::string& password, const std::string& resource) {
    startTls();
    mechanisms();
    REQUIRE(plain(user, password) == "success");
    return bind(resource);
  }
  // Initial presence (RFC 6121 §4.2): the resource becomes available, so a
  // message to the bare JID may be delivered to it. Waits for the server's
  // echo to the sender (§4.2.2), so the presence has been handled.
  void available(const std::string& fullJid, int priority = 0) {
    send("<presence><priority>" + std::to_string(priority) + "</priority></presence>");
    for (;;) {
      auto el = nextStanza();
      if (el.name() == "presence" && el.attrOr("from", "") == fullJid) return;
    }
  }
};

}  // namespace
