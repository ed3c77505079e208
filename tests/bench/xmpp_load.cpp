// B-XMPP-CONN / B-XMPP-MSG load client: XMPP client connections over plain
// TCP or STARTTLS (OpenSSL), single-threaded epoll, non-blocking, one expat
// parser per connection. Not a test: run by tests/bench/xmpp_bench.sh (see
// tests/bench/README.md and docs/BENCHMARKS.md), the same way against impd,
// Prosody and ejabberd.
//
//   xmpp_load --port P --domain D --users N [--tls] [--first 1] [--prefix user]
//             [--password PW] [--sources A[,B...]] [--inflight K]
//             [--login-timeout S] [--max-seconds S] [--resource load]
//             [--initial W] [--provision C]
//
// Login: users PREFIX<first>..PREFIX<first+N-1> connect to 127.0.0.1:P, K
// logins in flight; each one: stream header (RFC 6120 §4), STARTTLS when
// --tls (RFC 6120 §5; TLS 1.2..1.3, no certificate check: a private peer on
// loopback), SASL PLAIN (RFC 4616; over plain TCP only where the server
// allows it), stream restart, resource binding (RFC 6120 §7), a session
// request when the server advertises a mandatory one (RFC 3921 §3, older
// servers), roster get (RFC 6121 §2.2, the items are counted), initial
// presence (RFC 6121 §4.2). Above about 28,000 connections per source
// address give several (--sources 127.0.0.1,127.0.0.2,...): each source has
// its own ephemeral port range toward the server.
//
// Then the client reads commands on stdin, one per line, and answers each
// with one line of key=value on stdout:
//   login               logs in the users --initial left out (all of them
//                       up to --users), answers with a second "login" line
//   stats               connections held, closed since login, stanzas seen
//   chat PAIRS RATE SECS
//                       the first 2*PAIRS logged-in users chat in pairs
//                       (user 2k with 2k+1, both directions, round robin),
//                       RATE messages/s in total for SECS seconds, paced
//                       every millisecond; each body carries its send time
//                       (CLOCK_MONOTONIC ns) and the receiver computes the
//                       latency; after the last send it waits up to 5 s for
//                       the outstanding ones (those still missing then
//                       are reported as undelivered). Reports sent, delivered,
//                       latency percentiles and the client's own CPU.
//   recv EXPECTED SECS  times messages others send to the logged-in users
//                       (bodies "t=<send ns> ...", as fed_load.cpp writes
//                       them) until EXPECTED arrived or SECS passed:
//                       delivered, rate over first..last arrival, latency
//                       percentiles, the client's own CPU.
//   quit                closes every stream (</stream:stream>) and exits.
// EOF on stdin is quit.
//
// --provision C instead makes the rosters (for a server without a bulk
// provisioning path): after login each user sends a subscription request
// to its ring neighbours (users i-C/2..i-1, i+1..i+C/2, mod N) and approves
// every request it receives, until every user has all of them with
// subscription "both" (roster pushes, RFC 6121 §2.1.6) or --login-timeout
// passes; requests that got no answer are asked again each time 3 s pass
// without progress; one "provision ..." line (with rounds= and resent=),
// exit status 0 when complete. --max-seconds (default 900) bounds the whole
// run: the client exits by itself after that, whatever it is doing.
#include <arpa/inet.h>
#include <expat.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cinttypes>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <set>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "bench_common.h"

namespace {

using bench::cpuSeconds;
using bench::die;
using bench::nowNs;

// ---------------------------------------------------------------- options

struct Options {
  std::string host = "127.0.0.1";
  int port = 0;
  std::string domain;
  int users = 0;
  int first = 1;
  std::string prefix = "user";
  std::string password = "bench-password";
  std::string resource = "load";
  bool tls = false;
  std::vector<std::string> sources;
  int inflight = 200;
  double loginTimeout = 120;
  double maxSeconds = 900;
  int initial = -1;  // --initial W: log in only W users first; "login" logs in the rest
  int provision = 0;  // --provision C: make the C-contact ring rosters by subscribing, then exit
};

void usage() {
  std::fprintf(stderr,
               "usage: xmpp_load --port P --domain D --users N [--tls] [--first F] [--prefix P]\n"
               "       [--password PW] [--resource R] [--sources A,B,...] [--inflight K]\n"
               "       [--login-timeout S] [--max-seconds S] [--host H] [--initial W] [--provision C]\n");
  std::exit(2);
}

Options parse(int argc, char** argv) {
  Options o;
  for (bench::Args a(argc, argv, 1, usage); a.next();) {
    if (a.flag("--tls")) o.tls = true;
    else if (a.is("--host")) o.host = a.value();
    else if (a.is("--port")) o.port = a.integer();
    else if (a.is("--domain")) o.domain = a.value();
    else if (a.is("--users")) o.users = a.integer();
    else if (a.is("--first")) o.first = a.integer();
    else if (a.is("--prefix")) o.prefix = a.value();
    else if (a.is("--password")) o.password = a.value();
    else if (a.is("--resource")) o.resource = a.value();
    else if (a.is("--sources")) o.sources = bench::splitComma(a.value());
    else if (a.is("--inflight")) o.inflight = a.integer();
    else if (a.is("--login-timeout")) o.loginTimeout = a.num();
    else if (a.is("--max-seconds")) o.maxSeconds = a.num();
    else if (a.is("--initial")) o.initial = a.integer();
    else if (a.is("--provision")) o.provision = a.integer();
    else usage();
  }
  if (o.port <= 0 || o.port > 65535 || o.domain.empty() || o.users <= 0 || o.inflight <= 0) usage();
  if (o.sources.empty()) o.sources.push_back("127.0.0.1");
  if (o.initial < 0 || o.initial > o.users) o.initial = o.users;
  return o;
}

std::string base64(std::string_view in) {
  std::string out(4 * ((in.size() + 2) / 3) + 1, '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(in.data()), static_cast<int>(in.size()));
  out.resize(static_cast<size_t>(n));
  return out;
}

// Escapes the characters that XML character data and attribute values may not
// hold literally (user names and passwords come from the command line).
std::string xmlEscape(std::string_view s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '\'': out += "&apos;"; break;
      case '"': out += "&quot;"; break;
      default: out += c;
    }
  }
  return out;
}

