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

#include <condition_variable>
#include <ctime>
#include <future>
#include <mutex>
#include <set>
#include <unordered_map>

#include "imp/xcp_router/carbons.h"
#include "imp/xcp_router/router.h"
#include "imp/xcp_router/stream_management.h"

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

// A closing stream flushes what it queued for at most this long.
constexpr std::chrono::milliseconds kShutdownLinger{2000};

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
  // XEP-0198: sessions whose connection dropped, waiting for <resume/>.
  std::unordered_map<C2sStream*, std::shared_ptr<C2sStream>> hibernating;
  net::TimerId sweepTimer = 0;  // C2sConfig::compactIdleAfter
};

struct C2sServer::Impl {
  C2sConfig cfg;
  // The node certificate's server context; setTls() replaces it while
  // streams on every loop read it: take a copy with currentTls().
  mutable std::mutex tlsMu;
  std::shared_ptr<const net::TlsContext> tls;
  std::shared_ptr<const net::TlsContext> currentTls() const {
    std::lock_guard lock(tlsMu);
    return tls;
  }
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
  // Streams with a connection, on every loop: stop() waits for them to
  // close before the server (which every stream refers to) goes away.
  std::mutex liveMu;
  std::condition_variable liveCv;
  std::size_t live = 0;
  std::mutex saslMu;
  std::map<std::string, std::shared_ptr<const xmpp::SaslConfig>> saslByDomain;

  // XEP-0198 §5: the resumable sessions by id, whichever loop they live on.
  // An entry is taken exactly once: by <resume/> or by the end of the
  // session (its window, its stream closing), whichever comes first.
  struct Resumable {
    std::weak_ptr<C2sStream> stream;
    const C2sStream* owner = nullptr;
    std::string userid, jid;
    net::EventLoop* loop = nullptr;
  };
  std::mutex smMu;
  std::unordered_map<std::string, Resumable> resumable;
  void registerResumable(const std::string& id, Resumable r) {
    std::lock_guard lock(smMu);
    resumable[id] = std::move(r);
  }
  // Only the user who owns the session may take it; another user's id is
  // as unknown as an expired one (XEP-0198 §5, item-not-found).
  std::optional<Resumable> takeResumable(const std::string& id, const std::string& userid) {
    std::lock_guard lock(smMu);
    auto it = resumable.find(id);
    if (it == resumable.end() || it->second.userid != userid) return std::nullopt;
    auto r = std::move(it->second);
    resumable.erase(it);
    return r;
  }
  bool dropResumable(const std::string& id, const C2sStream* owner) {
    std::lock_guard lock(smMu);
    auto it = resumable.find(id);
    if (it == resumable.end() || it->second.owner != owner) return false;
    resumable.erase(it);
    return true;
  }

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
  void scheduleSweep(LoopState& ls);
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
  // Resuming: a <resume/> waits for the old session's state (another loop
  // may hold it). Hibernating: the connection dropped, the session waits
  // for <resume/> (XEP-0198 §5).
  enum class Phase { Header, NeedTls, NeedAuth, NeedBind, Bound, Resuming, Hibernating, Closing };

