// The element model and its serializer (RFC 6120 §11).
#include <imp/xmpp/ns.h>
#include <imp/xmpp/xml.h>

#include <algorithm>

namespace imp::xmpp {

Node::Node(Element e) : element_(std::make_unique<Element>(std::move(e))) {}
Node::Node(std::string text) : text_(std::move(text)) {}
Node::Node(const Node& o) : element_(o.element_ ? std::make_unique<Element>(*o.element_) : nullptr), text_(o.text_) {}
Node& Node::operator=(const Node& o) {
  if (this != &o) {
    element_ = o.element_ ? std::make_unique<Element>(*o.element_) : nullptr;
    text_ = o.text_;
  }
  return *this;
}
Node::~Node() = default;

bool Node::operator==(const Node& o) const {
  if (isElement() != o.isElement()) return false;
  return isElement() ? *element_ == *o.element_ : text_ == o.text_;
}

std::optional<std::string_view> Element::attr(std::string_view name) const {
  for (const auto& a : attrs_)
    if (a.ns.empty() && a.name == name) return std::string_view(a.value);
  return std::nullopt;
}

std::optional<std::string_view> Element::attrNs(std::string_view name, std::string_view ns) const {
  for (const auto& a : attrs_)
    if (a.ns == ns && a.name == name) return std::string_view(a.value);
  return std::nullopt;
}

std::string_view Element::attrOr(std::string_view name, std::string_view fallback) const {
  auto v = attr(name);
  return v ? *v : fallback;
}

Element& Element::setAttr(std::string_view name, std::string_view value) {
  for (auto& a : attrs_)
    if (a.ns.empty() && a.name == name) {
      a.value = std::string(value);
      return *this;
    }
  attrs_.push_back(Attribute{std::string(name), std::string(value), {}, {}});
  return *this;
}

Element& Element::setAttrNs(std::string_view name, std::string_view ns, std::string_view prefix,
                            std::string_view value) {
  for (auto& a : attrs_)
    if (a.ns == ns && a.name == name) {
      a.value = std::string(value);
      a.prefix = std::string(prefix);
      return *this;
    }
  attrs_.push_back(Attribute{std::string(name), std::string(value), std::string(ns), std::string(prefix)});
  return *this;
}

bool Element::removeAttr(std::string_view name) {
  auto it = std::find_if(attrs_.begin(), attrs_.end(), [&](const Attribute& a) { return a.ns.empty() && a.name == name; });
  if (it == attrs_.end()) return false;
  attrs_.erase(it);
  return true;
}

const Element* Element::child(std::string_view name, std::string_view ns) const {
  std::string_view want = ns.empty() ? std::string_view(ns_) : ns;
  for (const auto& n : nodes_)
    if (n.isElement() && n.element().name() == name && n.element().ns() == want) return &n.element();
  return nullptr;
}

Element* Element::child(std::string_view name, std::string_view ns) {
  return const_cast<Element*>(static_cast<const Element*>(this)->child(name, ns));
}

std::vector<const Element*> Element::children(std::string_view name, std::string_view ns) const {
  std::vector<const Element*> out;
  for (const auto& n : nodes_) {
    if (!n.isElement()) continue;
    const Element& e = n.element();
    if ((name.empty() || e.name() == name) && (ns.empty() || e.ns() == ns)) out.push_back(&e);
  }
  return out;
}

std::string Element::text() const {
  std::string out;
  for (const auto& n : nodes_)
    if (n.isText()) out += n.text();
  return out;
}

std::optional<std::string> Element::childText(std::string_view name, std::string_view ns) const {
  const Element* c = child(name, ns);
  if (!c) return std::nullopt;
  return c->text();
}

Element& Element::addChild(Element child) {
  nodes_.emplace_back(std::move(child));
  return nodes_.back().element();
}

Element& Element::addChild(std::string name, std::string ns) {
  return addChild(Element(std::move(name), std::move(ns)));
}

Element& Element::addText(std::string_view text) {
  if (text.empty()) return *this;
  if (!nodes_.empty() && nodes_.back().isText())
    nodes_.back().text().append(text);
  else
    nodes_.emplace_back(std::string(text));
  return *this;
}

std::size_t Element::removeChildren(std::string_view name, std::string_view ns) {
  auto before = nodes_.size();
  std::erase_if(nodes_, [&](const Node& n) { return n.isElement() && n.element().is(name, ns); });
  return before - nodes_.size();
}

bool Element::operator==(const Element& o) const {
  return name_ == o.name_ && ns_ == o.ns_ && attrs_ == o.attrs_ && nodes_ == o.nodes_;
}

void appendEscapedText(std::string& out, std::string_view text) {
  for (char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;  // keeps "]]>" out of character data
      default: out += c;
    }
  }
}