// Why an OpenSSL call failed, from its SSL_get_error code: the socket's
// errno (a reset, an EOF) or OpenSSL's error queue, which this empties.
// Failures are counted by this text, so it carries no addresses.
std::string sslFailure(int err) {
  if (err == SSL_ERROR_SYSCALL) {
    int e = errno;
    std::string queue = ERR_peek_error() ? "; " + bench::sslError() : std::string();
    return e ? std::string("socket: ") + std::strerror(e) + queue : "unexpected EOF from the server" + queue;
  }
  if (err == SSL_ERROR_SSL) return bench::sslError();
  ERR_clear_error();
  return "SSL_get_error " + std::to_string(err);
}

// ---------------------------------------------------------------- connections

constexpr std::string_view kStreamNs = "http://etherx.jabber.org/streams";
constexpr std::string_view kTlsNs = "urn:ietf:params:xml:ns:xmpp-tls";
constexpr std::string_view kSaslNs = "urn:ietf:params:xml:ns:xmpp-sasl";
constexpr std::string_view kBindNs = "urn:ietf:params:xml:ns:xmpp-bind";
constexpr std::string_view kSessionNs = "urn:ietf:params:xml:ns:xmpp-session";
constexpr std::string_view kRosterNs = "jabber:iq:roster";
constexpr std::string_view kPingNs = "urn:xmpp:ping";

enum class State {
  Connecting,
  Features1,   // waiting for the first features (STARTTLS or SASL)
  Proceed,     // <starttls/> sent
  Handshake,   // TLS handshake
  FeaturesTls, // stream restarted over TLS, waiting for SASL features
  Auth,        // <auth/> sent
  FeaturesAuth,// stream restarted after SASL, waiting for bind
  Bind,
  Session,
  Roster,
  Online,
  Closing,
  Dead
};

const char* stateName(State s) {
  switch (s) {
    case State::Connecting: return "connect";
    case State::Features1: return "features";
    case State::Proceed: return "starttls";
    case State::Handshake: return "tls-handshake";
    case State::FeaturesTls: return "features-after-tls";
    case State::Auth: return "sasl";
    case State::FeaturesAuth: return "features-after-sasl";
    case State::Bind: return "bind";
    case State::Session: return "session";
    case State::Roster: return "roster";
    case State::Online: return "online";
    case State::Closing: return "closing";
    case State::Dead: return "dead";
  }
  return "?";
}

struct Client;

// What the XML handlers collect about the current top-level element
// (children of <stream:stream>, depth 1).
struct Element {
  std::string name;  // "namespace local" (expat namespace mode, separator ' ')
  std::string type, id;
  bool starttls = false, plain = false, bind = false, sessionRequired = false, sessionSeen = false;
  bool ping = false, rosterQuery = false, hasBody = false;
  int rosterItems = 0;
  std::vector<std::string> bothJids;  // roster items with subscription "both" (result or push)
  std::string body, jid, from;
  bool inBody = false, inJid = false, inSession = false;
};

struct Conn {
  int fd = -1;
  int index = 0;  // user index (0-based, user PREFIX<first+index>)
  State state = State::Connecting;
  SSL* ssl = nullptr;
  XML_Parser parser = nullptr;
  int depth = 0;
  bool restart = false;  // the parser must be reset before the next bytes
  Element el;
  std::string out;  // bytes waiting to be written (plain) or to go into SSL_write
  bool wantWrite = false;
  std::string boundJid;
  int rosterItems = -1;
  std::set<std::string> both;  // --provision: contacts with subscription "both"
  int64_t startedNs = 0;
  uint64_t received = 0;
  Client* client = nullptr;
};

struct Counters {
  uint64_t stanzasIn = 0, messagesIn = 0, presencesIn = 0, iqsIn = 0, streamErrors = 0;
};

struct Client {
  Options opt;
  int ep = -1;
  SSL_CTX* ctx = nullptr;
  std::vector<std::unique_ptr<Conn>> conns;
  std::vector<Conn*> online;  // in login order
  std::map<std::string, int> failures;  // "state: reason" -> count
  int loginPending = 0, nextIndex = 0, loginOk = 0, loginFailed = 0, loginUpTo = 0;
  uint64_t closedAfterLogin = 0;
  size_t bothCount = 0;  // --provision: the sum of every connection's `both`
  Counters counters;
  // chat
  bool chatting = false;
  std::vector<uint32_t> latUs;
  uint64_t chatDelivered = 0, chatForeign = 0, chatErrors = 0;
  std::vector<sockaddr_in> sources;
  size_t nextSource = 0;
  sockaddr_in server{};
  int64_t deadlineNs = 0;

  void fail(Conn* c, const std::string& why);
  void send(Conn* c, std::string_view data);
  void flush(Conn* c);
  void onReadable(Conn* c);
  void onWritable(Conn* c);
  void feed(Conn* c, const char* data, size_t n);
  void startLogin();
  void fillLogins();
  void topLevel(Conn* c);
  void startHeader(Conn* c);
  void resetParser(Conn* c);
  void closeConn(Conn* c);
  void updateEvents(Conn* c);
  void addBoth(Conn* c, const std::vector<std::string>& jids) {
    size_t before = c->both.size();
    c->both.insert(jids.begin(), jids.end());
    bothCount += c->both.size() - before;
  }
};

// ---------------------------------------------------------------- XML

