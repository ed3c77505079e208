#pragma once
// Response shapes (issue 15 deliverable 4): the JSON fields of an admin
// command's answer, declared once. The server builds its answer through the
// declaration (Reply), impctl's text output is derived from it (Shape::print)
// or read through its field handles, and GET /api/v1/commands describes it
// (Shape::schema). A field name is written in exactly one place: its
// declaration.
//
// A shape is a struct whose members are the field handles, each declared with
// its JSON name, its type and how impctl shows it:
//
//   struct UserShape : core::Shape {
//     UserShape() : Shape("User", Layout::Table) {}
//     const core::Field<std::string> userid = text("userid").column("USERID");
//     const core::Field<bool> licensed = flag("licensed").column("LICENSED").shows("yes", "no");
//     const core::Field<std::string> homeNode = text("home_node").column("HOME NODE").orElse("-");
//   };
//   (core::shape<UserShape>() is its one instance)
//
//   struct UsersShape : core::Shape {
//     UsersShape() : Shape("Users", Layout::Lines) {}
//     const core::ListField users = list("users", core::shape<UserShape>());  // printed as a UserShape table
//   };
//
//   // server: an undeclared field cannot be set, a declared one only with its type
//   const auto& s = core::shape<UserShape>();
//   core::Reply r(s);
//   r.set(s.userid, u.userid).set(s.licensed, u.licensed).set(s.homeNode, u.homeNode);
//   return r.response(201);
//
//   // the same field in another answer: same(core::shape<UserShape>().userid)
//   // the command: .returns(core::shape<UsersShape>()) derives the printer (no .print());
//   // a custom .print() reads through the handles: s.homeNode.text(answer)
//
// Layouts: Table prints the object as one row of a table whose columns are
// the fields declared with column(); Lines prints "Label: value" for the
// fields declared with line() (labels aligned with aligned()), then, for each
// list field, its element shape's table (or its ifEmpty() text). Fields with
// neither are in the JSON only. Fields declared optional() may be left out by
// the server; Reply::json() refuses an answer that lacks any other field.
//
// Shapes are immutable after construction and compared by address: each has
// one instance, core::shape<S>(), handed out by reference.
#include <cstdint>
#include <iosfwd>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include <Poco/Dynamic/Var.h>
#include <Poco/JSON/Object.h>

#include "imp/core/admin_http.h"

namespace imp::core {

class Shape;

// One declared field and how impctl shows it.
struct FieldSpec {
  enum class Type { String, Int, Bool, Strings, Object, List };
  enum class Format { Text, Duration, Joined };
  std::string name;
  Type type;
  const Shape* element = nullptr;  // Object, List: the nested shape
  bool optional = false;
  std::string column;  // Table: the column header ("" = not a column)
  std::string line;    // Lines: the label ("" = no line)
  Format format = Format::Text;
  std::string whenTrue = "true", whenFalse = "false";  // Bool
  std::string orElse;                                  // shown for an absent or empty value
  bool hasOrElse = false;
  std::string ifEmpty;  // List: printed instead of an empty table
  std::string description;
};

// A typed handle on a declared field; obtained only from the shape's
// declaration functions. Modifiers are used while the shape is constructed.
class FieldBase {
 public:
  const std::string& name() const { return spec().name; }
  const Shape& owner() const { return *owner_; }
  const FieldSpec& spec() const;
  // Present and not null in `o`.
  bool has(const Poco::JSON::Object::Ptr& o) const;
  // The raw value as text ("" if absent or null), as cli::str would give it.
  std::string text(const Poco::JSON::Object::Ptr& o) const;
  // The value as the declaration shows it (yes/no, duration, joined list,
  // orElse for empty).
  std::string shown(const Poco::JSON::Object::Ptr& o) const;

 protected:
  FieldBase(Shape* owner, std::size_t index) : owner_(owner), index_(index) {}
  FieldSpec& mut() const;
  Shape* owner_;
  std::size_t index_;
};

template <class Self>
class FieldDecl : public FieldBase {
 public:
  // Shown as a column of the Table layout, with this header.
  Self& column(std::string header) { return (mut().column = std::move(header), self()); }
  // Shown as "label: value" in the Lines layout; default label: the JSON name.
  Self& line(std::string label = {}) { return (mut().line = label.empty() ? name() : std::move(label), self()); }
  // Shown as this text when the value is absent or empty.
  Self& orElse(std::string text) { return (mut().orElse = std::move(text), mut().hasOrElse = true, self()); }
  // The server may leave the field out.
  Self& optional() { return (mut().optional = true, self()); }
  // The OpenAPI description of the field.
  Self& describe(std::string text) { return (mut().description = std::move(text), self()); }

 protected:
  using FieldBase::FieldBase;
  Self& self() { return static_cast<Self&>(*this); }
};

template <class T>
class Field : public FieldDecl<Field<T>> {
  static_assert(std::is_same_v<T, std::string> || std::is_same_v<T, std::int64_t> || std::is_same_v<T, bool> ||
                std::is_same_v<T, std::vector<std::string>>);

 public:
  // Bool: shown as these words instead of true/false.
  Field& shows(std::string whenTrue, std::string whenFalse) {
    static_assert(std::is_same_v<T, bool>);
    this->mut().whenTrue = std::move(whenTrue);
    this->mut().whenFalse = std::move(whenFalse);
    return *this;
  }
  // Int: shown as a duration of seconds (90061 -> 1d1h1m1s, <= 0 -> -).
  Field& duration() {
    static_assert(std::is_same_v<T, std::int64_t>);
    this->mut().format = FieldSpec::Format::Duration;
    return *this;
  }
  // The value in `o`; throws std::logic_error when absent (check has() for an
  // optional field).
  T get(const Poco::JSON::Object::Ptr& o) const;

