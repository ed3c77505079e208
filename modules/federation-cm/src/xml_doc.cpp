// expat in namespace mode with every declaration handler refusing: a body
// from a peer is untrusted input (STYLE.md error policy), so anything beyond
// plain elements, attributes and text stops the parse with a reason.
#include "xml_doc.h"

#include <expat.h>

namespace imp::fcm::detail {

namespace {

constexpr char kSep = '\x1F';  // between namespace URI and local name in expat's names

struct Builder {
  XML_Parser parser = nullptr;
  XmlLimits limits;
  std::optional<XmlNode> root;
  std::vector<XmlNode*> stack;  // open elements; a parent's children change only while it is open
  std::size_t elements = 0;
  std::string error;

  void fail(std::string why) {
    if (error.empty()) error = std::move(why);
    XML_StopParser(parser, XML_FALSE);
  }

  static void split(const XML_Char* qname, std::string& ns, std::string& local) {
    std::string_view q(qname);
    auto sep = q.find(kSep);
    if (sep == std::string_view::npos) {
      ns.clear();
      local = q;
    } else {
      ns = q.substr(0, sep);
      local = q.substr(sep + 1);
    }
  }

  void start(const XML_Char* name, const XML_Char** atts) {
    if (!error.empty()) return;
    if (++elements > limits.maxElements) return fail("more than " + std::to_string(limits.maxElements) + " elements");
    if (stack.size() >= limits.maxDepth) return fail("elements nested deeper than " + std::to_string(limits.maxDepth));
    XmlNode node;
    split(name, node.ns, node.name);
    for (const XML_Char** a = atts; a && *a; a += 2) {
      std::string ns, local;
      split(a[0], ns, local);
      node.attrs.emplace_back(ns.empty() ? local : ns + ' ' + local, a[1]);
    }
    if (stack.empty()) {
      root = std::move(node);
      stack.push_back(&*root);
    } else {
      stack.back()->children.push_back(std::move(node));
      stack.push_back(&stack.back()->children.back());
    }
  }

  void end() {
    if (!stack.empty()) stack.pop_back();
  }

  void text(const XML_Char* s, int len) {
    if (!stack.empty() && len > 0) stack.back()->text.append(s, static_cast<std::size_t>(len));
  }
};

Builder* builder(void* ud) { return static_cast<Builder*>(ud); }

void XMLCALL onStart(void* ud, const XML_Char* name, const XML_Char** atts) { builder(ud)->start(name, atts); }
void XMLCALL onEnd(void* ud, const XML_Char*) { builder(ud)->end(); }
void XMLCALL onText(void* ud, const XML_Char* s, int len) { builder(ud)->text(s, len); }
void XMLCALL onDoctype(void* ud, const XML_Char*, const XML_Char*, const XML_Char*, int) {
  builder(ud)->fail("document type declaration (DTD) refused");
}
void XMLCALL onEntityDecl(void* ud, const XML_Char*, int, const XML_Char*, int, const XML_Char*, const XML_Char*,
                          const XML_Char*, const XML_Char*) {
  builder(ud)->fail("entity declaration refused");
}
void XMLCALL onSkippedEntity(void* ud, const XML_Char*, int) { builder(ud)->fail("reference to an undeclared entity"); }
void XMLCALL onXmlDecl(void* ud, const XML_Char*, const XML_Char* encoding, int) {
  if (!encoding) return;
  std::string e(encoding);
  for (char& c : e) c = static_cast<char>(c >= 'a' && c <= 'z' ? c - 'a' + 'A' : c);
  // Bodies are read as UTF-8 whatever they declare: a different declared
  // encoding would be misread, so it is refused rather than guessed.
  if (e != "UTF-8" && e != "US-ASCII") builder(ud)->fail("declared encoding '" + std::string(encoding) + "' (only UTF-8)");
}

struct ParserGuard {
  XML_Parser p;
  ~ParserGuard() {
    if (p) XML_ParserFree(p);
  }
};

}  // namespace

const XmlNode* XmlNode::child(std::string_view wantNs, std::string_view wantName) const {
  for (const auto& c : children)
    if (c.ns == wantNs && c.name == wantName) return &c;
  return nullptr;
}

const std::string* XmlNode::attr(std::string_view wantName) const {
  for (const auto& [k, v] : attrs)
    if (k == wantName) return &v;
  return nullptr;
}

std::optional<XmlNode> parseXml(std::string_view doc, std::string* why, const XmlLimits& limits) {
  auto refuse = [&](std::string reason) -> std::optional<XmlNode> {
    if (why) *why = std::move(reason);
    return std::nullopt;
  };
  if (doc.size() > limits.maxBytes)
    return refuse("body of " + std::to_string(doc.size()) + " bytes is over the limit of " +
                  std::to_string(limits.maxBytes));
  ParserGuard guard{XML_ParserCreateNS("UTF-8", kSep)};
  if (!guard.p) return refuse("out of memory");
  Builder b;
  b.parser = guard.p;
  b.limits = limits;
  XML_SetUserData(guard.p, &b);
  XML_SetParamEntityParsing(guard.p, XML_PARAM_ENTITY_PARSING_NEVER);
  XML_SetElementHandler(guard.p, onStart, onEnd);
  XML_SetCharacterDataHandler(guard.p, onText);
  XML_SetStartDoctypeDeclHandler(guard.p, onDoctype);
  XML_SetEntityDeclHandler(guard.p, onEntityDecl);
  XML_SetSkippedEntityHandler(guard.p, onSkippedEntity);
  XML_SetXmlDeclHandler(guard.p, onXmlDecl);
  const auto status = XML_Parse(guard.p, doc.data(), static_cast<int>(doc.size()), XML_TRUE);
  if (!b.error.empty()) return refuse(b.error);
  if (status != XML_STATUS_OK) {
    return refuse(std::string("malformed XML: ") + XML_ErrorString(XML_GetErrorCode(guard.p)) + " at line " +
                  std::to_string(XML_GetCurrentLineNumber(guard.p)));
  }
  if (!b.root) return refuse("no root element");
  return std::move(b.root);
}

std::string_view trimXmlSpace(std::string_view s) {
  auto space = [](char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; };
  while (!s.empty() && space(s.front())) s.remove_prefix(1);
  while (!s.empty() && space(s.back())) s.remove_suffix(1);
  return s;
}

std::string xmlText(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      // A raw CR would be read back as LF (XML 1.0 §2.11): keep it as a reference.
      case '\r': out += "&#13;"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20 && c != '\t' && c != '\n' && c != '\r') break;
        out += c;
    }
  }
  return out;
}

}  // namespace imp::fcm::detail
