#include "imp/sip_proxy/routing.h"

#include <imp/sip/message.h>
#include <imp/sip/uri.h>

#include <algorithm>
#include <cctype>

namespace imp::sip_proxy {

directory::FederationRouting federationRouting(const FederationSettings& f) {
  return directory::FederationRouting{f.enabled, f.routingMode == RoutingMode::Advanced};
}

std::optional<directory::Recipient> sipRecipient(std::string_view recipient) {
  auto l = lower(recipient.substr(0, 5));
  if (l.rfind("sip:", 0) == 0 || l.rfind("sips:", 0) == 0) {
    auto u = sip::parseUri(recipient);
    if (!u || !u->isSip()) return std::nullopt;
    if (u->user.empty()) return directory::recipientFromDomain(u->host);
    auto user = sip::unescape(u->user);
    if (!user) return std::nullopt;
    return directory::recipientFromParts(*user, u->host);
  }
  return directory::recipientFromAddress(recipient);
}

std::optional<std::string> recipientAddress(std::string_view recipient) {
  auto r = sipRecipient(recipient);
  if (!r || r->address.empty()) return std::nullopt;
  return std::move(r->address);
}

RoutingDecision decideRoute(const directory::Recipient& recipient, const FederationSettings& federation,
                            DirectoryLookup& directory, const RouteTable& routes, bool returningOwnRequest,
                            directory::Reasons reasons) {
  return directory::decideRoute(recipient, federationRouting(federation), directory, routes, returningOwnRequest,
                                reasons);
}

RoutingDecision decideRoute(std::string_view recipient, const FederationSettings& federation, DirectoryLookup& directory,
                            const RouteTable& routes, bool returningOwnRequest) {
  auto r = sipRecipient(recipient);
  if (!r) {
    RoutingDecision d;
    d.kind = RoutingDecision::Kind::Reject;
    d.status = 400;
    d.reason = "recipient '" + std::string(recipient) + "' is not user@domain";
    return d;
  }
  return decideRoute(*r, federation, directory, routes, returningOwnRequest);
}

RoutingDecision decideDomainRoute(const std::string& domain, const FederationSettings& federation,
                                  DirectoryLookup& directory, const RouteTable& routes, bool returningOwnRequest) {
  return directory::decideDomainRoute(domain, federationRouting(federation), directory, routes, returningOwnRequest);
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

}  // namespace imp::sip_proxy
