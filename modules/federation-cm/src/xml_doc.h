#pragma once
// A small, defensive XML reader on expat for the little documents SIP
// bodies carry (PIDF, KeyboardActivity, isComposing). Not a general parser:
// it refuses DTDs and entity declarations (no billion laughs), caps the
// input size, the depth and the number of elements, and returns a tree with
// namespaces resolved to URIs. Comments and processing instructions are
// skipped. Internal to imp_federation_cm.
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace imp::fcm::detail {

struct XmlNode {
  std::string ns;    // namespace URI, "" for none
  std::string name;  // local name
  std::vector<std::pair<std::string, std::string>> attrs;  // local name -> value (namespaced attrs: "uri local")
  std::string text;  // this element's own character data, concatenated
  std::vector<XmlNode> children;

  // The first child with this namespace and local name, or nullptr.
  const XmlNode* child(std::string_view ns, std::string_view name) const;
  // The value of an attribute without namespace, or nullptr.
  const std::string* attr(std::string_view name) const;
};

struct XmlLimits {
  std::size_t maxBytes = 64 * 1024;
  std::size_t maxDepth = 32;
  std::size_t maxElements = 4096;
};

// The root element of `doc`, or nullopt with the reason in *why.
std::optional<XmlNode> parseXml(std::string_view doc, std::string* why, const XmlLimits& limits = {});

// `s` without leading and trailing XML white space.
std::string_view trimXmlSpace(std::string_view s);

// `text` as XML character data: & < > escaped, CR written as &#13; (so it
// reads back as CR, not LF), characters XML 1.0 forbids (C0 controls but
// TAB, LF, CR) dropped.
std::string xmlText(std::string_view text);

}  // namespace imp::fcm::detail
