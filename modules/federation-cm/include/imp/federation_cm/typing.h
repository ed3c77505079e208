#pragma once
// Typing notifications (IM-1, IM-2): Lync's KeyboardActivity INFO bodies,
// RFC 3994 isComposing documents, and XEP-0085 chat states. Pure functions,
// any thread; bodies are untrusted (size-capped, DTDs refused).
#include <optional>
#include <string>
#include <string_view>

namespace imp::fcm {

enum class Typing {
  Active,  // the user is composing
  Idle,    // stopped (or never started)
};

inline constexpr std::string_view kIsComposingNs = "urn:ietf:params:xml:ns:im-iscomposing";
inline constexpr std::string_view kIsComposingContentType = "application/im-iscomposing+xml";
inline constexpr std::string_view kKeyboardActivityContentType = "application/xml";

// Lync's INFO body (Content-Type: application/xml):
//   <?xml version="1.0"?><KeyboardActivity><status status="type" /></KeyboardActivity>
// status "type" -> Active, "idle" -> Idle. The root's namespace is not
// checked (Lync sends none); any other root, a missing <status>, or another
// status value -> nullopt with the reason.
std::optional<Typing> parseKeyboardActivity(std::string_view body, std::string* why = nullptr);
// The body Lync expects, exactly the form above.
std::string buildKeyboardActivity(Typing typing);

// RFC 3994 (application/im-iscomposing+xml): <isComposing> in kIsComposingNs
// with <state> "active" -> Active, "idle" -> Idle (trimmed, case-sensitive).
std::optional<Typing> parseIsComposing(std::string_view body, std::string* why = nullptr);
// <isComposing> with <state>, <contenttype>text/plain</contenttype>, and
// for Active <refresh>refreshSeconds</refresh> (RFC 3994 §3: refresh only
// with the active state).
std::string buildIsComposing(Typing typing, int refreshSeconds = 60);

// Either format by Content-Type: application/im-iscomposing+xml ->
// parseIsComposing, application/xml -> parseKeyboardActivity; any other type
// -> nullopt ("not a typing body").
std::optional<Typing> parseTypingBody(std::string_view contentType, std::string_view body, std::string* why = nullptr);

// XEP-0085: Active -> "composing", Idle -> "paused".
std::string_view chatStateFor(Typing typing);
// XEP-0085 state name -> Typing: "composing" -> Active; "paused", "active",
// "inactive", "gone" -> Idle; anything else -> nullopt.
std::optional<Typing> typingFor(std::string_view chatState);

}  // namespace imp::fcm
