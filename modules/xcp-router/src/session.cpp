#include "imp/xcp_router/session.h"

#include <imp/xmpp/stanza.h>
#include <imp/xmpp/xml.h>
#include <spdlog/spdlog.h>

namespace imp::xcp {

SessionManager::SessionManager(Router& router, std::shared_ptr<spdlog::logger> log)
    : router_(router), log_(std::move(log)) {}

void SessionManager::attach() {
  router_.setLocalHandler([this](RoutedStanza s) { handle(std::move(s)); });
  router_.setBounceHandler(
      [this](RoutedStanza s, std::string_view condition, std::string text) { bounce(std::move(s), condition, std::move(text)); });
}

void SessionManager::toEveryResource(const RoutedStanza& stanza, const std::vector<std::string>& resources) {
  for (const auto& r : resources) {
    RoutedStanza copy = stanza;
    copy.to.resource = r;
    ++stats_.toResources;
    router_.deliverToSession(std::move(copy));
  }
}

void SessionManager::handle(RoutedStanza s) {
  auto resources = s.to.local.empty() ? std::vector<std::string>{} : router_.resourcesOf(s.to.bare());
  const bool bare = s.to.isBare();
  switch (s.kind) {
    case StanzaKind::Message: {
      if (!bare && s.type == "groupchat")
        return bounce(std::move(s), "service-unavailable", "no such resource (RFC 6121 §8.5.3.2.1)");
      if (!bare && s.type == "headline") {
        ++stats_.droppedByRule;
        if (log_) log_->debug("headline to unbound {} dropped (RFC 6121 §8.5.3.2.1)", s.to.full());
        return;
      }
      if (s.to.local.empty())
        return bounce(std::move(s), "service-unavailable", "the server takes no messages");
      if (resources.empty())
        return bounce(std::move(s), "service-unavailable", s.to.bare() + " is offline and offline storage is not available");
      toEveryResource(s, resources);
      return;
    }
    case StanzaKind::Presence: {
      if (s.from.bare() == s.to.bare()) {
        ++stats_.broadcasts;  // RFC 6121 §4.2/§4.4: the roster decides who hears it
        return;
      }
      if (resources.empty()) {
        ++stats_.droppedByRule;
        if (log_) log_->debug("presence to offline {} dropped (RFC 6121 §8.5.2.2.3)", s.to.bare());
        return;
      }
      toEveryResource(s, resources);
      return;
    }
    case StanzaKind::Iq:
      if (s.type == "result" || s.type == "error") {
        ++stats_.droppedByRule;  // RFC 6120 §8.2.3: answers nobody waits for are ignored
        return;
      }
      if (!bare) return bounce(std::move(s), "service-unavailable", "no such resource (RFC 6121 §8.5.3.2.3)");
      return bounce(std::move(s), "service-unavailable", "this request is not served for " + s.to.bare());
  }
}

void SessionManager::bounce(RoutedStanza s, std::string_view condition, std::string text) {
  ++stats_.bounced;
  if (!s.element || s.type == "error" || s.kind == StanzaKind::Presence) {
    // §8.3.1: no error about an error; presence to nobody has no answer.
    if (log_) log_->debug("not answered ({} to {}): {} {}", nameOf(s.kind), s.to.full(), condition, text);
    return;
  }
  auto cond = xmpp::stanzaErrorFromName(condition).value_or(xmpp::StanzaErrorCondition::UndefinedCondition);
  auto err = xmpp::makeError(*s.element, cond, text);
  RoutedStanza back;
  back.kind = s.kind;
  back.from = s.to;
  back.to = s.from;
  back.type = "error";
  back.element = std::make_shared<const xmpp::Element>(std::move(err));
  if (log_) log_->debug("{} to {} answered {}: {}", nameOf(s.kind), s.to.full(), condition, text);
  router_.route(std::move(back));
}

}  // namespace imp::xcp
