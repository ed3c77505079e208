#pragma once
// The routing decision for one SIP recipient (FED-6, FED-7, FED-8, RT-5) and
// the partitioned-federation loop marker.
//
// The decision itself lives in modules/directory (imp/directory/routing.h,
// issue 15 deliverable 1): pure functions over plain data, shared with the
// federation connection manager and the XMPP router. This header adapts a
// SIP recipient to it: "user@domain" or a sip:/sips: URI (a URI without a
// user part is routed by its domain), the federation settings, and the
// static route table; and keeps what is SIP's own, the marker.
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
#include <imp/directory/routing.h>

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

namespace imp::sip_proxy {

// Moved to modules/directory; the names stay usable here.
using directory::CachedLookup;
using directory::CachedRecipient;
using directory::CacheMiss;
using directory::DirectoryLookup;
using directory::directoryLookup;
using directory::RecordingLookup;
using directory::nameOf;
using RoutingDecision = directory::RoutingDecisionOf<StaticRoute>;

// The federation settings as the decision takes them.
directory::FederationRouting federationRouting(const FederationSettings& f);

// The recipient of "user@domain" or a sip:/sips: URI as plain data: the
// address user@domain (lower-case, the user part unescaped) or, for a URI
// without a user part, the domain alone; nullopt if it is neither.
std::optional<directory::Recipient> sipRecipient(std::string_view recipient);

// The recipient's address as the directory is asked for it: user@domain,
// lower-case, from "user@domain" or a sip:/sips: URI; nullopt if it is not one.
std::optional<std::string> recipientAddress(std::string_view recipient);

// recipient: "user@domain" or a sip:/sips: URI; a URI without a user part
// ("sip:example.com") is routed by its domain (decideDomainRoute); anything
// else is Reject 400. `returningOwnRequest`: the request carries this
// cluster's outbound partitioned-federation marker (carriesOwnFederationMarker).
RoutingDecision decideRoute(std::string_view recipient, const FederationSettings& federation, DirectoryLookup& directory,
                            const RouteTable& routes, bool returningOwnRequest = false);
// The same for a recipient already adapted (sipRecipient); the relay path
// asks for Reasons::RejectsOnly (directory::Reasons).
RoutingDecision decideRoute(const directory::Recipient& recipient, const FederationSettings& federation,
                            DirectoryLookup& directory, const RouteTable& routes, bool returningOwnRequest = false,
                            directory::Reasons reasons = directory::Reasons::Explain);

// A request addressed to a domain itself (Request-URI without a user part,
// e.g. REGISTER sip:example.com); see directory::decideDomainRoute.
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
