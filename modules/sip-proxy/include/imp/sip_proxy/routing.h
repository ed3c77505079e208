#pragma once
// The routing decision for one recipient (FED-6, FED-7, FED-8, RT-5), as one
// pure function shared by the SIP proxy and the federation connection
// manager, and the partitioned-federation loop marker.
//
// Rules, in order:
//  1. Recipient in a local presence domain and a licensed IMP user ->
//     LocalUser (its home node; 480 if it has none).
//  2. Local domain, not a licensed user:
//     - federation disabled -> Reject 404 (routes are not consulted);
//     - basic mode          -> MicrosoftServer with the static routes for
//                              the recipient, or Reject 404 if none;
//     - advanced mode       -> the same, but only if the directory holds a
//                              Microsoft SIP URI for the recipient; else
//                              Reject 404.
//  3. Not a local domain -> StaticRoute (ordinary routing) with the matching
//     routes, or Reject 404.
//  A request that carries this cluster's own outbound partitioned-federation
//  marker and would go to the Microsoft server again is a loop: Reject 482
//  (FED-7).
//
// The marker (FED-8). When a node forwards a partitioned-federation request
// to the Microsoft server it
//  - adds the Via parameter `imp-pf=<node-id>` to its own Via,
//  - adds the header `X-IMP-PF: <node-id>`,
//  - sets `User-Agent: IMP partitioned-federation` (how the request is
//    recognised in traces and by the Microsoft server's logs).
// A request coming back with either the Via parameter or the header naming a
// node of this cluster is the loop. The Via parameter survives proxies that
// drop unknown headers (they must keep Via, RFC 3261 §16.6).
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "imp/sip_proxy/routes.h"
#include "imp/sip_proxy/settings.h"

namespace imp::sip {
class Message;
}
namespace imp::directory {
class Directory;
}

namespace imp::sip_proxy {

// What the routing decision needs from the directory. Implementations may
// block (database); call them off event-loop threads.
class DirectoryLookup {
 public:
  virtual ~DirectoryLookup() = default;
  // `domain` is lower-case.
  virtual bool isLocalDomain(const std::string& domain) = 0;
  // The licensed (IM-enabled) IMP user with this IM address, if any: its
  // home node, "" when unassigned. `address` is user@domain, lower-case.
  virtual std::optional<std::string> licensedUserHome(const std::string& address) = 0;
  // True if the directory holds a Microsoft SIP URI (msRTCSIP-
  // PrimaryUserAddress) for this address (advanced mode, FED-6).
  virtual bool hasMicrosoftSipUri(const std::string& address) = 0;
  // Every local presence domain (lower-case), for callers that keep the set
  // in memory between settings generations; nullopt = cannot list them.
  virtual std::optional<std::vector<std::string>> localDomains() { return std::nullopt; }
};

// DirectoryLookup over the cluster directory.
std::unique_ptr<DirectoryLookup> directoryLookup(directory::Directory& dir);

struct RoutingDecision {
  enum class Kind { LocalUser, MicrosoftServer, StaticRoute, Reject };
  Kind kind = Kind::Reject;
  std::string homeNode;             // LocalUser
  std::vector<StaticRoute> routes;  // MicrosoftServer / StaticRoute, in the order to try
  std::string pattern;              // the static route pattern that matched
  int status = 0;                   // Reject: SIP status (404, 480, 482, 400)
  // Why, in words fit for the routing trace (RT-9) and the Reject reason.
  std::string reason;
};
std::string_view nameOf(RoutingDecision::Kind k);  // "local_user", "microsoft_server", ...

// The recipient's address as the directory is asked for it: user@domain,
// lower-case, from "user@domain" or a sip:/sips: URI; nullopt if it is not one.
std::optional<std::string> recipientAddress(std::string_view recipient);

// What the directory answered about one recipient, kept between requests by
// a caller that drops it whenever the settings generation changes (every
// directory change makes a new generation). A field is set once asked; under
// one policy decideRoute asks the same questions for a recipient each time.
struct CachedRecipient {
  std::optional<std::optional<std::string>> licensedHome;  // licensedUserHome()
  std::optional<bool> microsoftSipUri;                    // hasMicrosoftSipUri()
};

// A DirectoryLookup over another one that notes the answers about users in
// `into` (for the cache above). isLocalDomain passes through.
class RecordingLookup : public DirectoryLookup {
 public:
  RecordingLookup(DirectoryLookup& inner, CachedRecipient& into) : inner_(inner), into_(into) {}
  bool isLocalDomain(const std::string& domain) override { return inner_.isLocalDomain(domain); }
  std::optional<std::string> licensedUserHome(const std::string& address) override {
    auto r = inner_.licensedUserHome(address);
    into_.licensedHome = r;
    return r;
  }
  bool hasMicrosoftSipUri(const std::string& address) override {
    bool r = inner_.hasMicrosoftSipUri(address);
    into_.microsoftSipUri = r;
    return r;
  }

