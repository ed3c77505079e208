#pragma once
// What the benchmark load clients (xmpp_load.cpp, sip_tls_load.cpp) share:
// fatal errors, the "--name value" argument loop, clocks, OpenSSL errors and
// the client TLS context. Header-only; each program sets bench::program
// first thing in main (the prefix of its error messages).
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <sys/resource.h>
#include <time.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

namespace bench {

inline const char* program = "bench";

[[noreturn]] inline void die(const std::string& what) {
  std::fprintf(stderr, "%s: %s\n", program, what.c_str());
  std::exit(2);
}

// A decimal number (strtod syntax), the whole string; dies naming the option.
inline double number(const char* s, const char* what) {
  char* end = nullptr;
  double v = std::strtod(s, &end);
  if (end == s || *end != '\0') die(std::string("bad number for ") + what + ": " + s);
  return v;
}

// "a,b,,c" -> a, b, c (empty items dropped).
inline std::vector<std::string> splitComma(const std::string& s) {
  std::vector<std::string> out;
  std::size_t i = 0;
  while (i <= s.size()) {
    std::size_t j = s.find(',', i);
    if (j == std::string::npos) j = s.size();
    if (j > i) out.push_back(s.substr(i, j - i));
    i = j + 1;
  }
  return out;
}

// The options of a command line, argv[first] on: switches ("--tls") and
// options with one value ("--port 5222"), in any order:
//
//   for (bench::Args a(argc, argv, 1, usage); a.next();) {
//     if (a.flag("--tls")) o.tls = true;
//     else if (a.is("--port")) o.port = a.integer();
//     else usage();
//   }
//
// An option without its value, like an unknown one, calls usage().
class Args {
 public:
  Args(int argc, char** argv, int first, void (*usage)()) : argc_(argc), argv_(argv), i_(first - 1), usage_(usage) {}
  // Moves to the next option; false after the last.
  bool next() {
    if (taken_) ++i_;  // the value of the previous option
    taken_ = false;
    return ++i_ < argc_;
  }
  const char* name() const { return argv_[i_]; }
  // A switch: no value follows.
  bool flag(std::string_view n) const { return n == argv_[i_]; }
  // An option with a value: there must be one.
  bool is(std::string_view n) const {
    if (n != argv_[i_]) return false;
    if (i_ + 1 >= argc_) usage_();
    return true;
  }
  const char* value() {
    if (i_ + 1 >= argc_) usage_();
    taken_ = true;
    return argv_[i_ + 1];
  }
  double num() { return number(value(), name()); }
  int integer() { return static_cast<int>(num()); }

 private:
  int argc_;
  char** argv_;
  int i_;
  void (*usage_)();
  bool taken_ = false;
};

inline std::int64_t nowNs() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

// This process's CPU time (user + system), seconds.
inline double cpuSeconds() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
         static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

// The thread's OpenSSL error queue as text (and emptied).
inline std::string sslError() {
  std::string out;
  unsigned long e;
  while ((e = ERR_get_error()) != 0) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    if (!out.empty()) out += "; ";
    out += buf;
  }
  return out.empty() ? std::string("no OpenSSL error") : out;
}

// The client side of TLS toward a private server on loopback.
struct ClientTls {
  int minVersion = TLS1_2_VERSION;
  int maxVersion = 0;         // 0: the highest OpenSSL knows
  bool noResumption = false;  // every connection a full handshake: no session cache, no tickets
  bool releaseBuffers = false;  // SSL_MODE_RELEASE_BUFFERS: idle connections hold no record buffers
  std::string caFile;         // empty: the server's certificate is not checked
  std::string verifyIp;       // with caFile: the address the certificate must name
};

inline SSL_CTX* clientContext(const ClientTls& t) {
  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  if (ctx == nullptr) die("SSL_CTX_new: " + sslError());
  SSL_CTX_set_min_proto_version(ctx, t.minVersion);
  if (t.maxVersion != 0) SSL_CTX_set_max_proto_version(ctx, t.maxVersion);
  if (t.noResumption) {
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
  }
  long mode = SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER;
  if (t.releaseBuffers) mode |= SSL_MODE_RELEASE_BUFFERS;
  SSL_CTX_set_mode(ctx, mode);
  if (!t.caFile.empty()) {
    if (SSL_CTX_load_verify_locations(ctx, t.caFile.c_str(), nullptr) != 1) die("--ca " + t.caFile + ": " + sslError());
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
    if (!t.verifyIp.empty()) {
      X509_VERIFY_PARAM* p = SSL_CTX_get0_param(ctx);
      if (X509_VERIFY_PARAM_set1_ip_asc(p, t.verifyIp.c_str()) != 1)
        die("X509_VERIFY_PARAM_set1_ip_asc: " + sslError());
    }
  } else {
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nullptr);
  }
  return ctx;
}

}  // namespace bench
