#include "imp/core/admin_http.h"

#include <Poco/JSON/Parser.h>
#include <Poco/Net/HTTPRequestHandler.h>
#include <Poco/Net/HTTPRequestHandlerFactory.h>
#include <Poco/Net/HTTPServer.h>
#include <Poco/Net/HTTPServerParams.h>
#include <Poco/Net/HTTPServerRequest.h>
#include <Poco/Net/HTTPServerResponse.h>
#include <Poco/Net/ServerSocket.h>
#include <Poco/URI.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <sstream>

#include "imp/core/database.h"
#include "imp/core/metrics.h"

namespace imp::core {

namespace {

constexpr std::size_t kMaxBody = 1 << 20;

std::vector<std::string> splitPath(const std::string& path) {
  std::vector<std::string> out;
  std::string cur;
  for (char c : path) {
    if (c == '/') {
      if (!cur.empty()) out.push_back(cur);
      cur.clear();
    } else {
      cur += c;
    }
  }
  if (!cur.empty()) out.push_back(cur);
  return out;
}

std::string stringify(const Poco::JSON::Object::Ptr& obj) {
  std::ostringstream out;
  obj->stringify(out);
  return out.str();
}

}  // namespace

Poco::JSON::Object::Ptr AdminRequest::json() const {
  if (body.empty()) return new Poco::JSON::Object;
  try {
    Poco::JSON::Parser p;
    auto v = p.parse(body);
    auto obj = v.extract<Poco::JSON::Object::Ptr>();
    if (!obj) throw AdminError(400, "bad_json", "request body must be a JSON object");
    return obj;
  } catch (const AdminError&) {
    throw;
  } catch (const Poco::Exception& e) {
    throw AdminError(400, "bad_json", "request body is not valid JSON: " + e.displayText());
  } catch (const std::exception&) {
    throw AdminError(400, "bad_json", "request body must be a JSON object");
  }
}

std::string AdminRequest::queryOr(const std::string& key, const std::string& fallback) const {
  auto it = query.find(key);
  return it == query.end() ? fallback : it->second;
}

AdminResponse AdminResponse::json(const Poco::JSON::Object::Ptr& obj, int status) {
  AdminResponse r;
  r.status = status;
  r.body = stringify(obj) + "\n";
  return r;
}

AdminResponse AdminResponse::text(std::string body, std::string contentType, int status) {
  AdminResponse r;
  r.status = status;
  r.body = std::move(body);
  r.contentType = std::move(contentType);
  return r;
}

AdminResponse errorResponse(int status, const std::string& code, const std::string& message,
                            Poco::JSON::Object::Ptr details) {
  Poco::JSON::Object::Ptr err = new Poco::JSON::Object;
  err->set("code", code);
  err->set("message", message);
  if (details)
    for (const auto& [k, v] : *details) err->set(k, v);
  Poco::JSON::Object::Ptr root = new Poco::JSON::Object;
  root->set("error", err);
  return AdminResponse::json(root, status);
}

void AdminRouter::add(const std::string& method, const std::string& pattern, AdminHandler h, bool auth) {
  routes_.push_back({method, splitPath(pattern), std::move(h), auth});
}

AdminResponse AdminRouter::dispatch(AdminRequest& req, bool authorized) const {
  auto segs = splitPath(req.path);
  std::vector<std::string> allowed;
  for (const auto& r : routes_) {
    if (r.segments.size() != segs.size()) continue;
    std::map<std::string, std::string> params;
    bool match = true;
    for (std::size_t i = 0; i < segs.size() && match; ++i) {
      const auto& p = r.segments[i];
      if (p.size() > 2 && p.front() == '{' && p.back() == '}') params[p.substr(1, p.size() - 2)] = segs[i];
      else match = p == segs[i];
    }
    if (!match) continue;
    if (r.method != req.method) {
      allowed.push_back(r.method);
      continue;
    }
    if (r.auth && !authorized)
      return errorResponse(401, "unauthorized", "missing or invalid bearer token (see [admin] token_file)");
    req.params = std::move(params);
    try {
      return r.handler(req);
    } catch (const AdminError& e) {
      return errorResponse(e.status(), e.code(), e.what(), e.details());
    } catch (const DbError& e) {
      return errorResponse(503, "database_unavailable", std::string("database unavailable: ") + e.what());
    } catch (const std::exception& e) {
      return errorResponse(500, "internal", e.what());
    } catch (...) {
      return errorResponse(500, "internal", "unknown error");
    }
  }
  if (!allowed.empty()) {
    std::string list;
    for (const auto& m : allowed) list += (list.empty() ? "" : ", ") + m;
    return errorResponse(405, "method_not_allowed", req.method + " is not allowed on " + req.path + "; use " + list);
  }
  return errorResponse(404, "not_found", "no such endpoint: " + req.method + " " + req.path);
}

std::string loadOrCreateToken(const std::string& path) {
  std::ifstream in(path);
  if (in) {
    std::string token;
    std::getline(in, token);
    while (!token.empty() && (token.back() == '\r' || token.back() == ' ')) token.pop_back();
    if (token.size() < 16) throw std::runtime_error("token file " + path + " holds no usable token (need >= 16 chars)");
    return token;
  }
  unsigned char raw[32];
  if (RAND_bytes(raw, sizeof raw) != 1) throw std::runtime_error("no randomness for the admin token");
  static const char* hex = "0123456789abcdef";
  std::string token;
  for (unsigned char b : raw) {
    token += hex[b >> 4];
    token += hex[b & 15];
  }
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) throw std::runtime_error("cannot create token file " + path + ": " + std::strerror(errno));
  std::string line = token + "\n";
  bool ok = ::write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size());
  ::fchmod(fd, 0600);
  ::close(fd);
  if (!ok) throw std::runtime_error("cannot write token file " + path);
  return token;
}

