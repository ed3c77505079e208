// The subscription state machine against RFC 6121 Appendix A, row by row.
// Each table below is transcribed from the RFC: existing state, whether the
// stanza is routed (A.2) or delivered (A.3), and the new state.
#include <doctest/doctest.h>
#include <imp/xcp_router/subscription.h>

#include <string>
#include <vector>

using namespace imp::xcp;

namespace {

using E = SubscriptionEvent;

// The nine states of A.1, by their RFC names.
SubscriptionState st(const std::string& name) {
  SubscriptionState s;
  std::string base = name.substr(0, name.find(' '));
  if (base == "None") s.subscription = Subscription::None;
  else if (base == "To") s.subscription = Subscription::To;
  else if (base == "From") s.subscription = Subscription::From;
  else if (base == "Both") s.subscription = Subscription::Both;
  else FAIL("unknown state " << name);
  s.pendingOut = name.find("Pending Out") != std::string::npos;
  s.pendingIn = name.find("Pending In") != std::string::npos || name.find("Out+In") != std::string::npos;
  return s;
}

struct Row {
  const char* existing;
  bool route;
  const char* next;  // "" = no state change
};

void checkTable(const char* section, E event, const std::vector<Row>& table) {
  REQUIRE(table.size() == 9);  // every state of A.1
  for (const auto& r : table) {
    INFO(section, " ", std::string(toString(event)), ": ", r.existing);
    auto before = st(r.existing);
    CHECK(before.name() == r.existing);
    auto o = applySubscriptionEvent(before, event);
    CHECK(o.route == r.route);
    std::string expected = *r.next ? r.next : r.existing;
    CHECK(o.state.name() == expected);
    CHECK(o.changed == (*r.next != '\0'));
  }
}

}  // namespace

TEST_CASE("RFC 6121 A.2.1: outbound subscribe") {
  checkTable("A.2.1", E::OutSubscribe,
             {{"None", true, "None + Pending Out"},
              {"None + Pending Out", true, ""},
              {"None + Pending In", true, "None + Pending Out+In"},
              {"None + Pending Out+In", true, ""},
              {"To", true, ""},
              {"To + Pending In", true, ""},
              {"From", true, "From + Pending Out"},
              {"From + Pending Out", true, ""},
              {"Both", true, ""}});
}

TEST_CASE("RFC 6121 A.2.2: outbound unsubscribe") {
  checkTable("A.2.2", E::OutUnsubscribe,
             {{"None", true, ""},
              {"None + Pending Out", true, "None"},
              {"None + Pending In", true, ""},
              {"None + Pending Out+In", true, "None + Pending In"},
              {"To", true, "None"},
              {"To + Pending In", true, "None + Pending In"},
              {"From", true, ""},
              {"From + Pending Out", true, "From"},
              {"Both", true, "From"}});
}

TEST_CASE("RFC 6121 A.2.3: outbound subscribed") {
  // The rows of None, None + Pending Out and To keep their A.1 state; with
  // pre-approval support (§3.4) they record a pre-approval (checked below),
  // so only the name is compared here.
  for (const auto& r : std::vector<Row>{{"None", false, ""},
                                        {"None + Pending Out", false, ""},
                                        {"None + Pending In", true, "From"},
                                        {"None + Pending Out+In", true, "From + Pending Out"},
                                        {"To", false, ""},
                                        {"To + Pending In", true, "Both"},
                                        {"From", false, ""},
                                        {"From + Pending Out", false, ""},
                                        {"Both", false, ""}}) {
    INFO("A.2.3 outbound subscribed: ", r.existing);
    auto o = applySubscriptionEvent(st(r.existing), E::OutSubscribed);
    CHECK(o.route == r.route);
    CHECK(o.state.name() == std::string(*r.next ? r.next : r.existing));
    CHECK(o.sendPresence == r.route);  // §3.1.5: an approval sends the user's presence
  }
}

TEST_CASE("RFC 6121 A.2.4: outbound unsubscribed") {
  checkTable("A.2.4", E::OutUnsubscribed,
             {{"None", false, ""},
              {"None + Pending Out", false, ""},
              {"None + Pending In", true, "None"},
              {"None + Pending Out+In", true, "None + Pending Out"},
              {"To", false, ""},
              {"To + Pending In", true, "To"},
              {"From", true, "None"},
              {"From + Pending Out", true, "None + Pending Out"},
              {"Both", true, "To"}});
}

TEST_CASE("RFC 6121 A.3.1: inbound subscribe") {
  checkTable("A.3.1", E::InSubscribe,
             {{"None", true, "None + Pending In"},
              {"None + Pending Out", true, "None + Pending Out+In"},
              {"None + Pending In", false, ""},
              {"None + Pending Out+In", false, ""},
              {"To", true, "To + Pending In"},
              {"To + Pending In", false, ""},
              {"From", false, ""},
              {"From + Pending Out", false, ""},
              {"Both", false, ""}});
  // The starred rows: the contact's server answers "subscribed" itself (§3.1.3).
  for (const char* s : {"From", "From + Pending Out", "Both"})
    CHECK(applySubscriptionEvent(st(s), E::InSubscribe).autoSubscribed);
  for (const char* s : {"None", "None + Pending Out", "None + Pending In", "To", "To + Pending In"})
    CHECK_FALSE(applySubscriptionEvent(st(s), E::InSubscribe).autoSubscribed);
}

