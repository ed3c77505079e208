#include "imp/sip_proxy/routing.h"

#include <imp/directory/directory.h>
#include <imp/sip/message.h>
#include <imp/sip/uri.h>

#include <algorithm>
#include <cctype>

namespace imp::sip_proxy {

std::string_view nameOf(RoutingDecision::Kind k) {
  switch (k) {
    case RoutingDecision::Kind::LocalUser: return "local_user";
    case RoutingDecision::Kind::MicrosoftServer: return "microsoft_server";
    case RoutingDecision::Kind::StaticRoute: return "static_route";
    case RoutingDecision::Kind::Reject: return "reject";
  }
  return "?";
}

namespace {

RoutingDecision reject(int status, std::string reason) {
  RoutingDecision d;
  d.kind = RoutingDecision::Kind::Reject;
  d.status = status;
  d.reason = std::move(reason);
  return d;
}

// user@domain, lower-case, from "user@domain" or a sip:/sips: URI.
std::optional<std::string> addressOf(std::string_view recipient) {
  auto l = lower(recipient.substr(0, 5));
  std::string user, host;
  if (l.rfind("sip:", 0) == 0 || l.rfind("sips:", 0) == 0) {
    auto u = sip::parseUri(recipient);
    if (!u || !u->isSip()) return std::nullopt;
    auto un = sip::unescape(u->user);
    if (!un) return std::nullopt;
    user = *un;
    host = std::string(u->host);
  } else {
    auto at = recipient.rfind('@');
    if (at == std::string_view::npos) return std::nullopt;
    user = std::string(recipient.substr(0, at));
    host = std::string(recipient.substr(at + 1));
  }
  if (!host.empty() && host.back() == '.') host.pop_back();
  if (user.empty() || host.empty()) return std::nullopt;
  for (unsigned char c : user + host)
    if (std::iscntrl(c) || std::isspace(c)) return std::nullopt;
  return lower(user) + "@" + lower(host);
}

// The host of a sip:/sips: URI without a user part ("sip:example.com"),
// lower-case, without a trailing dot.
std::optional<std::string> domainOnly(std::string_view recipient) {
  auto u = sip::parseUri(recipient);
  if (!u || !u->isSip() || !u->user.empty() || u->host.empty()) return std::nullopt;
  std::string host = lower(u->host);
  if (host.back() == '.') host.pop_back();
  if (host.empty()) return std::nullopt;
  return host;
}

std::string routesText(const std::vector<StaticRoute>& routes) {
  std::string s;
  for (const auto& r : routes) s += (s.empty() ? "" : ", ") + r.describe();
  return s;
}

}  // namespace

std::optional<std::string> recipientAddress(std::string_view recipient) { return addressOf(recipient); }

RoutingDecision decideDomainRoute(const std::string& domain, const FederationSettings& federation,
                                  DirectoryLookup& directory, const RouteTable& routes, bool returningOwnRequest) {
  auto m = routes.match(domain);
  bool routed = m && !m->routes.empty();
  if (directory.isLocalDomain(domain)) {
    // A local presence domain shared with the Microsoft server (FED-6): what
    // is addressed to the domain itself (REGISTER, OPTIONS) belongs to that
    // server when federation routes there; IMP is no registrar.
    if (!federation.enabled)
      return reject(404, "sip:" + domain + " names local presence domain " + domain +
                             " but no user; IMP is no registrar and partitioned intradomain federation is disabled");
    if (returningOwnRequest)
      return reject(482, "loop detected: a request for sip:" + domain +
                             " was already sent to the Microsoft server by this cluster and came back (FED-7)");
    if (!routed)
      return reject(404, "sip:" + domain + " names local presence domain " + domain +
                             " but no user; IMP is no registrar and no static route leads to the Microsoft server for " +
                             domain);
    RoutingDecision d;
    d.kind = RoutingDecision::Kind::MicrosoftServer;
    d.pattern = m->pattern;
    d.routes = std::move(m->routes);
    d.reason = "partitioned federation: sip:" + domain + " (the domain itself) goes to the Microsoft server by " +
               std::string(nameOf(m->type)) + " route " + d.pattern + ": " + routesText(d.routes);
    return d;
  }
  if (!routed) return reject(404, domain + " is not a local presence domain and no static route matches it");
  RoutingDecision d;
  d.kind = RoutingDecision::Kind::StaticRoute;
  d.pattern = m->pattern;
  d.routes = std::move(m->routes);
  d.reason = "found " + std::string(nameOf(m->type)) + " route " + d.pattern + " for " + domain + ": " +
             routesText(d.routes);
  return d;
}

RoutingDecision decideRoute(std::string_view recipient, const FederationSettings& federation, DirectoryLookup& directory,
                            const RouteTable& routes, bool returningOwnRequest) {
  auto address = addressOf(recipient);
  if (!address) {
    if (auto domain = domainOnly(recipient))
      return decideDomainRoute(*domain, federation, directory, routes, returningOwnRequest);
    return reject(400, "recipient '" + std::string(recipient) + "' is not user@domain");
  }
  const std::string domain = address->substr(address->rfind('@') + 1);

  if (directory.isLocalDomain(domain)) {
    if (auto home = directory.licensedUserHome(*address)) {
      if (home->empty()) return reject(480, *address + " is a licensed IMP user but is not assigned to a node");
      RoutingDecision d;
      d.kind = RoutingDecision::Kind::LocalUser;
      d.homeNode = *home;
      d.reason = *address + " is a licensed IMP user homed on node " + *home;
      return d;
    }
    // FED-6: a local domain, not a licensed IMP user -> perhaps a Microsoft user.
    if (!federation.enabled)
      return reject(404, *address + " is in local presence domain " + domain +
                             " but is not a licensed IMP user, and partitioned intradomain federation is disabled");
    if (federation.routingMode == RoutingMode::Advanced && !directory.hasMicrosoftSipUri(*address))
      return reject(404, "advanced routing: " + *address +
                             " is not a licensed IMP user and IMP's directory holds no Microsoft SIP URI for it");
    if (returningOwnRequest)
      return reject(482, "loop detected: " + *address +
                             " was already sent to the Microsoft server by this cluster and came back; it is provisioned "
                             "on neither system (FED-7)");
    auto m = routes.match(*address);
    if (!m || m->routes.empty())
      return reject(404, *address + " belongs to the Microsoft server (" + std::string(nameOf(federation.routingMode)) +
                             " routing) but there is no static route for " + domain);
    RoutingDecision d;
    d.kind = RoutingDecision::Kind::MicrosoftServer;
    d.pattern = m->pattern;
    d.routes = std::move(m->routes);
    d.reason = "partitioned federation (" + std::string(nameOf(federation.routingMode)) + " routing): found " +
               std::string(nameOf(m->type)) + " route " + d.pattern + " for " + *address + ": " + routesText(d.routes);
    return d;
  }

  auto m = routes.match(*address);
  if (!m || m->routes.empty())
    return reject(404, domain + " is not a local presence domain and no static route matches " + *address);
  RoutingDecision d;
  d.kind = RoutingDecision::Kind::StaticRoute;
  d.pattern = m->pattern;
  d.routes = std::move(m->routes);
  d.reason = "found " + std::string(nameOf(m->type)) + " route " + d.pattern + " for " + *address + ": " +
             routesText(d.routes);
  return d;
}

// ---- the partitioned-federation marker (FED-7, FED-8) ----

std::string federationViaParam(std::string_view nodeId) {
  // Appended piece by piece: GCC 12 at -O3 reports a false -Wrestrict for
  // "literal" + std::string temporaries (GCC bug 105329).
  std::string p;
  p.reserve(2 + kFederationViaParam.size() + nodeId.size());
  p += ';';
  p += kFederationViaParam;
  p += '=';
  p += nodeId;
  return p;
}

void markFederationRequest(sip::Message& request, std::string_view nodeId) {
  request.appendHeader(kFederationHeader, nodeId);
  request.setHeader(sip::HeaderId::UserAgent, kFederationUserAgent);
}

namespace {

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
         });
}

