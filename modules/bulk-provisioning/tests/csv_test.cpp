// The CSV reader of the bulk provisioning files (MG-7, MG-9; issue 18's
// bad-input list): every row comes back as a record or as a problem with its
// line and reason, and reading goes on.
#include <doctest/doctest.h>
#include <imp/bulk_provisioning/csv.h>
#include <imp/core/utf8.h>

#include <string>
#include <vector>

using namespace imp::bat;

namespace {

// Everything the reader gives, as "line:a|b|c" for records and "line!reason"
// for problems.
std::vector<std::string> readAll(std::string_view text) {
  std::vector<std::string> out;
  CsvReader r(text);
  while (auto item = r.next()) {
    if (auto rec = std::get_if<CsvRecord>(&*item)) {
      std::string s = std::to_string(rec->line) + ":";
      for (std::size_t i = 0; i < rec->fields.size(); ++i) s += (i ? "|" : "") + rec->fields[i];
      out.push_back(s);
    } else {
      const auto& p = std::get<CsvProblem>(*item);
      out.push_back(std::to_string(p.line) + "!" + p.reason);
    }
  }
  return out;
}

using V = std::vector<std::string>;

}  // namespace

TEST_CASE("MG-7: the contact-list file, header and rows, empty nickname and group") {
  CHECK(readAll("User ID,User Domain,Contact ID,Contact Domain,Nickname,Group Name\r\n"
                "bobjones,example.com,ann,example.com,Ann,General\r\n"
                "bobjones,example.com,carl,example.com,,\r\n") ==
        V{"1:User ID|User Domain|Contact ID|Contact Domain|Nickname|Group Name",
          "2:bobjones|example.com|ann|example.com|Ann|General", "3:bobjones|example.com|carl|example.com||"});
}

TEST_CASE("MG-9: spaces after the commas are not part of the fields") {
  CHECK(readAll("Contact ID, New Contact ID\njohn.smith@example.com, jsmith@example.com \n") ==
        V{"1:Contact ID|New Contact ID", "2:john.smith@example.com|jsmith@example.com"});
}

TEST_CASE("RFC 4180 quoting: commas, quotes and line breaks inside a quoted field") {
  CHECK(readAll("a,\"Smith, Ann\",\"say \"\"hi\"\"\"\nb,\"two\r\nlines\",x\nc,d,e") ==
        V{"1:a|Smith, Ann|say \"hi\"", "2:b|two\r\nlines|x", "4:c|d|e"});
  CHECK(readAll("\"\",\"\"\n") == V{"1:|"});
  CHECK(readAll(" \"quoted\" ,x\n") == V{"1:quoted|x"});
}

TEST_CASE("a byte order mark, CRLF, LF and CR mixed, no break at the end") {
  CHECK(readAll("\xEF\xBB\xBFh1,h2\r\na,b\nc,d\re,f") == V{"1:h1|h2", "2:a|b", "3:c|d", "4:e|f"});
}

TEST_CASE("empty lines are problems, not records; reading goes on") {
  CHECK(readAll("a,b\n\n  \r\nc,d\n") == V{"1:a|b", "2!empty line", "3!empty line", "4:c|d"});
}

TEST_CASE("a quote that never closes gives up its own line only") {
  CHECK(readAll("a,b\nc,\"unterminated,d\ne,f\n") ==
        V{"1:a|b", "2!field 2: a quote opens it and never closes", "3:e|f"});
}

TEST_CASE("characters after a closing quote, a quote inside an unquoted field") {
  CHECK(readAll("\"ab\"c,d\nx,y\"z\nok,1\n") ==
        V{"1!field 1: characters after its closing quote", "2!field 2: a quote inside a field that is not quoted",
          "3:ok|1"});
}

TEST_CASE("bytes that are not UTF-8 make the row a problem with the field and byte") {
  CHECK(readAll("ann,caf\xE9\nbob,\xC3\xA9t\xC3\xA9 \xF0\x9F\x98\x80\n\xC0\xAF,x\n") ==
        V{"1!field 2: not UTF-8 (byte 4)", "2:bob|été 😀", "3!field 1: not UTF-8 (byte 1)"});
}

TEST_CASE("firstInvalidUtf8: overlong forms, surrogates, above U+10FFFF, truncated") {
  CHECK(imp::core::firstInvalidUtf8("plain ascii") == std::string_view::npos);
  CHECK(imp::core::firstInvalidUtf8("\xE3\x81\x93\xE3\x82\x93") == std::string_view::npos);
  CHECK(imp::core::firstInvalidUtf8("\xC1\xBF") == 0);          // overlong
  CHECK(imp::core::firstInvalidUtf8("a\xED\xA0\x80") == 1);     // surrogate
  CHECK(imp::core::firstInvalidUtf8("\xF4\x90\x80\x80") == 0);  // above U+10FFFF
  CHECK(imp::core::firstInvalidUtf8("ab\xE3\x81") == 2);        // truncated at the end
  CHECK(imp::core::firstInvalidUtf8("\x80") == 0);              // a continuation byte alone
}

TEST_CASE("a position taken between items resumes there (a job's checkpoint)") {
  const std::string text = "h\nr1\n\"r2\nstill r2\"\nr3\n";
  CsvReader r(text);
  REQUIRE(r.next());
  REQUIRE(r.next());
  auto checkpoint = r.position();
  CsvReader again(text);
  again.seek(checkpoint);
  auto item = again.next();
  REQUIRE(item);
  auto rec = std::get<CsvRecord>(*item);
  CHECK(rec.line == 3);
  CHECK(rec.fields == V{"r2\nstill r2"});
  item = again.next();
  REQUIRE(item);
  CHECK(std::get<CsvRecord>(*item).line == 5);
  CHECK_FALSE(again.next());
}
