// libFuzzer target: the RFC 4180 reader of the bulk provisioning files
// (modules/bulk-provisioning, issue 18, MG-7/MG-9). Besides not crashing or
// hanging, the invariants checked:
//  - every call moves forward (the offset grows, lines never go back);
//  - every field of a record is well-formed UTF-8;
//  - a reader that seek()s to a checkpoint reads exactly what the first
//    one read from there (a job resumed after a restart, issue 18).
#include <imp/bulk_provisioning/csv.h>
#include <imp/core/utf8.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>
#include <variant>
#include <vector>

using namespace imp::bat;

namespace {

bool same(const CsvItem& a, const CsvItem& b) {
  if (a.index() != b.index()) return false;
  if (const auto* r = std::get_if<CsvRecord>(&a)) {
    const auto& s = std::get<CsvRecord>(b);
    return r->line == s.line && r->fields == s.fields;
  }
  const auto& p = std::get<CsvProblem>(a);
  const auto& q = std::get<CsvProblem>(b);
  return p.line == q.line && p.reason == q.reason;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  CsvReader reader(text);
  std::vector<CsvReader::Position> at;
  std::vector<CsvItem> items;
  std::size_t lastLine = 0;
  for (;;) {
    const auto before = reader.position();
    auto item = reader.next();
    if (!item) break;
    const auto after = reader.position();
    if (after.offset <= before.offset || after.offset > size || after.line < before.line) std::abort();
    const std::size_t line = std::visit([](const auto& x) { return x.line; }, *item);
    if (line < lastLine || line < before.line) std::abort();
    lastLine = line;
    if (const auto* r = std::get_if<CsvRecord>(&*item))
      for (const auto& f : r->fields)
        if (!imp::core::validUtf8(f)) std::abort();
    at.push_back(before);
    items.push_back(std::move(*item));
  }
  // Resume from the middle, as a job does from its checkpoint.
  if (!items.empty()) {
    const std::size_t from = items.size() / 2;
    CsvReader again(text);
    again.seek(at[from]);
    for (std::size_t i = from; i < items.size(); ++i) {
      auto item = again.next();
      if (!item || !same(*item, items[i])) std::abort();
    }
    if (again.next()) std::abort();
  }
  return 0;
}
