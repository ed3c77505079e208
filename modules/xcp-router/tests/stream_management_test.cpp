// XEP-0198 counting, the unacknowledged queue, the token bucket and the
// XEP-0280 rules as plain values (issue 16, deliverables 2 and 5).
#include <doctest/doctest.h>

#include <imp/xcp_router/carbons.h>
#include <imp/xcp_router/stream_management.h>
#include <imp/xmpp/ns.h>
#include <imp/xmpp/xml.h>

using imp::xcp::SmQueue;
using imp::xcp::TokenBucket;
namespace ns = imp::xmpp::ns;

namespace {
SmQueue::Entry entry(std::uint64_t end = 0) {
  SmQueue::Entry e;
  e.endOffset = end;
  return e;
}
}  // namespace

TEST_CASE("h is a decimal count of 0..2^32-1 (XEP-0198 §4)") {
  CHECK(imp::xcp::parseHandledCount("0") == 0u);
  CHECK(imp::xcp::parseHandledCount("4294967295") == 4294967295u);
  CHECK_FALSE(imp::xcp::parseHandledCount("4294967296"));
  CHECK_FALSE(imp::xcp::parseHandledCount("-1"));
  CHECK_FALSE(imp::xcp::parseHandledCount("1e3"));
  CHECK_FALSE(imp::xcp::parseHandledCount(""));
  CHECK_FALSE(imp::xcp::parseHandledCount(" 1"));
}

TEST_CASE("acks drop what the client handled; too high is refused; counts wrap at 2^32") {
  SmQueue q;
  for (int i = 0; i < 3; ++i) q.push(entry());
  CHECK(q.sent() == 3);
  CHECK(q.ack(1) == SmQueue::Ack::Ok);
  CHECK(q.size() == 2);
  CHECK(q.ack(1) == SmQueue::Ack::Ok);  // the same ack again changes nothing
  CHECK(q.size() == 2);
  CHECK(q.ack(4) == SmQueue::Ack::TooHigh);
  CHECK(q.size() == 2);
  CHECK(q.ack(3) == SmQueue::Ack::Ok);
  CHECK(q.empty());

}

TEST_CASE("shrink() gives an empty queue's storage back and leaves the counts") {
  SmQueue q;
  for (std::uint64_t i = 1; i <= 10; ++i) q.push(entry(i));
  q.shrink();  // not empty: nothing happens
  CHECK(q.size() == 10);
  q.pruneWritten(10);
  CHECK(q.empty());
  CHECK(q.capacity() > 0);  // a small queue's room is kept by pruning itself
  q.shrink();
  CHECK(q.capacity() == 0);
  CHECK(q.sent() == 10);
  q.push(entry(11));
  CHECK(q.size() == 1);
  CHECK(q.entries()[0].endOffset == 11);
  q.pruneWritten(11);
  CHECK(q.empty());
}

TEST_CASE("the 32-bit wrap: counts continue from 2^32-1 to 0 (XEP-0198 §4)") {
  SmQueue q(0xfffffffeu);  // both sides have counted 2^32-2 stanzas
  for (int i = 0; i < 4; ++i) q.push(entry());
  CHECK(q.sent() == 2u);  // 0xfffffffe + 4 mod 2^32
  CHECK(q.ack(0) == SmQueue::Ack::Ok);  // 0xffffffff and 0 handled: two stanzas
  CHECK(q.size() == 2);
  CHECK(q.ack(3) == SmQueue::Ack::TooHigh);
  CHECK(q.ack(2) == SmQueue::Ack::Ok);
  CHECK(q.empty());
}

TEST_CASE("many acks in steps keep the oldest-first order of what is left") {
  SmQueue q;
  for (std::uint64_t i = 1; i <= 100; ++i) q.push(entry(i));
  for (std::uint32_t h = 10; h <= 60; h += 10) CHECK(q.ack(h) == SmQueue::Ack::Ok);
  REQUIRE(q.size() == 40);
  CHECK(q.entries().front().endOffset == 61);
  CHECK(q.entries().back().endOffset == 100);
  auto rest = q.take();
  REQUIRE(rest.size() == 40);
  CHECK(rest.front().endOffset == 61);
  CHECK(q.empty());
  CHECK(q.sent() == 100u);
}

