#pragma once
// The session manager (issue 16, deliverable 4): the Router's local handler
// for stanzas addressed to local users' bare JIDs, to resources they have
// not bound, and to the server on a user's behalf. This part applies the
// delivery rules of RFC 6121 §8.5 to messages, presence and iq; rosters,
// subscriptions and offline storage plug in here (xcpstore).
//
//  message, bare JID (§8.5.2.1.1): every bound resource (priorities are not
//    tracked yet, so all of them are "highest"); none bound: the sender gets
//    service-unavailable (§8.5.2.2.1, no offline storage yet).
//  message, full JID not bound (§8.5.3.2.1): chat/normal as to the bare JID;
//    groupchat: service-unavailable; headline: dropped (the RFC's rule),
//    counted and logged.
//  presence, bare JID (§8.5.2.1.3): every bound resource; none: dropped per
//    §8.5.2.2.3, counted. To the user's own bare JID from its own resource:
//    broadcast presence (§4.2), counted (no roster yet: nobody to tell).
//  iq, bare JID (§8.5.2.1.4): handled for the user; the namespaces not
//    served yet are answered service-unavailable; to a full JID not bound:
//    service-unavailable (§8.5.3.2.3).
//
// Threads: handle() runs on whichever thread the Router decided on (a loop
// or a worker); it only reads the Router and sends through it.
#include <atomic>
#include <cstdint>
#include <memory>

#include "imp/xcp_router/router.h"

namespace spdlog {
class logger;
}

namespace imp::xcp {

struct SessionManagerStats {
  std::atomic<std::uint64_t> toResources{0}, bounced{0}, droppedByRule{0}, broadcasts{0};
};

class SessionManager {
 public:
  SessionManager(Router& router, std::shared_ptr<spdlog::logger> log);
  // Installs handle() as the router's local handler and bounce() as its
  // bounce handler.
  void attach();
  void handle(RoutedStanza stanza);
  // An error stanza back to the sender (RFC 6120 §8.3); an error is never
  // answered with an error (§8.3.1), and presence errors to unknown users
  // are not sent (RFC 6121 §4.3.2... counted instead).
  void bounce(RoutedStanza stanza, std::string_view condition, std::string text);
  const SessionManagerStats& stats() const { return stats_; }

 private:
  void toEveryResource(const RoutedStanza& stanza, const std::vector<std::string>& resources);
  Router& router_;
  std::shared_ptr<spdlog::logger> log_;
  SessionManagerStats stats_;
};

}  // namespace imp::xcp
