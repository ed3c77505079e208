#pragma once
// Gateway::Impl: the state of the federation connection manager, on its
// event loop (gateway.h). Split over gateway.cpp (SIP plumbing, dialogs,
// XMPP entry, admin views), presence.cpp (AV-1..AV-3) and im.cpp (IM-1..5).
#include <imp/net/event_loop.h>
#include <imp/sip/message.h>
#include <imp/sip/transactions.h>
#include <imp/sip/transport.h>
#include <imp/xmpp/xml.h>

#include <chrono>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "imp/federation_cm/gateway.h"
#include "imp/federation_cm/subscription_store.h"

namespace imp::fcm {

using Clock = net::Clock;

// A SIP dialog (RFC 3261 §12) as one side of it keeps it.
struct Dialog {
  std::string callId, localTag, remoteTag;
  std::string localUri, remoteUri;  // sip:ann@example.com / sip:bob@example.com
  std::string remoteTarget;         // the peer's Contact URI
  std::vector<std::string> routeSet;  // Route values, in the order to send them
  std::uint32_t localCseq = 0, remoteCseq = 0;
  bool established() const { return !remoteTag.empty(); }
};

// A native watcher's subscription to a Microsoft user (AV-2).
struct OutSub {
  std::string watcher;  // ann@example.com
  std::string target;   // bob@example.com
  Dialog dlg;
  enum class State { Subscribing, Pending, Active, Down } state = State::Subscribing;
  std::optional<sip::TxId> tx;       // SUBSCRIBE in flight
  net::TimerId refreshTimer = 0;
  Clock::time_point expiresAt{};
  bool toldSubscribed = false;       // `subscribed` routed to the watcher
  // What the last NOTIFY said, for probes: available? show, status.
  bool known = false, available = false;
  std::string show, status;
  int failures = 0;
  bool unsubscribing = false;
  bool recoveryQueued = false;  // waiting in the paced queue (AV-3): queued once
  Clock::time_point confirmedAt{};  // the last 2xx or NOTIFY in its dialog
};

// As stored and listed: "subscribing", "pending", "active", "down".
constexpr std::string_view stateName(OutSub::State s) {
  constexpr std::string_view names[] = {"subscribing", "pending", "active", "down"};
  return names[static_cast<int>(s)];
}

// One resource's presence of a native user, as the session manager routed it.
struct ResourcePresence {
  bool available = false;
  std::string show, status, capsNode, activity;
  int priority = 0;
};

// A Microsoft watcher's subscription to a native user (AV-1).
struct InSub {
  std::string owner;    // ann@example.com
  std::string watcher;  // bob@example.com
  Dialog dlg;
  bool approved = false;  // the session manager said `subscribed`
  Clock::time_point expiresAt{};
  std::map<std::string, ResourcePresence> resources;  // resource -> presence
  bool notifyInFlight = false, notifyAgain = false;
  // A NOTIFY to it failed (no answer, not sent): the current state goes
  // again when the Microsoft side answers (AV-3), not every watcher's.
  bool stale = false;
  bool recoveryQueued = false;  // waiting in the paced queue (AV-3): queued once
};

// A message waiting for its IM dialog (IM-2).
struct PendingIm {
  xcp::Address from;  // the sender's full JID (errors go back to it)
  std::string id;     // the stanza id
  std::string text;
  std::shared_ptr<const xmpp::Element> original;
  int attempts = 0;
};

// A session-mode IM dialog (IM-2) between a native user and a Microsoft user.
struct ImSession {
  std::string native, remote;  // bare JIDs
  Dialog dlg;
  enum class State { Inviting, Up, Closing } state = State::Inviting;
  bool initiatedHere = false;
  std::string conversationId;
  std::deque<PendingIm> queue;   // waiting for the INVITE's 200
  std::optional<PendingIm> inInvite;  // the first text, sent in ms-text-format
  Clock::time_point lastActivity{};
  net::TimerId idleTimer = 0;
  std::optional<sip::TxId> inviteTx;  // our INVITE without a final answer
  Clock::time_point inviteSentAt{};
  net::TimerId inviteTimer = 0;       // ... given up after requestTimeout
  bool textFormat = false;            // the peer takes ms-text-format (its 200 said so)
  std::uint64_t out = 0, in = 0;
  xcp::Address lastSender;  // the native user's resource that wrote last
};

class Gateway::Impl : public sip::TransactionTransport,
                      public sip::TransactionUser,
                      public std::enable_shared_from_this<Gateway::Impl> {
 public:
  Impl(GatewayConfig cfg, net::EventLoop& loop, xcp::Router& router, SubscriptionStore* store);
  ~Impl() override;

  // --- gateway.cpp: lifecycle, SIP plumbing, XMPP entry
  sip::Endpoint start();
  void stop();
  void onStanza(xcp::RoutedStanza s);
  void send(const sip::Message& msg, const sip::Endpoint& dest,
            std::function<void(const sip::TransportError&)> onError) override;
  void onRequest(sip::TxId tx, const sip::Message& req, const sip::Source& src) override;
  void onStrayAck(const sip::Message&, const sip::Source&) override {}
  GatewayStats stats() const;
  std::vector<SubscriptionInfo> subscriptionList(const std::string& user) const;
  std::vector<ImSessionInfo> sessionList() const;

  // SIP helpers
  sip::Message outOfDialog(std::string_view method, const std::string& fromJid, const std::string& toJid, Dialog& dlg);
  sip::Message inDialog(std::string_view method, Dialog& dlg);
  sip::TxId sendRequest(sip::Message req, sip::ClientCallbacks cb);
  void respond(sip::TxId tx, const sip::Message& req, int status, std::string_view reason,
               const std::vector<std::pair<std::string, std::string>>& headers = {}, std::string_view body = {},
               std::string_view contentType = {}, const std::string& toTag = {});
  // A request refused: counted (refused), logged with `why` (what was wrong
  // with it) and answered `status reason` with `headers`.
  void refuse(sip::TxId tx, const sip::Message& req, int status, std::string_view reason, std::string_view why,
              const std::vector<std::pair<std::string, std::string>>& headers = {});
  // The dialog a 2xx / first request makes (UAC / UAS side).
  static void dialogFromResponse(Dialog& d, const sip::Message& resp);
  static void dialogFromRequest(Dialog& d, const sip::Message& req, const std::string& localTag);
  std::string contact() const;
  // The trace flag `translation`: `what` and detail() (called only when
  // the flag is on: nothing is built for it otherwise).
  bool tracing() const;
  template <typename Detail>
  void trace(std::string_view what, Detail&& detail) {
    if (tracing()) traceLine(what, detail());
  }
  void traceLine(std::string_view what, const std::string& detail);
  void countFailure(int code, const sip::Message* resp);
  // A stanza into the router, from a Microsoft user.
  void route(xcp::StanzaKind kind, const std::string& from, const xcp::Address& to, xmpp::Element el);
  // A message error to the sender of `original` (IM-5).
  void messageError(const xcp::Address& sender, const std::string& remote, const std::string& id,
                    std::string_view condition, std::string_view type, const std::string& text,
                    const std::shared_ptr<const xmpp::Element>& original);

  // --- presence.cpp
  void presenceFromXmpp(const xcp::RoutedStanza& s);
  void outSubscribe(const std::string& watcher, const std::string& target, bool fresh);
  void outUnsubscribe(const std::string& watcher, const std::string& target);
  void outProbe(const std::string& watcher, const std::string& target);
  void sendSubscribe(OutSub& sub, std::uint32_t expires);
  void onSubscribeFinal(const std::string& key, const sip::Message& resp, Clock::time_point sent);
  // `local`: the node's own SIP proxy did not take the request (tried again
  // here); else the Microsoft side failed (peerFailed).
  // `sent`: when the failed SUBSCRIBE left.
  void onSubscribeFailed(const std::string& key, int code, const std::string& why, bool local,
                         Clock::time_point sent);
  void onNotify(sip::TxId tx, const sip::Message& req, OutSub& sub);
  void scheduleRefresh(OutSub& sub, std::uint32_t expires);
  void tellWatcher(OutSub& sub);
  void dropOutSub(const std::string& key, bool tellUnsubscribed, const std::string& why);
  void saveOut(const OutSub& sub);

  void onSubscribeRequest(sip::TxId tx, const sip::Message& req);
  void inRefresh(sip::TxId tx, const sip::Message& req, InSub& sub);
  void inApproved(const std::string& owner, const std::string& watcher, bool approved);
  void inPresence(const xcp::RoutedStanza& s);
  // Ends the incoming subscriptions past their expiry, a slice a tick.
  void sweepExpired();
  static constexpr std::chrono::milliseconds kSweepTick{100};
  static constexpr std::size_t kSweepPasses = 100;  // ticks per whole pass
  void notifyWatcher(InSub& sub, std::string_view reason = {});
  void endInSub(const std::string& key, bool sendTerminated, std::string_view reason);
  void saveIn(const InSub& sub);
  std::string pidfFor(const InSub& sub) const;

  // peer health and recovery (AV-3)
  // A request sent at `sent` failed: the Microsoft side is down, unless
  // something it answered since says otherwise (answeredSince).
  void peerFailed(const std::string& domain, Clock::time_point sent);
  bool answeredSince(const std::string& domain, Clock::time_point sent) const;
  // A watcher whose NOTIFY failed while the Microsoft side is up gets the
  // state again in 2 s (paced).
  void renotifyLater(const std::string& key);
  void peerAnswered(const std::string& domain);
  void keepAlive(const std::string& domain);
  void scheduleKeepAlive(const std::string& domain, std::chrono::milliseconds after);
  void paced(std::function<void()> fn);
  void runPaced();
  void recover(std::vector<StoredSubscription> rows);

  // --- im.cpp
  void messageFromXmpp(const xcp::RoutedStanza& s);
  bool isSimple(const std::string& remote) const;
  // Page mode toward standard SIMPLE peers (RFC 3428, RFC 3994).
  void sendPageMessage(const xcp::RoutedStanza& s, const std::string& body, std::string_view contentType);
  void sendIm(ImSession& ses, PendingIm m);
  void invite(ImSession& ses);
  void onInviteFinal(const std::string& key, const sip::Message& resp);
  void onInviteFailed(const std::string& key, int code, const std::string& why, const sip::Message* resp);
  void sendMessage(ImSession& ses, PendingIm m);
  // The conversation's dialog is dead: end it and send `m` in a new one (once).
  void retryInNewDialog(const std::string& key, PendingIm m, bool sendBye, const std::string& why);
  void sendTyping(ImSession& ses, bool composing);
  void onInvite(sip::TxId tx, const sip::Message& req);
  void onImRequest(sip::TxId tx, const sip::Message& req, ImSession& ses);
  void onPageMessage(sip::TxId tx, const sip::Message& req);
  void deliverText(const std::string& remote, const std::string& native, const std::string& text);
  void deliverTyping(const std::string& remote, const std::string& native, bool composing);
  void touch(ImSession& ses);
  void armIdleTimer(ImSession& ses, Clock::duration after);
  void endSession(const std::string& key, bool sendBye, std::string_view why);
  void failQueued(ImSession& ses, int code, const std::string& why);

  // state
  GatewayConfig cfg_;
  net::EventLoop& loop_;
  xcp::Router& router_;
  SubscriptionStore* store_;
  std::unique_ptr<sip::TransportLayer> transport_;
  std::unique_ptr<sip::TransactionLayer> txl_;
  sip::Endpoint bound_;
  bool running_ = false;

  std::map<std::string, OutSub> out_;   // watcher\ntarget
  std::map<std::string, InSub> in_;     // owner\nwatcher
  std::map<std::string, ImSession> im_; // native\nremote
  // Call-ID -> what it belongs to: 'o' / 'i' / 'm' + key.
  std::unordered_map<std::string, std::string> byCallId_;

  struct Peer {
    bool down = false;
    net::TimerId timer = 0;
    Clock::time_point downSince{};
    // The last answer from it: a request that times out after it was
    // answered something sent later is no news of it being down (a probe
    // sent while it was away, timing out after it came back).
    Clock::time_point lastAnswer{};
  };
  std::map<std::string, Peer> peers_;  // Microsoft domain -> health
  std::map<std::string, PeerType> peerTypes_;  // domain -> peer type (Lync when absent)
  std::deque<std::function<void()>> pacedQueue_;
  std::size_t inFlight_ = 0;  // SUBSCRIBEs and NOTIFYs waiting for their final answer
  net::TimerId pacedTimer = 0;
  net::TimerId sweepTimer_ = 0;
  std::string sweepCursor_;  // the key the next slice starts from

  // Ids of the stanzas made here: a random prefix per start and a count.
  std::string stanzaIds_;  // set in the constructor
  std::uint64_t stanzaCount_ = 0;

  GatewayStats stats_;
  std::map<int, std::uint64_t> failuresByCode_;
  std::map<std::string, std::uint64_t> failuresByDiag_;
};

// Helpers shared by the three files.
std::string token(std::size_t bytes = 8);
std::string sipUri(const std::string& bareJid);  // "sip:" + jid
// The bare JID ("user@domain", lower-case) of a sip:/sips: URI or name-addr; "" if none.
std::string jidOfUri(std::string_view uriOrNameAddr);
std::string key2(const std::string& a, const std::string& b);
std::string domainOf(const std::string& bareJid);
// The ms-diagnostics id and reason of a response, if any.
std::pair<std::string, std::string> msDiagnostics(const sip::Message& resp);
// XMPP error for a SIP failure (IM-5, FED-7): condition, type.
std::pair<std::string_view, std::string_view> xmppErrorFor(int sipCode);

}  // namespace imp::fcm