 private:
  friend class Shape;
  Field(Shape* owner, std::size_t index) : FieldDecl<Field<T>>(owner, index) {}
};

// A nested object of another shape ("node": {...}).
class ObjectField : public FieldDecl<ObjectField> {
 public:
  const Shape& element() const { return *spec().element; }
  Poco::JSON::Object::Ptr get(const Poco::JSON::Object::Ptr& o) const;

 private:
  friend class Shape;
  ObjectField(Shape* owner, std::size_t index) : FieldDecl<ObjectField>(owner, index) {}
};

// A list of objects of another shape ("users": [{...}, ...]).
class ListField : public FieldDecl<ListField> {
 public:
  // Printed instead of the table when the list is empty.
  ListField& ifEmpty(std::string text) { return (mut().ifEmpty = std::move(text), *this); }
  const Shape& element() const { return *spec().element; }
  std::vector<Poco::JSON::Object::Ptr> get(const Poco::JSON::Object::Ptr& o) const;
  // The element shape's table of the list (or the ifEmpty text).
  void print(std::ostream& out, const Poco::JSON::Object::Ptr& o) const;

 private:
  friend class Shape;
  ListField(Shape* owner, std::size_t index) : FieldDecl<ListField>(owner, index) {}
};

class Shape {
 public:
  enum class Layout { Table, Lines };
  Shape(const Shape&) = delete;
  Shape& operator=(const Shape&) = delete;
  virtual ~Shape() = default;

  // The OpenAPI component name ("User").
  const std::string& name() const { return name_; }
  Layout layout() const { return layout_; }
  const std::vector<FieldSpec>& fields() const { return fields_; }
  const FieldSpec* find(const std::string& jsonName) const;

  // impctl's text for an answer of this shape (see the layouts above).
  void print(std::ostream& out, const Poco::JSON::Object::Ptr& answer) const;
  // A table: the column headers, then one row per object.
  void table(std::ostream& out, const std::vector<Poco::JSON::Object::Ptr>& rows) const;
  // The "label: value" lines of the Lines layout only.
  void lines(std::ostream& out, const Poco::JSON::Object::Ptr& answer) const;
  // The OpenAPI 3 schema: an object with typed properties, required fields,
  // nested shapes inline.
  Poco::JSON::Object::Ptr schema() const;

 protected:
  Shape(std::string name, Layout layout, bool alignedLabels = false)
      : name_(std::move(name)), layout_(layout), aligned_(alignedLabels) {}
  Field<std::string> text(std::string name) { return Field<std::string>(this, add(std::move(name), FieldSpec::Type::String)); }
  Field<std::int64_t> number(std::string name) { return Field<std::int64_t>(this, add(std::move(name), FieldSpec::Type::Int)); }
  Field<bool> flag(std::string name) { return Field<bool>(this, add(std::move(name), FieldSpec::Type::Bool)); }
  // A list of strings; shown joined with "," ("-" when empty unless orElse()).
  Field<std::vector<std::string>> texts(std::string name);
  ObjectField object(std::string name, const Shape& element);
  ListField list(std::string name, const Shape& element);
  // A field with the name, type and description of another shape's field
  // (the same JSON field in two answers, its name written once); shown as
  // this shape declares it.
  template <class H>
  H same(const H& other) {
    const auto& o = other.spec();
    H f(this, add(o.name, o.type, o.element));
    if (!o.description.empty()) f.describe(o.description);
    return f;
  }

 private:
  friend class FieldBase;
  std::size_t add(std::string name, FieldSpec::Type type, const Shape* element = nullptr);
  std::string name_;
  Layout layout_;
  bool aligned_;
  std::vector<FieldSpec> fields_;
};

// An answer under construction: only the shape's own fields, each with its
// declared type. Misuse (a field of another shape, a nested reply of the
// wrong shape, a required field left out) throws std::logic_error: a
// programming error that the modules' tests reach.
class Reply {
 public:
  explicit Reply(const Shape& shape);
  const Shape& shape() const { return *shape_; }

  Reply& set(const Field<std::string>& f, std::string v);
  Reply& set(const Field<bool>& f, bool v);
  template <class I, std::enable_if_t<std::is_integral_v<I> && !std::is_same_v<I, bool>, int> = 0>
  Reply& set(const Field<std::int64_t>& f, I v) {
    return put(f, Poco::Dynamic::Var(v));
  }
  Reply& set(const Field<std::vector<std::string>>& f, const std::vector<std::string>& v);
  Reply& set(const ObjectField& f, const Reply& v);
  Reply& set(const ListField& f, const std::vector<Reply>& v);
  // Not callable with a string: a reply has no untyped setter.
  Reply& set(const char*, const Poco::Dynamic::Var&) = delete;

  bool has(const FieldBase& f) const;
  // The JSON object; throws std::logic_error if a required field is missing.
  Poco::JSON::Object::Ptr json() const;
  AdminResponse response(int status = 200) const { return AdminResponse::json(json(), status); }

 private:
  Reply& put(const FieldBase& f, Poco::Dynamic::Var v);
  void check(const FieldBase& f) const;
  const Shape* shape_;
  Poco::JSON::Object::Ptr obj_;
};

// The one instance of shape S (shapes are compared by address).
template <class S>
const S& shape() {
  static const S s;
  return s;
}

// The answer of a command that removed one named thing, in every module.
struct DeletedShape : Shape {
  DeletedShape() : Shape("Deleted", Layout::Lines) {}
  const Field<std::string> deleted = text("deleted");
};

}  // namespace imp::core
