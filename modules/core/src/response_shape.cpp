#include "imp/core/response_shape.h"

#include <Poco/JSON/Array.h>

#include <algorithm>
#include <iomanip>
#include <ostream>

#include "imp/core/command_registry.h"

namespace imp::core {

using Obj = Poco::JSON::Object;
using Arr = Poco::JSON::Array;

// ---- field handles ----

const FieldSpec& FieldBase::spec() const { return owner_->fields_.at(index_); }
FieldSpec& FieldBase::mut() const { return owner_->fields_.at(index_); }

bool FieldBase::has(const Obj::Ptr& o) const { return o->has(name()) && !o->get(name()).isEmpty(); }

std::string FieldBase::text(const Obj::Ptr& o) const { return cli::str(o, name()); }

std::string FieldBase::shown(const Obj::Ptr& o) const {
  const auto& s = spec();
  if (!has(o)) return s.hasOrElse ? s.orElse : "";
  std::string v;
  switch (s.type) {
    case FieldSpec::Type::Bool:
      v = o->getValue<bool>(s.name) ? s.whenTrue : s.whenFalse;
      break;
    case FieldSpec::Type::Int:
      v = s.format == FieldSpec::Format::Duration ? cli::duration(o->getValue<Poco::Int64>(s.name)) : text(o);
      break;
    case FieldSpec::Type::Strings: {
      auto joined = cli::joined(o, s.name);
      v = joined == "-" && s.hasOrElse ? s.orElse : joined;
      break;
    }
    case FieldSpec::Type::String:
      v = text(o);
      break;
    case FieldSpec::Type::Object:
    case FieldSpec::Type::List:
      break;
  }
  return v.empty() && s.hasOrElse ? s.orElse : v;
}

namespace {
[[noreturn]] void absent(const FieldBase& f) {
  throw std::logic_error("answer of shape " + f.owner().name() + " has no field '" + f.name() + "'");
}
}  // namespace

template <>
std::string Field<std::string>::get(const Obj::Ptr& o) const {
  if (!has(o)) absent(*this);
  return o->get(name()).convert<std::string>();
}

template <>
std::int64_t Field<std::int64_t>::get(const Obj::Ptr& o) const {
  if (!has(o)) absent(*this);
  return o->getValue<Poco::Int64>(name());
}

template <>
bool Field<bool>::get(const Obj::Ptr& o) const {
  if (!has(o)) absent(*this);
  return o->getValue<bool>(name());
}

template <>
std::vector<std::string> Field<std::vector<std::string>>::get(const Obj::Ptr& o) const {
  if (!has(o)) absent(*this);
  std::vector<std::string> out;
  for (const auto& v : *o->getArray(name())) out.push_back(v.convert<std::string>());
  return out;
}

Obj::Ptr ObjectField::get(const Obj::Ptr& o) const {
  if (!has(o)) absent(*this);
  return o->getObject(name());
}

std::vector<Obj::Ptr> ListField::get(const Obj::Ptr& o) const {
  if (!has(o)) absent(*this);
  return cli::objects(o, name());
}

void ListField::print(std::ostream& out, const Obj::Ptr& o) const {
  auto items = get(o);
  if (items.empty() && !spec().ifEmpty.empty()) out << spec().ifEmpty << "\n";
  else if (element().layout() == Shape::Layout::Table) element().table(out, items);
  else
    for (const auto& item : items) element().print(out, item);
}

// ---- shapes ----

std::size_t Shape::add(std::string name, FieldSpec::Type type, const Shape* element) {
  if (find(name)) throw std::logic_error("shape " + name_ + " declares field '" + name + "' twice");
  FieldSpec f;
  f.name = std::move(name);
  f.type = type;
  f.element = element;
  fields_.push_back(std::move(f));
  return fields_.size() - 1;
}

Field<std::vector<std::string>> Shape::texts(std::string name) {
  return Field<std::vector<std::string>>(this, add(std::move(name), FieldSpec::Type::Strings));
}

ObjectField Shape::object(std::string name, const Shape& element) {
  return ObjectField(this, add(std::move(name), FieldSpec::Type::Object, &element));
}

ListField Shape::list(std::string name, const Shape& element) {
  return ListField(this, add(std::move(name), FieldSpec::Type::List, &element));
}

const FieldSpec* Shape::find(const std::string& jsonName) const {
  auto it = std::find_if(fields_.begin(), fields_.end(), [&](const FieldSpec& f) { return f.name == jsonName; });
  return it == fields_.end() ? nullptr : &*it;
}

namespace {
// A FieldBase over a spec of a shape, for the generic printers.
struct Handle : FieldBase {
  Handle(const Shape& s, std::size_t i) : FieldBase(const_cast<Shape*>(&s), i) {}
};
}  // namespace

void Shape::table(std::ostream& out, const std::vector<Obj::Ptr>& rows) const {
  std::vector<std::vector<std::string>> cells(1);
  std::vector<std::size_t> columns;
  for (std::size_t i = 0; i < fields_.size(); ++i)
    if (!fields_[i].column.empty()) {
      columns.push_back(i);
      cells[0].push_back(fields_[i].column);
    }
  for (const auto& o : rows) {
    cells.emplace_back();
    for (auto i : columns) cells.back().push_back(Handle(*this, i).shown(o));
  }
  cli::table(out, cells);
}

void Shape::lines(std::ostream& out, const Obj::Ptr& answer) const {
  std::size_t width = 0;
  for (const auto& f : fields_) width = std::max(width, f.line.size());
  for (std::size_t i = 0; i < fields_.size(); ++i) {
    const auto& f = fields_[i];
    if (f.line.empty()) continue;
    if (aligned_) out << std::left << std::setw(static_cast<int>(width + 3)) << f.line + ":";
    else out << f.line << ": ";
    out << Handle(*this, i).shown(answer) << "\n";
  }
}

void Shape::print(std::ostream& out, const Obj::Ptr& answer) const {
  if (layout_ == Layout::Table) {
    table(out, {answer});
    return;
  }
  lines(out, answer);
  for (std::size_t i = 0; i < fields_.size(); ++i) {
    const auto& f = fields_[i];
    Handle h(*this, i);
    if (f.type == FieldSpec::Type::List && h.has(answer)) {
      auto items = cli::objects(answer, f.name);
      if (items.empty() && !f.ifEmpty.empty()) out << f.ifEmpty << "\n";
      else if (f.element->layout_ == Layout::Table) f.element->table(out, items);
      else
        for (const auto& item : items) f.element->print(out, item);
    } else if (f.type == FieldSpec::Type::Object && h.has(answer)) {
      f.element->print(out, answer->getObject(f.name));
    }
  }
}

Obj::Ptr Shape::schema() const {
  Obj::Ptr props = new Obj;
  Arr::Ptr required = new Arr;
  for (const auto& f : fields_) {
    Obj::Ptr p = new Obj;
    switch (f.type) {
      case FieldSpec::Type::String:
        p->set("type", "string");
        break;
      case FieldSpec::Type::Int:
        p->set("type", "integer");
        p->set("format", "int64");
        break;
      case FieldSpec::Type::Bool:
        p->set("type", "boolean");
        break;
      case FieldSpec::Type::Strings: {
        p->set("type", "array");
        Obj::Ptr items = new Obj;
        items->set("type", "string");
        p->set("items", items);
        break;
      }
      case FieldSpec::Type::Object:
        p = f.element->schema();
        break;
      case FieldSpec::Type::List:
        p->set("type", "array");
        p->set("items", f.element->schema());
        break;
    }
    if (!f.description.empty()) p->set("description", f.description);
    props->set(f.name, p);
    if (!f.optional) required->add(f.name);
  }
  Obj::Ptr s = new Obj;
  s->set("type", "object");
  s->set("title", name_);
  s->set("properties", props);
  if (required->size() > 0) s->set("required", required);
  return s;
}

// ---- replies ----

Reply::Reply(const Shape& shape) : shape_(&shape), obj_(new Obj) {}

void Reply::check(const FieldBase& f) const {
  if (&f.owner() != shape_)
    throw std::logic_error("field '" + f.name() + "' of shape " + f.owner().name() + " set on a reply of shape " +
                           shape_->name());
}

Reply& Reply::put(const FieldBase& f, Poco::Dynamic::Var v) {
  check(f);
  obj_->set(f.name(), std::move(v));
  return *this;
}

Reply& Reply::set(const Field<std::string>& f, std::string v) { return put(f, std::move(v)); }

Reply& Reply::set(const Field<bool>& f, bool v) { return put(f, v); }

Reply& Reply::set(const Field<std::vector<std::string>>& f, const std::vector<std::string>& v) {
  Arr::Ptr a = new Arr;
  for (const auto& s : v) a->add(s);
  return put(f, a);
}

Reply& Reply::set(const ObjectField& f, const Reply& v) {
  if (&v.shape() != &f.element())
    throw std::logic_error("field '" + f.name() + "' holds a " + f.element().name() + ", not a " + v.shape().name());
  return put(f, v.json());
}

Reply& Reply::set(const ListField& f, const std::vector<Reply>& v) {
  Arr::Ptr a = new Arr;
  for (const auto& r : v) {
    if (&r.shape() != &f.element())
      throw std::logic_error("field '" + f.name() + "' lists " + f.element().name() + ", not " + r.shape().name());
    a->add(r.json());
  }
  return put(f, a);
}

bool Reply::has(const FieldBase& f) const {
  check(f);
  return obj_->has(f.name());
}

Obj::Ptr Reply::json() const {
  for (const auto& f : shape_->fields())
    if (!f.optional && !obj_->has(f.name))
      throw std::logic_error("reply of shape " + shape_->name() + " lacks field '" + f.name + "'");
  return obj_;
}

}  // namespace imp::core
