#include "imp/net/tls_session.h"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <algorithm>
#include <climits>
#include <stdexcept>

namespace imp::net {

namespace {
int sessionIndex() {
  static const int idx = SSL_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
  return idx;
}
}  // namespace

TlsSession::TlsSession(std::shared_ptr<const TlsContext> context, PeerCheck acceptPeer)
    : ctx_(std::move(context)), acceptPeer_(std::move(acceptPeer)) {
  if (!ctx_) throw std::invalid_argument("TlsSession needs a TLS context");
  server_ = ctx_->role() == TlsRole::Server;
  ssl_ = SSL_new(ctx_->native());
  rbio_ = BIO_new(BIO_s_mem());
  wbio_ = BIO_new(BIO_s_mem());
  if (ssl_ == nullptr || rbio_ == nullptr || wbio_ == nullptr) {
    SSL_free(ssl_);
    BIO_free(rbio_);
    BIO_free(wbio_);
    ssl_ = nullptr;
    throw std::runtime_error("out of memory creating the TLS session: " + takeOpenSslError());
  }
  BIO_set_mem_eof_return(rbio_, -1);  // empty = "try again", not EOF
  BIO_set_mem_eof_return(wbio_, -1);
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
  std::size_t off = 0;
  while (off < ciphertext.size()) {
    int chunk = static_cast<int>(std::min<std::size_t>(ciphertext.size() - off, INT_MAX));
    int n = BIO_write(rbio_, ciphertext.data() + off, chunk);
    if (n <= 0) return;  // a memory BIO only fails out of memory; the handshake/read then fails
    off += static_cast<std::size_t>(n);
  }
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

bool TlsSession::hasOutput() const { return BIO_ctrl_pending(wbio_) > 0; }

std::size_t TlsSession::takeOutput(std::string& out) {
  std::size_t total = 0;
  for (;;) {
    std::size_t pending = BIO_ctrl_pending(wbio_);
    if (pending == 0) return total;
    std::size_t old = out.size();
    out.resize(old + pending);
    int n = BIO_read(wbio_, out.data() + old, static_cast<int>(std::min<std::size_t>(pending, INT_MAX)));
    if (n <= 0) {
      out.resize(old);
      return total;
    }
    out.resize(old + static_cast<std::size_t>(n));
    total += static_cast<std::size_t>(n);
  }
}

std::string TlsSession::version() const { return SSL_get_version(ssl_); }
std::string TlsSession::cipher() const {
  const char* c = SSL_get_cipher_name(ssl_);
  return c != nullptr ? c : "";
}

}  // namespace imp::net