 private:
  DirectoryLookup& inner_;
  CachedRecipient& into_;
};

// A DirectoryLookup answering from a cached entry for a recipient whose
// domain the caller already knows to be local; throws CacheMiss should the
// decision need something the entry does not hold (ask the directory then).
struct CacheMiss {};
class CachedLookup : public DirectoryLookup {
 public:
  explicit CachedLookup(const CachedRecipient& entry) : entry_(entry) {}
  bool isLocalDomain(const std::string&) override { return true; }
  std::optional<std::string> licensedUserHome(const std::string&) override {
    if (!entry_.licensedHome) throw CacheMiss{};
    return *entry_.licensedHome;
  }
  bool hasMicrosoftSipUri(const std::string&) override {
    if (!entry_.microsoftSipUri) throw CacheMiss{};
    return *entry_.microsoftSipUri;
  }

 private:
  const CachedRecipient& entry_;
};

// recipient: "user@domain" or a sip:/sips: URI; a URI without a user part
// ("sip:example.com") is routed by its domain (decideDomainRoute). `returningOwnRequest`: the
// request carries this cluster's outbound partitioned-federation marker
// (carriesOwnFederationMarker).
RoutingDecision decideRoute(std::string_view recipient, const FederationSettings& federation, DirectoryLookup& directory,
                            const RouteTable& routes, bool returningOwnRequest = false);

// A request addressed to a domain itself (Request-URI without a user part,
// e.g. REGISTER sip:example.com). Local presence domain: with federation
// enabled it goes to the Microsoft server by the static route matching the
// domain (482 when it comes back, FED-7), else Reject 404 saying IMP is no
// registrar. Other domains: StaticRoute by the domain's routes, or 404.
RoutingDecision decideDomainRoute(const std::string& domain, const FederationSettings& federation,
                                  DirectoryLookup& directory, const RouteTable& routes, bool returningOwnRequest = false);

inline constexpr std::string_view kFederationViaParam = "imp-pf";
inline constexpr std::string_view kFederationHeader = "X-IMP-PF";
inline constexpr std::string_view kFederationUserAgent = "IMP partitioned-federation";

// Adds the header and the User-Agent above to an outbound request. The Via
// parameter belongs to the Via the forwarding layer adds:
// federationViaParam(nodeId) gives ";imp-pf=<node-id>".
void markFederationRequest(sip::Message& request, std::string_view nodeId);
std::string federationViaParam(std::string_view nodeId);
// True if `request` carries the marker of one of `clusterNodes` in any Via
// or in an X-IMP-PF header (FED-7: answer 482).
bool carriesOwnFederationMarker(const sip::Message& request, const std::vector<std::string>& clusterNodes);
// True if `request` is marked as a partitioned-federation request by any
// IMP (User-Agent or header), for the FED-8 trace line.
bool isFederationRequest(const sip::Message& request);

}  // namespace imp::sip_proxy
