#pragma once
// RFC 3261 §17 transactions: client and server, INVITE and non-INVITE, with
// timers A-K on an injectable TimerQueue. No routing policy: the layer
// matches, retransmits, absorbs and times out; the transaction user (a
// proxy, a UA core) decides what to send and where.
//
// Threads: everything (onMessage, sendRequest, respond, timer callbacks,
// transport error callbacks, TU callbacks) runs on the thread that owns the
// TimerQueue — the event loop in production, the test in tests. The layer
// never blocks and does no locking.
//
// Reentrancy and ownership: TU callbacks may call back into the layer
// (respond, sendRequest). The Message and Source references a callback gets
// stay valid until it returns, even if the callback ends the transaction.
// The layer keeps copies of what it needs; it never owns the TU or the
// transport, which must outlive it. Destroying the layer cancels its timers
// and silences transport callbacks still pending; no TU callback runs.
//
// Transport errors surface at once (RFC 3261 §17.1.4, §17.2.4): a client
// transaction whose request cannot be sent terminates and reports
// onTransportError, never waiting for timer B/F — the proxy's fast failover
// depends on it. A server transaction whose response cannot be sent
// terminates and reports onServerTransportError; an error reported after
// the transaction ended (a 2xx to an INVITE, §17.2.1; zero timer J/K on TCP)
// is still reported, without a second onServerTerminated.
//
// Reliable transports (TCP, TLS) get no retransmissions and zero-length
// timers D, I, J, K, as §17 says.
//
// Known RFC 3261 behaviour kept on purpose: a server INVITE transaction ends
// when the TU sends a 2xx, so a retransmitted INVITE arriving after that is
// a new request to the TU (RFC 6026's Accepted state is not implemented).
//
// Errors: untrusted input (responses and ACKs matching nothing, requests
// without a Via) is never fatal; misuse by the TU (a request without a
// z9hG4bK branch, ACK as a transaction, a duplicate client branch, a request
// passed to respond(), a nonsensical TransactionConfig) throws
// std::invalid_argument.
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "imp/sip/endpoint.h"
#include "imp/sip/message.h"
#include "imp/net/timers.h"

namespace imp::sip {

struct TransactionConfig {
  net::Clock::duration t1 = std::chrono::milliseconds(500);  // RTT estimate; > 0
  net::Clock::duration t2 = std::chrono::seconds(4);         // retransmit cap; >= t1
  net::Clock::duration t4 = std::chrono::seconds(5);         // network lifetime; >= 0
  // Server INVITE: send 100 Trying if the TU has not answered within this
  // delay (§17.2.1 "should"); zero = never.
  net::Clock::duration autoTrying = std::chrono::milliseconds(200);
};

// How transactions send: the transport layer in production, a fake in tests.
// onError (never empty) may be called synchronously from inside send() or
// later, at most once; the layer copes with both, and with a call arriving
// after the transaction or the layer is gone.
class TransactionTransport {
 public:
  virtual ~TransactionTransport() = default;
  virtual void send(const Message& msg, const Endpoint& dest, std::function<void(const TransportError&)> onError) = 0;
};

// Transaction ids: unique per layer, client and server alike, never reused.
using TxId = std::uint64_t;

// Client transaction outcomes. Exactly one of onFinal, onTimeout,
// onTransportError ends the TU's part of a transaction (none after
// terminateClient()); onProvisional may come before it. Empty functions are
// allowed.
// An INVITE client transaction has no timeout once a provisional came: how
// long a callee may ring is the TU's business (timer C, §16.6), which ends
// it with CANCEL and, failing a final, terminateClient().
struct ClientCallbacks {
  std::function<void(const Message&)> onProvisional;  // 101-199 (100 too)
  std::function<void(const Message&)> onFinal;         // 2xx-6xx, once
  std::function<void()> onTimeout;                     // timer B / F
  std::function<void(const TransportError&)> onTransportError;
};

class TransactionUser {
 public:
  virtual ~TransactionUser() = default;
  // A new server transaction (any method but ACK; CANCEL included — see
  // TransactionLayer::inviteFor()). Answer with TransactionLayer::respond().
  virtual void onRequest(TxId tx, const Message& request, const Source& source) = 0;
  // Responses matching no client transaction (a proxy forwards 2xx
  // retransmissions statelessly, §16.7).
  virtual void onStrayResponse(const Message&, const Source&) {}
  // ACKs matching no server INVITE transaction (the ACK for a 2xx).
  virtual void onStrayAck(const Message&, const Source&) {}
  // Server INVITE transaction: timer H fired, the ACK never came.
  virtual void onServerTimeout(TxId) {}
  // A response of this server transaction could not be sent (§17.2.4); may
  // come after onServerTerminated (see above).
  virtual void onServerTransportError(TxId, const TransportError&) {}
  // Called once whenever a server transaction ends (right after
  // onServerTimeout / onServerTransportError when those are the reason).
  // The id is already dead in all three: respond() to it is ignored.
  virtual void onServerTerminated(TxId) {}
};

struct TransactionCounts {
  // Active now, by kind.
  std::size_t clientInvite = 0, clientNonInvite = 0, serverInvite = 0, serverNonInvite = 0;
  // Totals since construction.
  std::uint64_t retransmissions = 0;   // requests (A, E) and responses (G, re-sent on request retransmission)
  std::uint64_t clientTimeouts = 0;    // timer B / F
  std::uint64_t serverTimeouts = 0;    // timer H
  std::uint64_t transportErrors = 0;   // client and server
};

class TransactionLayer {
 public:
  // Throws std::invalid_argument for a config the timers cannot run with.
  TransactionLayer(TransactionTransport& transport, net::TimerQueue& timers, TransactionUser& tu, TransactionConfig config = {});
  ~TransactionLayer();
  TransactionLayer(const TransactionLayer&) = delete;
  TransactionLayer& operator=(const TransactionLayer&) = delete;

