#include "imp/xcp_router/c2s.h"

#include <imp/net/loop_group.h>
#include <imp/net/stream.h>
#include <imp/net/tls.h>
#include <imp/net/worker_pool.h>
#include <imp/xmpp/jid.h>
#include <imp/xmpp/ns.h>
#include <imp/xmpp/stanza.h>
#include <imp/xmpp/stream.h>
#include <imp/xmpp/stream_parser.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <spdlog/spdlog.h>

#include <ctime>
#include <future>
#include <set>
#include <unordered_map>

#include "imp/xcp_router/router.h"

namespace imp::xcp {

using xmpp::Element;
using xmpp::StreamErrorCondition;
namespace ns = xmpp::ns;

std::map<std::string, std::uint64_t> C2sStats::streamErrors() const {
  std::lock_guard lock(mu_);
  return {streamErrors_.begin(), streamErrors_.end()};
}

void C2sStats::countStreamError(std::string_view condition) {
  std::lock_guard lock(mu_);
  auto it = streamErrors_.find(condition);
  if (it == streamErrors_.end()) it = streamErrors_.emplace(std::string(condition), 0).first;
  ++it->second;
}

namespace {

std::string randomHex(std::size_t bytes) {
  std::string raw(bytes, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(raw.data()), static_cast<int>(bytes)) != 1)
    throw std::runtime_error("the CSPRNG failed");  // impossible on Linux with getrandom
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : raw) {
    out += kHex[c >> 4];
    out += kHex[c & 15];
  }
  return out;
}

