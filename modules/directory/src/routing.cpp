#include "imp/directory/routing.h"

#include <algorithm>
#include <cctype>

#include "imp/directory/directory.h"

namespace imp::directory {

std::string_view nameOf(RouteKind k) {
  switch (k) {
    case RouteKind::LocalUser: return "local_user";
    case RouteKind::MicrosoftServer: return "microsoft_server";
    case RouteKind::StaticRoute: return "static_route";
    case RouteKind::Reject: return "reject";
  }
  return "?";
}

namespace {

std::string lowered(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return std::tolower(c); });
  return out;
}

}  // namespace

std::optional<Recipient> recipientFromParts(std::string_view user, std::string_view host) {
  if (!host.empty() && host.back() == '.') host.remove_suffix(1);
  if (user.empty() || host.empty()) return std::nullopt;
  for (std::string_view part : {user, host})
    for (unsigned char c : part)
      if (std::iscntrl(c) || std::isspace(c)) return std::nullopt;
  Recipient r;
  r.domain = lowered(host);
  r.address = lowered(user);
  r.address += '@';
  r.address += r.domain;
  return r;
}

std::optional<Recipient> recipientFromAddress(std::string_view userAtDomain) {
  auto at = userAtDomain.rfind('@');
  if (at == std::string_view::npos) return std::nullopt;
  return recipientFromParts(userAtDomain.substr(0, at), userAtDomain.substr(at + 1));
}

std::optional<Recipient> recipientFromDomain(std::string_view host) {
  if (!host.empty() && host.back() == '.') host.remove_suffix(1);
  if (host.empty()) return std::nullopt;
  Recipient r;
  r.domain = lowered(host);
  return r;
}

// ---- DirectoryLookup over the directory ----

namespace {

class DirectoryAdapter : public DirectoryLookup {
 public:
  explicit DirectoryAdapter(Directory& dir) : dir_(dir) {}
  bool isLocalDomain(const std::string& domain) override { return dir_.isLocalDomain(domain); }
  std::optional<std::string> licensedUserHome(const std::string& address) override {
    auto u = dir_.userByAddress(address);
    if (!u || !u->licensed) return std::nullopt;
    return u->homeNode;
  }
  bool hasMicrosoftSipUri(const std::string& address) override {
    // Either the user row of that address carries one, or some user's
    // Microsoft URI is exactly sip:<address> (the IM address may differ).
    if (auto u = dir_.userByAddress(address); u && !u->msSipUri.empty()) return true;
    return dir_.userByMsSipUri("sip:" + address).has_value();
  }
  std::optional<std::vector<std::string>> localDomains() override {
    std::vector<std::string> out;
    for (const auto& d : dir_.domains()) out.push_back(lowered(d.name));
    return out;
  }

 private:
  Directory& dir_;
};

}  // namespace

std::unique_ptr<DirectoryLookup> directoryLookup(Directory& dir) { return std::make_unique<DirectoryAdapter>(dir); }

}  // namespace imp::directory