void XMLCALL onStart(void* ud, const XML_Char* name, const XML_Char** atts) {
  auto* c = static_cast<Conn*>(ud);
  ++c->depth;
  std::string_view n(name);
  Element& e = c->el;
  if (c->depth == 1) {
    // <stream:stream>: the stream header. Nothing to check beyond the name.
    if (n != std::string(kStreamNs) + " stream") c->client->fail(c, "stream root is not stream:stream");
    return;
  }
  if (c->depth == 2) {
    e = Element{};
    e.name = n;
    for (int i = 0; atts[i]; i += 2) {
      std::string_view k(atts[i]);
      if (k == "type") e.type = atts[i + 1];
      else if (k == "id") e.id = atts[i + 1];
      else if (k == "from") e.from = atts[i + 1];
    }
    return;
  }
  if (c->depth == 3) {
    if (n == std::string(kTlsNs) + " starttls") e.starttls = true;
    else if (n == std::string(kBindNs) + " bind") e.bind = true;
    else if (n == std::string(kSessionNs) + " session") {
      e.sessionSeen = true;
      e.sessionRequired = true;
      e.inSession = true;
    } else if (n == std::string(kRosterNs) + " query") e.rosterQuery = true;
    else if (n == std::string(kPingNs) + " ping") e.ping = true;
    else if (n == "jabber:client body") {
      e.inBody = true;
      e.hasBody = true;
    }
    return;
  }
  if (c->depth == 4) {
    if (e.rosterQuery && n == std::string(kRosterNs) + " item") {
      ++e.rosterItems;
      const char* jid = nullptr;
      bool both = false;
      for (int i = 0; atts[i]; i += 2) {
        if (std::string_view(atts[i]) == "jid") jid = atts[i + 1];
        else if (std::string_view(atts[i]) == "subscription") both = std::string_view(atts[i + 1]) == "both";
      }
      if (jid && both) e.bothJids.emplace_back(jid);
    }
    if (n == std::string(kBindNs) + " jid") e.inJid = true;
    // RFC 6121 errata / draft-cridland-xmpp-session: <optional/> inside <session/>.
    if (e.inSession && n == std::string(kSessionNs) + " optional") e.sessionRequired = false;
    if (n == std::string(kSaslNs) + " mechanism") {
      // The mechanism name is collected in e.jid (no <jid/> in features).
      e.jid.clear();
      e.inJid = true;
    }
  }
}

void XMLCALL onEnd(void* ud, const XML_Char* name) {
  auto* c = static_cast<Conn*>(ud);
  std::string_view n(name);
  Element& e = c->el;
  if (c->depth == 4 && n == std::string(kSaslNs) + " mechanism") {
    if (e.jid == "PLAIN") e.plain = true;
    e.inJid = false;
  } else if (c->depth == 4 && n == std::string(kBindNs) + " jid") {
    e.inJid = false;
  } else if (c->depth == 3) {
    e.inBody = false;
    e.inSession = false;
  }
  --c->depth;
  if (c->depth == 1) c->client->topLevel(c);
  if (c->depth == 0) {
    // </stream:stream> from the server.
    c->client->fail(c, "server closed the stream");
  }
}

void XMLCALL onText(void* ud, const XML_Char* s, int len) {
  auto* c = static_cast<Conn*>(ud);
  Element& e = c->el;
  if (e.inJid) e.jid.append(s, static_cast<size_t>(len));
  else if (e.inBody) e.body.append(s, static_cast<size_t>(len));
}

// ---------------------------------------------------------------- client

void Client::resetParser(Conn* c) {
  if (c->parser) XML_ParserFree(c->parser);
  c->parser = XML_ParserCreateNS("UTF-8", ' ');
  if (!c->parser) die("out of memory (expat)");
  XML_SetUserData(c->parser, c);
  XML_SetElementHandler(c->parser, onStart, onEnd);
  XML_SetCharacterDataHandler(c->parser, onText);
  c->depth = 0;
  c->restart = false;
}

void Client::startHeader(Conn* c) {
  resetParser(c);
  send(c, "<?xml version='1.0'?><stream:stream to='" + xmlEscape(opt.domain) +
              "' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>");
}

void Client::updateEvents(Conn* c) {
  epoll_event ev{};
  ev.events = EPOLLIN | (c->wantWrite ? EPOLLOUT : 0u);
  ev.data.ptr = c;
  if (epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev) != 0) die(std::string("epoll_ctl: ") + std::strerror(errno));
}

void Client::closeConn(Conn* c) {
  if (c->state == State::Dead) return;
  bool wasOnline = c->state == State::Online || c->state == State::Closing;
  if (c->ssl) {
    SSL_free(c->ssl);
    c->ssl = nullptr;
  }
  if (c->fd >= 0) {
    epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, nullptr);
    ::close(c->fd);
    c->fd = -1;
  }
  if (c->parser) {
    XML_ParserFree(c->parser);
    c->parser = nullptr;
  }
  if (wasOnline) {
    auto it = std::find(online.begin(), online.end(), c);
    if (it != online.end()) online.erase(it);
  }
  c->state = State::Dead;
  c->out.clear();
}

void Client::fail(Conn* c, const std::string& why) {
  if (c->state == State::Dead) return;
  if (c->state == State::Online) {
    ++closedAfterLogin;
    ++failures[std::string("after login: ") + why];
  } else if (c->state != State::Closing) {
    ++failures[std::string(stateName(c->state)) + ": " + why];
    ++loginFailed;
    --loginPending;
  }
  closeConn(c);
}

void Client::send(Conn* c, std::string_view data) {
  if (c->state == State::Dead) return;
  c->out.append(data);
  flush(c);
}

