#pragma once
// The admin HTTP API (POCO HTTPServer): /api/v1/... with bearer-token auth,
// JSON bodies and JSON errors; /health/live, /health/ready and /metrics
// without auth. Modules register their routes (STYLE: control commands live
// next to their code); impctl is a thin client of the same routes.
//
// Handlers run on the server's worker threads and may block (database).
// Anything they throw becomes a JSON error: AdminError keeps its status and
// code, any other exception is a 500 whose message is logged.
#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include <Poco/JSON/Object.h>

namespace Poco::Net {
class HTTPServer;
class ServerSocket;
}
namespace spdlog {
class logger;
}

namespace imp::core {

class Metrics;

class AdminError : public std::runtime_error {
 public:
  AdminError(int status, std::string code, const std::string& message, Poco::JSON::Object::Ptr details = nullptr)
      : std::runtime_error(message), status_(status), code_(std::move(code)), details_(std::move(details)) {}
  int status() const { return status_; }
  const std::string& code() const { return code_; }
  Poco::JSON::Object::Ptr details() const { return details_; }

 private:
  int status_;
  std::string code_;
  Poco::JSON::Object::Ptr details_;
};

struct AdminRequest {
  std::string method;
  std::string path;
  std::map<std::string, std::string> params;  // {name} captures
  std::map<std::string, std::string> query;
  std::string body;
  // Parsed body; throws AdminError 400 if the body is not a JSON object.
  Poco::JSON::Object::Ptr json() const;
  std::string queryOr(const std::string& key, const std::string& fallback) const;
};

struct AdminResponse {
  int status = 200;
  std::string body;
  std::string contentType = "application/json";
  static AdminResponse json(const Poco::JSON::Object::Ptr& obj, int status = 200);
  static AdminResponse text(std::string body, std::string contentType, int status = 200);
};

using AdminHandler = std::function<AdminResponse(const AdminRequest&)>;

class AdminRouter {
 public:
  // pattern: "/api/v1/services/{name}/{action}"; auth=false only for health/metrics.
  void add(const std::string& method, const std::string& pattern, AdminHandler h, bool auth = true);
  // Matches and runs; never throws. `authorized` says whether the request
  // carried the right token.
  AdminResponse dispatch(AdminRequest& req, bool authorized) const;

 private:
  struct Route {
    std::string method;
    std::vector<std::string> segments;
    AdminHandler handler;
    bool auth;
  };
  std::vector<Route> routes_;
};

AdminResponse errorResponse(int status, const std::string& code, const std::string& message,
                            Poco::JSON::Object::Ptr details = nullptr);

// Reads the token file, creating it with a fresh random token (mode 0600)
// if it does not exist. Throws std::runtime_error naming the file.
std::string loadOrCreateToken(const std::string& path);

class AdminServer {
 public:
  AdminServer(AdminRouter& router, std::string address, unsigned port, std::string token, unsigned threads,
              std::shared_ptr<spdlog::logger> log, Metrics* metrics);
  ~AdminServer();
  // bind() takes the port (so port() and url() are known before any route
  // can be called); start() serves. Both throw std::runtime_error.
  void bind();
  void start();
  void stop() noexcept;
  unsigned port() const { return boundPort_; }
  std::string url() const;

 private:
  AdminRouter& router_;
  std::string address_;
  unsigned port_;
  unsigned boundPort_ = 0;
  std::string token_;
  unsigned threads_;
  std::shared_ptr<spdlog::logger> log_;
  Metrics* metrics_;
  std::unique_ptr<Poco::Net::ServerSocket> socket_;
  std::unique_ptr<Poco::Net::HTTPServer> server_;
};

}  // namespace imp::core
