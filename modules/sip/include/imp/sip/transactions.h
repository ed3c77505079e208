#pragma once
// RFC 3261 §17 transactions: client and server, INVITE and non-INVITE, with
// timers A-K on an injectable TimerQueue.
//
// Threads: everything (onMessage, sendRequest, respond, timer callbacks,
// transport error callbacks, TU callbacks) runs on the thread that owns the
// TimerQueue — the event loop in production, the test in tests. The layer
// never blocks. TU callbacks may call back into the layer.
//
// Transport errors surface at once (RFC 3261 §17.1.4): a client transaction
// whose request cannot be sent terminates and reports onTransportError,
// never waiting for timer B/F — the proxy's fast failover depends on it.
//
// Reliable transports (TCP, TLS) get no retransmissions and zero-length
// timers D, I, J, K, as §17 says.
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "imp/sip/endpoint.h"
#include "imp/sip/message.h"
#include "imp/sip/timers.h"

namespace imp::sip {

struct TransactionConfig {
  Clock::duration t1 = std::chrono::milliseconds(500);
  Clock::duration t2 = std::chrono::seconds(4);
  Clock::duration t4 = std::chrono::seconds(5);
  // Server INVITE: send 100 Trying if the TU has not answered within this
  // delay (§17.2.1); zero = never.
  Clock::duration autoTrying = std::chrono::milliseconds(200);
};

// How transactions send: the transport layer in production, a fake in tests.
// onError may be called synchronously from inside send() or later.
class TransactionTransport {
 public:
  virtual ~TransactionTransport() = default;
  virtual void send(const Message& msg, const Endpoint& dest, std::function<void(const TransportError&)> onError) = 0;
};

using TxId = std::uint64_t;

struct ClientCallbacks {
  std::function<void(const Message&)> onProvisional;
  std::function<void(const Message&)> onFinal;  // 2xx-6xx, once
  std::function<void()> onTimeout;              // timer B / F
  std::function<void(const TransportError&)> onTransportError;
};

class TransactionUser {
 public:
  virtual ~TransactionUser() = default;
  // A new server transaction (any method but ACK; CANCEL included).
  virtual void onRequest(TxId tx, const Message& request, const Source& source) = 0;
  // Responses matching no client transaction (a proxy forwards 2xx retransmissions).
  virtual void onStrayResponse(const Message&, const Source&) {}
  // ACKs matching no server transaction (ACK for a 2xx).
  virtual void onStrayAck(const Message&, const Source&) {}
  // Server INVITE transaction: timer H fired, the ACK never came.
  virtual void onServerTimeout(TxId) {}
};

struct TransactionCounts {
  std::size_t clientInvite = 0, clientNonInvite = 0, serverInvite = 0, serverNonInvite = 0;
};

class TransactionLayer {
 public:
  TransactionLayer(TransactionTransport& transport, TimerQueue& timers, TransactionUser& tu, TransactionConfig config = {});
  ~TransactionLayer();
  TransactionLayer(const TransactionLayer&) = delete;
  TransactionLayer& operator=(const TransactionLayer&) = delete;

  // Entry point for every received message.
  void onMessage(Message msg, const Source& source);

  // Starts a client transaction. The request's top Via must carry a branch
  // with the RFC 3261 magic cookie (see newBranch()). Callbacks may fire
  // before this returns only for a synchronous transport error.
  TxId sendRequest(Message request, const Endpoint& dest, ClientCallbacks callbacks);
  // Answers a server transaction; ignored if it no longer exists.
  void respond(TxId serverTx, Message response);
  // The server INVITE transaction a received CANCEL refers to (§9.2).
  std::optional<TxId> inviteFor(const Message& cancel) const;
  // The request that created a server transaction.
  const Message* serverRequest(TxId serverTx) const;

  // "z9hG4bK" + 128 random bits (hex).
  static std::string newBranch();
  // A response to `request` with Via, From, To, Call-ID and CSeq copied
  // (§8.2.6); adds `toTag` to To when given and To has none.
  static Message makeResponse(const Message& request, int status, std::string_view reason, std::string_view toTag = {});

  TransactionCounts counts() const;

 private:
  struct Client;
  struct Server;
  void clientResponse(Client& c, Message msg);
  void serverRequestAgain(Server& s);
  void endClient(TxId id);
  void endServer(TxId id);
  void sendClient(Client& c);
  void sendServerResponse(Server& s);
  void armClientRetransmit(TxId id, Clock::duration interval);
  void armServerRetransmit(TxId id, Clock::duration interval);
  std::string serverKey(const Message& m, bool forAck) const;

  TransactionTransport& transport_;
  TimerQueue& timers_;
  TransactionUser& tu_;
  TransactionConfig cfg_;
  TxId next_ = 0;
  std::map<TxId, std::unique_ptr<Client>> clients_;
  std::map<std::string, TxId> clientIndex_;  // branch + method
  std::map<TxId, std::unique_ptr<Server>> servers_;
  std::map<std::string, TxId> serverIndex_;
  std::shared_ptr<bool> alive_;  // guards callbacks that outlive the layer
};

}  // namespace imp::sip
