#include "cli.h"

#include "../impd/modules.h"

#include <imp/core/config.h>

#include <Poco/JSON/Parser.h>
#include <Poco/Net/HTTPClientSession.h>
#include <Poco/Net/HTTPRequest.h>
#include <Poco/Net/HTTPResponse.h>
#include <Poco/URI.h>

#include <fstream>
#include <iostream>
#include <sstream>

namespace impctl {

std::pair<int, std::string> Client::call(const std::string& method, const std::string& path, const std::string& body) const {
    Poco::URI base(url);
    try {
      Poco::Net::HTTPClientSession s(base.getHost(), base.getPort());
      s.setTimeout(Poco::Timespan(30, 0));
      Poco::Net::HTTPRequest req(method, path, Poco::Net::HTTPMessage::HTTP_1_1);
      req.set("Authorization", "Bearer " + token);
      if (!body.empty()) req.setContentType("application/json");
      req.setContentLength(static_cast<std::streamsize>(body.size()));
      s.sendRequest(req) << body;
      Poco::Net::HTTPResponse resp;
      auto& in = s.receiveResponse(resp);
      std::stringstream ss;
      ss << in.rdbuf();
      return {static_cast<int>(resp.getStatus()), ss.str()};
    } catch (const Poco::Exception& e) {
      throw Exit{kUnavailable, "cannot reach impd's admin API at " + url + ": " + e.displayText()};
    }
  }

Obj::Ptr Client::request(const std::string& method, const std::string& path, const std::string& body, bool rawJson,
                         int* status) const {
    auto [code, text] = call(method, path, body);
    if (status) *status = code;
    Obj::Ptr obj;
    try {
      obj = Poco::JSON::Parser().parse(text).extract<Obj::Ptr>();
    } catch (...) {
      throw Exit{kServerError, "impd answered " + std::to_string(code) + " with a body that is not JSON"};
    }
    if (code >= 200 && code < 300) {
      if (rawJson) obj->stringify(std::cout, 2), std::cout << "\n";
      return obj;
    }
    std::string msg = "HTTP " + std::to_string(code);
    if (obj->has("error")) msg = obj->getObject("error")->optValue<std::string>("message", msg);
    if (rawJson) obj->stringify(std::cerr, 2), std::cerr << "\n";
    if (code == 401 || code == 403) throw Exit{kNoPerm, msg};
    if (code >= 500) throw Exit{kServerError, msg};
    throw Exit{kRefused, msg};
  }

std::string str(const Obj::Ptr& o, const std::string& k) {
  if (!o->has(k) || o->get(k).isEmpty()) return "";
  return o->get(k).convert<std::string>();
}

std::string duration(long long s) {
  if (s <= 0) return "-";
  std::ostringstream out;
  if (s >= 86400) out << s / 86400 << "d";
  if (s >= 3600) out << (s % 86400) / 3600 << "h";
  if (s >= 60) out << (s % 3600) / 60 << "m";
  out << s % 60 << "s";
  return out.str();
}

// Prints rows as aligned columns; the last column is not padded.
void table(const std::vector<std::vector<std::string>>& rows) {
  std::vector<std::size_t> w;
  for (const auto& r : rows)
    for (std::size_t i = 0; i < r.size(); ++i) {
      if (w.size() <= i) w.push_back(0);
      w[i] = std::max(w[i], r[i].size());
    }
  for (const auto& r : rows) {
    std::string line;
    for (std::size_t i = 0; i < r.size(); ++i) {
      line += r[i];
      if (i + 1 < r.size()) line += std::string(w[i] - r[i].size() + 2, ' ');
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    std::cout << line << "\n";
  }
}

std::string nodeQuery(const std::string& node) {
  if (node.empty()) return "";
  std::string enc;
  Poco::URI::encode(node, "&=?#/", enc);
  return "?node=" + enc;
}

std::string pathPart(const std::string& s) {
  std::string enc;
  Poco::URI::encode(s, "/?#&=", enc);
  return enc;
}

std::string queryPart(const std::string& s) {
  std::string enc;
  Poco::URI::encode(s, "&=?#/+ ", enc);
  return enc;
}

std::string opt(const Args& a, const char* name) {
  if (!a.vm || !a.vm->count(name)) return "";
  return (*a.vm)[name].as<std::string>();
}

bool flag(const Args& a, const char* name) { return a.vm && a.vm->count(name) && (*a.vm)[name].as<bool>(); }

Client makeClient(const Args& a, const po::variables_map& vm) {
  Client c;
  std::string tokenFile = a.tokenFile;
  if (!a.url.empty()) c.url = a.url;
  if (c.url.empty() || tokenFile.empty()) {
    imp::core::Config cfg;
    try {
      cfg = imp::core::Config::load(a.config, imp::apps::nodeSchema());
    } catch (const imp::core::ConfigError& e) {
      throw Exit{kConfig, std::string(e.what()) + (vm["config"].defaulted() ? " (use --config, or --url and --token-file)" : "")};
    }
    if (c.url.empty()) {
      auto addr = cfg.getString("admin", "address");
      if (addr == "0.0.0.0" || addr == "::") addr = "127.0.0.1";
      if (addr.find(':') != std::string::npos) addr = "[" + addr + "]";
      c.url = "http://" + addr + ":" + std::to_string(cfg.getInt("admin", "port"));
    }
    if (tokenFile.empty()) {
      tokenFile = cfg.getString("admin", "token_file");
      if (tokenFile.empty()) tokenFile = cfg.getString("node", "state_dir") + "/admin.token";
    }
  }
  std::ifstream in(tokenFile);
  if (!in || !std::getline(in, c.token) || c.token.empty())
    throw Exit{kConfig, "cannot read the admin token from " + tokenFile + " (run as a user that can read it, or use --token-file)"};
  return c;
}

Obj::Ptr LazyClient::request(const std::string& method, const std::string& path, const std::string& body, bool rawJson,
                             int* status) const {
  if (!client) client = makeClient(args, vm);
  return client->request(method, path, body, rawJson, status);
}

std::string jsonBody(const Obj& o) {
  std::ostringstream b;
  o.stringify(b);
  return b.str();
}

}  // namespace impctl
