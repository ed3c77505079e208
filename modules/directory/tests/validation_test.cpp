#include <doctest/doctest.h>
#include <imp/directory/directory.h>

using namespace imp::directory;

TEST_CASE("user ids") {
  CHECK(checkUserId("js12345") == "");
  CHECK(checkUserId("john.smith_2-a") == "");
  CHECK(checkUserId("") == "userid must be 1..128 characters");
  CHECK(checkUserId("a b") == "userid may hold only letters, digits, '.', '_' and '-'");
  CHECK(checkUserId(std::string(129, 'a')) == "userid must be 1..128 characters");
}

TEST_CASE("domains (FED-3: exact names, at least two labels)") {
  CHECK(checkDomain("example.com") == "");
  CHECK(checkDomain("abc.example.com") == "");
  CHECK(checkDomain("synergy.online.com") == "");
  CHECK(checkDomain("localhost") == "domain 'localhost' needs at least two labels (example.com)");
  CHECK(checkDomain("a..b") == "domain 'a..b' has an empty label");
  CHECK(checkDomain(".example.com") == "domain '.example.com' has an empty label");
  CHECK(checkDomain("ex_ample.com") == "domain 'ex_ample.com' may hold only letters, digits, '-' and '.'");
  CHECK(checkDomain("-a.com") == "domain label may not start with '-'");
  CHECK(checkDomain("a-.com") == "domain label may not end with '-'");
  CHECK(checkDomain(std::string(64, 'a') + ".com") == "domain label longer than 63 characters");
}

TEST_CASE("IM addresses and Microsoft SIP URIs (PS-4, FED-6)") {
  CHECK(checkImAddress("js12345@cisco.com") == "");
  CHECK(checkImAddress("john.smith@webex.com") == "");
  CHECK(checkImAddress("nobody") == "IM address must be user@domain");
  CHECK(checkImAddress("@example.com") == "IM address must be user@domain");
  CHECK(checkImAddress("a b@example.com") == "IM address 'a b@example.com' has a character not allowed in the user part");
  CHECK(checkImAddress("a@example") == "domain 'example' needs at least two labels (example.com)");
  CHECK(checkMsSipUri("sip:john.smith@webex.com") == "");
  CHECK(checkMsSipUri("tel:+123") == "Microsoft SIP URI must use the sip: scheme");
  CHECK(checkMsSipUri("sip:webex.com") == "Microsoft SIP URI needs a user part (sip:user@domain)");
  CHECK(checkMsSipUri("sip:a@b.com;transport=tls") == "Microsoft SIP URI must be a plain sip:user@domain");
  CHECK(checkMsSipUri("john@webex.com").rfind("Microsoft SIP URI 'john@webex.com' is not a URI", 0) == 0);
}

TEST_CASE("PS-3 status wording") {
  Domain admin{"example.com", true, 0, ""};
  Domain used{"example.org", false, 3, ""};
  CHECK(admin.status() == "configured on local cluster");
  CHECK(used.status() == "in use on local cluster");
}
