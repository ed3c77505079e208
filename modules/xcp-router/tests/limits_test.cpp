// PS-1 limits and the XEP-0191 match forms: pure functions.
#include <doctest/doctest.h>
#include <imp/xcp_router/limits.h>
#include <imp/xcp_router/privacy_store.h>

using namespace imp::xcp;

TEST_CASE("PS-1: 0 means no limit; otherwise one more may not pass the maximum") {
  CHECK_FALSE(exceeds(0, 0));
  CHECK_FALSE(exceeds(1000000, 0));
  CHECK_FALSE(exceeds(199, 200));
  CHECK(exceeds(200, 200));
  CHECK(exceeds(5, 1));
  CHECK_FALSE(exceeds(0, 1));
}

TEST_CASE("PS-1: the limit error names the limit and its value; policy-violation, not a retry invitation") {
  LimitError contacts{LimitError::Limit::Contacts, 200};
  CHECK(contacts.condition() == "policy-violation");
  CHECK(contacts.type() == "modify");
  CHECK(contacts.text() == "the contact list is full: at most 200 contacts per user (PS-1)");
  LimitError watchers{LimitError::Limit::Watchers, 3};
  CHECK(watchers.type() == "cancel");
  CHECK(watchers.text() == "too many watchers: at most 3 users may see one user's presence (PS-1)");
}

TEST_CASE("XEP-0016 §2.1 order of the forms a JID is blocked by (XEP-0191)") {
  CHECK(blockMatchForms("ann@example.com/phone") ==
        std::vector<std::string>{"ann@example.com/phone", "ann@example.com", "example.com/phone", "example.com"});
  CHECK(blockMatchForms("ann@example.com") == std::vector<std::string>{"ann@example.com", "example.com"});
  CHECK(blockMatchForms("example.com") == std::vector<std::string>{"example.com"});
  CHECK(blockMatchForms("example.com/bot") == std::vector<std::string>{"example.com/bot", "example.com"});
  // An '@' or '/' inside the resource belongs to the resource (RFC 7622 §3.4).
  CHECK(blockMatchForms("ann@example.com/a@b/c") ==
        std::vector<std::string>{"ann@example.com/a@b/c", "ann@example.com", "example.com/a@b/c", "example.com"});
}
