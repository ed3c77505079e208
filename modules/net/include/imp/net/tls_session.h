#pragma once
// One TLS session over in-memory buffers (issue 15, deliverable 1): the
// engine between a StreamConnection's socket bytes and the protocol's
// plaintext. It owns no socket: ciphertext from the network goes in with
// receive(), ciphertext for the network comes out with takeOutput(). The
// role (client or server) is the context's.
//
// Memory: an idle session holds no buffers. Ciphertext waits in buffers
// that are freed as soon as OpenSSL has read them all or takeOutput() has
// taken them, and every context runs with SSL_MODE_RELEASE_BUFFERS (OpenSSL
// frees its record buffers between records), so a session costs its SSL
// object and cipher state, not 35 KB of buffers sized for the largest
// record.
//
// STARTTLS: a session can start on a stream that carried plaintext until
// now; the caller passes, with receive(), any bytes it had already read past
// the STARTTLS point, so nothing the peer pipelined is lost.
//
// Peer check (TLS-2): `acceptPeer`, when set on a server session whose
// context verifies peers, is called during the handshake with the verified
// leaf certificate's subject CN (never a SAN); false fails the handshake
// (peerRefused() then says so). When the verify callback did not run (the
// context does not request certificates) it is called once the handshake is
// done with peerCommonName() ("" without a verified certificate).
//
// Errors: handshake() and read() report failure with error() holding the
// OpenSSL reason (plus the certificate verification error, or the refused
// CN). A throwing acceptPeer counts as a refusal.
//
// TLS 1.3 clients: the server checks our certificate after the client
// considers the handshake done. peerConfirmed() becomes true once the
// server has sent any post-handshake record (a session ticket or data),
// proving it accepted us; it is true at once for servers and TLS <= 1.2.
//
// Threads: a session belongs to its connection's loop thread.
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "imp/net/tls.h"

typedef struct bio_st BIO;

namespace imp::net {

using PeerCheck = std::function<bool(std::string_view peerCommonName)>;

class TlsSession {
 public:
  enum class Status { InProgress, Done, Failed };
  enum class ReadStatus { Data, WantMore, PeerClosed, Failed };

  // Throws std::runtime_error with the OpenSSL reason when the SSL object
  // cannot be created (out of memory).
  explicit TlsSession(std::shared_ptr<const TlsContext> context, PeerCheck acceptPeer = {});
  ~TlsSession();
  TlsSession(const TlsSession&) = delete;
  TlsSession& operator=(const TlsSession&) = delete;

  bool isServer() const { return server_; }

  // Ciphertext read from the network.
  void receive(std::string_view ciphertext);
  // Advances the handshake (a client's first call produces its ClientHello).
  Status handshake();
  bool handshakeDone() const { return done_; }
  // Encrypts all of `plain`; false with error() set on failure.
  bool write(std::string_view plain);
  // Decrypts into buf; *n bytes when Data.
  ReadStatus read(char* buf, std::size_t cap, std::size_t* n);
  // Queues close_notify.
  void shutdown();
  // Ciphertext waiting for the network, appended to `out` (moved into it
  // when `out` is empty); returns the count.
  std::size_t takeOutput(std::string& out);
  bool hasOutput() const { return !out_.empty(); }
  // Heap bytes held by the ciphertext buffers (0 when idle).
  std::size_t bufferedBytes() const;

  const std::string& error() const { return error_; }
  bool peerRefused() const { return peerRefused_; }
  const std::string& refusedCommonName() const { return refusedCn_; }
  // Subject CN of the verified peer certificate; "" when not verified.
  const std::string& peerCommonName() const { return peerCn_; }
  bool peerConfirmed() const { return confirmed_; }
  std::string version() const;
  std::string cipher() const;
  SSL* native() const { return ssl_; }

 private:
  static int verifyCallback(int preverifyOk, void* store);
  static void msgCallback(int writeP, int version, int contentType, const void* buf, std::size_t len, SSL* ssl,
                          void* arg);
  bool finishHandshake();
  friend struct TlsBufferBio;

  std::shared_ptr<const TlsContext> ctx_;
  PeerCheck acceptPeer_;
  SSL* ssl_ = nullptr;
  BIO* rbio_ = nullptr;  // network -> SSL: reads in_
  BIO* wbio_ = nullptr;  // SSL -> network: appends to out_
  std::string in_;       // ciphertext received, not yet read by OpenSSL from inPos_ on
  std::size_t inPos_ = 0;
  std::string out_;      // ciphertext for the network
  bool server_ = false;
  bool done_ = false;
  bool confirmed_ = true;
  bool peerSpoke_ = false;
  bool peerCheckRan_ = false;
  bool peerRefused_ = false;
  std::string refusedCn_, peerCn_, error_;
};

}  // namespace imp::net
