#include "imp/net/tls_session.h"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <algorithm>
#include <climits>
#include <cstring>
#include <memory>
#include <stdexcept>

namespace imp::net {

namespace {
int sessionIndex() {
  static const int idx = SSL_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
  return idx;
}

// The heap capacity of a string (an empty one holds none).
std::size_t heapCapacity(const std::string& s) {
  static const std::size_t inlineCapacity = std::string().capacity();
  return s.capacity() > inlineCapacity ? s.capacity() : 0;
}
}  // namespace

// The BIO type of a session's two ends: reads take the session's in_,
// writes append to its out_. A memory BIO would do the same but keep its
// buffer at the size of the largest burst for the life of the connection;
// these are freed whenever they run empty.
struct TlsBufferBio {
  static TlsSession* session(BIO* b) { return static_cast<TlsSession*>(BIO_get_data(b)); }

  static int read(BIO* b, char* buf, int len) {
    BIO_clear_retry_flags(b);
    TlsSession* s = session(b);
    const std::size_t avail = s->in_.size() - s->inPos_;
    if (avail == 0 || len <= 0) {
      BIO_set_retry_read(b);  // empty means "more later", never EOF
      return -1;
    }
    const std::size_t n = std::min(avail, static_cast<std::size_t>(len));
    std::memcpy(buf, s->in_.data() + s->inPos_, n);
    s->inPos_ += n;
    if (s->inPos_ == s->in_.size()) {
      std::string().swap(s->in_);
      s->inPos_ = 0;
    }
    return static_cast<int>(n);
  }

  static int write(BIO* b, const char* buf, int len) {
    BIO_clear_retry_flags(b);
    if (len <= 0) return 0;
    session(b)->out_.append(buf, static_cast<std::size_t>(len));
    return len;
  }

  static long ctrl(BIO* b, int cmd, long, void*) {
    TlsSession* s = session(b);
    switch (cmd) {
      case BIO_CTRL_FLUSH: return 1;
      case BIO_CTRL_PENDING: return s ? static_cast<long>(s->in_.size() - s->inPos_) : 0;
      case BIO_CTRL_WPENDING: return s ? static_cast<long>(s->out_.size()) : 0;
      default: return 0;
    }
  }

  static int create(BIO* b) {
    BIO_set_init(b, 1);
    return 1;
  }

  static const BIO_METHOD* method() {
    struct Free {
      void operator()(BIO_METHOD* m) const { BIO_meth_free(m); }
    };
    static const std::unique_ptr<BIO_METHOD, Free> m = [] {
      BIO_METHOD* bm = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "imp TLS session buffer");
      if (bm == nullptr || BIO_meth_set_read(bm, read) != 1 || BIO_meth_set_write(bm, write) != 1 ||
          BIO_meth_set_ctrl(bm, ctrl) != 1 || BIO_meth_set_create(bm, create) != 1)
        throw std::runtime_error("out of memory creating the TLS BIO method: " + takeOpenSslError());
      return std::unique_ptr<BIO_METHOD, Free>(bm);
    }();
    return m.get();
  }
};

TlsSession::TlsSession(std::shared_ptr<const TlsContext> context, PeerCheck acceptPeer)
    : ctx_(std::move(context)), acceptPeer_(std::move(acceptPeer)) {
  if (!ctx_) throw std::invalid_argument("TlsSession needs a TLS context");
  server_ = ctx_->role() == TlsRole::Server;
  ssl_ = SSL_new(ctx_->native());
  rbio_ = BIO_new(TlsBufferBio::method());
  wbio_ = BIO_new(TlsBufferBio::method());
  if (ssl_ == nullptr || rbio_ == nullptr || wbio_ == nullptr) {
    SSL_free(ssl_);
    BIO_free(rbio_);
    BIO_free(wbio_);
    ssl_ = nullptr;
    throw std::runtime_error("out of memory creating the TLS session: " + takeOpenSslError());
  }
  BIO_set_data(rbio_, this);
  BIO_set_data(wbio_, this);
  SSL_set_bio(ssl_, rbio_, wbio_);  // ssl_ owns both BIOs now
  SSL_set_ex_data(ssl_, sessionIndex(), this);
  if (server_) {
    SSL_set_accept_state(ssl_);
    if (acceptPeer_ && (SSL_get_verify_mode(ssl_) & SSL_VERIFY_PEER) != 0)
      SSL_set_verify(ssl_, SSL_get_verify_mode(ssl_),
                     [](int ok, X509_STORE_CTX* store) { return verifyCallback(ok, store); });
  } else {
    SSL_set_connect_state(ssl_);
    SSL_set_msg_callback(ssl_, msgCallback);
    SSL_set_msg_callback_arg(ssl_, this);
  }
}

TlsSession::~TlsSession() {
  if (ssl_ != nullptr) SSL_free(ssl_);
}

int TlsSession::verifyCallback(int preverifyOk, void* storePtr) {
  auto* store = static_cast<X509_STORE_CTX*>(storePtr);
  auto* ssl = static_cast<SSL*>(X509_STORE_CTX_get_ex_data(store, SSL_get_ex_data_X509_STORE_CTX_idx()));
  auto* s = ssl != nullptr ? static_cast<TlsSession*>(SSL_get_ex_data(ssl, sessionIndex())) : nullptr;
  if (preverifyOk != 1 || s == nullptr || !s->acceptPeer_) return preverifyOk;
  if (X509_STORE_CTX_get_error_depth(store) != 0) return 1;
  std::string cn = certificateCommonName(X509_STORE_CTX_get_current_cert(store));
  s->peerCheckRan_ = true;
  bool ok = false;
  try {
    ok = s->acceptPeer_(cn);
  } catch (...) {
    ok = false;  // a throwing check must not unwind through OpenSSL
  }
  if (!ok) {
    s->peerRefused_ = true;
    s->refusedCn_ = cn;
    X509_STORE_CTX_set_error(store, X509_V_ERR_APPLICATION_VERIFICATION);
    return 0;
  }
  return 1;
}

