#pragma once
// The presence subscription state machine of RFC 6121 §3 and Appendix A, as
// a pure function: (state of one roster item, one subscription stanza) ->
// (new state, what the server does with the stanza). No I/O, no locks; the
// session manager applies the result (store the item, push it, route or
// deliver the stanza, answer on the user's behalf).
//
// "User" is the local account whose roster item this is; "contact" is the
// other party. Outbound events are stanzas the user sends (RFC 6121 A.2),
// inbound events are stanzas the contact sends to the user (A.3).
#include <string>
#include <string_view>

namespace imp::xcp {

// The 'subscription' attribute of a roster item (RFC 6121 §2.1.2.5).
enum class Subscription { None, To, From, Both };

std::string_view toString(Subscription s);
// "none" | "to" | "from" | "both"; false for anything else.
bool parseSubscription(std::string_view text, Subscription& out);

// The state of one roster item (RFC 6121 Appendix A.1): the subscription,
// the two pending flags ("Pending Out" = ask='subscribe', "Pending In" = an
// inbound subscribe the user has not answered) and the pre-approval (§3.4).
struct SubscriptionState {
  Subscription subscription = Subscription::None;
  bool pendingOut = false;
  bool pendingIn = false;
  bool preApproved = false;

  bool hasTo() const { return subscription == Subscription::To || subscription == Subscription::Both; }
  bool hasFrom() const { return subscription == Subscription::From || subscription == Subscription::Both; }
  // One of the nine states of A.1 (pre-approval is not part of its name):
  // "None + Pending Out+In", "From + Pending Out", ... Pending flags that
  // cannot go with the subscription (Pending Out with To) are not shown.
  std::string name() const;
  friend bool operator==(const SubscriptionState&, const SubscriptionState&) = default;
};

enum class SubscriptionEvent {
  OutSubscribe,     // user -> contact: subscribe (A.2.1)
  OutUnsubscribe,   // user -> contact: unsubscribe (A.2.2)
  OutSubscribed,    // user -> contact: subscribed (A.2.3; approval or pre-approval)
  OutUnsubscribed,  // user -> contact: unsubscribed (A.2.4; denial or cancellation)
  InSubscribe,      // contact -> user: subscribe (A.3.1)
  InUnsubscribe,    // contact -> user: unsubscribe (A.3.2)
  InSubscribed,     // contact -> user: subscribed (A.3.3)
  InUnsubscribed,   // contact -> user: unsubscribed (A.3.4)
};

std::string_view toString(SubscriptionEvent e);

// What the server does for one event.
struct SubscriptionOutcome {
  SubscriptionState state;  // the new state
  // The item changed (state or pre-approval): store it and push it to the
  // user's interested resources (RFC 6121 §3.1.2, §3.1.5, §3.2.2, ...).
  bool changed = false;
  // The "ROUTE?" column of Appendix A: outbound -> route the stanza to the
  // contact; inbound -> deliver it to the user's available resources.
  bool route = false;
  // Inbound subscribe that is already approved (state From/Both, or a
  // pre-approval): answer "subscribed" to the contact on the user's behalf
  // and do not deliver it (RFC 6121 §3.1.3, §3.4).
  bool autoSubscribed = false;
  // The user just granted a subscription (outbound subscribed that gave
  // "from", or an inbound subscribe met by a pre-approval): send the user's
  // current presence from every available resource to the contact (§3.1.5).
  bool sendPresence = false;
  // The contact just lost its subscription to the user's presence (outbound
  // unsubscribed or inbound unsubscribe removed "from"): send "unavailable"
  // from every available resource of the user to the contact (§3.2.2, §3.3.3).
  bool sendUnavailable = false;
};

// RFC 6121 Appendix A. `current` is the item's state, or a default
// SubscriptionState when the user's roster has no item for the contact
// (handled as "None", the item being created when `changed`).
SubscriptionOutcome applySubscriptionEvent(const SubscriptionState& current, SubscriptionEvent event);

}  // namespace imp::xcp
