#pragma once
// JSON fields that several serviceability answers carry (a service's
// name), declared once for the module's response shapes to take with
// same() (issue 15 deliverable 4: a field name is written in one place).
#include <string>

#include <imp/core/response_shape.h>

namespace imp::serviceability::detail {

struct SharedFields : core::Shape {
  SharedFields() : Shape("ServiceabilitySharedFields", Layout::Lines) {}
  const core::Field<std::string> service = text("service").describe("a service's stable name");
};

inline const SharedFields& sharedFields() {
  static const SharedFields s;
  return s;
}

}  // namespace imp::serviceability::detail
