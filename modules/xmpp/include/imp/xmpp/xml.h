#pragma once
// The XML element model of XMPP stanzas and the escaping serializer
// (RFC 6120 §11). An Element owns its children (deep copies on copy); names
// are local names with the namespace held apart, as the stream parser
// produces them, so `ns()` is always the effective namespace, whatever
// prefix or default declaration carried it on the wire.
//
// Threads: an Element is a plain value; no shared state.
// Contract: strings put into an Element are UTF-8 made of XML 1.0
// characters (what the parser produces, and what JID normalisation
// guarantees); serialize() escapes markup, it does not repair encodings.
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace imp::xmpp {

// One attribute. `name` is the local name; `ns` is empty for an
// unqualified attribute (the usual case), ns::kXml for xml:lang, or the
// namespace of another prefixed attribute, whose `prefix` is kept so
// serialize() can declare it.
struct Attribute {
  std::string name;
  std::string value;
  std::string ns;
  std::string prefix;
  bool operator==(const Attribute& o) const { return name == o.name && value == o.value && ns == o.ns; }
};

class Element;

// A child node: an element or a run of character data, in document order.
class Node {
 public:
  explicit Node(Element e);
  explicit Node(std::string text);
  Node(const Node& o);
  Node(Node&&) noexcept = default;
  Node& operator=(const Node& o);
  Node& operator=(Node&&) noexcept = default;
  ~Node();

  bool isElement() const { return element_ != nullptr; }
  bool isText() const { return element_ == nullptr; }
  // Preconditions: isElement() / isText().
  const Element& element() const { return *element_; }
  Element& element() { return *element_; }
  const std::string& text() const { return text_; }
  std::string& text() { return text_; }
  bool operator==(const Node& o) const;

 private:
  std::unique_ptr<Element> element_;
  std::string text_;
};

class Element {
 public:
  Element() = default;
  Element(std::string name, std::string ns) : name_(std::move(name)), ns_(std::move(ns)) {}

  const std::string& name() const { return name_; }
  const std::string& ns() const { return ns_; }
  void setName(std::string n) { name_ = std::move(n); }
  void setNs(std::string n) { ns_ = std::move(n); }
  bool is(std::string_view name, std::string_view ns) const { return name_ == name && ns_ == ns; }

  // Attributes, in document order. attr() looks up an unqualified attribute
  // ("to", "type"); attrNs() a qualified one (attrNs("lang", ns::kXml)).
  const std::vector<Attribute>& attributes() const { return attrs_; }
  std::optional<std::string_view> attr(std::string_view name) const;
  std::optional<std::string_view> attrNs(std::string_view name, std::string_view ns) const;
  // attr(name) or `fallback` when absent.
  std::string_view attrOr(std::string_view name, std::string_view fallback) const;
  // Sets (or replaces in place) an unqualified attribute; returns *this.
  Element& setAttr(std::string_view name, std::string_view value);
  Element& setAttrNs(std::string_view name, std::string_view ns, std::string_view prefix, std::string_view value);
  // Removes an unqualified attribute; true if it was there.
  bool removeAttr(std::string_view name);

  // Children, in document order (elements and text runs).
  const std::vector<Node>& nodes() const { return nodes_; }
  std::vector<Node>& nodes() { return nodes_; }
  // First child element with this name and namespace (ns empty: the same
  // namespace as this element), or nullptr.
  const Element* child(std::string_view name, std::string_view ns = {}) const;
  Element* child(std::string_view name, std::string_view ns = {});
  // Every child element with this name and namespace; name empty = any name,
  // ns empty = any namespace.
  std::vector<const Element*> children(std::string_view name = {}, std::string_view ns = {}) const;
  // The concatenated character data of the direct text children.
  std::string text() const;
  // The text of child(name, ns), or nullopt without that child.
  std::optional<std::string> childText(std::string_view name, std::string_view ns = {}) const;

  // Appends a child element and returns a reference to it (valid until the
  // next change to this element's children).
  Element& addChild(Element child);
  Element& addChild(std::string name, std::string ns);
  // Appends text, merged into a trailing text node if there is one.
  Element& addText(std::string_view text);
  // Removes every child element with this name and namespace; returns how many.
  std::size_t removeChildren(std::string_view name, std::string_view ns);
  void clearChildren() { nodes_.clear(); }

  // XML text of this element. `parentNs` is the default namespace in scope
  // where the text goes: xmlns is written only when the element's namespace
  // differs from it (on a jabber:client stream, pass ns::kClient and a
  // message is written without xmlns). Elements in the streams namespace
  // (features, error) are written with the `stream:` prefix, which the
  // stream header declares; with an empty parentNs (a standalone document)
  // the prefix is declared on the element.
  std::string serialize(std::string_view parentNs = {}) const;
  void serializeTo(std::string& out, std::string_view parentNs = {}) const;

  // Structural equality: names, namespaces, attributes (in order, prefixes
  // ignored) and children.
  bool operator==(const Element& o) const;

 private:
  std::string name_;
  std::string ns_;
  std::vector<Attribute> attrs_;
  std::vector<Node> nodes_;
};

// Escaping of character data (& < >) and of attribute values (& < > " ').
void appendEscapedText(std::string& out, std::string_view text);
void appendEscapedAttr(std::string& out, std::string_view value);
std::string escapeText(std::string_view text);
std::string escapeAttr(std::string_view value);

}  // namespace imp::xmpp
