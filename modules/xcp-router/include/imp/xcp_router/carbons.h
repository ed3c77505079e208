#pragma once
// XEP-0280 message carbons (issue 16, deliverable 5): which messages are
// copied, what a copy looks like, and which resources asked for copies.
//
//  - carbonEligible(): XEP-0280 §6 (v1.0): type chat; type normal (or no
//    type) with a <body/>; or a message carrying the IM payloads chat
//    states (XEP-0085), receipts (XEP-0184) and chat markers (XEP-0333).
//    Never: a message with <private xmlns='urn:xmpp:carbons:2'/> (§9) or
//    the <no-copy/> hint (XEP-0334 §4.2), a carbon itself (a <received/> or
//    <sent/> wrapper: no copies of copies), groupchat, headline and error.
//  - carbonCopy(): <message from=bare to=full type=...><received|sent
//    xmlns='urn:xmpp:carbons:2'><forwarded xmlns='urn:xmpp:forward:0'>
//    original</forwarded></...></message> (§6, §7, XEP-0297).
//  - CarbonsRegistry: per bare JID, the resources that sent <enable/> and
//    the function that hands a copy to each one. Thread-safe; every
//    C2sStream of the node registers here, on whichever loop it lives.
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include <imp/xmpp/xml.h>

namespace imp::xcp {

bool carbonEligible(const xmpp::Element& message);
// True for a <message/> holding <received/> or <sent/> of urn:xmpp:carbons:2.
bool isCarbon(const xmpp::Element& message);
// `direction` is "received" or "sent".
xmpp::Element carbonCopy(const xmpp::Element& original, std::string_view direction, const std::string& userBare,
                         const std::string& toFull);

class CarbonsRegistry {
 public:
  // Hands one copy to the resource's session (posts to its loop); false
  // when the session is gone.
  using Deliver = std::function<bool(std::shared_ptr<const xmpp::Element> copy)>;
  void enable(const std::string& bare, const std::string& resource, Deliver deliver);
  void disable(const std::string& bare, const std::string& resource);
  bool enabled(const std::string& bare, const std::string& resource) const;
  // Copies of `original` to every enabled resource of `bare` except those in
  // `except` (the sender's own resource, the resource that got the
  // original). Returns how many were handed out.
  std::size_t copy(const xmpp::Element& original, std::string_view direction, const std::string& bare,
                   const std::vector<std::string>& except);
  std::size_t enabledCount() const;

 private:
  mutable std::mutex mu_;
  std::map<std::string, std::map<std::string, Deliver>, std::less<>> byUser_;
};

}  // namespace imp::xcp
