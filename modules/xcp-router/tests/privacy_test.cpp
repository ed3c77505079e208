// The privacy policy (AV-1, PS-2) over PrivacyStore and BlockList on the fake
// database: Approve / Ask / PoliteBlock, earlier decisions, XEP-0191.
#include <doctest/doctest.h>
#include <imp/xcp_router/presence_settings.h>
#include <imp/xcp_router/privacy_policy.h>

#include "store_fixture.h"

using namespace imp::xcp;
using xcptest::StoreFixture;

namespace {

// As text: doctest would otherwise find toString() by argument lookup.
std::string verdict(PolicyVerdict v) { return std::string(toString(v)); }

struct PolicyFixture : StoreFixture {
  PresenceSettingsStore settingsStore{db};
  LivePresenceSettings live{settingsStore};
  PrivacyStore decisions{db};
  BlockList blocks{db};
  PrivacyPolicy policy{decisions, blocks, live};
  PolicyFixture() { live.reload(); }
  void autoApprove(bool on) {
    settingsStore.update({.autoApprove = on});
    live.reload();
  }
};

}  // namespace

TEST_CASE_FIXTURE(PolicyFixture, "PS-2: auto-approval on (the default) approves; off asks") {
  CHECK(live.current().autoApprove);
  CHECK(verdict(policy.decide("ann", "carol@example.org")) == "approve");
  autoApprove(false);
  CHECK(verdict(policy.decide("ann", "carol@example.org")) == "ask");
  autoApprove(true);
  CHECK(verdict(policy.decide("ann", "carol@example.org")) == "approve");
}

TEST_CASE_FIXTURE(PolicyFixture, "AV-1: earlier decisions are applied without asking; a block is polite") {
  autoApprove(false);
  policy.remember("ann", "carol@example.org", PrivacyDecision::Allow);
  policy.remember("ann", "mallory@example.org/desk", PrivacyDecision::Block);  // kept for the bare JID
  CHECK(verdict(policy.decide("ann", "carol@example.org")) == "approve");
  CHECK(verdict(policy.decide("ann", "carol@example.org/laptop")) == "approve");
  CHECK(verdict(policy.decide("ann", "mallory@example.org")) == "polite-block");
  CHECK(verdict(policy.decide("ann", "dave@example.org")) == "ask");
  // Decisions are per owner.
  CHECK(verdict(policy.decide("bob", "mallory@example.org")) == "ask");
  // An earlier block wins over auto-approval.
  autoApprove(true);
  CHECK(verdict(policy.decide("ann", "mallory@example.org")) == "polite-block");
  // A changed mind replaces the decision.
  policy.remember("ann", "mallory@example.org", PrivacyDecision::Allow);
  CHECK(verdict(policy.decide("ann", "mallory@example.org")) == "approve");
  auto list = decisions.list("ann");
  REQUIRE(list.size() == 2);
  CHECK(list[0].watcher == "carol@example.org");
  CHECK(list[1].watcher == "mallory@example.org");
  CHECK(std::string(toString(list[1].decision)) == "allow");
  CHECK(list[1].decidedAt.size() == 19);
  CHECK(decisions.forget("ann", "carol@example.org"));
  CHECK_FALSE(decisions.forget("ann", "carol@example.org"));
  CHECK_FALSE(decisions.decision("ann", "carol@example.org"));
}

TEST_CASE_FIXTURE(PolicyFixture, "XEP-0191: the block list blocks politely, by full, bare, domain/resource or domain") {
  CHECK(blocks.block("ann", {"mallory@example.org", "spam.example", "x@y.org/bot", "mallory@example.org"}) == 3);
  CHECK(blocks.block("ann", {"spam.example"}) == 0);  // already there
  CHECK(blocks.list("ann") == std::vector<std::string>{"mallory@example.org", "spam.example", "x@y.org/bot"});
  CHECK(verdict(policy.decide("ann", "mallory@example.org")) == "polite-block");
  CHECK(verdict(policy.decide("ann", "mallory@example.org/phone")) == "polite-block");
  CHECK(verdict(policy.decide("ann", "anyone@spam.example")) == "polite-block");
  CHECK(verdict(policy.decide("ann", "x@y.org/bot")) == "polite-block");
  CHECK(verdict(policy.decide("ann", "x@y.org")) == "approve");  // only that resource is blocked
  CHECK(verdict(policy.decide("ann", "mallory@example.org.evil")) == "approve");
  // The block list wins over an earlier allow.
  policy.remember("ann", "mallory@example.org", PrivacyDecision::Allow);
  CHECK(verdict(policy.decide("ann", "mallory@example.org")) == "polite-block");
  CHECK(blocks.unblock("ann", {"mallory@example.org"}) == 1);
  CHECK(verdict(policy.decide("ann", "mallory@example.org")) == "approve");
  // XEP-0191 §3.4: an empty unblock removes everything.
  CHECK(blocks.unblock("ann", {}) == 2);
  CHECK(blocks.list("ann").empty());
  CHECK_FALSE(blocks.isBlocked("ann", "anyone@spam.example"));
  CHECK_THROWS_AS(blocks.block("ann", {""}), StoreInputError);
  CHECK_THROWS_AS(blocks.block("nobody", {"a@b"}), StoreInputError);
}

TEST_CASE_FIXTURE(PolicyFixture, "the policy does not answer Approve when the database is gone") {
  db.failNextOperations(1);
  CHECK_THROWS_AS(policy.decide("ann", "carol@example.org"), imp::core::DbError);
}