TEST_CASE("without stream management only what the kernel has not taken is kept (IM-5)") {
  SmQueue q;
  q.push(entry(100));
  q.push(entry(250));
  q.push(entry(UINT64_MAX));  // never written: the connection was gone
  q.pruneWritten(120);
  CHECK(q.size() == 2);
  q.pruneWritten(250);
  CHECK(q.size() == 1);
  q.pruneWritten(1000000);
  CHECK(q.size() == 1);
}

TEST_CASE("a token bucket: burst, debt and refill") {
  auto t0 = TokenBucket::Clock::time_point{};
  TokenBucket b(10, 20, t0);
  b.take(20, t0);
  CHECK(b.debtDuration(t0) == TokenBucket::Clock::duration::zero());
  b.take(5, t0);
  CHECK(b.debtDuration(t0) == std::chrono::milliseconds(500));
  CHECK(b.debtDuration(t0 + std::chrono::milliseconds(500)) == TokenBucket::Clock::duration::zero());
  CHECK(b.balance(t0 + std::chrono::seconds(100)) == doctest::Approx(20));  // never above the burst
  TokenBucket unlimited(0, 0, t0);
  unlimited.take(1e9, t0);
  CHECK(unlimited.debtDuration(t0) == TokenBucket::Clock::duration::zero());
}

TEST_CASE("XEP-0280 eligibility and the copy's shape") {
  using imp::xmpp::Element;
  auto msg = [](std::string type) {
    Element m("message", std::string(ns::kClient));
    if (!type.empty()) m.setAttr("type", type);
    return m;
  };
  auto chat = msg("chat");
  CHECK(imp::xcp::carbonEligible(chat));
  auto normal = msg("");
  CHECK_FALSE(imp::xcp::carbonEligible(normal));  // no body, no IM payload
  normal.addChild("body", std::string(ns::kClient)).addText("x");
  CHECK(imp::xcp::carbonEligible(normal));
  auto state = msg("normal");
  state.addChild("composing", std::string(ns::kChatStates));
  CHECK(imp::xcp::carbonEligible(state));
  auto headline = msg("headline");
  headline.addChild("body", std::string(ns::kClient)).addText("x");
  CHECK_FALSE(imp::xcp::carbonEligible(headline));
  CHECK_FALSE(imp::xcp::carbonEligible(msg("groupchat")));
  CHECK_FALSE(imp::xcp::carbonEligible(msg("error")));
  auto priv = msg("chat");
  priv.addChild("private", std::string(ns::kCarbons));
  CHECK_FALSE(imp::xcp::carbonEligible(priv));
  auto nocopy = msg("chat");
  nocopy.addChild("no-copy", std::string(ns::kHints));
  CHECK_FALSE(imp::xcp::carbonEligible(nocopy));

  chat.setAttr("from", "bob@example.com/pc").setAttr("to", "ann@example.com/pc");
  auto copy = imp::xcp::carbonCopy(chat, "received", "ann@example.com", "ann@example.com/phone");
  CHECK(imp::xcp::isCarbon(copy));
  CHECK_FALSE(imp::xcp::carbonEligible(copy));  // no copies of copies
  CHECK(copy.serialize(ns::kClient) ==
        "<message from='ann@example.com' to='ann@example.com/phone' type='chat'>"
        "<received xmlns='urn:xmpp:carbons:2'><forwarded xmlns='urn:xmpp:forward:0'>"
        "<message xmlns='jabber:client' type='chat' from='bob@example.com/pc' to='ann@example.com/pc'/>"
        "</forwarded></received></message>");
}

TEST_CASE("the carbons registry copies to the enabled resources except the ones named") {
  imp::xcp::CarbonsRegistry reg;
  std::vector<std::string> got;
  auto sink = [&got](std::string name) {
    return [&got, name](std::shared_ptr<const imp::xmpp::Element> e) {
      got.push_back(name + ":" + std::string(e->attrOr("to", "")));
      return true;
    };
  };
  reg.enable("ann@example.com", "pc", sink("pc"));
  reg.enable("ann@example.com", "phone", sink("phone"));
  reg.enable("bob@example.com", "pc", sink("bob"));
  imp::xmpp::Element m("message", std::string(ns::kClient));
  m.setAttr("type", "chat");
  CHECK(reg.copy(m, "sent", "ann@example.com", {"pc"}) == 1);
  CHECK(got == std::vector<std::string>{"phone:ann@example.com/phone"});
  reg.disable("ann@example.com", "phone");
  CHECK(reg.copy(m, "sent", "ann@example.com", {"pc"}) == 0);
  CHECK(reg.enabledCount() == 2);
}