std::string utcNow() {
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

// Channel-binding data of a server-side TLS session (RFC 9266 §2,
// RFC 5929 §4.1), as modules/xmpp sasl.h expects it.
xmpp::ChannelBindings bindingsOf(SSL* ssl) {
  xmpp::ChannelBindings b;
  if (!ssl) return b;
  // tls-exporter only where the exporter is bound to the handshake:
  // TLS 1.3, or TLS 1.2 with the extended master secret (RFC 9266 §3).
  if (SSL_version(ssl) == TLS1_3_VERSION || SSL_get_extms_support(ssl) == 1) {
    static constexpr char kLabel[] = "EXPORTER-Channel-Binding";
    unsigned char out[32];
    if (SSL_export_keying_material(ssl, out, sizeof out, kLabel, sizeof kLabel - 1, nullptr, 0, 0) == 1)
      b.tlsExporter = std::string(reinterpret_cast<char*>(out), sizeof out);
  }
  // tls-server-end-point: the certificate's signature hash, SHA-256 for
  // MD5 and SHA-1 (RFC 5929 §4.1).
  if (X509* cert = SSL_get_certificate(ssl)) {
    int mdNid = NID_undef;
    const EVP_MD* md = nullptr;
    if (X509_get_signature_info(cert, &mdNid, nullptr, nullptr, nullptr) == 1 && mdNid != NID_md5 &&
        mdNid != NID_sha1 && mdNid != NID_undef)
      md = EVP_get_digestbynid(mdNid);
    if (!md) md = EVP_sha256();
    unsigned char out[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    if (X509_digest(cert, md, out, &n) == 1) b.tlsServerEndPoint = std::string(reinterpret_cast<char*>(out), n);
  }
  return b;
}

Element saslElement(std::string name, std::string_view data) {
  Element e(std::move(name), std::string(ns::kSasl));
  // RFC 6120 §6.4.2: "=" stands for present but empty data.
  if (!data.empty()) e.addText(xmpp::base64Encode(data));
  return e;
}

StanzaKind kindOf(xmpp::StanzaKind k) {
  switch (k) {
    case xmpp::StanzaKind::Presence: return StanzaKind::Presence;
    case xmpp::StanzaKind::Iq: return StanzaKind::Iq;
    default: return StanzaKind::Message;
  }
}

}  // namespace

class C2sStream;

struct LoopState {
  net::EventLoop* loop = nullptr;
  std::shared_ptr<net::StreamGroup> group;
  std::unique_ptr<net::Acceptor> plain, direct;
  std::unordered_map<C2sStream*, std::shared_ptr<C2sStream>> streams;
};

struct C2sServer::Impl {
  C2sConfig cfg;
  std::shared_ptr<const net::TlsContext> tls;
  Router& router;
  std::shared_ptr<C2sAccounts> accounts;
  net::LoopGroup& loops;
  net::WorkerPool& workers;
  std::shared_ptr<spdlog::logger> log;
  std::shared_ptr<C2sStats> stats;
  std::vector<std::unique_ptr<LoopState>> perLoop;
  std::mutex ipMu;
  std::unordered_map<std::string, std::size_t> perIp;
  std::atomic<bool> stopping{false};
  std::mutex saslMu;
  std::map<std::string, std::shared_ptr<const xmpp::SaslConfig>> saslByDomain;

  // The SASL configuration for a stream to `domain`: the authzid a client
  // may name is user@domain (RFC 6120 §6.3.8).
  std::shared_ptr<const xmpp::SaslConfig> saslFor(const std::string& domain) {
    std::lock_guard lock(saslMu);
    auto& slot = saslByDomain[domain];
    if (!slot) {
      auto c = std::make_shared<xmpp::SaslConfig>(*cfg.sasl);
      c->domain = domain;
      slot = std::move(c);
    }
    return slot;
  }

  Impl(C2sConfig c, std::shared_ptr<const net::TlsContext> t, Router& r, std::shared_ptr<C2sAccounts> a,
       net::LoopGroup& l, net::WorkerPool& w, std::shared_ptr<spdlog::logger> lg, std::shared_ptr<C2sStats> s)
      : cfg(std::move(c)), tls(std::move(t)), router(r), accounts(std::move(a)), loops(l), workers(w),
        log(std::move(lg)), stats(std::move(s)) {}

  void accept(LoopState& ls, std::unique_ptr<net::StreamConnection> conn, bool directTls);
  void forget(LoopState& ls, C2sStream* s);
  bool admitIp(const std::string& ip) {
    std::lock_guard lock(ipMu);
    auto& n = perIp[ip];
    if (cfg.maxConnectionsPerIp && n >= cfg.maxConnectionsPerIp) {
      if (n == 0) perIp.erase(ip);
      return false;
    }
    ++n;
    return true;
  }
  void releaseIp(const std::string& ip) {
    std::lock_guard lock(ipMu);
    auto it = perIp.find(ip);
    if (it != perIp.end() && --it->second == 0) perIp.erase(it);
  }
};

// One client stream on its loop. Owned by its LoopState; callbacks hold
// weak references, so a stream closed while a worker job runs is simply
// gone when the job comes back.
class C2sStream : public SessionSink, public std::enable_shared_from_this<C2sStream> {
 public:
  enum class Phase { Header, NeedTls, NeedAuth, NeedBind, Bound, Closing };

  C2sStream(C2sServer::Impl& server, LoopState& ls, std::unique_ptr<net::StreamConnection> conn, bool directTls)
      : server_(server), ls_(ls), conn_(std::move(conn)), directTls_(directTls),
        parser_(server.cfg.preAuthStanzaLimit), since_(utcNow()), remote_(conn_->remote().toString()),
        ip_(conn_->remote().ip()) {}

  void begin() {
    std::weak_ptr<C2sStream> weak = weak_from_this();
    net::StreamCallbacks cb;
    cb.onData = [weak](std::string_view data) {
      if (auto s = weak.lock()) s->onData(data);
    };
    cb.onTlsReady = [weak] {
      if (auto s = weak.lock()) s->onTlsReady();
    };
    cb.onClose = [weak](const net::CloseReason& why) {
      if (auto s = weak.lock()) s->onClose(why);
    };
    conn_->setCallbacks(std::move(cb));
    authTimer_ = ls_.loop->schedule(server_.cfg.authTimeout, [weak] {
      if (auto s = weak.lock()) {
        s->authTimer_ = 0;
        if (s->phase_ != Phase::Bound && s->phase_ != Phase::Closing)
          s->streamError(StreamErrorCondition::ConnectionTimeout,
                         "no resource was bound within the time allowed to log in");
      }
    });
  }

  // Refuses the connection at once (abuse limits, XEP-0205).
  void refuse(StreamErrorCondition c, std::string text) {
    begin();
    streamError(c, std::move(text));
  }

  // ---- SessionSink (router) ----
  void deliver(RoutedStanza s) override {
    if (phase_ != Phase::Bound || !s.element) {
      // The session ended after the router chose it: back to the router's
      // local handler (offline storage), never dropped (IM-5).
      server_.router.route(std::move(s));
      return;
    }
    ++server_.stats->stanzasOut;
    write(s.element->serialize(ns::kClient));
  }
  void replaced() override {
    std::weak_ptr<C2sStream> weak = weak_from_this();
    ls_.loop->post([weak] {
      if (auto s = weak.lock()) {
        ++s->server_.stats->replaced;
        s->replacedBy_ = true;
        s->unbind();  // the new session owns the JID now
        s->streamError(StreamErrorCondition::Conflict, "another session logged in with the same resource");
      }
    });
  }

  C2sSessionInfo info() const {
    return {jid_ ? jid_->full() : std::string(), userid_, client_, remote_,
            conn_->tls() ? conn_->tls()->version() : std::string(), since_};
  }
  const std::string& userid() const { return userid_; }
  bool bound() const { return phase_ == Phase::Bound; }
  const std::string& ip() const { return ip_; }

  void kick(std::string text) { streamError(StreamErrorCondition::PolicyViolation, std::move(text)); }
  void shutdown() { streamError(StreamErrorCondition::SystemShutdown, "the server is shutting down"); }

  ~C2sStream() override {
    if (authTimer_) ls_.loop->cancel(authTimer_);
  }

 private:
  std::shared_ptr<spdlog::logger>& log() { return server_.log; }

  void write(std::string_view bytes) {
    if (conn_->state() == net::StreamConnection::State::Closed) return;
    auto r = conn_->write(bytes);
    if (r == net::StreamConnection::WriteResult::QueueFull) {
      // The client does not read: what is queued would only grow.
      if (log()) log()->warn("[{}] {} does not read its stream; closing", streamId_, remote_);
      conn_->close({net::CloseKind::Local, 0, "write queue full"});
    }
  }

  void sendHeader() {
    xmpp::StreamHeaderOut h;
    h.from = domain_.empty() ? server_.cfg.sasl->domain : domain_;
    h.id = streamId_ = randomHex(12);
    write(xmpp::streamHeader(h));
    headerSent_ = true;
  }

  void streamError(StreamErrorCondition c, std::string text) {
    if (phase_ == Phase::Closing) return;
    if (!headerSent_) sendHeader();  // RFC 6120 §4.9.1.2
    auto name = xmpp::streamErrorName(c);
    server_.stats->countStreamError(name);
    if (log()) log()->info("[{}] {}: stream error {}: {}", streamId_, remote_, name, text);
    write(xmpp::streamError(c, text));
    write(xmpp::streamClose());
    finish();
  }

  void finish() {
    phase_ = Phase::Closing;
    unbind();
    if (conn_->state() != net::StreamConnection::State::Closed)
      conn_->closeAfterFlush(std::chrono::milliseconds(2000), "stream closed");
  }

  void unbind() {
    if (jid_ && attached_) {
      attached_ = false;
      auto a = Address::split(jid_->full());
      if (a) server_.router.detachSession(*a, *this);
      // RFC 6121 §4.5.2/§4.6.3: the session manager sends unavailable for a
      // session that ends without saying so (not for one replaced by a new
      // session of the same full JID: that one's presence carries on).
      if (a && !replacedBy_) {
        Element el("presence", std::string(ns::kClient));
        el.setAttr("type", "unavailable").setAttr("from", jid_->full());
        RoutedStanza s;
        s.kind = StanzaKind::Presence;
        s.from = *a;
        s.to = *a;
        s.to.resource.clear();
        s.type = "unavailable";
        s.element = std::make_shared<const Element>(std::move(el));
        // Straight to the session manager: the user is local (it was bound
        // here), no directory decision is needed.
        server_.router.deliverToSession(std::move(s));
      }
    }
  }

  void onClose(const net::CloseReason& why) {
    if (log()) log()->debug("[{}] {} closed: {}", streamId_, remote_, why.detail);
    unbind();
    phase_ = Phase::Closing;
    if (counted_unauth_) {
      counted_unauth_ = false;
      --server_.stats->unauthenticated;
    }
    --server_.stats->open;
    ++server_.stats->closed;
    server_.forget(ls_, this);  // destroys this later, from a posted function
  }

  void onTlsReady() {
    ++server_.stats->tlsStarted;
    parser_.reset();
    phase_ = Phase::Header;
  }

  void onData(std::string_view data) {
    if (phase_ == Phase::Closing) return;
    auto events = parser_.feed(data);
    for (auto& ev : events) {
      if (phase_ == Phase::Closing) return;
      switch (ev.kind) {
        case xmpp::StreamEvent::Kind::Opened: onHeader(ev.header); break;
        case xmpp::StreamEvent::Kind::Stanza: onElement(std::move(ev.stanza)); break;
        case xmpp::StreamEvent::Kind::Closed:
          write(xmpp::streamClose());
          finish();
          return;
        case xmpp::StreamEvent::Kind::Error: streamError(ev.error, ev.text); return;
      }
      if (waitingTls_) {
        // Anything pipelined after <starttls/> was written before the
        // client saw <proceed/> (RFC 6120 §5.4.3.3 forbids it).
        if (&ev != &events.back()) {
          streamError(StreamErrorCondition::PolicyViolation, "data sent after <starttls/> before <proceed/>");
          return;
        }
        waitingTls_ = false;
        std::string why;
        if (!conn_->startTls(server_.tls, {}, {}, &why)) {
          streamError(StreamErrorCondition::InternalServerError, "TLS could not start: " + why);
          return;
        }
      }
    }
  }

  bool tlsActive() const { return conn_->tls() != nullptr; }

  void onHeader(const xmpp::StreamHeader& h) {
    // RFC 6120 §4.9.3.6: a stream to a domain this server does not serve.
    std::string why;
    auto domain = xmpp::normaliseDomainpart(h.to, &why);
    if (h.to.empty() || !domain || !server_.router.isLocalDomain(*domain)) {
      streamError(StreamErrorCondition::HostUnknown,
                  h.to.empty() ? "the stream header names no domain ('to')"
                               : "'" + h.to + "' is not a domain served here");
      return;
    }
    if (!domain_.empty() && *domain != domain_) {
      streamError(StreamErrorCondition::HostUnknown, "the restarted stream names another domain");
      return;
    }
    domain_ = *domain;
    sendHeader();
    Element features("features", std::string(ns::kStreams));
    if (!tlsActive()) {
      // RFC 6120 §5.3.1: TLS is mandatory to negotiate here.
      features.addChild("starttls", std::string(ns::kTls)).addChild("required", std::string(ns::kTls));
      phase_ = Phase::NeedTls;
    } else if (userid_.empty()) {
      auto& mechs = features.addChild("mechanisms", std::string(ns::kSasl));
      if (server_.cfg.channelBinding) bindings_ = bindingsOf(conn_->tls()->native());
      for (const auto& m : xmpp::mechanisms(true, bindings_.types(), server_.cfg.sasl->allowSha1))
        mechs.addChild("mechanism", std::string(ns::kSasl)).addText(m);
      phase_ = Phase::NeedAuth;
    } else {
      features.addChild("bind", std::string(ns::kBind));
      // RFC 6121 §2.6: roster versioning is offered by the session manager.
      auto& limits = features.addChild("limits", std::string(ns::kStreamLimits));
      limits.addChild("max-bytes", std::string(ns::kStreamLimits))
          .addText(std::to_string(server_.cfg.postAuthStanzaLimit));
      phase_ = Phase::NeedBind;
    }
    if (phase_ == Phase::NeedTls || phase_ == Phase::NeedAuth) {
      // XEP-0478: the limits that apply before authentication.
      auto& limits = features.addChild("limits", std::string(ns::kStreamLimits));
      limits.addChild("max-bytes", std::string(ns::kStreamLimits))
          .addText(std::to_string(server_.cfg.preAuthStanzaLimit));
      limits.addChild("idle-seconds", std::string(ns::kStreamLimits))
          .addText(std::to_string(server_.cfg.authTimeout.count() / 1000));
    }
    write(features.serialize(ns::kClient));
  }

  void onElement(Element el) {
    switch (phase_) {
      case Phase::Header: streamError(StreamErrorCondition::NotAuthorized, "a stanza before the stream header"); return;
      case Phase::NeedTls:
        if (el.is("starttls", ns::kTls)) {
          write(Element("proceed", std::string(ns::kTls)).serialize(ns::kClient));
          waitingTls_ = true;
          return;
        }
        // RFC 6120 §5.3.1: TLS is mandatory; nothing else before it.
        streamError(StreamErrorCondition::PolicyViolation, "STARTTLS is required before <" + el.name() + "/>");
        return;
      case Phase::NeedAuth: onSasl(el); return;
      case Phase::NeedBind:
        if (el.name() == "iq" && el.attrOr("type", "") == "set" && el.child("bind", ns::kBind)) {
          onBind(el);
          return;
        }
        streamError(StreamErrorCondition::NotAuthorized, "<" + el.name() + "/> before a resource is bound");
        return;
      case Phase::Bound: onStanza(std::move(el)); return;
      case Phase::Closing: return;
    }
  }

  // ---- SASL (RFC 6120 §6) ----
  struct AuthState {
    std::optional<C2sAccounts::Account> account;
    std::optional<std::string> otherNodeAddress;
  };

  void saslFailure(const xmpp::SaslFailure& f) {
    ++server_.stats->authFailures;
    if (log()) log()->info("[{}] {}: SASL failure {}: {}", streamId_, remote_, xmpp::conditionName(f.condition), f.detail);
    Element failure("failure", std::string(ns::kSasl));
    failure.addChild(std::string(xmpp::conditionName(f.condition)), std::string(ns::kSasl));
    write(failure.serialize(ns::kClient));
    exchange_.reset();
    saslBusy_ = false;
    // RFC 6120 §6.4.5: the client may retry; a bounded number of times.
    if (++saslFailures_ >= 5) streamError(StreamErrorCondition::PolicyViolation, "too many failed authentication attempts");
  }

  void onSasl(const Element& el) {
    if (saslBusy_) {
      streamError(StreamErrorCondition::PolicyViolation, "a SASL element while the previous one is being checked");
      return;
    }
    if (el.is("abort", ns::kSasl)) {
      if (exchange_) return saslFailure(exchange_->abort().failure);
      return saslFailure({xmpp::SaslCondition::Aborted, "abort without an exchange"});
    }
    auto payload = xmpp::decodeSaslPayload(el.text());
    if (auto* f = std::get_if<xmpp::SaslFailure>(&payload)) return saslFailure(*f);
    auto data = std::get<std::optional<std::string>>(std::move(payload));
    if (el.is("auth", ns::kSasl)) {
      if (exchange_) return saslFailure({xmpp::SaslCondition::MalformedRequest, "<auth/> during an exchange"});
      auto state = std::make_shared<AuthState>();
      auto accounts = server_.accounts;
      std::string domain = domain_, nodeId = server_.cfg.nodeId;
      // Runs on a worker, inside SaslExchange::start (the database).
      xmpp::CredentialLookup lookup = [state, accounts, domain, nodeId](const std::string& user,
                                                                         xmpp::ScramHash hash)
          -> std::optional<xmpp::ScramCredential> {
        auto local = xmpp::normaliseLocalpart(user);
        if (!local) return std::nullopt;
        auto account = accounts->account(*local + "@" + domain);
        // Only licensed users homed on a node log in; the others go through
        // the same exchange and fail alike (RFC 5802 §9).
        if (!account || !account->licensed || account->homeNode.empty()) return std::nullopt;
        auto cred = accounts->credential(account->userid, hash);
        if (!cred) return std::nullopt;
        if (account->homeNode != nodeId) state->otherNodeAddress = accounts->clientAddressOf(account->homeNode);
        state->account = std::move(account);
        return cred;
      };
      xmpp::SaslStream stream{true, bindings_};
      auto created = xmpp::SaslExchange::create(el.attrOr("mechanism", ""), server_.saslFor(domain_),
                                               std::move(lookup), stream);
      if (auto* f = std::get_if<xmpp::SaslFailure>(&created)) return saslFailure(*f);
      std::shared_ptr<xmpp::SaslExchange> ex = std::move(std::get<std::unique_ptr<xmpp::SaslExchange>>(created));
      exchange_ = ex;
      authState_ = state;
      saslBusy_ = true;
      std::weak_ptr<C2sStream> weak = weak_from_this();
      bool queued = server_.workers.submit([ex, data] { return ex->start(data); }, *ls_.loop,
                                           [weak](xmpp::SaslStep step) {
                                             if (auto s = weak.lock()) s->onSaslStep(std::move(step));
                                           });
      if (!queued) {
        saslBusy_ = false;
        saslFailure({xmpp::SaslCondition::TemporaryAuthFailure, "the worker pool refused the credential lookup"});
      }
      return;
    }
    if (el.is("response", ns::kSasl)) {
      if (!exchange_) return saslFailure({xmpp::SaslCondition::MalformedRequest, "<response/> without <auth/>"});
      onSaslStep(exchange_->next(data.value_or(std::string())));
      return;
    }
    streamError(StreamErrorCondition::NotAuthorized, "<" + el.name() + "/> before authentication");
  }

  void onSaslStep(xmpp::SaslStep step) {
    saslBusy_ = false;
    if (phase_ != Phase::NeedAuth) return;
    if (step.isFailure()) return saslFailure(step.failure);
    if (step.isChallenge()) {
      write(saslElement("challenge", step.data).serialize(ns::kClient));
      return;
    }
    auto state = authState_;
    if (!state || !state->account) {
      saslFailure({xmpp::SaslCondition::NotAuthorized, "the exchange succeeded without an account"});
      return;
    }
    write(saslElement("success", step.data).serialize(ns::kClient));
    exchange_.reset();
    if (state->account->homeNode != server_.cfg.nodeId) {
      ++server_.stats->seeOtherHost;
      if (state->otherNodeAddress)
        streamError(StreamErrorCondition::SeeOtherHost, *state->otherNodeAddress);
      else
        streamError(StreamErrorCondition::UndefinedCondition,
                    state->account->address + " is homed on node " + state->account->homeNode +
                        ", whose client address is not known");
      return;
    }
    ++server_.stats->authenticated;
    userid_ = state->account->userid;
    address_ = state->account->address;
    // RFC 6120 §6.4.6: a new stream, now with the larger stanza limit.
    parser_.reset();
    parser_.setStanzaLimit(server_.cfg.postAuthStanzaLimit);
    phase_ = Phase::Header;
  }

  // ---- resource binding (RFC 6120 §7) ----
  void iqError(const Element& iq, xmpp::StanzaErrorCondition c, std::string_view text) {
    write(xmpp::makeError(iq, c, text).serialize(ns::kClient));
  }

  void onBind(const Element& iq) {
    const Element* bind = iq.child("bind", ns::kBind);
    std::string resource = bind->childText("resource", ns::kBind).value_or("");
    std::string why;
    std::optional<xmpp::Jid> jid;
    if (resource.empty()) {
      jid = xmpp::Jid::parse(address_ + "/imp-" + randomHex(6), &why);
    } else {
      auto r = xmpp::normaliseResourcepart(resource, &why);
      if (!r) return iqError(iq, xmpp::StanzaErrorCondition::BadRequest, "invalid resource: " + why);
      jid = xmpp::Jid::parse(address_ + "/" + *r, &why);
    }
    auto addr = jid ? Address::split(jid->full()) : std::nullopt;
    if (!addr) return iqError(iq, xmpp::StanzaErrorCondition::BadRequest, "the resource gives no valid JID: " + why);
    jid_ = *jid;
    auto old = server_.router.attachSession(*addr, *ls_.loop, shared_from_this());
    attached_ = true;
    if (old) old->replaced();
    if (authTimer_) {
      ls_.loop->cancel(authTimer_);
      authTimer_ = 0;
    }
    if (counted_unauth_) {
      counted_unauth_ = false;
      --server_.stats->unauthenticated;
    }
    ++server_.stats->bound;
    phase_ = Phase::Bound;
    Element result = xmpp::makeIqResult(iq);
    result.addChild("bind", std::string(ns::kBind)).addChild("jid", std::string(ns::kBind)).addText(jid_->full());
    write(result.serialize(ns::kClient));
    if (log()) log()->info("[{}] {} bound {}", streamId_, remote_, jid_->full());
  }

  // ---- stanzas from the client ----
  void onStanza(Element el) {
    ++server_.stats->stanzasIn;
    auto kind = xmpp::stanzaKind(el);
    if (kind == xmpp::StanzaKind::Other) {
      streamError(StreamErrorCondition::UnsupportedStanzaType, "<" + el.name() + "/> is no stanza of jabber:client");
      return;
    }
    // RFC 6120 §8.1.2.1: the server stamps the full JID as `from`.
    el.setAttr("from", jid_->full());
    std::string to(el.attrOr("to", ""));
    std::optional<xmpp::Jid> toJid;
    if (!to.empty()) {
      std::string why;
      toJid = xmpp::Jid::parse(to, &why);
      if (!toJid) {
        if (el.attrOr("type", "") != "error")
          write(xmpp::makeError(el, xmpp::StanzaErrorCondition::JidMalformed, why).serialize(ns::kClient));
        return;
      }
      el.setAttr("to", toJid->full());
    }
    if (kind == xmpp::StanzaKind::Presence && !toJid) {
      noteCaps(el);
      presenceToServer(std::move(el));
      return;
    }
    bool toServer = !toJid || (toJid->isBare() && !toJid->hasLocal() && toJid->domain() == domain_);
    if (kind == xmpp::StanzaKind::Iq && toServer) {
      serverIq(el);
      return;
    }
    routeOut(kindOf(kind), std::move(el), toJid ? *toJid : xmpp::Jid::parse(domain_).value());
  }

  void routeOut(StanzaKind kind, Element el, const xmpp::Jid& to) {
    RoutedStanza s;
    s.kind = kind;
    s.from = *Address::split(jid_->full());
    auto a = Address::split(to.full());
    if (!a) return;  // a parsed Jid always splits
    s.to = *a;
    s.type = std::string(el.attrOr("type", ""));
    s.element = std::make_shared<const Element>(std::move(el));
    server_.router.route(std::move(s));
  }

  // Broadcast presence is the session manager's (RFC 6121 §4.2): it goes to
  // the router addressed to the user's own bare JID.
  void presenceToServer(Element el) {
    auto bare = xmpp::Jid::parse(address_);
    if (bare) routeOut(StanzaKind::Presence, std::move(el), *bare);
  }

  void noteCaps(const Element& presence) {
    // XEP-0115: the client software's node URI, for `impctl session list`.
    if (const Element* c = presence.child("c", ns::kCaps)) {
      if (auto node = c->attr("node")) client_ = std::string(*node);
    }
  }

  void serverIq(const Element& iq) {
    auto type = iq.attrOr("type", "");
    if (type == "result" || type == "error") {
      // Answers to nothing the server asked: RFC 6120 §8.2.3 says ignore;
      // noted so it is not silent.
      if (log()) log()->debug("[{}] unsolicited iq {} from {}", streamId_, type, jid_->full());
      return;
    }
    const Element* payload = nullptr;
    for (const auto& n : iq.nodes())
      if (n.isElement()) {
        payload = &n.element();
        break;
      }
    if (!payload || (type != "get" && type != "set"))
      return iqError(iq, xmpp::StanzaErrorCondition::BadRequest, "an iq needs type get or set and one payload");
    Element result = xmpp::makeIqResult(iq);
    if (type == "get" && payload->is("ping", ns::kPing)) {  // XEP-0199 §4.2
    } else if (type == "get" && payload->is("query", ns::kDiscoInfo)) {  // XEP-0030 §3.1
      auto& q = result.addChild("query", std::string(ns::kDiscoInfo));
      q.addChild("identity", std::string(ns::kDiscoInfo)).setAttr("category", "server").setAttr("type", "im").setAttr(
          "name", "IMP");
      for (std::string_view f : {ns::kDiscoInfo, ns::kDiscoItems, ns::kPing, ns::kVersion, ns::kBlocking,
                                 ns::kCarbons, ns::kChatStates})
        q.addChild("feature", std::string(ns::kDiscoInfo)).setAttr("var", f);
    } else if (type == "get" && payload->is("query", ns::kDiscoItems)) {  // XEP-0030 §4: no items here
      result.addChild("query", std::string(ns::kDiscoItems));
    } else if (type == "get" && payload->is("query", ns::kVersion)) {  // XEP-0092 §2
      auto& q = result.addChild("query", std::string(ns::kVersion));
      q.addChild("name", std::string(ns::kVersion)).addText("IMP");
      q.addChild("version", std::string(ns::kVersion)).addText(server_.cfg.serverVersion);
    } else if (type == "set" && payload->is("session", ns::kSession)) {
      // RFC 3921 session establishment, a no-op kept for old clients
      // (RFC 6121 Appendix E).
    } else {
      // Roster, blocking and the rest of the user's own server-side
      // namespaces belong to the session manager: through the router.
      Element copy = iq;
      auto bare = xmpp::Jid::parse(address_);
      routeOut(StanzaKind::Iq, std::move(copy), *bare);
      return;
    }
    write(result.serialize(ns::kClient));
  }

  C2sServer::Impl& server_;
  LoopState& ls_;
  std::unique_ptr<net::StreamConnection> conn_;
  bool directTls_;
  xmpp::StreamParser parser_;
  Phase phase_ = Phase::Header;
  bool headerSent_ = false, waitingTls_ = false, saslBusy_ = false, attached_ = false, replacedBy_ = false;
 public:
  bool counted_unauth_ = false;
 private:
  int saslFailures_ = 0;
  std::string streamId_, domain_, userid_, address_, client_, since_, remote_, ip_;
  std::optional<xmpp::Jid> jid_;
  xmpp::ChannelBindings bindings_;
  std::shared_ptr<xmpp::SaslExchange> exchange_;
  std::shared_ptr<AuthState> authState_;
  net::TimerId authTimer_ = 0;
};

void C2sServer::Impl::accept(LoopState& ls, std::unique_ptr<net::StreamConnection> conn, bool directTls) {
  ++stats->accepted;
  ++stats->open;
  auto s = std::make_shared<C2sStream>(*this, ls, std::move(conn), directTls);
  ls.streams.emplace(s.get(), s);
  if (stopping) {
    s->refuse(StreamErrorCondition::SystemShutdown, "the server is shutting down");
    return;
  }
  // XEP-0205 §3: connections per address and unauthenticated ones.
  if (!admitIp(s->ip())) {
    ++stats->refusedPerIp;
    s->refuse(StreamErrorCondition::PolicyViolation,
              "too many connections from " + s->ip() + " (at most " + std::to_string(cfg.maxConnectionsPerIp) + ")");
    return;
  }
  if (cfg.maxUnauthenticated && stats->unauthenticated.load() >= static_cast<std::int64_t>(cfg.maxUnauthenticated)) {
    ++stats->refusedUnauthenticated;
    releaseIp(s->ip());
    s->refuse(StreamErrorCondition::ResourceConstraint, "too many connections are logging in; try again later");
    return;
  }
  s->counted_unauth_ = true;
  ++stats->unauthenticated;
  s->begin();
}

void C2sServer::Impl::forget(LoopState& ls, C2sStream* s) {
  auto it = ls.streams.find(s);
  if (it == ls.streams.end()) return;
  auto keep = std::move(it->second);
  ls.streams.erase(it);
  if (!keep->ip().empty()) releaseIp(keep->ip());
  // Called from the connection's onClose: destroy it outside the callback.
  ls.loop->post([keep = std::move(keep)]() mutable { keep.reset(); });
}

C2sServer::C2sServer(C2sConfig config, std::shared_ptr<const net::TlsContext> tls, Router& router,
                     std::shared_ptr<C2sAccounts> accounts, net::LoopGroup& loops, net::WorkerPool& workers,
                     std::shared_ptr<spdlog::logger> log)
    : stats_(std::make_shared<C2sStats>()) {
  if (!config.sasl) throw std::invalid_argument("C2sServer needs a SASL configuration");
  if (!tls) throw std::invalid_argument("C2sServer needs a TLS server context: TLS is mandatory (RFC 6120 §5)");
  xmpp::checkSaslConfig(*config.sasl);
  impl_ = std::make_shared<Impl>(std::move(config), std::move(tls), router, std::move(accounts), loops, workers,
                                 std::move(log), stats_);
}

C2sServer::~C2sServer() { stop(); }

namespace {
// Runs fn on `loop` and waits (at once when no other thread runs it).
template <class F>
auto onLoop(net::EventLoop& loop, F fn) -> decltype(fn()) {
  if (!loop.runningElsewhere()) return fn();
  std::packaged_task<decltype(fn())()> task(std::move(fn));
  auto result = task.get_future();
  loop.post([&task] { task(); });
  return result.get();
}
}  // namespace

void C2sServer::start() {
  auto& impl = *impl_;
  const bool shareAll = impl.loops.size() > 1;
  for (std::size_t i = 0; i < impl.loops.size(); ++i) {
    auto ls = std::make_unique<LoopState>();
    ls->loop = &impl.loops.at(i);
    auto* state = ls.get();
    onLoop(*ls->loop, [&] {
      state->group = net::StreamGroup::create(*state->loop);
      net::AcceptorOptions plain;
      int port = i == 0 ? impl.cfg.clientPort : boundClientPort_;
      auto addr = net::SocketAddress::fromIp(impl.cfg.listenAddress, static_cast<std::uint16_t>(port));
      if (!addr) throw std::runtime_error("xcp-connection-manager: listen_address " + impl.cfg.listenAddress + " is not an IP address");
      plain.address = *addr;
      plain.reusePort = shareAll;
      plain.name = "XMPP client listener on " + addr->toString();
      plain.stream.maxQueuedBytes = 4 * 1024 * 1024;
      Impl* self = &impl;
      state->plain = std::make_unique<net::Acceptor>(state->group, plain, [self, state](std::unique_ptr<net::StreamConnection> c) {
        self->accept(*state, std::move(c), false);
      });
      if (i == 0) boundClientPort_ = state->plain->local().port();
      if (impl.cfg.tlsPort >= 0) {
        net::AcceptorOptions direct = plain;
        int tport = i == 0 ? impl.cfg.tlsPort : boundTlsPort_;
        direct.address = *net::SocketAddress::fromIp(impl.cfg.listenAddress, static_cast<std::uint16_t>(tport));
        direct.tls = impl.tls;
        direct.name = "XMPP direct-TLS listener on " + direct.address.toString();
        state->direct = std::make_unique<net::Acceptor>(state->group, direct, [self, state](std::unique_ptr<net::StreamConnection> c) {
          self->accept(*state, std::move(c), true);
        });
        if (i == 0) boundTlsPort_ = state->direct->local().port();
      }
    });
    impl.perLoop.push_back(std::move(ls));
    // Without SO_REUSEPORT one loop holds the listeners.
    if (!shareAll) break;
  }
}

void C2sServer::stop() noexcept {
  if (!impl_ || impl_->stopping.exchange(true)) return;
  for (auto& ls : impl_->perLoop) {
    try {
      onLoop(*ls->loop, [&] {
        ls->plain.reset();
        ls->direct.reset();
        std::vector<std::shared_ptr<C2sStream>> all;
        for (auto& [p, s] : ls->streams) all.push_back(s);
        for (auto& s : all) s->shutdown();
      });
    } catch (...) {
      // The loop stopped with the call queued: nothing of it runs any more.
    }
  }
}

std::vector<C2sSessionInfo> C2sServer::sessions(const std::string& userid) const {
  std::vector<C2sSessionInfo> out;
  for (auto& ls : impl_->perLoop) {
    try {
      auto part = onLoop(*ls->loop, [&] {
        std::vector<C2sSessionInfo> v;
        for (auto& [p, s] : ls->streams)
          if (s->bound() && (userid.empty() || s->userid() == userid)) v.push_back(s->info());
        return v;
      });
      out.insert(out.end(), part.begin(), part.end());
    } catch (...) {
    }
  }
  return out;
}

std::size_t C2sServer::kick(const std::string& userid) {
  std::size_t n = 0;
  for (auto& ls : impl_->perLoop) {
    try {
      n += onLoop(*ls->loop, [&] {
        std::size_t k = 0;
        std::vector<std::shared_ptr<C2sStream>> hit;
        for (auto& [p, s] : ls->streams)
          if (s->bound() && s->userid() == userid) hit.push_back(s);
        for (auto& s : hit) {
          s->kick("the administrator ended this session");
          ++k;
        }
        return k;
      });
    } catch (...) {
    }
  }
  return n;
}

}  // namespace imp::xcp
