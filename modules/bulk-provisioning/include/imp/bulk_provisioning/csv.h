#pragma once
// RFC 4180 CSV, as the bulk provisioning files come (MG-7 contact lists,
// MG-9 contact-ID renames): one record at a time with the line it starts
// on, so that a job reports each row it cannot use precisely and goes on
// with the next (issue 18: nothing half-applied, nothing lost).
//
// Lenient where exported files differ, strict where a guess would change
// data:
//  - a UTF-8 byte order mark at the start is skipped;
//  - CRLF, LF and CR end lines, mixed in one file;
//  - spaces and tabs around an unquoted field are not part of it
//    ("Contact ID, New Contact ID");
//  - a quoted field may hold commas, line breaks and "" for a quote;
//  - an empty line is a Problem ("empty line"), not a record;
//  - a row that is not CSV is a Problem with the reason, and reading goes
//    on at the line after it: a quote that never closes (the row's own
//    line only is given up), characters after a closing quote, a quote
//    inside an unquoted field, bytes that are not UTF-8.
// The column count is the caller's to check (it knows the header).
// Pure: no I/O, any thread; the text must outlive the reader.
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace imp::bat {

struct CsvRecord {
  std::size_t line = 0;  // 1-based, where the record starts
  std::vector<std::string> fields;
};

struct CsvProblem {
  std::size_t line = 0;
  std::string reason;
};

using CsvItem = std::variant<CsvRecord, CsvProblem>;

class CsvReader {
 public:
  explicit CsvReader(std::string_view text);

  // The next record or problem; nullopt at the end of the text.
  std::optional<CsvItem> next();

  // Where the next item starts: a job's checkpoint, and where seek() goes
  // back to after a restart.
  struct Position {
    std::size_t offset = 0;
    std::size_t line = 1;
  };
  Position position() const { return {pos_, line_}; }
  void seek(Position p);

 private:
  // The end of the physical line that starts at `from` (the index of its
  // line break, or the text's size).
  std::size_t lineEnd(std::size_t from) const;
  // Past the line break at `at` (CRLF counts once).
  std::size_t pastBreak(std::size_t at) const;
  CsvProblem giveUpLine(std::size_t startLine, std::size_t startOffset, std::string reason);

  std::string_view text_;
  std::size_t pos_ = 0;
  std::size_t line_ = 1;
};

}  // namespace imp::bat