void Client::flush(Conn* c) {
  while (!c->out.empty() && c->state != State::Dead) {
    if (c->ssl && c->state != State::Handshake) {
      int n = SSL_write(c->ssl, c->out.data(), static_cast<int>(std::min<size_t>(c->out.size(), 1 << 20)));
      if (n > 0) {
        c->out.erase(0, static_cast<size_t>(n));
        continue;
      }
      int err = SSL_get_error(c->ssl, n);
      if (err == SSL_ERROR_WANT_WRITE || err == SSL_ERROR_WANT_READ) break;
      fail(c, "SSL_write failed: " + sslFailure(err));
      return;
    }
    if (c->ssl) break;  // handshake in progress: written after it
    ssize_t n = ::send(c->fd, c->out.data(), c->out.size(), MSG_NOSIGNAL);
    if (n > 0) {
      c->out.erase(0, static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
    if (n < 0 && errno == EINTR) continue;
    fail(c, std::string("send: ") + std::strerror(errno));
    return;
  }
  if (c->state == State::Dead) return;
  bool want = !c->out.empty();
  if (want != c->wantWrite) {
    c->wantWrite = want;
    updateEvents(c);
  }
}

void Client::topLevel(Conn* c) {
  Element& e = c->el;
  ++counters.stanzasIn;
  const std::string& n = e.name;
  if (n == std::string(kStreamNs) + " error") {
    ++counters.streamErrors;
    fail(c, "stream error");
    return;
  }
  switch (c->state) {
    case State::Features1:
    case State::FeaturesTls:
      if (n != std::string(kStreamNs) + " features") return fail(c, "expected stream features, got " + n);
      if (c->state == State::Features1 && opt.tls) {
        if (!e.starttls) return fail(c, "server offers no STARTTLS");
        send(c, "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
        c->state = State::Proceed;
        return;
      }
      if (!e.plain) return fail(c, "server offers no SASL PLAIN");
      {
        std::string user = opt.prefix + std::to_string(opt.first + c->index);
        std::string creds = std::string(1, '\0') + user + std::string(1, '\0') + opt.password;
        send(c, "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>" + base64(creds) + "</auth>");
      }
      c->state = State::Auth;
      return;
    case State::Proceed:
      if (n != std::string(kTlsNs) + " proceed") return fail(c, "STARTTLS refused (" + n + ")");
      c->ssl = SSL_new(ctx);
      if (!c->ssl) return fail(c, "SSL_new failed");
      SSL_set_fd(c->ssl, c->fd);
      SSL_set_tlsext_host_name(c->ssl, opt.domain.c_str());
      SSL_set_connect_state(c->ssl);
      c->state = State::Handshake;
      c->restart = true;  // nothing may follow <proceed/> in the clear
      return;
    case State::Auth:
      if (n == std::string(kSaslNs) + " success") {
        c->state = State::FeaturesAuth;
        c->restart = true;
        return;
      }
      return fail(c, "SASL PLAIN refused (" + n + ")");
    case State::FeaturesAuth:
      if (n != std::string(kStreamNs) + " features") return fail(c, "expected stream features, got " + n);
      if (!e.bind) return fail(c, "server offers no resource binding");
      c->state = State::Bind;
      c->rosterItems = e.sessionSeen && e.sessionRequired ? -2 : -1;  // -2: a session request follows bind
      send(c, "<iq type='set' id='bind1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>" +
                  xmlEscape(opt.resource) + "</resource></bind></iq>");
      return;
    case State::Bind:
      if (n != "jabber:client iq" || e.id != "bind1") return;  // e.g. an early presence: ignored
      if (e.type != "result" || e.jid.empty()) return fail(c, "resource binding failed");
      c->boundJid = e.jid;
      if (c->rosterItems == -2) {
        c->rosterItems = -1;
        send(c, "<iq type='set' id='sess1'><session xmlns='urn:ietf:params:xml:ns:xmpp-session'/></iq>");
        c->state = State::Session;
        return;
      }
      send(c, "<iq type='get' id='roster1'><query xmlns='jabber:iq:roster'/></iq>");
      c->state = State::Roster;
      return;
    case State::Session:
      if (n != "jabber:client iq" || e.id != "sess1") return;
      if (e.type != "result") return fail(c, "session establishment failed");
      send(c, "<iq type='get' id='roster1'><query xmlns='jabber:iq:roster'/></iq>");
      c->state = State::Roster;
      return;
    case State::Roster:
      if (n != "jabber:client iq" || e.id != "roster1") return;
      if (e.type != "result") return fail(c, "roster get failed");
      c->rosterItems = e.rosterItems;
      addBoth(c, e.bothJids);
      send(c, "<presence/>");
      c->state = State::Online;
      ++loginOk;
      --loginPending;
      online.push_back(c);
      return;
    case State::Online:
    case State::Closing:
      if (n == "jabber:client message") {
        ++counters.messagesIn;
        if (!e.hasBody) return;  // e.g. chat states: counted, not timed
        if (e.type == "error") {
          ++chatErrors;  // a bounce (RFC 6120 §8.3): not a delivery
          return;
        }
        ++c->received;
        // body "t=<send time ns> ..." written by this client
        if (e.body.rfind("t=", 0) == 0) {
          int64_t sent = std::strtoll(e.body.c_str() + 2, nullptr, 10);
          int64_t lat = nowNs() - sent;
          if (chatting && lat >= 0) {
            latUs.push_back(static_cast<uint32_t>(std::min<int64_t>(lat / 1000, UINT32_MAX)));
            ++chatDelivered;
          } else {
            ++chatForeign;
          }
        } else {
          ++chatForeign;
        }
      } else if (n == "jabber:client presence") {
        ++counters.presencesIn;
        // --provision: approve every subscription request (RFC 6121 §3.1.4).
        if (opt.provision > 0 && e.type == "subscribe" && !e.from.empty())
          send(c, "<presence to='" + xmlEscape(e.from) + "' type='subscribed'/>");
      } else if (n == "jabber:client iq") {
        ++counters.iqsIn;
        if (e.rosterQuery && e.type == "set") addBoth(c, e.bothJids);
        if (e.type == "get" || e.type == "set") {
          // XEP-0199 §4: answer a server ping; anything else is not served (RFC 6120 §8.3.3.19).
          std::string to = e.from.empty() ? std::string() : " to='" + xmlEscape(e.from) + "'";
          if (e.ping || (e.rosterQuery && e.type == "set"))  // RFC 6121 §2.1.6: roster pushes are acknowledged
            send(c, "<iq type='result' id='" + xmlEscape(e.id) + "'" + to + "/>");
          else
            send(c, "<iq type='error' id='" + xmlEscape(e.id) + "'" + to +
                        "><error type='cancel'><service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>"
                        "</error></iq>");
        }
      }
      return;
    default:
      return fail(c, "unexpected " + n);
  }
}

void Client::feed(Conn* c, const char* data, size_t n) {
  if (c->restart) return fail(c, "data after a stream restart point");
  if (XML_Parse(c->parser, data, static_cast<int>(n), XML_FALSE) == XML_STATUS_ERROR) {
    if (c->state == State::Dead) return;
    return fail(c, std::string("XML: ") + XML_ErrorString(XML_GetErrorCode(c->parser)));
  }
}

void Client::onReadable(Conn* c) {
  char buf[16384];
  // Plain TCP: at most 16 reads, then the other connections' turn (epoll is
  // level-triggered). TLS: until OpenSSL wants more bytes, since records it
  // has already decrypted and buffered do not show on the socket.
  for (int rounds = 0; (c->ssl || rounds < 16) && c->state != State::Dead; ++rounds) {
    if (c->state == State::Handshake) {
      int r = SSL_do_handshake(c->ssl);
      if (r == 1) {
        c->state = State::FeaturesTls;
        startHeader(c);
        flush(c);
        continue;
      }
      int err = SSL_get_error(c->ssl, r);
      if (err == SSL_ERROR_WANT_READ) {
        if (c->wantWrite) {
          c->wantWrite = false;
          updateEvents(c);
        }
        return;
      }
      if (err == SSL_ERROR_WANT_WRITE) {
        if (!c->wantWrite) {
          c->wantWrite = true;
          updateEvents(c);
        }
        return;
      }
      return fail(c, "TLS handshake failed: " + sslFailure(err));
    }
    ssize_t n;
    if (c->ssl) {
      int r = SSL_read(c->ssl, buf, sizeof buf);
      if (r <= 0) {
        int err = SSL_get_error(c->ssl, r);
        if (err == SSL_ERROR_WANT_READ) return;
        if (err == SSL_ERROR_WANT_WRITE) {
          if (!c->wantWrite) {
            c->wantWrite = true;
            updateEvents(c);
          }
          return;
        }
        return fail(c, err == SSL_ERROR_ZERO_RETURN ? "TLS close_notify from the server" : "TLS read failed: " + sslFailure(err));
      }
      n = r;
    } else {
      n = ::recv(c->fd, buf, sizeof buf, 0);
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return fail(c, std::string("recv: ") + std::strerror(errno));
      if (n == 0) return fail(c, "connection closed by the server");
    }
    feed(c, buf, static_cast<size_t>(n));
    if (c->state == State::Dead) return;
    if (c->restart) {
      // After <proceed/> the TLS handshake starts; after <success/> a new
      // stream header (RFC 6120 §5.4.3.3, §6.4.6).
      if (c->state == State::Handshake) {
        c->restart = false;
        continue;
      }
      if (c->state == State::FeaturesAuth) {
        startHeader(c);
        continue;
      }
    }
  }
}

void Client::onWritable(Conn* c) {
  if (c->state == State::Connecting) {
    int err = 0;
    socklen_t len = sizeof err;
    getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0) return fail(c, std::string("connect: ") + std::strerror(err));
    c->state = State::Features1;
    startHeader(c);
    if (c->out.empty() && c->wantWrite) {
      c->wantWrite = false;
      updateEvents(c);
    }
    return;
  }
  if (c->state == State::Handshake) return onReadable(c);
  if (c->ssl && c->out.empty()) {
    // SSL_read wanted to write (renegotiation / key update): read again.
    c->wantWrite = false;
    updateEvents(c);
    return onReadable(c);
  }
  flush(c);
}

void Client::startLogin() {
  auto c = std::make_unique<Conn>();
  c->index = nextIndex++;
  c->client = this;
  c->startedNs = nowNs();
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) die(std::string("socket: ") + std::strerror(errno) + " (raise nofile: ulimit -n)");
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  // Let connect() pick the port per (source, destination), not bind().
  setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
  const sockaddr_in& src = sources[nextSource++ % sources.size()];
  if (::bind(fd, reinterpret_cast<const sockaddr*>(&src), sizeof src) != 0)
    die(std::string("bind to a source address: ") + std::strerror(errno));
  c->fd = fd;
  ++loginPending;
  Conn* raw = c.get();
  conns.push_back(std::move(c));
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLOUT;
  ev.data.ptr = raw;
  raw->wantWrite = true;
  if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) != 0) die(std::string("epoll_ctl: ") + std::strerror(errno));
  int r = ::connect(fd, reinterpret_cast<const sockaddr*>(&server), sizeof server);
  if (r != 0 && errno != EINPROGRESS) fail(raw, std::string("connect: ") + std::strerror(errno));
}