void TlsSession::msgCallback(int writeP, int, int contentType, const void* buf, std::size_t len, SSL* ssl, void* arg) {
  if (writeP != 0 || arg == nullptr || !SSL_is_init_finished(ssl)) return;
  auto* s = static_cast<TlsSession*>(arg);
  // Any post-handshake handshake record (NewSessionTicket) or application
  // data proves the server accepted our Finished and certificate.
  if ((contentType == SSL3_RT_HANDSHAKE && len > 0 &&
       static_cast<const unsigned char*>(buf)[0] == SSL3_MT_NEWSESSION_TICKET) ||
      contentType == SSL3_RT_APPLICATION_DATA) {
    s->peerSpoke_ = true;
    if (s->done_) s->confirmed_ = true;
  }
}

void TlsSession::receive(std::string_view ciphertext) {
  if (inPos_ > 0 && inPos_ * 2 >= in_.size()) {  // keep what is unread at the front
    in_.erase(0, inPos_);
    inPos_ = 0;
  }
  in_.append(ciphertext);
}

TlsSession::Status TlsSession::handshake() {
  if (done_) return Status::Done;
  ERR_clear_error();
  int r = SSL_do_handshake(ssl_);
  if (r == 1) return finishHandshake() ? Status::Done : Status::Failed;
  int e = SSL_get_error(ssl_, r);
  if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) return Status::InProgress;
  std::string why = takeOpenSslError();
  long vr = SSL_get_verify_result(ssl_);
  if (vr != X509_V_OK && !peerRefused_) why += std::string(" (certificate: ") + X509_verify_cert_error_string(vr) + ")";
  if (peerRefused_) why = "peer certificate CN '" + refusedCn_ + "' is not an accepted peer subject";
  if (why.empty()) why = "handshake aborted";
  error_ = std::move(why);
  return Status::Failed;
}

bool TlsSession::finishHandshake() {
  bool verified = (SSL_get_verify_mode(ssl_) & SSL_VERIFY_PEER) != 0 && SSL_get0_peer_certificate(ssl_) != nullptr &&
                  SSL_get_verify_result(ssl_) == X509_V_OK;
  // TLS-2: only a verified certificate names the peer; CN, never SAN.
  peerCn_ = verified ? net::peerCommonName(ssl_) : std::string();
  if (server_ && acceptPeer_ && !peerCheckRan_) {
    bool ok = false;
    try {
      ok = acceptPeer_(peerCn_);
    } catch (...) {
      ok = false;
    }
    if (!ok) {
      peerRefused_ = true;
      refusedCn_ = peerCn_;
      error_ = peerCn_.empty() ? std::string("no verified client certificate")
                               : "peer certificate CN '" + peerCn_ + "' is not an accepted peer subject";
      return false;
    }
  }
  done_ = true;
  confirmed_ = server_ || SSL_version(ssl_) != TLS1_3_VERSION || peerSpoke_;
  return true;
}

bool TlsSession::write(std::string_view plain) {
  std::size_t off = 0;
  while (off < plain.size()) {
    int chunk = static_cast<int>(std::min<std::size_t>(plain.size() - off, INT_MAX));
    ERR_clear_error();
    int r = SSL_write(ssl_, plain.data() + off, chunk);
    if (r <= 0) {
      error_ = takeOpenSslError();
      if (error_.empty()) error_ = "TLS write failed";
      return false;
    }
    off += static_cast<std::size_t>(r);
  }
  return true;
}

TlsSession::ReadStatus TlsSession::read(char* buf, std::size_t cap, std::size_t* n) {
  ERR_clear_error();
  int r = SSL_read(ssl_, buf, static_cast<int>(std::min<std::size_t>(cap, INT_MAX)));
  if (r > 0) {
    *n = static_cast<std::size_t>(r);
    peerSpoke_ = true;
    confirmed_ = true;
    return ReadStatus::Data;
  }
  *n = 0;
  int e = SSL_get_error(ssl_, r);
  if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) return ReadStatus::WantMore;
  if (e == SSL_ERROR_ZERO_RETURN) return ReadStatus::PeerClosed;
  error_ = takeOpenSslError();
  if (error_.empty()) error_ = "TLS read failed";
  return ReadStatus::Failed;
}

void TlsSession::shutdown() {
  ERR_clear_error();
  SSL_shutdown(ssl_);
  ERR_clear_error();
}

std::size_t TlsSession::takeOutput(std::string& out) {
  const std::size_t n = out_.size();
  if (n == 0) return 0;
  if (out.empty())
    out.swap(out_);
  else
    out.append(out_);
  std::string().swap(out_);
  return n;
}

std::size_t TlsSession::bufferedBytes() const { return heapCapacity(in_) + heapCapacity(out_); }

std::string TlsSession::version() const { return SSL_get_version(ssl_); }
std::string TlsSession::cipher() const {
  const char* c = SSL_get_cipher_name(ssl_);
  return c != nullptr ? c : "";
}

}  // namespace imp::net