void appendEscapedAttr(std::string& out, std::string_view value) {
  for (char c : value) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&apos;"; break;
      // Literal whitespace other than space in an attribute value would be
      // normalised to a space by the reader (XML 1.0 §3.3.3): keep it as a
      // character reference so the value round-trips.
      case '\t': out += "&#9;"; break;
      case '\n': out += "&#10;"; break;
      case '\r': out += "&#13;"; break;
      default: out += c;
    }
  }
}

std::string escapeText(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  appendEscapedText(out, text);
  return out;
}

std::string escapeAttr(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  appendEscapedAttr(out, value);
  return out;
}

namespace {

void writeAttr(std::string& out, std::string_view qname, std::string_view value) {
  out += ' ';
  out += qname;
  out += "='";
  appendEscapedAttr(out, value);
  out += '\'';
}

}  // namespace

void Element::serializeTo(std::string& out, std::string_view parentNs) const {
  const bool streamPrefixed = ns_ == ns::kStreams;
  out += '<';
  if (streamPrefixed) out += "stream:";
  out += name_;
  // The default namespace in scope for the children: a stream:-prefixed
  // element does not change it.
  std::string_view childNs = streamPrefixed ? parentNs : std::string_view(ns_);
  if (streamPrefixed) {
    if (parentNs.empty()) writeAttr(out, "xmlns:stream", ns::kStreams);
  } else if (ns_ != parentNs) {
    writeAttr(out, "xmlns", ns_);
  }
  // Prefixes of qualified attributes other than xml: are declared here,
  // once each.
  std::vector<std::string_view> declared;
  for (const auto& a : attrs_) {
    if (a.ns.empty() || a.ns == ns::kXml) continue;
    std::string_view prefix = a.prefix.empty() ? std::string_view("a") : std::string_view(a.prefix);
    if (std::find(declared.begin(), declared.end(), prefix) != declared.end()) continue;
    declared.push_back(prefix);
    std::string decl = "xmlns:";
    decl += prefix;
    writeAttr(out, decl, a.ns);
  }
  for (const auto& a : attrs_) {
    if (a.ns.empty()) {
      writeAttr(out, a.name, a.value);
    } else if (a.ns == ns::kXml) {
      writeAttr(out, "xml:" + a.name, a.value);
    } else {
      std::string q = a.prefix.empty() ? std::string("a") : a.prefix;
      q += ':';
      q += a.name;
      writeAttr(out, q, a.value);
    }
  }
  if (nodes_.empty()) {
    out += "/>";
    return;
  }
  out += '>';
  for (const auto& n : nodes_) {
    if (n.isText())
      appendEscapedText(out, n.text());
    else
      n.element().serializeTo(out, childNs);
  }
  out += "</";
  if (streamPrefixed) out += "stream:";
  out += name_;
  out += '>';
}

std::string Element::serialize(std::string_view parentNs) const {
  std::string out;
  serializeTo(out, parentNs);
  return out;
}

}  // namespace imp::xmpp