void Client::fillLogins() {
  while (nextIndex < loginUpTo && loginPending < opt.inflight) startLogin();
}

volatile sig_atomic_t gStop = 0;
void onSignal(int) { gStop = 1; }

// Runs the loop until pred() holds, the deadline passes or a signal arrives;
// tick() is called at least every millisecond (timerfd).
template <class Pred, class Tick>
void runUntil(Client& cl, int tfd, int64_t untilNs, Pred pred, Tick tick) {
  epoll_event evs[512];
  while (!gStop && !pred() && nowNs() < untilNs && nowNs() < cl.deadlineNs) {
    int n = epoll_wait(cl.ep, evs, 512, 100);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) die(std::string("epoll_wait: ") + std::strerror(errno));
    for (int i = 0; i < n; ++i) {
      if (evs[i].data.ptr == nullptr) {
        uint64_t exp;
        if (::read(tfd, &exp, sizeof exp) < 0 && errno != EAGAIN) die("timerfd read");
        tick();
        continue;
      }
      auto* c = static_cast<Conn*>(evs[i].data.ptr);
      if (c->state == State::Dead) continue;
      if (evs[i].events & (EPOLLERR | EPOLLHUP)) {
        if (c->state == State::Connecting) {
          cl.onWritable(c);  // reads SO_ERROR
          continue;
        }
      }
      if (evs[i].events & EPOLLOUT) cl.onWritable(c);
      if (c->state != State::Dead && (evs[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP))) cl.onReadable(c);
    }
  }
}