  // Entry point for every received message: responses go to their client
  // transaction, requests to theirs or to a new one (TU onRequest), anything
  // matching nothing to onStrayResponse / onStrayAck.
  void onMessage(Message msg, const Source& source);

  // Starts a client transaction and sends the request to `dest`. The
  // request's top Via must carry a z9hG4bK branch (see prependVia()); ACK
  // is not a transaction (send it through the transport). Callbacks may fire
  // before this returns only for a synchronous transport error; the id
  // returned is then already dead.
  TxId sendRequest(Message request, const Endpoint& dest, ClientCallbacks callbacks);
  // Ends a client transaction at once, without any callback and without
  // sending anything: for the TU that gives up on an INVITE stuck in
  // Proceeding (timer C, §16.8; 64*T1 after its CANCEL, §9.1). Ignored if it
  // no longer exists.
  void terminateClient(TxId clientTx);
  // Answers a server transaction (to the request's source, §18.2.2) and
  // drives its state machine; ignored if the transaction no longer exists or
  // has already sent its final response.
  void respond(TxId serverTx, Message response);
  // The server INVITE transaction a received CANCEL refers to (§9.2).
  std::optional<TxId> inviteFor(const Message& cancel) const;
  // The request that created a server transaction; valid until it ends.
  const Message* serverRequest(TxId serverTx) const;

  // "z9hG4bK" + 128 bits from the OpenSSL CSPRNG, hex.
  static std::string newBranch();
  // Puts "SIP/2.0/<transport> <sentBy>;branch=<new><params>" on top of the
  // request's Vias; returns the branch. `params` like ";rport".
  static std::string prependVia(Message& request, Transport transport, std::string_view sentBy,
                                std::string_view params = {});
  // A response to `request` with Via, From, To, Call-ID and CSeq copied
  // (§8.2.6), Timestamp too for 100; adds `toTag` to To when given and To
  // has none.
  static Message makeResponse(const Message& request, int status, std::string_view reason, std::string_view toTag = {});

  TransactionCounts counts() const;

 private:
  struct Client;
  struct Server;
  void sendClient(const std::shared_ptr<Client>& c);
  void armClientRetransmit(Client& c, net::Clock::duration interval);
  void clientResponse(const std::shared_ptr<Client>& c, const Message& msg);
  void endClient(TxId id);
  void sendServerResponse(const std::shared_ptr<Server>& s);
  void armServerRetransmit(Server& s, net::Clock::duration interval);
  void onAck(const Message& ack, const Source& source);
  void endServer(TxId id);   // drop + onServerTerminated
  bool dropServer(TxId id);  // silently; false if already gone
  std::shared_ptr<Server> findServer(TxId id) const;

  TransactionTransport& transport_;
  net::TimerQueue& timers_;
  TransactionUser& tu_;
  TransactionConfig cfg_;
  TxId next_ = 0;
  std::map<TxId, std::shared_ptr<Client>> clients_;
  std::map<std::string, TxId> clientIndex_;  // branch + method (§17.1.3)
  std::map<TxId, std::shared_ptr<Server>> servers_;
  std::map<std::string, TxId> serverIndex_;  // §17.2.3 request keys
  std::map<std::string, TxId> ackIndex_;     // server INVITEs: what their ACK will look like
  TransactionCounts totals_;                 // only the cumulative fields are used
  std::shared_ptr<bool> alive_;              // guards transport callbacks that outlive the layer
};

}  // namespace imp::sip
