// PIDF / RPID on the small expat reader (xml_doc.h). Lync's plain-PIDF
// answers (one tuple plus some RPID/CIPID elements) and SIMPLE servers'
// documents differ in where they put <note> and <activities>, so both are
// searched for wherever they may be, and nothing unknown is an error.
#include <imp/federation_cm/pidf.h>

#include <imp/federation_cm/media_type.h>

#include "xml_doc.h"

namespace imp::fcm {

namespace {

using detail::XmlNode;

struct Reading {
  MicrosoftPresence out;
  bool basicSeen = false;
  bool noteSeen = false;
};

bool isNoteNs(std::string_view ns) { return ns == kPidfNs || ns == kCpimPidfNs || ns == kDataModelNs; }

std::optional<int> smallNumber(std::string_view text) {
  text = detail::trimXmlSpace(text);
  if (text.empty() || text.size() > 6) return std::nullopt;
  int v = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + (c - '0');
  }
  return v;
}

// Depth-first over the whole document: every rule in pidf.h is "the first in
// document order" or "all of them".
void walk(const XmlNode& n, Reading& r, bool pidfNs) {
  const bool inPidf = pidfNs && (n.ns == kPidfNs || n.ns == kCpimPidfNs);
  if (inPidf && n.name == "tuple" && !r.basicSeen) {
    if (const XmlNode* status = n.child(n.ns, "status")) {
      if (const XmlNode* basic = status->child(n.ns, "basic")) {
        r.basicSeen = true;
        r.out.open = detail::trimXmlSpace(basic->text) == "open";
      }
    }
  }
  if (n.ns == kRpidNs && n.name == "activities") {
    for (const auto& c : n.children)
      if (c.ns == kRpidNs) r.out.activities.push_back(c.name);
  }
  if (!r.noteSeen && n.name == "note" && isNoteNs(n.ns)) {
    auto t = detail::trimXmlSpace(n.text);
    if (!t.empty()) {
      r.noteSeen = true;
      r.out.note = t;
    }
  }
  if (!r.out.availability && n.name == "availability") r.out.availability = smallNumber(n.text);
  for (const auto& c : n.children) walk(c, r, pidfNs);
}

// RPID activity names are lower-case words joined by '-'; anything else would
// not be an element name, so it is left out rather than written.
bool isActivityToken(std::string_view t) {
  if (t.empty() || t.front() == '-') return false;
  for (char c : t)
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')) return false;
  return true;
}

}  // namespace

bool isPidfContentType(std::string_view contentType) {
  auto m = parseMediaType(contentType);
  return m && (m->is("application/pidf+xml") || m->is("application/cpim-pidf+xml"));
}

std::optional<MicrosoftPresence> parsePidf(std::string_view body, std::string* why) {
  auto root = detail::parseXml(body, why, {.maxBytes = kMaxPidfBytes});
  if (!root) return std::nullopt;
  if (root->name != "presence" || (root->ns != kPidfNs && root->ns != kCpimPidfNs)) {
    if (why) *why = "root element is {" + root->ns + "}" + root->name + ", not a PIDF <presence>";
    return std::nullopt;
  }
  Reading r;
  walk(*root, r, true);
  r.out.known = true;
  return std::move(r.out);
}

std::string buildPidf(std::string_view entity, const LyncAvailability& availability, std::string_view note) {
  const bool open = availability.state != MsState::Offline && availability.state != MsState::AppearOffline;
  const std::string who = detail::xmlText(entity);
  std::string out;
  out.reserve(512);
  out += "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\r\n";
  out += "<presence xmlns=\"urn:ietf:params:xml:ns:pidf\" xmlns:dm=\"urn:ietf:params:xml:ns:pidf:data-model\""
         " xmlns:rpid=\"urn:ietf:params:xml:ns:pidf:rpid\" entity=\"";
  // xmlText does not escape '"'; the attribute needs it.
  for (char c : who) out += c == '"' ? std::string("&quot;") : std::string(1, c);
  out += "\">\r\n";
  out += "<tuple id=\"t1\"><status><basic>";
  out += open ? "open" : "closed";
  out += "</basic></status></tuple>\r\n";
  // RFC 3863 §4.1: <note> follows the tuples, extensions (the person) come last.
  if (!note.empty()) {
    out += "<note>";
    out += detail::xmlText(note);
    out += "</note>\r\n";
  }
  out += "<dm:person id=\"p1\">";
  if (isActivityToken(availability.rpidActivity)) {
    out += "<rpid:activities><rpid:";
    out += availability.rpidActivity;
    out += "/></rpid:activities>";
  }
  out += "</dm:person>\r\n";
  out += "</presence>\r\n";
  return out;
}

}  // namespace imp::fcm