  // What a resumed session takes over from the old one.
  struct ResumeState {
    bool ok = false;
    std::string condition, why;  // when !ok: the <failed/> condition and the log text
    std::uint32_t handled = 0;
    std::chrono::seconds window{0};
    bool carbons = false;
    SmQueue queue;
    std::string client;  // XEP-0092 / XEP-0115, for `impctl session list`
    bool versionAsked = false;
  };

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
    if (!s.element) return;  // the router never routes a stanza without its element
    const bool live = phase_ == Phase::Bound || phase_ == Phase::Hibernating || phase_ == Phase::Resuming;
    if (!live) {
      // The session ended after the router chose it: back to the router's
      // local handler (offline storage), never dropped (IM-5).
      server_.router.route(std::move(s));
      return;
    }
    if (fromBlocked(s)) return;
    // XEP-0280 §6: a message to this full JID is copied to the user's other
    // carbons-enabled resources. One to the bare JID (or to a resource not
    // bound) went through the session manager, which copied it to the
    // resources it did not choose.
    if (s.kind == StanzaKind::Message && carbonEligible(*s.element) && addressedHere(*s.element))
      server_.router.carbons().copy(*s.element, "received", address_, {resource_});
    if (phase_ == Phase::Resuming) {
      pending_.push_back(std::move(s));
      return;
    }
    sendStanza(std::move(s), false, false);
  }

  // XEP-0191 §3.3: nothing from a JID the user blocked reaches the user;
  // the user looks offline to it. Presence (notifications, subscriptions,
  // probes) and answers are dropped without a word; a message and an iq
  // get/set get service-unavailable. True when `s` was taken care of.
  bool fromBlocked(const RoutedStanza& s) {
    if (s.from.bare() == address_ || !server_.router.blocking().blocks(address_, s.from.full())) return false;
    ++server_.stats->blockedIn;
    const bool answer = s.type != "error" && (s.kind == StanzaKind::Message ||
                                              (s.kind == StanzaKind::Iq && (s.type == "get" || s.type == "set")));
    if (log())
      log()->debug("[{}] {} from {}, blocked by {}: {}", streamId_, nameOf(s.kind), s.from.full(), address_,
                   answer ? "service-unavailable" : "dropped");
    if (!answer) return true;
    RoutedStanza back;
    back.kind = s.kind;
    back.from = s.to;
    back.to = s.from;
    back.type = "error";
    back.element = std::make_shared<const Element>(
        xmpp::makeError(*s.element, xmpp::StanzaErrorCondition::ServiceUnavailable));
    server_.router.route(std::move(back));
    return true;
  }

  bool addressedHere(const Element& el) const {
    auto to = Address::split(el.attrOr("to", ""));
    return to && !to->isBare() && to->resource == resource_;
  }

  // A carbon copy for this resource (CarbonsRegistry, on this loop).
  void deliverCopy(std::shared_ptr<const Element> copy) {
    RoutedStanza s;
    s.kind = StanzaKind::Message;
    s.from = *Address::split(address_);
    s.to = *Address::split(jid_->full());
    s.type = std::string(copy->attrOr("type", ""));
    s.element = std::move(copy);
    if (phase_ == Phase::Resuming) {
      pending_.push_back(std::move(s));
    } else if (phase_ == Phase::Bound || phase_ == Phase::Hibernating) {
      sendStanza(std::move(s), false, true);
    } else {
      ++server_.stats->carbonCopiesLost;  // a copy only: the original reached its resource
    }
  }

  // ---- XEP-0198 across streams ----
  // On this (the old session's) loop: a new stream of the same user sent
  // <resume previd h/>. The session state moves to `to`, on `toLoop`.
  void handOver(std::uint32_t h, std::shared_ptr<C2sStream> to, net::EventLoop& toLoop) {
    auto state = std::make_shared<ResumeState>();
    auto keep = shared_from_this();
    if (resumeTimer_) {
      ls_.loop->cancel(resumeTimer_);
      resumeTimer_ = 0;
    }
    if (phase_ == Phase::Hibernating) {
      --server_.stats->hibernating;
      ls_.hibernating.erase(this);
    } else if (phase_ != Phase::Bound) {
      state->condition = "item-not-found";
      state->why = "the session " + smId_ + " ended before it could be resumed";
      toLoop.post([to, state] { to->resumed(std::move(*state)); });
      return;
    }
    if (out_.ack(h) == SmQueue::Ack::TooHigh) {
      state->condition = "undefined-condition";
      state->why = "h=" + std::to_string(h) + " acknowledges more stanzas than the " +
                   std::to_string(out_.sent()) + " sent (XEP-0198 handled-count-too-high)";
      phase_ = Phase::Closing;
      endSession();
      if (conn_->state() != net::StreamConnection::State::Closed)
        conn_->close({net::CloseKind::Local, 0, "a resumption acknowledged more than was sent"});
    } else {
      state->ok = true;
      state->handled = smHandled_;
      state->window = smWindow_;
      state->carbons = carbons_;
      state->client = client_;
      state->versionAsked = versionAsked_;
      disableCarbons();
      attached_ = false;  // the new stream owns the full JID from here on
      server_.router.attachSession(*Address::split(jid_->full()), toLoop, to);
      state->queue = std::move(out_);
      out_ = SmQueue();
      phase_ = Phase::Closing;
      // XEP-0198 §5: the client noticed the drop before the server did.
      if (conn_->state() != net::StreamConnection::State::Closed)
        conn_->close({net::CloseKind::Local, 0, "the session was resumed on another stream"});
    }
    toLoop.post([to, state] { to->resumed(std::move(*state)); });
  }

  // On this (the new stream's) loop: the old session's state arrived.
  void resumed(ResumeState st) {
    if (!st.ok) {
      if (phase_ == Phase::Resuming) {
        phase_ = Phase::NeedBind;
        jid_.reset();
        resource_.clear();
        smId_.clear();
        ++server_.stats->smResumeFailed;
        smFailed(st.condition, st.why);  // the client may bind a new session instead
      }
      return;
    }
    auto addr = *Address::split(jid_->full());
    if (phase_ != Phase::Resuming) {
      // This stream ended while the state was on its way: the stanzas go
      // back to the router, as for an expired session.
      server_.router.detachSession(addr, *this);
      out_ = std::move(st.queue);
      handBack(out_.take());
      return;
    }
    attached_ = true;
    leaveUnauthenticated();
    ++server_.stats->smResumed;
    phase_ = Phase::Bound;
    startRateLimits();
    smEnabled_ = smResumable_ = true;
    smHandled_ = st.handled;
    smWindow_ = st.window;
    out_ = std::move(st.queue);
    client_ = std::move(st.client);
    versionAsked_ = st.versionAsked;
    server_.registerResumable(smId_, {weak_from_this(), this, userid_, jid_->full(), ls_.loop});
    if (st.carbons) enableCarbons();
    Element r("resumed", std::string(ns::kSm));
    r.setAttr("previd", smId_).setAttr("h", std::to_string(smHandled_));
    write(r.serialize(ns::kClient));
    // XEP-0198 §5: what the client has not acknowledged, again, in order.
    for (const auto& e : out_.entries()) {
      ++server_.stats->stanzasOut;
      write(e.stanza.element->serialize(ns::kClient));
    }
    auto pending = std::move(pending_);
    pending_.clear();
    for (auto& s : pending) {
      if (isCarbon(*s.element))
        sendStanza(std::move(s), false, true);
      else
        sendStanza(std::move(s), false, false);
    }
    if (!out_.empty()) requestAckSoon();
    if (log()) log()->info("[{}] {} resumed {} ({} stanzas again)", streamId_, remote_, jid_->full(), out_.size());
  }

  // The window ended (or the server stops, or the queue is full): the
  // hibernating session ends and its stanzas go back to the router.
  void expire(std::string why) {
    if (phase_ != Phase::Hibernating) return;
    // A <resume/> that took the entry first is on its way here (handOver).
    if (!server_.dropResumable(smId_, this)) return;
    if (resumeTimer_) {
      ls_.loop->cancel(resumeTimer_);
      resumeTimer_ = 0;
    }
    --server_.stats->hibernating;
    ++server_.stats->smExpired;
    if (log()) log()->info("[{}] {} not resumed: {}; {} stanzas back to the router", streamId_, jid_->full(), why, out_.size());
    phase_ = Phase::Closing;
    endSession();
    auto it = ls_.hibernating.find(this);
    if (it != ls_.hibernating.end()) {
      auto keep = std::move(it->second);
      ls_.hibernating.erase(it);
      ls_.loop->post([keep = std::move(keep)]() mutable { keep.reset(); });
    }
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

  // The loop's sweep (C2sConfig::compactIdleAfter): a stream that read
  // nothing since the previous sweep keeps no parser and no bookkeeping of
  // stanzas the kernel has sent.
  void compactIfIdle() {
    if (readSinceSweep_) {
      readSinceSweep_ = false;
      return;
    }
    if (phase_ == Phase::Closing) return;
    if (!parser_.compacted() && parser_.compact()) ++server_.stats->compacted;
    if (!smEnabled_) out_.pruneWritten(conn_->bytesSentTotal());
    out_.shrink();
  }
  void shutdown() { streamError(StreamErrorCondition::SystemShutdown, "the server is shutting down"); }
  // Closes the connection at once (queued bytes are dropped); onClose runs
  // before this returns.
  void closeNow(const std::string& why) {
    if (conn_->state() != net::StreamConnection::State::Closed) conn_->close({net::CloseKind::Local, 0, why});
  }

  ~C2sStream() override {
    if (authTimer_) ls_.loop->cancel(authTimer_);
    if (resumeTimer_) ls_.loop->cancel(resumeTimer_);
    if (throttleTimer_) ls_.loop->cancel(throttleTimer_);
  }
  const std::string& streamId() const { return streamId_; }

 private:
  std::shared_ptr<spdlog::logger>& log() { return server_.log; }

  // The stream holds a session now (bound, or resumed with XEP-0198): the
  // authentication deadline and the count of unauthenticated streams no
  // longer concern it.
  void leaveUnauthenticated() {
    if (authTimer_) {
      ls_.loop->cancel(authTimer_);
      authTimer_ = 0;
    }
    if (counted_unauth_) {
      counted_unauth_ = false;
      --server_.stats->unauthenticated;
    }
  }

  // True when the bytes were queued on the connection.
  bool write(std::string_view bytes) {
    if (conn_->state() == net::StreamConnection::State::Closed) return false;
    auto r = conn_->write(bytes);
    if (r == net::StreamConnection::WriteResult::QueueFull) {
      // The client does not read: what is queued would only grow.
      if (log()) log()->warn("[{}] {} does not read its stream; closing", streamId_, remote_);
      conn_->close({net::CloseKind::Local, 0, "write queue full"});
    }
    return r == net::StreamConnection::WriteResult::Queued;
  }

  // Writes one stanza and keeps it: with XEP-0198 until the client
  // acknowledges it, without until the kernel has taken it, so a session
  // that ends hands back what its client cannot have seen (IM-5).
  void sendStanza(RoutedStanza s, bool own, bool copy) {
    if (copy) ++server_.stats->carbonCopies;
    if (phase_ == Phase::Hibernating) {
      out_.push({std::move(s), own, copy, UINT64_MAX});
      if (out_.size() > server_.cfg.smMaxUnacked)
        expire("more than " + std::to_string(server_.cfg.smMaxUnacked) + " stanzas waited for it");
      return;
    }
    ++server_.stats->stanzasOut;
    bool written = write(s.element->serialize(ns::kClient));
    std::uint64_t end = written ? conn_->bytesQueuedTotal() : UINT64_MAX;
    if (smEnabled_) {
      out_.push({std::move(s), own, copy, end});
      if (out_.size() > server_.cfg.smMaxUnacked) {
        streamError(StreamErrorCondition::ResourceConstraint,
                    "more than " + std::to_string(server_.cfg.smMaxUnacked) +
                        " stanzas are not acknowledged (XEP-0198)");
        return;
      }
      requestAckSoon();
    } else if (!own && !copy) {
      out_.pruneWritten(conn_->bytesSentTotal());
      out_.push({std::move(s), own, copy, end});
    }
  }

  // An answer of the server itself (iq result or error).
  void sendOwn(const Element& e) {
    RoutedStanza s;
    s.kind = kindOf(xmpp::stanzaKind(e));
    s.type = std::string(e.attrOr("type", ""));
    s.element = std::make_shared<const Element>(e);
    sendStanza(std::move(s), true, false);
  }

  // The stanzas a session could not hand to its client, back to the router:
  // Router::deliverToSession gives them to a session bound to the same full
  // JID or to the session manager, which delivers them to another resource
  // or stores them offline (RFC 6121 §8.5, IM-5). Not re-routed: errors
  // (never stored, never answered, RFC 6120 §8.3.1), the server's own
  // answers (meant for this stream only) and carbon copies (the original
  // went elsewhere).
  void handBack(std::vector<SmQueue::Entry> q) {
    for (auto& e : q) {
      if (e.own || e.copy || !e.stanza.element || e.stanza.type == "error" || isCarbon(*e.stanza.element)) {
        ++server_.stats->notRerouted;
        continue;
      }
      RoutedStanza s = std::move(e.stanza);
      // The address the sender used: a bare-JID message gets the bare-JID
      // rules again.
      if (auto to = s.element->attr("to"))
        if (auto a = Address::split(*to)) s.to = *a;
      ++server_.stats->rerouted;
      server_.router.deliverToSession(std::move(s));
    }
  }

  // The session is over for good (not hibernating): unbound, no carbons,
  // not resumable, and what the client did not get goes back (IM-5).
  void endSession() {
    unbind();
    disableCarbons();
    if (!smId_.empty()) server_.dropResumable(smId_, this);
    if (!smEnabled_) out_.pruneWritten(conn_->bytesSentTotal());
    auto q = out_.take();
    for (auto& s : pending_) q.push_back({std::move(s), false, false, UINT64_MAX});
    pending_.clear();
    if (!q.empty() && log())
      log()->debug("[{}] {} stanzas of {} back to the router", streamId_, q.size(), jid_ ? jid_->full() : remote_);
    handBack(std::move(q));
  }

  // XEP-0198 §4: the server asks for an ack once per loop iteration that
  // wrote stanzas, while none is outstanding.
  void requestAckSoon() {
    if (smRequested_ || smRequestPosted_) return;
    smRequestPosted_ = true;
    std::weak_ptr<C2sStream> weak = weak_from_this();
    ls_.loop->post([weak] {
      auto s = weak.lock();
      if (!s) return;
      s->smRequestPosted_ = false;
      if (s->phase_ == Phase::Bound && s->smEnabled_ && !s->out_.empty() && !s->smRequested_) {
        s->smRequested_ = true;
        ++s->server_.stats->smAckRequests;
        s->write("<r xmlns='urn:xmpp:sm:3'/>");
      }
    });
  }

  void smFailed(std::string_view condition, const std::string& why) {
    if (log()) log()->info("[{}] {}: XEP-0198 failed {}: {}", streamId_, remote_, condition, why);
    Element f("failed", std::string(ns::kSm));
    f.addChild(std::string(condition), std::string(ns::kStanzaErrors));
    write(f.serialize(ns::kClient));
  }

  // ---- XEP-0280 ----
  void enableCarbons() {
    carbons_ = true;
    std::weak_ptr<C2sStream> weak = weak_from_this();
    net::EventLoop* loop = ls_.loop;
    auto stats = server_.stats;
    server_.router.carbons().enable(address_, resource_, [weak, loop, stats](std::shared_ptr<const Element> copy) {
      loop->post([weak, copy = std::move(copy), stats]() mutable {
        if (auto s = weak.lock())
          s->deliverCopy(std::move(copy));
        else
          ++stats->carbonCopiesLost;  // a copy only: the original reached its resource
      });
      return true;
    });
  }
  void disableCarbons() {
    if (!carbons_) return;
    carbons_ = false;
    server_.router.carbons().disable(address_, resource_);
  }

  // ---- abuse limits (XEP-0205 in spirit) ----
  void startRateLimits() {
    auto now = TokenBucket::Clock::now();
    stanzaBucket_ = TokenBucket(server_.cfg.maxStanzasPerSecond, server_.cfg.stanzaBurst, now);
    byteBucket_ = TokenBucket(server_.cfg.maxBytesPerSecond, server_.cfg.byteBurst, now);
  }
  // Reading stops while a bucket is in debt; TCP then slows the client.
  void throttleIfInDebt() {
    if (throttleTimer_ || phase_ != Phase::Bound) return;
    auto now = TokenBucket::Clock::now();
    auto wait = std::max(stanzaBucket_.debtDuration(now), byteBucket_.debtDuration(now));
    if (wait <= TokenBucket::Clock::duration::zero()) return;
    ++server_.stats->throttled;
    if (log())
      log()->debug("[{}] {} over its rate: reading paused for {} ms", streamId_, jid_->full(),
                   std::chrono::duration_cast<std::chrono::milliseconds>(wait).count());
    conn_->setReading(false);
    std::weak_ptr<C2sStream> weak = weak_from_this();
    throttleTimer_ = ls_.loop->schedule(wait, [weak] {
      auto s = weak.lock();
      if (!s) return;
      s->throttleTimer_ = 0;
      if (s->conn_->isOpen()) s->conn_->setReading(true);
    });
  }

  void sendHeader() {
    xmpp::StreamHeaderOut h;
    h.from = domain_.empty() ? server_.cfg.sasl->domain : domain_;
    h.id = streamId_ = randomHex(12);
    write(xmpp::streamHeader(h));
    headerSent_ = true;
  }

  void streamError(StreamErrorCondition c, std::string text) {
    if (phase_ == Phase::Closing || phase_ == Phase::Hibernating) return;
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
    endSession();
    if (conn_->state() != net::StreamConnection::State::Closed)
      conn_->closeAfterFlush(kShutdownLinger, "stream closed");
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
    if (counted_unauth_) {
      counted_unauth_ = false;
      --server_.stats->unauthenticated;
    }
    --server_.stats->open;
    ++server_.stats->closed;
    if (throttleTimer_) {
      ls_.loop->cancel(throttleTimer_);
      throttleTimer_ = 0;
    }
    // XEP-0198 §5: a resumable session whose connection dropped (no
    // </stream:stream>, no stream error) waits for its client to resume.
    if (phase_ == Phase::Bound && smResumable_ && !server_.stopping) {
      phase_ = Phase::Hibernating;
      ++server_.stats->smHibernated;
      ++server_.stats->hibernating;
      ls_.hibernating.emplace(this, shared_from_this());
      std::weak_ptr<C2sStream> weak = weak_from_this();
      resumeTimer_ = ls_.loop->schedule(smWindow_, [weak] {
        if (auto s = weak.lock()) {
          s->resumeTimer_ = 0;
          s->expire("the resumption window ended");
        }
      });
      if (log()) log()->info("[{}] {} dropped; resumable for {} s", streamId_, jid_->full(), smWindow_.count());
      server_.forget(ls_, this);
      return;
    }
    if (phase_ != Phase::Closing) {
      phase_ = Phase::Closing;
      endSession();
    }
    server_.forget(ls_, this);  // destroys this later, from a posted function
  }

  void onTlsReady() {
    ++server_.stats->tlsStarted;
    parser_.reset();
    phase_ = Phase::Header;
  }

  void onData(std::string_view data) {
    if (phase_ == Phase::Closing) return;
    readSinceSweep_ = true;
    if (phase_ == Phase::Bound) byteBucket_.take(static_cast<double>(data.size()), TokenBucket::Clock::now());
    onEvents(data);
    throttleIfInDebt();
  }

  void onEvents(std::string_view data) {
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
        if (!conn_->startTls(server_.currentTls(), {}, {}, &why)) {
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
    if (redirect_) {
      auto [condition, text] = *redirect_;
      redirect_.reset();
      streamError(condition, std::move(text));
      return;
    }
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
      features.addChild("sm", std::string(ns::kSm));  // XEP-0198 §3
      // RFC 6121 §3.4.1: subscription pre-approval ("subscribed" with no
      // request pending is kept and answers the contact's later request).
      features.addChild("sub", std::string(ns::kPreApproval));
      // RFC 6121 §2.6.1: roster versioning, answered by the session manager.
      features.addChild("ver", std::string(ns::kRosterVer));
      auto& limits = features.addChild("limits", std::string(ns::kStreamLimits));
      limits.addChild("max-bytes", std::string(ns::kStreamLimits))
          .addText(std::to_string(server_.cfg.postAuthStanzaLimit));
      if (server_.cfg.idleTimeout.count() > 0)
        limits.addChild("idle-seconds", std::string(ns::kStreamLimits))
            .addText(std::to_string(server_.cfg.idleTimeout.count()));
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
        if (bindPending_) {
          // Pipelined after <bind/>: handled once the binding is done.
          if (heldWhileBinding_.size() >= kMaxHeldWhileBinding) {
            streamError(StreamErrorCondition::PolicyViolation, "too many stanzas before the resource is bound");
            return;
          }
          heldWhileBinding_.push_back(std::move(el));
          return;
        }
        if (el.name() == "iq" && el.attrOr("type", "") == "set" && el.child("bind", ns::kBind)) {
          onBind(el);
          return;
        }
        if (el.is("resume", ns::kSm)) {
          onResume(el);
          return;
        }
        if (el.is("enable", ns::kSm)) {
          // XEP-0198 §3: only after resource binding.
          smFailed("unexpected-request", "<enable/> before a resource is bound");
          return;
        }
        streamError(StreamErrorCondition::NotAuthorized, "<" + el.name() + "/> before a resource is bound");
        return;
      case Phase::Bound:
        if (el.ns() == ns::kSm) {
          onSm(el);
          return;
        }
        onStanza(std::move(el));
        if (smEnabled_) ++smHandled_;  // wraps at 2^32 (XEP-0198 §4)
        return;
      case Phase::Resuming:
        streamError(StreamErrorCondition::PolicyViolation, "<" + el.name() + "/> before <resumed/> (XEP-0198 §5)");
        return;
      case Phase::Hibernating:
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
      // RFC 6120 §4.9.3.19: the user is served by another node. The error
      // goes on the restarted stream (§6.4.6), the one a client reads
      // after <success/>; sent on the old stream it would reach a parser
      // the client has already reset.
      ++server_.stats->seeOtherHost;
      if (state->otherNodeAddress)
        redirect_ = {StreamErrorCondition::SeeOtherHost, *state->otherNodeAddress};
      else
        redirect_ = {StreamErrorCondition::UndefinedCondition,
                     state->account->address + " is homed on node " + state->account->homeNode +
                         ", whose client address is not known"};
      parser_.reset();
      phase_ = Phase::Header;
      return;
    }
    ++server_.stats->authenticated;
    userid_ = state->account->userid;
    address_ = state->account->address;
    authState_.reset();  // the exchange is over: nothing of it is needed any more
    bindings_ = {};
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
    // XEP-0191: the user's block list is in memory before the session
    // exists (BlockingRegistry): the binding completes once it is loaded.
    bindPending_ = true;
    std::weak_ptr<C2sStream> weak = weak_from_this();
    net::EventLoop* loop = ls_.loop;
    auto request = std::make_shared<const std::pair<Element, xmpp::Jid>>(iq, *jid);
    server_.router.blocking().refresh(address_, [weak, loop, request](bool ok) {
      loop->post([weak, request, ok] {
        if (auto s = weak.lock()) s->bindReady(request->first, request->second, ok);
      });
    });
  }

  // On the loop, once the user's block list is loaded (or could not be).
  void bindReady(const Element& iq, const xmpp::Jid& jid, bool ok) {
    bindPending_ = false;
    if (phase_ != Phase::NeedBind) return;  // the stream ended meanwhile
    if (ok) {
      completeBind(iq, jid);
    } else {
      iqError(iq, xmpp::StanzaErrorCondition::ResourceConstraint,
              "the server cannot read the account's block list now; try again");
    }
    // What the client pipelined after <bind/>, in order.
    auto held = std::move(heldWhileBinding_);
    heldWhileBinding_.clear();
    for (auto& el : held) {
      if (phase_ == Phase::Closing || phase_ == Phase::Hibernating) break;
      onElement(std::move(el));
    }
  }

  void completeBind(const Element& iq, const xmpp::Jid& jid) {
    auto addr = Address::split(jid.full());
    jid_ = jid;
    resource_ = jid_->resource();
    startRateLimits();
    auto old = server_.router.attachSession(*addr, *ls_.loop, shared_from_this());
    attached_ = true;
    if (old) old->replaced();
    leaveUnauthenticated();
    ++server_.stats->bound;
    phase_ = Phase::Bound;
    Element result = xmpp::makeIqResult(iq);
    result.addChild("bind", std::string(ns::kBind)).addChild("jid", std::string(ns::kBind)).addText(jid_->full());
    write(result.serialize(ns::kClient));
    if (log()) log()->info("[{}] {} bound {}", streamId_, remote_, jid_->full());
  }

  // ---- XEP-0198 on a bound stream ----
  void onSm(const Element& el) {
    if (el.name() == "enable") {
      if (smEnabled_) return smFailed("unexpected-request", "stream management is already enabled");
      smEnabled_ = true;
      out_.startCounting();  // §4: both counts start at zero here
      smHandled_ = 0;
      ++server_.stats->smEnabled;
      Element enabled("enabled", std::string(ns::kSm));
      auto resume = el.attrOr("resume", "false");
      if ((resume == "true" || resume == "1") && server_.cfg.smResumeWindow.count() > 0) {
        smWindow_ = server_.cfg.smResumeWindow;
        // §5: the client's preferred maximum, when shorter.
        if (auto max = parseHandledCount(el.attrOr("max", "")); max && *max > 0 && *max < smWindow_.count())
          smWindow_ = std::chrono::seconds(*max);
        smId_ = randomHex(16);
        smResumable_ = true;
        server_.registerResumable(smId_, {weak_from_this(), this, userid_, jid_->full(), ls_.loop});
        enabled.setAttr("id", smId_).setAttr("resume", "true").setAttr("max", std::to_string(smWindow_.count()));
      }
      write(enabled.serialize(ns::kClient));
      return;
    }
    if (el.name() == "r") {
      if (!smEnabled_)
        return streamError(StreamErrorCondition::UnsupportedStanzaType, "<r/> before <enable/> (XEP-0198 §4)");
      Element a("a", std::string(ns::kSm));
      a.setAttr("h", std::to_string(smHandled_));
      write(a.serialize(ns::kClient));
      return;
    }
    if (el.name() == "a") {
      if (!smEnabled_)
        return streamError(StreamErrorCondition::UnsupportedStanzaType, "<a/> before <enable/> (XEP-0198 §4)");
      auto text = el.attrOr("h", "");
      auto h = parseHandledCount(text);
      if (!h)
        return streamError(StreamErrorCondition::InvalidXml,
                           "<a h='" + std::string(text) + "'/>: h must be a count of 0..4294967295 (XEP-0198 §4)");
      smRequested_ = false;
      if (out_.ack(*h) == SmQueue::Ack::TooHigh)
        return streamError(StreamErrorCondition::UndefinedCondition,
                           "h=" + std::to_string(*h) + " acknowledges more stanzas than the " +
                               std::to_string(out_.sent()) + " sent (XEP-0198 handled-count-too-high)");
      if (!out_.empty()) requestAckSoon();
      return;
    }
    if (el.name() == "resume") return smFailed("unexpected-request", "<resume/> on a stream with a bound resource");
    streamError(StreamErrorCondition::UnsupportedStanzaType, "<" + el.name() + "/> of urn:xmpp:sm:3 is not handled here");
  }

  // XEP-0198 §5, on an authenticated stream before binding.
  void onResume(const Element& el) {
    std::string previd(el.attrOr("previd", ""));
    auto h = parseHandledCount(el.attrOr("h", ""));
    if (previd.empty() || !h) {
      ++server_.stats->smResumeFailed;
      return smFailed("bad-request", "<resume/> needs previd and h, a count of 0..4294967295 (XEP-0198 §5)");
    }
    auto entry = server_.takeResumable(previd, userid_);
    std::shared_ptr<C2sStream> old = entry ? entry->stream.lock() : nullptr;
    if (!old) {
      ++server_.stats->smResumeFailed;
      return smFailed("item-not-found", "no resumable session " + previd + " of this user (unknown or expired)");
    }
    jid_ = xmpp::Jid::parse(entry->jid);
    resource_ = jid_->resource();
    smId_ = previd;
    phase_ = Phase::Resuming;
    auto self = shared_from_this();
    net::EventLoop* here = ls_.loop;
    std::uint32_t acked = *h;
    entry->loop->post([old, self, here, acked] { old->handOver(acked, self, *here); });
  }

  // ---- stanzas from the client ----
  void stripServerDelays(Element& el) {
    auto& nodes = el.nodes();
    const auto before = nodes.size();
    std::erase_if(nodes, [&](const xmpp::Node& n) {
      return n.isElement() && n.element().is("delay", ns::kDelay) && n.element().attrOr("from", "") == domain_;
    });
    if (nodes.size() != before && log())
      log()->info("[{}] {}: removed a delay in the server's name from a client's message (XEP-0203)", streamId_,
                  jid_->full());
  }

  void onStanza(Element el) {
    ++server_.stats->stanzasIn;
    stanzaBucket_.take(1, TokenBucket::Clock::now());
    auto kind = xmpp::stanzaKind(el);
    if (kind == xmpp::StanzaKind::Other) {
      streamError(StreamErrorCondition::UnsupportedStanzaType, "<" + el.name() + "/> is no stanza of jabber:client");
      return;
    }
    // RFC 6120 §8.1.2.1: the server stamps the full JID as `from`.
    el.setAttr("from", jid_->full());
    // XEP-0203: a delay in the name of this server is the server's to add
    // (offline storage keeps the first one it finds): a client's is removed.
    if (kind == xmpp::StanzaKind::Message) stripServerDelays(el);
    std::string to(el.attrOr("to", ""));
    std::optional<xmpp::Jid> toJid;
    if (!to.empty()) {
      std::string why;
      toJid = xmpp::Jid::parse(to, &why);
      if (!toJid) {
        if (el.attrOr("type", "") != "error") sendOwn(xmpp::makeError(el, xmpp::StanzaErrorCondition::JidMalformed, why));
        return;
      }
      el.setAttr("to", toJid->full());
    }
    if (kind == xmpp::StanzaKind::Presence && !toJid) {
      noteCaps(el);
      const bool available = el.attrOr("type", "") == "";
      presenceToServer(std::move(el));
      if (available) askClientVersion();
      return;
    }
    bool toServer = !toJid || (toJid->isBare() && !toJid->hasLocal() && toJid->domain() == domain_);
    if (!toServer && toBlocked(el, kind, *toJid)) return;
    // XEP-0280 §4: the carbons iq is the server's, to no 'to' or the
    // user's own bare JID.
    bool toSelf = toJid && toJid->isBare() && toJid->full() == address_;
    if (kind == xmpp::StanzaKind::Iq && (toServer || (toSelf && carbonsIq(el)))) {
      serverIq(el);
      return;
    }
    // XEP-0280 §7: a copy of what this resource sends to the user's other
    // carbons-enabled resources (not to the one it is sent to).
    if (kind == xmpp::StanzaKind::Message && carbonEligible(el)) {
      std::vector<std::string> except{resource_};
      if (toJid && toJid->hasResource() && toJid->bareString() == address_) except.push_back(toJid->resource());
      server_.router.carbons().copy(el, "sent", address_, except);
    }
    routeOut(kindOf(kind), std::move(el), toJid ? *toJid : xmpp::Jid::parse(domain_).value());
  }

  // XEP-0191 §3.3: a stanza the user sends to a JID it blocked is not
  // routed: not-acceptable with <blocked xmlns='urn:xmpp:blocking:errors'/>
  // (an error, or an iq result, nobody waits an answer for is dropped,
  // RFC 6120 §8.3.1). The user's own account is never blocked. True when
  // `el` was taken care of.
  bool toBlocked(const Element& el, xmpp::StanzaKind kind, const xmpp::Jid& to) {
    if (to.bareString() == address_ || !server_.router.blocking().blocks(address_, to.full())) return false;
    ++server_.stats->blockedOut;
    auto type = el.attrOr("type", "");
    if (log()) log()->debug("[{}] {} to {}, blocked by {}: not routed", streamId_, el.name(), to.full(), address_);
    if (type == "error" || (kind == xmpp::StanzaKind::Iq && type == "result")) return true;
    xmpp::ErrorOptions o;
    o.appCondition = Element("blocked", std::string(ns::kBlockingErrors));
    sendOwn(xmpp::makeError(el, xmpp::StanzaErrorCondition::NotAcceptable, xmpp::StanzaErrorType::Cancel, o));
    return true;
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

  // XEP-0092 for `impctl session list`: a client whose available presence
  // names no XEP-0115 caps node is asked once per session what software it
  // is. The answer is the server's (serverIq): never routed; an error or
  // no answer leaves the column as it was.
  void askClientVersion() {
    if (versionAsked_ || !client_.empty()) return;
    versionAsked_ = true;
    versionQueryId_ = "version-" + randomHex(6);
    Element iq("iq", std::string(ns::kClient));
    iq.setAttr("type", "get").setAttr("id", versionQueryId_).setAttr("from", domain_).setAttr("to", jid_->full());
    iq.addChild("query", std::string(ns::kVersion));
    sendOwn(iq);
  }

  // The answer to askClientVersion(): "name version", printable and short
  // (it is the client's text, shown on the administrator's terminal).
  void noteVersion(const Element& result) {
    const Element* q = result.child("query", ns::kVersion);
    if (!q) return;
    auto clean = [](std::string text) {
      std::string out;
      for (unsigned char c : text)
        if (c >= 0x20 && c != 0x7f) out += static_cast<char>(c);
      auto first = out.find_first_not_of(' ');
      if (first == std::string::npos) return std::string();
      out = out.substr(first, out.find_last_not_of(' ') - first + 1);
      if (out.size() > kMaxVersionText) out.resize(kMaxVersionText);
      return out;
    };
    auto name = clean(q->childText("name", ns::kVersion).value_or(""));
    auto version = clean(q->childText("version", ns::kVersion).value_or(""));
    if (name.empty()) return;
    client_ = version.empty() ? name : name + " " + version;
  }

  void noteCaps(const Element& presence) {
    // XEP-0115: the client software's node URI, for `impctl session list`.
    if (const Element* c = presence.child("c", ns::kCaps)) {
      if (auto node = c->attr("node")) client_ = std::string(*node);
    }
  }

  static bool carbonsIq(const Element& iq) {
    return iq.child("enable", ns::kCarbons) != nullptr || iq.child("disable", ns::kCarbons) != nullptr;
  }

  void serverIq(const Element& iq) {
    auto type = iq.attrOr("type", "");
    if ((type == "result" || type == "error") && !versionQueryId_.empty() && iq.attrOr("id", "") == versionQueryId_) {
      versionQueryId_.clear();  // one answer is taken
      if (type == "result") noteVersion(iq);
      return;
    }
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
      return sendOwn(xmpp::makeError(iq, xmpp::StanzaErrorCondition::BadRequest,
                                     "an iq needs type get or set and one payload"));
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
    } else if (type == "set" && payload->is("enable", ns::kCarbons)) {  // XEP-0280 §4.1
      enableCarbons();
    } else if (type == "set" && payload->is("disable", ns::kCarbons)) {  // XEP-0280 §4.2
      disableCarbons();
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
    sendOwn(result);
  }

  C2sServer::Impl& server_;
  LoopState& ls_;
  std::unique_ptr<net::StreamConnection> conn_;
  bool directTls_;
  xmpp::StreamParser parser_;
  Phase phase_ = Phase::Header;
  // Authenticated but homed on another node: the stream error for the
  // restarted stream (see-other-host, RFC 6120 §4.9.3.19).
  std::optional<std::pair<StreamErrorCondition, std::string>> redirect_;
  bool headerSent_ = false, waitingTls_ = false, saslBusy_ = false, attached_ = false, replacedBy_ = false;
  bool readSinceSweep_ = true;
  // A <bind/> waits for the user's block list (bindReady); what the client
  // sends meanwhile is held, at most kMaxHeldWhileBinding stanzas.
  static constexpr std::size_t kMaxHeldWhileBinding = 100;
  bool bindPending_ = false;
  std::vector<Element> heldWhileBinding_;
  // XEP-0198
  bool smEnabled_ = false, smResumable_ = false, smRequested_ = false, smRequestPosted_ = false;
  std::uint32_t smHandled_ = 0;  // stanzas received from the client since <enable/>
  std::chrono::seconds smWindow_{0};
  std::string smId_;
  SmQueue out_;
  std::vector<RoutedStanza> pending_;  // delivered while <resume/> waits for the old state
  net::TimerId resumeTimer_ = 0;
  // XEP-0280
  bool carbons_ = false;
  std::string resource_;
  // abuse limits
  TokenBucket stanzaBucket_, byteBucket_;
  net::TimerId throttleTimer_ = 0;
 public:
  bool counted_unauth_ = false;
 private:
  int saslFailures_ = 0;
  std::string streamId_, domain_, userid_, address_, client_, since_, remote_, ip_;
  // XEP-0092: the one version query of the session (askClientVersion).
  static constexpr std::size_t kMaxVersionText = 64;
  bool versionAsked_ = false;
  std::string versionQueryId_;
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
  {
    std::lock_guard lock(liveMu);
    ++live;
  }
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

void C2sServer::Impl::scheduleSweep(LoopState& ls) {
  ls.sweepTimer = ls.loop->schedule(cfg.compactIdleAfter, [this, &ls] {
    ls.sweepTimer = 0;
    if (stopping) return;
    for (auto& [p, s] : ls.streams) s->compactIfIdle();
    scheduleSweep(ls);
  });
}

void C2sServer::Impl::forget(LoopState& ls, C2sStream* s) {
  auto it = ls.streams.find(s);
  if (it == ls.streams.end()) return;
  auto keep = std::move(it->second);
  ls.streams.erase(it);
  if (!keep->ip().empty()) releaseIp(keep->ip());
  {
    std::lock_guard lock(liveMu);
    --live;
  }
  liveCv.notify_all();
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
      // XEP-0478 idle-seconds: a stream with no traffic at all is closed (a
      // resumable session then hibernates, XEP-0198).
      plain.stream.idleTimeout = impl.cfg.idleTimeout;
      Impl* self = &impl;
      state->plain = std::make_unique<net::Acceptor>(state->group, plain, [self, state](std::unique_ptr<net::StreamConnection> c) {
        self->accept(*state, std::move(c), false);
      });
      if (i == 0) boundClientPort_ = state->plain->local().port();
      if (impl.cfg.tlsPort >= 0) {
        net::AcceptorOptions direct = plain;
        int tport = i == 0 ? impl.cfg.tlsPort : boundTlsPort_;
        direct.address = *net::SocketAddress::fromIp(impl.cfg.listenAddress, static_cast<std::uint16_t>(tport));
        direct.tls = impl.currentTls();
        direct.name = "XMPP direct-TLS listener on " + direct.address.toString();
        state->direct = std::make_unique<net::Acceptor>(state->group, direct, [self, state](std::unique_ptr<net::StreamConnection> c) {
          self->accept(*state, std::move(c), true);
        });
        if (i == 0) boundTlsPort_ = state->direct->local().port();
      }
      if (impl.cfg.compactIdleAfter.count() > 0) impl.scheduleSweep(*state);
    });
    impl.perLoop.push_back(std::move(ls));
    // Without SO_REUSEPORT one loop holds the listeners.
    if (!shareAll) break;
  }
}