uint32_t percentile(std::vector<uint32_t>& v, double q) {
  if (v.empty()) return 0;
  size_t k = static_cast<size_t>(std::ceil(q * double(v.size())));
  if (k > 0) --k;
  return v[std::min(k, v.size() - 1)];
}

}  // namespace

int main(int argc, char** argv) {
  bench::program = "xmpp_load";
  Client cl;
  cl.opt = parse(argc, argv);
  const Options& o = cl.opt;
  signal(SIGPIPE, SIG_IGN);
  signal(SIGTERM, onSignal);
  signal(SIGINT, onSignal);
  rlimit rl{};
  getrlimit(RLIMIT_NOFILE, &rl);
  rl.rlim_cur = rl.rlim_max;
  setrlimit(RLIMIT_NOFILE, &rl);
  if (rl.rlim_cur < rlim_t(o.users) + 64)
    die("nofile limit " + std::to_string(rl.rlim_cur) + " is below --users + 64: raise it (ulimit -n)");

  cl.deadlineNs = nowNs() + static_cast<int64_t>(o.maxSeconds * 1e9);
  cl.server.sin_family = AF_INET;
  cl.server.sin_port = htons(static_cast<uint16_t>(o.port));
  if (inet_pton(AF_INET, o.host.c_str(), &cl.server.sin_addr) != 1) die("bad --host " + o.host);
  for (const auto& s : o.sources) {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    if (inet_pton(AF_INET, s.c_str(), &a.sin_addr) != 1) die("bad source address " + s);
    cl.sources.push_back(a);
  }
  // TLS 1.2..1.3, no certificate check (a private server on loopback).
  bench::ClientTls tls;
  tls.releaseBuffers = true;
  cl.ctx = bench::clientContext(tls);

  cl.ep = epoll_create1(EPOLL_CLOEXEC);
  int tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
  if (cl.ep < 0 || tfd < 0) die("epoll/timerfd");
  itimerspec its{};
  its.it_interval.tv_nsec = 1000000;
  its.it_value.tv_nsec = 1000000;
  timerfd_settime(tfd, 0, &its, nullptr);
  epoll_event tev{};
  tev.events = EPOLLIN;
  tev.data.ptr = nullptr;
  epoll_ctl(cl.ep, EPOLL_CTL_ADD, tfd, &tev);
  int stdinFlags = fcntl(0, F_GETFL);
  fcntl(0, F_SETFL, stdinFlags | O_NONBLOCK);

  // ------------------------------------------------------------ login
  // Logs in users up to `upTo` (user indexes nextIndex..upTo-1) and prints
  // one "login ..." line about this batch.
  auto loginBatch = [&](int upTo) {
    int64_t t0 = nowNs();
    double cpu0 = cpuSeconds();
    int ok0 = cl.loginOk, failed0 = cl.loginFailed, first = cl.nextIndex;
    size_t online0 = cl.online.size();
    cl.loginUpTo = upTo;
    int64_t loginDeadline = t0 + static_cast<int64_t>(o.loginTimeout * 1e9);
    cl.fillLogins();
    runUntil(
        cl, tfd, loginDeadline, [&] { return cl.nextIndex >= upTo && cl.loginPending == 0; },
        [&] { cl.fillLogins(); });
    double loginSecs = double(nowNs() - t0) / 1e9;
    int timedOut = 0;
    for (auto& c : cl.conns)
      if (c->state != State::Online && c->state != State::Dead && c->state != State::Closing) {
        cl.fail(c.get(), "login timeout");
        ++timedOut;
      }
    long long rosterSum = 0;
    int rosterMin = -1, rosterMax = -1;
    for (size_t i = online0; i < cl.online.size(); ++i) {
      Conn* c = cl.online[i];
      rosterSum += c->rosterItems;
      rosterMin = rosterMin < 0 ? c->rosterItems : std::min(rosterMin, c->rosterItems);
      rosterMax = std::max(rosterMax, c->rosterItems);
    }
    int ok = cl.loginOk - ok0;
    std::printf("login users=%d first=%d ok=%d failed=%d timed_out=%d held=%zu secs=%.2f logins_per_s=%.0f "
                "client_cpu_s=%.2f roster_items_min=%d roster_items_max=%d roster_items_avg=%.1f tls=%d sources=%zu\n",
                upTo - first, o.first + first, ok, cl.loginFailed - failed0, timedOut, cl.online.size(), loginSecs,
                ok / std::max(loginSecs, 1e-9), cpuSeconds() - cpu0, rosterMin, rosterMax,
                ok > 0 ? double(rosterSum) / ok : 0.0, o.tls ? 1 : 0, o.sources.size());
    for (const auto& [why, n] : cl.failures) std::fprintf(stderr, "xmpp_load: %d x %s\n", n, why.c_str());
    cl.failures.clear();
    std::fflush(stdout);
    std::fflush(stderr);
  };
  loginBatch(o.initial);

  // ------------------------------------------------------------ provision
  if (o.provision > 0) {
    // Each user asks every ring neighbour for a subscription (RFC 6121
    // §3.1.1) and approves every request it gets; done when every online
    // user has all its neighbours with subscription "both". A request the
    // server lost (no roster push ever comes) is asked again: after 3 s in
    // which no user's roster gained a "both" contact, every missing
    // neighbour is requested again (a subscribe to a contact already
    // subscribed to is answered by the server, RFC 6121 §3.1.3); counted
    // in "resent" and "rounds".
    int half = std::min(o.provision, o.users - 1) / 2;
    int64_t p0 = nowNs();
    uint64_t resent = 0;
    int rounds = 0;
    auto request = [&] {
      ++rounds;
      for (Conn* c : cl.online)
        for (int d = -half; d <= half; ++d) {
          if (d == 0) continue;
          int j = ((c->index + d) % o.users + o.users) % o.users;
          std::string jid = o.prefix + std::to_string(o.first + j) + "@" + o.domain;
          if (c->both.count(jid)) continue;
          if (rounds > 1) ++resent;
          cl.send(c, "<presence to='" + xmlEscape(jid) + "' type='subscribe'/>");
        }
    };
    auto complete = [&] {
      for (Conn* c : cl.online)
        if (c->both.size() < size_t(2 * half)) return false;
      return true;
    };
    const size_t target = cl.online.size() * size_t(2 * half);
    const int64_t provisionDeadline = nowNs() + static_cast<int64_t>(o.loginTimeout * 1e9);
    request();
    while (!gStop && nowNs() < provisionDeadline && cl.bothCount < target) {
      size_t last = cl.bothCount;
      int64_t lastProgress = nowNs();
      runUntil(cl, tfd, provisionDeadline,
               [&] {
                 if (cl.bothCount >= target) return true;
                 if (cl.bothCount != last) {
                   last = cl.bothCount;
                   lastProgress = nowNs();
                 }
                 return nowNs() - lastProgress > 3000000000LL;
               },
               [] {});
      if (cl.bothCount < target && nowNs() < provisionDeadline) request();
    }
    size_t bothMin = SIZE_MAX, bothSum = 0;
    for (Conn* c : cl.online) {
      bothMin = std::min(bothMin, c->both.size());
      bothSum += c->both.size();
    }
    bool ok = complete() && int(cl.online.size()) == o.users;
    std::printf("provision users=%d online=%zu contacts=%d both_min=%zu both_avg=%.1f secs=%.2f complete=%d rounds=%d "
                "resent=%" PRIu64 "\n",
                o.users, cl.online.size(), 2 * half, cl.online.empty() ? 0 : bothMin,
                cl.online.empty() ? 0.0 : double(bothSum) / double(cl.online.size()), double(nowNs() - p0) / 1e9,
                ok ? 1 : 0, rounds, resent);
    std::fflush(stdout);
    for (Conn* c : cl.online) cl.send(c, "</stream:stream>");
    cl.online.clear();
    for (auto& c : cl.conns) cl.closeConn(c.get());
    SSL_CTX_free(cl.ctx);
    return ok ? 0 : 1;
  }

  // ------------------------------------------------------------ commands
  std::string line;
  bool quit = false;
  while (!quit && !gStop && nowNs() < cl.deadlineNs) {
    // Serve the connections (pings, presence) while waiting for a command.
    bool haveLine = false;
    runUntil(
        cl, tfd, INT64_MAX,
        [&] {
          char ch;
          for (;;) {
            ssize_t r = ::read(0, &ch, 1);
            if (r == 1) {
              if (ch == '\n') return haveLine = true;
              line += ch;
              continue;
            }
            if (r == 0) {
              line = "quit";
              return haveLine = true;
            }
            return false;
          }
        },
        [] {});
    if (!haveLine) break;
    std::string cmd = line;
    line.clear();
    if (cmd == "quit") {
      quit = true;
      break;
    }
    if (cmd == "login") {
      loginBatch(o.users);
      continue;
    }
    if (cmd == "stats") {
      std::printf("stats held=%zu closed_after_login=%" PRIu64 " stanzas_in=%" PRIu64 " presences_in=%" PRIu64
                  " messages_in=%" PRIu64 " stream_errors=%" PRIu64 "\n",
                  cl.online.size(), cl.closedAfterLogin, cl.counters.stanzasIn, cl.counters.presencesIn,
                  cl.counters.messagesIn, cl.counters.streamErrors);
      std::fflush(stdout);
      continue;
    }
    uint64_t expected = 0;
    double recvSecs = 0;
    if (std::sscanf(cmd.c_str(), "recv %" SCNu64 " %lf", &expected, &recvSecs) == 2 && expected > 0 && recvSecs > 0) {
      // Messages sent by someone else (tests/bench/fed_load.cpp) with the
      // same "t=<send ns>" body: counted and timed until `expected` have
      // arrived or SECS pass.
      cl.latUs.clear();
      cl.latUs.reserve(expected);
      cl.chatDelivered = 0;
      cl.chatForeign = 0;
      cl.chatErrors = 0;
      cl.chatting = true;
      uint64_t closed0 = cl.closedAfterLogin;
      double ccpu0 = cpuSeconds();
      int64_t r0 = nowNs(), first = 0, last = 0;
      uint64_t seen = 0;
      runUntil(cl, tfd, r0 + static_cast<int64_t>(recvSecs * 1e9), [&] { return cl.chatDelivered >= expected; },
               [&] {
                 if (cl.chatDelivered != seen) {
                   if (seen == 0) first = nowNs();
                   last = nowNs();
                   seen = cl.chatDelivered;
                 }
               });
      if (cl.chatDelivered != seen) last = nowNs();
      double ccpu = cpuSeconds() - ccpu0;
      double wall = double(nowNs() - r0) / 1e9;
      cl.chatting = false;
      std::sort(cl.latUs.begin(), cl.latUs.end());
      double span = first && last > first ? double(last - first) / 1e9 : 0.0;
      std::printf("recv expected=%" PRIu64 " delivered=%" PRIu64 " missing=%" PRIu64 " span_secs=%.2f rate=%.0f "
                  "p50_ms=%.3f p99_ms=%.3f p999_ms=%.3f max_ms=%.3f client_cpu_s=%.2f client_cpu_pct=%.0f "
                  "closed=%" PRIu64 " unexpected=%" PRIu64 " errors=%" PRIu64 "\n",
                  expected, cl.chatDelivered, expected - std::min(expected, cl.chatDelivered), span,
                  span > 0 ? double(cl.chatDelivered) / span : 0.0, percentile(cl.latUs, 0.5) / 1000.0,
                  percentile(cl.latUs, 0.99) / 1000.0, percentile(cl.latUs, 0.999) / 1000.0,
                  cl.latUs.empty() ? 0.0 : cl.latUs.back() / 1000.0, ccpu, 100.0 * ccpu / std::max(wall, 1e-9),
                  cl.closedAfterLogin - closed0, cl.chatForeign, cl.chatErrors);
      std::fflush(stdout);
      continue;
    }
    int pairs = 0;
    double rate = 0, secs = 0;
    if (std::sscanf(cmd.c_str(), "chat %d %lf %lf", &pairs, &rate, &secs) != 3 || pairs <= 0 || rate <= 0 ||
        secs <= 0) {
      std::printf("error unknown command: %s\n", cmd.c_str());
      std::fflush(stdout);
      continue;
    }
    if (size_t(pairs) * 2 > cl.online.size()) {
      std::printf("error chat needs %d logged-in users, %zu are\n", pairs * 2, cl.online.size());
      std::fflush(stdout);
      continue;
    }
    std::vector<Conn*> ends(cl.online.begin(), cl.online.begin() + pairs * 2);
    std::vector<std::string> to;
    for (size_t i = 0; i < ends.size(); ++i) to.push_back(xmlEscape(ends[i ^ 1]->boundJid));
    cl.latUs.clear();
    cl.latUs.reserve(static_cast<size_t>(rate * secs));
    cl.chatDelivered = 0;
    cl.chatForeign = 0;
    cl.chatErrors = 0;
    cl.chatting = true;
    uint64_t sent = 0, closed0 = cl.closedAfterLogin;
    size_t next = 0;
    double ccpu0 = cpuSeconds();
    int64_t c0 = nowNs();
    int64_t sendEnd = c0 + static_cast<int64_t>(secs * 1e9);
    const uint64_t total = static_cast<uint64_t>(rate * secs);
    char msg[512];
    auto pace = [&] {
      int64_t now = nowNs();
      uint64_t due = now >= sendEnd ? total
                                    : std::min<uint64_t>(total, static_cast<uint64_t>(double(now - c0) * rate / 1e9));
      while (sent < due) {
        Conn* from = ends[next];
        if (from->state == State::Online) {
          int len = std::snprintf(msg, sizeof msg,
                                  "<message to='%s' type='chat' id='m%" PRIu64 "'><body>t=%" PRId64
                                  " bench chat message</body></message>",
                                  to[next].c_str(), sent, nowNs());
          cl.send(from, std::string_view(msg, static_cast<size_t>(len)));
        }
        ++sent;
        next = (next + 1) % ends.size();
      }
    };
    runUntil(cl, tfd, sendEnd + 1000000000LL * 60, [&] { return sent >= total; }, pace);
    int64_t c1 = nowNs();
    runUntil(cl, tfd, nowNs() + 5000000000LL, [&] { return cl.chatDelivered >= sent; }, [] {});
    int64_t c2 = nowNs();
    double ccpu = cpuSeconds() - ccpu0;
    cl.chatting = false;
    std::sort(cl.latUs.begin(), cl.latUs.end());
    double wall = double(c2 - c0) / 1e9;
    std::printf("chat pairs=%d target_rate=%.0f secs=%.1f sent=%" PRIu64 " delivered=%" PRIu64 " undelivered=%" PRIu64
                " send_secs=%.2f wall_secs=%.2f rate=%.0f p50_ms=%.3f p99_ms=%.3f p999_ms=%.3f max_ms=%.3f "
                "client_cpu_s=%.2f client_cpu_pct=%.0f closed=%" PRIu64 " unexpected=%" PRIu64 " errors=%" PRIu64 "\n",
                pairs, rate, secs, sent, cl.chatDelivered, sent - std::min(sent, cl.chatDelivered),
                double(c1 - c0) / 1e9, wall, double(cl.chatDelivered) / std::max(double(c1 - c0) / 1e9, 1e-9),
                percentile(cl.latUs, 0.5) / 1000.0, percentile(cl.latUs, 0.99) / 1000.0,
                percentile(cl.latUs, 0.999) / 1000.0, cl.latUs.empty() ? 0.0 : cl.latUs.back() / 1000.0, ccpu,
                100.0 * ccpu / std::max(wall, 1e-9), cl.closedAfterLogin - closed0, cl.chatForeign, cl.chatErrors);
    std::fflush(stdout);
  }

  // ------------------------------------------------------------ close
  for (Conn* c : std::vector<Conn*>(cl.online)) {
    cl.send(c, "</stream:stream>");
    c->state = State::Closing;
  }
  // Give the servers' closing tags a bounded moment, then close everything.
  runUntil(
      cl, tfd, nowNs() + 2000000000LL,
      [&] {
        for (Conn* c : cl.online)
          if (c->state == State::Closing && !c->out.empty()) return false;
        return true;
      },
      [] {});
  size_t heldAtQuit = cl.online.size();
  cl.online.clear();  // closing every connection: no per-connection removal from the list
  for (auto& c : cl.conns) cl.closeConn(c.get());
  std::printf("end held_at_quit=%zu closed_after_login=%" PRIu64 " reason=%s\n", heldAtQuit,
              cl.closedAfterLogin, gStop ? "signal" : (quit ? "quit" : "max-seconds"));
  SSL_CTX_free(cl.ctx);
  return 0;
}