TEST_CASE("RFC 6121 A.3.2: inbound unsubscribe") {
  checkTable("A.3.2", E::InUnsubscribe,
             {{"None", false, ""},
              {"None + Pending Out", false, ""},
              {"None + Pending In", true, "None"},
              {"None + Pending Out+In", true, "None + Pending Out"},
              {"To", false, ""},
              {"To + Pending In", true, "To"},
              {"From", true, "None"},
              {"From + Pending Out", true, "None + Pending Out"},
              {"Both", true, "To"}});
  // §3.3.3: losing "from" sends unavailable to the former subscriber.
  CHECK(applySubscriptionEvent(st("Both"), E::InUnsubscribe).sendUnavailable);
  CHECK_FALSE(applySubscriptionEvent(st("None + Pending In"), E::InUnsubscribe).sendUnavailable);
}

TEST_CASE("RFC 6121 A.3.3: inbound subscribed") {
  checkTable("A.3.3", E::InSubscribed,
             {{"None", false, ""},
              {"None + Pending Out", true, "To"},
              {"None + Pending In", false, ""},
              {"None + Pending Out+In", true, "To + Pending In"},
              {"To", false, ""},
              {"To + Pending In", false, ""},
              {"From", false, ""},
              {"From + Pending Out", true, "Both"},
              {"Both", false, ""}});
}

TEST_CASE("RFC 6121 A.3.4: inbound unsubscribed") {
  checkTable("A.3.4", E::InUnsubscribed,
             {{"None", false, ""},
              {"None + Pending Out", true, "None"},
              {"None + Pending In", false, ""},
              {"None + Pending Out+In", true, "None + Pending In"},
              {"To", true, "None"},
              {"To + Pending In", true, "None + Pending In"},
              {"From", false, ""},
              {"From + Pending Out", true, "From"},
              {"Both", true, "From"}});
}

TEST_CASE("RFC 6121 §3.4: pre-approval is recorded, not routed, and used by the next inbound subscribe") {
  for (const char* s : {"None", "None + Pending Out", "To"}) {
    INFO(s);
    auto pre = applySubscriptionEvent(st(s), E::OutSubscribed);
    CHECK(pre.changed);
    CHECK(pre.state.preApproved);
    CHECK_FALSE(pre.route);
    auto in = applySubscriptionEvent(pre.state, E::InSubscribe);
    CHECK(in.autoSubscribed);
    CHECK_FALSE(in.route);  // not delivered: the user already approved
    CHECK(in.sendPresence);
    CHECK_FALSE(in.state.preApproved);
    CHECK(in.state.hasFrom());
  }
  // None -> From, None + Pending Out -> From + Pending Out, To -> Both.
  auto pre = [](const char* s) {
    auto p = applySubscriptionEvent(st(s), E::OutSubscribed).state;
    return applySubscriptionEvent(p, E::InSubscribe).state.name();
  };
  CHECK(pre("None") == "From");
  CHECK(pre("None + Pending Out") == "From + Pending Out");
  CHECK(pre("To") == "Both");
  // A second subscribed changes nothing; unsubscribed cancels the pre-approval.
  auto p = applySubscriptionEvent(st("None"), E::OutSubscribed).state;
  CHECK_FALSE(applySubscriptionEvent(p, E::OutSubscribed).changed);
  auto cancelled = applySubscriptionEvent(p, E::OutUnsubscribed);
  CHECK(cancelled.changed);
  CHECK_FALSE(cancelled.route);
  CHECK_FALSE(cancelled.state.preApproved);
}

TEST_CASE("RFC 6121 §3.2.2: cancelling a subscription sends unavailable; denying a request does not") {
  CHECK(applySubscriptionEvent(st("From"), E::OutUnsubscribed).sendUnavailable);
  CHECK(applySubscriptionEvent(st("Both"), E::OutUnsubscribed).sendUnavailable);
  CHECK_FALSE(applySubscriptionEvent(st("None + Pending In"), E::OutUnsubscribed).sendUnavailable);
}

TEST_CASE("A.1: flags that do not go with the subscription are dropped, and the names of the nine states") {
  SubscriptionState odd;
  odd.subscription = Subscription::Both;
  odd.pendingOut = true;
  odd.pendingIn = true;
  CHECK(odd.name() == "Both");
  auto o = applySubscriptionEvent(odd, E::InSubscribed);
  CHECK(o.state.name() == "Both");
  CHECK_FALSE(o.state.pendingOut);
  CHECK_FALSE(o.state.pendingIn);
  CHECK(o.changed);  // the cleaned state is stored
  Subscription s;
  CHECK(parseSubscription("both", s));
  CHECK(std::string(toString(s)) == "both");
  CHECK_FALSE(parseSubscription("remove", s));
  CHECK_FALSE(parseSubscription("Both", s));
}
