#include "imp/xcp_router/subscription.h"

namespace imp::xcp {

std::string_view toString(Subscription s) {
  switch (s) {
    case Subscription::None: return "none";
    case Subscription::To: return "to";
    case Subscription::From: return "from";
    case Subscription::Both: return "both";
  }
  return "none";
}

bool parseSubscription(std::string_view text, Subscription& out) {
  for (auto s : {Subscription::None, Subscription::To, Subscription::From, Subscription::Both})
    if (text == toString(s)) {
      out = s;
      return true;
    }
  return false;
}

std::string_view toString(SubscriptionEvent e) {
  switch (e) {
    case SubscriptionEvent::OutSubscribe: return "outbound subscribe";
    case SubscriptionEvent::OutUnsubscribe: return "outbound unsubscribe";
    case SubscriptionEvent::OutSubscribed: return "outbound subscribed";
    case SubscriptionEvent::OutUnsubscribed: return "outbound unsubscribed";
    case SubscriptionEvent::InSubscribe: return "inbound subscribe";
    case SubscriptionEvent::InUnsubscribe: return "inbound unsubscribe";
    case SubscriptionEvent::InSubscribed: return "inbound subscribed";
    case SubscriptionEvent::InUnsubscribed: return "inbound unsubscribed";
  }
  return "?";
}

std::string SubscriptionState::name() const {
  // A.1: Pending Out goes with None and From only, Pending In with None and To.
  bool out = pendingOut && !hasTo();
  bool in = pendingIn && !hasFrom();
  std::string n;
  switch (subscription) {
    case Subscription::None: n = "None"; break;
    case Subscription::To: n = "To"; break;
    case Subscription::From: n = "From"; break;
    case Subscription::Both: n = "Both"; break;
  }
  if (out && in) return n + " + Pending Out+In";
  if (out) return n + " + Pending Out";
  if (in) return n + " + Pending In";
  return n;
}

namespace {

Subscription withTo(Subscription s) { return s == Subscription::From || s == Subscription::Both ? Subscription::Both : Subscription::To; }
Subscription withoutTo(Subscription s) { return s == Subscription::Both || s == Subscription::From ? Subscription::From : Subscription::None; }
Subscription withFrom(Subscription s) { return s == Subscription::To || s == Subscription::Both ? Subscription::Both : Subscription::From; }
Subscription withoutFrom(Subscription s) { return s == Subscription::Both || s == Subscription::To ? Subscription::To : Subscription::None; }

}  // namespace

SubscriptionOutcome applySubscriptionEvent(const SubscriptionState& current, SubscriptionEvent event) {
  // Flags that A.1 does not allow with the subscription are dropped first, so
  // a stored inconsistency cannot survive a transition.
  SubscriptionState s = current;
  if (s.hasTo()) s.pendingOut = false;
  if (s.hasFrom()) s.pendingIn = false;
  SubscriptionOutcome o;

  switch (event) {
    case SubscriptionEvent::OutSubscribe:  // A.2.1: always routed
      o.route = true;
      if (!s.hasTo()) s.pendingOut = true;
      break;

    case SubscriptionEvent::OutUnsubscribe:  // A.2.2: always routed
      o.route = true;
      s.pendingOut = false;
      s.subscription = withoutTo(s.subscription);
      break;

    case SubscriptionEvent::OutSubscribed:  // A.2.3
      if (s.pendingIn) {
        // Approval of the pending request: the contact gets "from" (§3.1.5).
        s.pendingIn = false;
        s.subscription = withFrom(s.subscription);
        s.preApproved = false;
        o.route = true;
        o.sendPresence = true;
      } else if (!s.hasFrom()) {
        // None, None + Pending Out, To: a pre-approval (§3.4), not routed.
        s.preApproved = true;
      }
      break;

    case SubscriptionEvent::OutUnsubscribed:  // A.2.4
      if (s.pendingIn) {
        s.pendingIn = false;  // denial of the pending request (§3.2.1)
        o.route = true;
      } else if (s.hasFrom()) {
        s.subscription = withoutFrom(s.subscription);  // cancellation (§3.2.2)
        o.route = true;
        o.sendUnavailable = true;
      }
      s.preApproved = false;  // and it cancels a pre-approval (§3.4)
      break;

    case SubscriptionEvent::InSubscribe:  // A.3.1
      if (s.hasFrom()) {
        o.autoSubscribed = true;  // already subscribed: answered for the user (§3.1.3)
      } else if (s.pendingIn) {
        // Already pending: not delivered again.
      } else if (s.preApproved) {
        s.preApproved = false;
        s.subscription = withFrom(s.subscription);
        o.autoSubscribed = true;
        o.sendPresence = true;
      } else {
        s.pendingIn = true;
        o.route = true;
      }
      break;

    case SubscriptionEvent::InUnsubscribe:  // A.3.2
      if (s.pendingIn) {
        s.pendingIn = false;
        o.route = true;
      } else if (s.hasFrom()) {
        s.subscription = withoutFrom(s.subscription);
        o.route = true;
        o.sendUnavailable = true;  // §3.3.3
      }
      break;

    case SubscriptionEvent::InSubscribed:  // A.3.3: only an answer to our request counts
      if (s.pendingOut) {
        s.pendingOut = false;
        s.subscription = withTo(s.subscription);
        o.route = true;
      }
      break;

    case SubscriptionEvent::InUnsubscribed:  // A.3.4
      if (s.pendingOut) {
        s.pendingOut = false;
        o.route = true;
      } else if (s.hasTo()) {
        s.subscription = withoutTo(s.subscription);
        o.route = true;
      }
      break;
  }
  o.state = s;
  o.changed = !(s == current);
  return o;
}

}  // namespace imp::xcp
