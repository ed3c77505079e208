#include "cli.h"

#include "../impd/modules.h"

#include <imp/core/config.h>

#include <Poco/JSON/Parser.h>
#include <Poco/Net/HTTPClientSession.h>
#include <Poco/Net/HTTPRequest.h>
#include <Poco/Net/HTTPResponse.h>
#include <Poco/URI.h>

#include <termios.h>
#include <unistd.h>

#include <fstream>
#include <iostream>
#include <sstream>

namespace impctl {

namespace {

// One line from the terminal with echo off; the terminal's settings are
// restored however the read ends.
std::string readHidden(const std::string& prompt) {
  termios old{};
  if (tcgetattr(STDIN_FILENO, &old) != 0) throw Exit{kIoErr, "cannot read the terminal settings"};
  termios quiet = old;
  quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
  quiet.c_lflag |= ECHONL;
  // Echo off first, then the prompt: TCSAFLUSH drops what was typed before
  // it, so nothing typed after the prompt may come before it.
  if (tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet) != 0) throw Exit{kIoErr, "cannot turn off the terminal echo"};
  std::cerr << prompt << std::flush;
  std::string line;
  bool ok = static_cast<bool>(std::getline(std::cin, line));
  tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
  if (!ok) throw Exit{kUsage, "no " + prompt.substr(0, prompt.find(':')) + " given (end of input)"};
  return line;
}

}  // namespace

std::string readSecret(const std::string& prompt) {
  if (isatty(STDIN_FILENO)) {
    auto first = readHidden("New " + prompt + ": ");
    auto second = readHidden("Retype new " + prompt + ": ");
    if (first != second) throw Exit{kUsage, "the two " + prompt + "s do not match; nothing was changed"};
    return first;
  }
  std::string line;
  if (!std::getline(std::cin, line)) throw Exit{kUsage, "no " + prompt + " on stdin"};
  if (!line.empty() && line.back() == '\r') line.pop_back();
  return line;
}

std::pair<int, std::string> Client::call(const std::string& method, const std::string& path,
                                        const std::string& body, const std::string& contentType) const {
    Poco::URI base(url);
    try {
      Poco::Net::HTTPClientSession s(base.getHost(), base.getPort());
      s.setTimeout(Poco::Timespan(30, 0));
      Poco::Net::HTTPRequest req(method, path, Poco::Net::HTTPMessage::HTTP_1_1);
      req.set("Authorization", "Bearer " + token);
      if (!body.empty()) req.setContentType(contentType);
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

Client makeClient(const std::string& config, bool configDefaulted, const std::string& url, const std::string& tokenFileGiven) {
  Client c;
  std::string tokenFile = tokenFileGiven;
  if (!url.empty()) c.url = url;
  if (c.url.empty() || tokenFile.empty()) {
    imp::core::Config cfg;
    try {
      cfg = imp::core::Config::load(config, imp::apps::nodeSchema());
    } catch (const imp::core::ConfigError& e) {
      throw Exit{kConfig, std::string(e.what()) + (configDefaulted ? " (use --config, or --url and --token-file)" : "")};
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

}  // namespace impctl