bool ownNode(std::string_view id, const std::vector<std::string>& nodes) {
  return std::find(nodes.begin(), nodes.end(), id) != nodes.end();
}

}  // namespace

bool carriesOwnFederationMarker(const sip::Message& request, const std::vector<std::string>& clusterNodes) {
  for (const auto& via : request.vias())
    if (auto v = via.param(kFederationViaParam); v && ownNode(*v, clusterNodes)) return true;
  for (const auto& h : request.headers())
    if (iequals(h.name, kFederationHeader))
      for (auto v : sip::splitList(h.value))
        if (ownNode(v, clusterNodes)) return true;
  return false;
}

bool isFederationRequest(const sip::Message& request) {
  if (auto ua = request.header(sip::HeaderId::UserAgent); ua && ua->find(kFederationUserAgent) != std::string_view::npos)
    return true;
  for (const auto& h : request.headers())
    if (iequals(h.name, kFederationHeader)) return true;
  return false;
}

// ---- DirectoryLookup over the directory ----

namespace {

class DirectoryAdapter : public DirectoryLookup {
 public:
  explicit DirectoryAdapter(directory::Directory& dir) : dir_(dir) {}
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
    for (const auto& d : dir_.domains()) out.push_back(lower(d.name));
    return out;
  }

 private:
  directory::Directory& dir_;
};

}  // namespace

std::unique_ptr<DirectoryLookup> directoryLookup(directory::Directory& dir) { return std::make_unique<DirectoryAdapter>(dir); }

}  // namespace imp::sip_proxy