void C2sServer::stop() noexcept {
  if (!impl_ || impl_->stopping.exchange(true)) return;
  auto& impl = *impl_;
  // Every stream refers to the server and lives on its loop: none may
  // outlive this call, and none may be destroyed off its loop (a stream
  // draining on its loop while another thread freed it was a crash on
  // SIGTERM with connected clients). So: tell every stream, let them close
  // (each drains for at most kShutdownLinger), close what is left, and run
  // the destruction forget() posted before returning.
  for (auto& ls : impl.perLoop) {
    try {
      onLoop(*ls->loop, [&] {
        if (ls->sweepTimer) ls->loop->cancel(ls->sweepTimer);
        ls->sweepTimer = 0;
        ls->plain.reset();
        ls->direct.reset();
        std::vector<std::shared_ptr<C2sStream>> all;
        for (auto& [p, s] : ls->streams) all.push_back(s);
        for (auto& s : all) s->shutdown();
        // Hibernating sessions end now: their stanzas go to the session
        // manager while it still runs (the router stops after this service).
        std::vector<std::shared_ptr<C2sStream>> asleep;
        for (auto& [p, s] : ls->hibernating) asleep.push_back(s);
        for (auto& s : asleep) s->expire("the server is shutting down");
      });
    } catch (...) {
      // The loop stopped with the call queued: nothing of it runs any more.
    }
  }
  {
    std::unique_lock lock(impl.liveMu);
    impl.liveCv.wait_for(lock, kShutdownLinger + std::chrono::milliseconds(500), [&] { return impl.live == 0; });
  }
  for (auto& ls : impl.perLoop) {
    try {
      onLoop(*ls->loop, [&] {
        std::vector<std::shared_ptr<C2sStream>> all;
        for (auto& [p, s] : ls->streams) all.push_back(s);
        for (auto& s : all) s->closeNow("the server is shutting down");
        ls->hibernating.clear();  // a resumption was under way: it ends with the server
      });
      onLoop(*ls->loop, [] {});  // runs what forget() posted: the last references
    } catch (...) {
    }
  }
}

void C2sServer::setTls(std::shared_ptr<const net::TlsContext> tls) {
  if (!tls) throw std::invalid_argument("C2sServer needs a TLS server context: TLS is mandatory (RFC 6120 §5)");
  auto& impl = *impl_;
  {
    std::lock_guard lock(impl.tlsMu);
    impl.tls = tls;
  }
  if (impl.stopping) return;
  for (auto& ls : impl.perLoop) {
    try {
      onLoop(*ls->loop, [&] {
        if (ls->direct) ls->direct->setTls(tls);
      });
    } catch (const std::exception& e) {
      if (impl.log) impl.log->error("XMPP direct-TLS listener keeps its certificate: {}", e.what());
    }
  }
}

std::shared_ptr<const net::TlsContext> C2sServer::tls() const { return impl_->currentTls(); }

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
        std::vector<std::shared_ptr<C2sStream>> asleep;
        for (auto& [p, s] : ls->hibernating)
          if (s->userid() == userid) asleep.push_back(s);
        for (auto& s : asleep) {
          s->expire("the administrator ended this session");
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
