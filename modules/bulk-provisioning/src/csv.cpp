#include "imp/bulk_provisioning/csv.h"

#include <imp/core/utf8.h>

#include <algorithm>
#include <cstdint>

namespace imp::bat {

namespace {

bool isBreak(char c) { return c == '\r' || c == '\n'; }
bool isBlank(char c) { return c == ' ' || c == '\t'; }

}  // namespace

CsvReader::CsvReader(std::string_view text) : text_(text) {
  if (text_.substr(0, 3) == "\xEF\xBB\xBF") pos_ = 3;  // the byte order mark
}

void CsvReader::seek(Position p) {
  pos_ = std::min(p.offset, text_.size());
  line_ = p.line;
}

std::size_t CsvReader::lineEnd(std::size_t from) const {
  while (from < text_.size() && !isBreak(text_[from])) ++from;
  return from;
}

std::size_t CsvReader::pastBreak(std::size_t at) const {
  if (at >= text_.size()) return text_.size();
  if (text_[at] == '\r' && at + 1 < text_.size() && text_[at + 1] == '\n') return at + 2;
  return at + 1;
}

CsvProblem CsvReader::giveUpLine(std::size_t startLine, std::size_t startOffset, std::string reason) {
  pos_ = pastBreak(lineEnd(startOffset));
  line_ = startLine + 1;
  return {startLine, std::move(reason)};
}

std::optional<CsvItem> CsvReader::next() {
  if (pos_ >= text_.size()) return std::nullopt;
  const std::size_t startLine = line_, startOffset = pos_;
  {
    std::size_t i = pos_;
    while (i < text_.size() && isBlank(text_[i])) ++i;
    if (i >= text_.size() || isBreak(text_[i])) {
      pos_ = pastBreak(i);
      ++line_;
      return CsvProblem{startLine, "empty line"};
    }
  }
  CsvRecord rec;
  rec.line = startLine;
  std::size_t i = pos_, line = line_;
  for (;;) {
    const std::size_t column = rec.fields.size() + 1;
    while (i < text_.size() && isBlank(text_[i])) ++i;
    std::string field;
    if (i < text_.size() && text_[i] == '"') {
      ++i;
      for (;;) {
        auto q = text_.find('"', i);
        if (q == std::string_view::npos)
          return giveUpLine(startLine, startOffset,
                            "field " + std::to_string(column) + ": a quote opens it and never closes");
        for (std::size_t k = i; k < q; ++k)
          if (text_[k] == '\n' || (text_[k] == '\r' && (k + 1 >= q || text_[k + 1] != '\n'))) ++line;
        field.append(text_.substr(i, q - i));
        if (q + 1 < text_.size() && text_[q + 1] == '"') {
          field += '"';
          i = q + 2;
          continue;
        }
        i = q + 1;
        break;
      }
      while (i < text_.size() && isBlank(text_[i])) ++i;
      if (i < text_.size() && text_[i] != ',' && !isBreak(text_[i]))
        return giveUpLine(startLine, startOffset,
                          "field " + std::to_string(column) + ": characters after its closing quote");
    } else {
      std::size_t end = i;
      while (end < text_.size() && text_[end] != ',' && !isBreak(text_[end])) ++end;
      auto raw = text_.substr(i, end - i);
      while (!raw.empty() && isBlank(raw.back())) raw.remove_suffix(1);
      if (raw.find('"') != std::string_view::npos)
        return giveUpLine(startLine, startOffset,
                          "field " + std::to_string(column) + ": a quote inside a field that is not quoted");
      field.assign(raw);
      i = end;
    }
    rec.fields.push_back(std::move(field));
    if (i < text_.size() && text_[i] == ',') {
      ++i;
      continue;
    }
    // the end of the record: a line break or the end of the text
    pos_ = pastBreak(i);
    line_ = line + 1;
    break;
  }
  for (std::size_t f = 0; f < rec.fields.size(); ++f)
    if (auto bad = core::firstInvalidUtf8(rec.fields[f]); bad != std::string_view::npos)
      return CsvProblem{startLine, "field " + std::to_string(f + 1) + ": not UTF-8 (byte " + std::to_string(bad + 1) + ")"};
  return rec;
}

}  // namespace imp::bat
