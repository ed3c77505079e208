// Typing notifications: Lync KeyboardActivity, RFC 3994 isComposing, XEP-0085.
#include <imp/federation_cm/typing.h>

#include <doctest/doctest.h>

#include <string>

using namespace imp::fcm;

namespace {

std::string why(std::optional<Typing> (*fn)(std::string_view, std::string*), std::string_view body) {
  std::string w;
  CHECK_FALSE(fn(body, &w).has_value());
  CHECK_FALSE(w.empty());
  return w;
}

}  // namespace

TEST_CASE("KeyboardActivity: Lync's type and idle bodies") {
  CHECK(parseKeyboardActivity("<?xml version=\"1.0\"?><KeyboardActivity><status status=\"type\" /></KeyboardActivity>") ==
        Typing::Active);
  CHECK(parseKeyboardActivity("<?xml version=\"1.0\"?>\r\n<KeyboardActivity>\r\n  <status status=\"idle\" />\r\n"
                              "</KeyboardActivity>\r\n") == Typing::Idle);
  // A namespace on the root (some builds add one) does not matter.
  CHECK(parseKeyboardActivity("<KeyboardActivity xmlns='urn:x'><status status='type'/></KeyboardActivity>") ==
        Typing::Active);
}

TEST_CASE("KeyboardActivity: build is Lync's exact form and parses back") {
  CHECK(buildKeyboardActivity(Typing::Active) ==
        "<?xml version=\"1.0\"?><KeyboardActivity><status status=\"type\" /></KeyboardActivity>");
  CHECK(buildKeyboardActivity(Typing::Idle) ==
        "<?xml version=\"1.0\"?><KeyboardActivity><status status=\"idle\" /></KeyboardActivity>");
  CHECK(parseKeyboardActivity(buildKeyboardActivity(Typing::Active)) == Typing::Active);
  CHECK(parseKeyboardActivity(buildKeyboardActivity(Typing::Idle)) == Typing::Idle);
}

TEST_CASE("KeyboardActivity: bad bodies are refused with a reason") {
  CHECK(why(parseKeyboardActivity, "<KeyboardActivity><status status='typing'/></KeyboardActivity>").find("typing") !=
        std::string::npos);
  why(parseKeyboardActivity, "<KeyboardActivity><status/></KeyboardActivity>");
  why(parseKeyboardActivity, "<KeyboardActivity/>");
  why(parseKeyboardActivity, "<Keyboard><status status='type'/></Keyboard>");
  why(parseKeyboardActivity, "<KeyboardActivity><status status='type'/>");  // truncated
  why(parseKeyboardActivity, "");
  why(parseKeyboardActivity,
      "<!DOCTYPE KeyboardActivity [<!ENTITY t 'type'>]><KeyboardActivity><status status='&t;'/></KeyboardActivity>");
  why(parseKeyboardActivity, std::string(9000, ' ') + "<KeyboardActivity><status status='type'/></KeyboardActivity>");
}

TEST_CASE("isComposing (RFC 3994): active and idle") {
  CHECK(parseIsComposing("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                         "<isComposing xmlns=\"urn:ietf:params:xml:ns:im-iscomposing\"><state>active</state>"
                         "<contenttype>text/plain</contenttype><refresh>60</refresh></isComposing>") == Typing::Active);
  CHECK(parseIsComposing("<ic:isComposing xmlns:ic='urn:ietf:params:xml:ns:im-iscomposing'><ic:state> idle "
                         "</ic:state><ic:lastactive>2024-01-01T00:00:00Z</ic:lastactive></ic:isComposing>") ==
        Typing::Idle);
}

TEST_CASE("isComposing: build and parse back; refresh only while active") {
  const std::string active = buildIsComposing(Typing::Active, 90);
  CHECK(active.find("<state>active</state>") != std::string::npos);
  CHECK(active.find("<contenttype>text/plain</contenttype>") != std::string::npos);
  CHECK(active.find("<refresh>90</refresh>") != std::string::npos);
  CHECK(parseIsComposing(active) == Typing::Active);
  const std::string idle = buildIsComposing(Typing::Idle);
  CHECK(idle.find("<state>idle</state>") != std::string::npos);
  CHECK(idle.find("refresh") == std::string::npos);
  CHECK(parseIsComposing(idle) == Typing::Idle);
}

TEST_CASE("isComposing: bad bodies are refused") {
  why(parseIsComposing, "<isComposing><state>active</state></isComposing>");  // no namespace
  why(parseIsComposing, "<isComposing xmlns='urn:ietf:params:xml:ns:im-iscomposing'/>");
  CHECK(why(parseIsComposing, "<isComposing xmlns='urn:ietf:params:xml:ns:im-iscomposing'><state>ACTIVE</state>"
                              "</isComposing>")
            .find("ACTIVE") != std::string::npos);
  why(parseIsComposing, "<isComposing xmlns='urn:ietf:params:xml:ns:im-iscomposing'><state>active</state>");
  why(parseIsComposing, "<isComposing xmlns='urn:ietf:params:xml:ns:im-iscomposing' xmlns:x='urn:x'>"
                        "<x:state>active</x:state></isComposing>");
}

TEST_CASE("parseTypingBody dispatches by Content-Type") {
  CHECK(parseTypingBody("application/xml", buildKeyboardActivity(Typing::Active)) == Typing::Active);
  CHECK(parseTypingBody("Application/IM-isComposing+XML; charset=utf-8", buildIsComposing(Typing::Idle)) ==
        Typing::Idle);
  std::string w;
  CHECK_FALSE(parseTypingBody("text/plain", buildKeyboardActivity(Typing::Active), &w));
  CHECK(w.find("not a typing body") != std::string::npos);
  // The right body under the wrong type is refused, not guessed.
  CHECK_FALSE(parseTypingBody("application/xml", buildIsComposing(Typing::Active)));
  CHECK_FALSE(parseTypingBody("", ""));
}

TEST_CASE("XEP-0085 mapping") {
  CHECK(chatStateFor(Typing::Active) == "composing");
  CHECK(chatStateFor(Typing::Idle) == "paused");
  CHECK(typingFor("composing") == Typing::Active);
  CHECK(typingFor("paused") == Typing::Idle);
  CHECK(typingFor("active") == Typing::Idle);
  CHECK(typingFor("inactive") == Typing::Idle);
  CHECK(typingFor("gone") == Typing::Idle);
  CHECK_FALSE(typingFor("typing"));
  CHECK_FALSE(typingFor(""));
  CHECK_FALSE(typingFor("Composing"));
}