namespace {

class Handler : public Poco::Net::HTTPRequestHandler {
 public:
  Handler(const AdminRouter& router, const std::string& token, spdlog::logger* log, Metrics* metrics)
      : router_(router), token_(token), log_(log), metrics_(metrics) {}

  void handleRequest(Poco::Net::HTTPServerRequest& in, Poco::Net::HTTPServerResponse& out) override {
    AdminRequest req;
    AdminResponse resp;
    req.method = in.getMethod();
    try {
      Poco::URI uri(in.getURI());
      req.path = uri.getPath();
      for (const auto& [k, v] : uri.getQueryParameters()) req.query[k] = v;
      if (in.hasContentLength() && in.getContentLength64() > static_cast<Poco::Int64>(kMaxBody)) {
        resp = errorResponse(413, "too_large", "request body over " + std::to_string(kMaxBody) + " bytes");
      } else {
        std::string body;
        char buf[8192];
        auto& is = in.stream();
        while (is.read(buf, sizeof buf) || is.gcount() > 0) {
          body.append(buf, static_cast<std::size_t>(is.gcount()));
          if (body.size() > kMaxBody) break;
        }
        if (body.size() > kMaxBody) {
          resp = errorResponse(413, "too_large", "request body over " + std::to_string(kMaxBody) + " bytes");
        } else {
          req.body = std::move(body);
          resp = router_.dispatch(req, authorized(in));
        }
      }
    } catch (const Poco::Exception& e) {
      resp = errorResponse(400, "bad_request", e.displayText());
    } catch (const std::exception& e) {
      resp = errorResponse(400, "bad_request", e.what());
    }
    if (resp.status == 401) out.set("WWW-Authenticate", "Bearer realm=\"impd\"");
    out.setStatusAndReason(static_cast<Poco::Net::HTTPResponse::HTTPStatus>(resp.status));
    out.setContentType(resp.contentType);
    out.setContentLength(static_cast<std::streamsize>(resp.body.size()));
    out.send() << resp.body;
    if (metrics_)
      ++metrics_->counter("imp_admin_requests_total", "admin API requests by status code",
                          {{"code", std::to_string(resp.status)}});
    if (log_) {
      auto lvl = resp.status >= 500 ? spdlog::level::err : resp.status >= 400 ? spdlog::level::info : spdlog::level::debug;
      log_->log(lvl, "admin {} {} from {} -> {}", req.method, req.path, in.clientAddress().host().toString(), resp.status);
    }
  }

 private:
  bool authorized(const Poco::Net::HTTPServerRequest& in) const {
    const std::string prefix = "Bearer ";
    auto h = in.get("Authorization", "");
    if (h.rfind(prefix, 0) != 0) return false;
    std::string given = h.substr(prefix.size());
    return given.size() == token_.size() && CRYPTO_memcmp(given.data(), token_.data(), token_.size()) == 0;
  }

  const AdminRouter& router_;
  const std::string& token_;
  spdlog::logger* log_;
  Metrics* metrics_;
};

class Factory : public Poco::Net::HTTPRequestHandlerFactory {
 public:
  Factory(const AdminRouter& router, const std::string& token, spdlog::logger* log, Metrics* metrics)
      : router_(router), token_(token), log_(log), metrics_(metrics) {}
  Poco::Net::HTTPRequestHandler* createRequestHandler(const Poco::Net::HTTPServerRequest&) override {
    return new Handler(router_, token_, log_, metrics_);
  }

 private:
  const AdminRouter& router_;
  const std::string& token_;
  spdlog::logger* log_;
  Metrics* metrics_;
};

}  // namespace

AdminServer::AdminServer(AdminRouter& router, std::string address, unsigned port, std::string token, unsigned threads,
                         std::shared_ptr<spdlog::logger> log, Metrics* metrics)
    : router_(router), address_(std::move(address)), port_(port), token_(std::move(token)), threads_(threads),
      log_(std::move(log)), metrics_(metrics) {}

AdminServer::~AdminServer() { stop(); }


void AdminServer::bind() {
  try {
    socket_ = std::make_unique<Poco::Net::ServerSocket>();
    socket_->bind(Poco::Net::SocketAddress(address_, static_cast<Poco::UInt16>(port_)), true);
    socket_->listen(64);
    boundPort_ = socket_->address().port();
  } catch (const Poco::Exception& e) {
    socket_.reset();
    throw std::runtime_error("cannot listen on " + address_ + ":" + std::to_string(port_) + ": " + e.displayText());
  }
}

void AdminServer::start() {
  if (!socket_) bind();
  try {
    auto* params = new Poco::Net::HTTPServerParams;
    params->setMaxThreads(static_cast<int>(threads_));
    params->setMaxQueued(256);
    params->setKeepAlive(true);
    params->setTimeout(Poco::Timespan(30, 0));
    server_ = std::make_unique<Poco::Net::HTTPServer>(new Factory(router_, token_, log_.get(), metrics_), *socket_, params);
    server_->start();
  } catch (const Poco::Exception& e) {
    throw std::runtime_error("cannot listen on " + address_ + ":" + std::to_string(port_) + ": " + e.displayText());
  }
}

void AdminServer::stop() noexcept {
  if (server_) {
    try {
      server_->stopAll(true);
    } catch (...) {
    }
    server_.reset();
  }
}

std::string AdminServer::url() const {
  auto host = address_ == "0.0.0.0" ? "127.0.0.1" : address_;
  if (host.find(':') != std::string::npos) host = "[" + host + "]";
  return "http://" + host + ":" + std::to_string(boundPort_);
}

}  // namespace imp::core
