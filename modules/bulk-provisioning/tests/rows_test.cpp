// The bulk files' kinds, headers and row checks (issue 18, MG-7, MG-9).
#include <doctest/doctest.h>
#include <imp/bulk_provisioning/rows.h>

#include <string>
#include <variant>

using namespace imp::bat;

namespace {

std::string reason(const ContactRowOr& r) { return std::holds_alternative<std::string>(r) ? std::get<std::string>(r) : ""; }
std::string reason(const RenameRowOr& r) { return std::holds_alternative<std::string>(r) ? std::get<std::string>(r) : ""; }

}  // namespace

TEST_CASE("headers match without regard to case and spaces; the other kind's header is named") {
  CHECK(checkHeader(JobKind::Import, {"User ID", "User Domain", "Contact ID", "Contact Domain", "Nickname", "Group Name"}).empty());
  CHECK(checkHeader(JobKind::Import, {"user id", " USER DOMAIN", "ContactID", "contact domain ", "nickname", "group name"}).empty());
  CHECK(checkHeader(JobKind::Rename, {"Contact ID", " New Contact ID"}).empty());
  auto other = checkHeader(JobKind::Import, {"Contact ID", "New Contact ID"});
  CHECK(other.find("Rename Contacts") != std::string::npos);
  auto missing = checkHeader(JobKind::Import, {"bobjones", "example.com", "ann", "example.com", "Ann", "General"});
  CHECK(missing.find("the first line must be the header") == 0);
  CHECK(missing.find("bobjones") != std::string::npos);
}

TEST_CASE("a contact row is prepared (RFC 7622) and each bad field named") {
  auto ok = parseContactRow({"bobjones", "Example.COM", "Ann", "EXAMPLE.com", "Ann A.", "General"});
  REQUIRE(std::holds_alternative<ContactRow>(ok));
  const auto& r = std::get<ContactRow>(ok);
  CHECK(r.ownerId == "bobjones");
  CHECK(r.ownerDomain == "example.com");
  CHECK(r.contact == "ann@example.com");
  CHECK(r.nickname == "Ann A.");
  CHECK(r.group == "General");
  CHECK(reason(parseContactRow({"a", "b.com", "c", "d.com", "e"})) == "expected 6 columns, found 5");
  CHECK(reason(parseContactRow({"a", "b.com", "", "d.com", "", ""})) == "Contact ID is empty");
  CHECK(reason(parseContactRow({"a", "b.com", "x y", "d.com", "", ""})).find("Contact ID 'x y' is not a valid user part") == 0);
  CHECK(reason(parseContactRow({"a", "b.com", "c", "bad domain", "", ""})).find("Contact ID domain 'bad domain'") == 0);
  CHECK(reason(parseContactRow({"a", "b..com", "c", "d.com", "", ""})).find("User Domain 'b..com'") == 0);
  CHECK(reason(parseContactRow({"a", "b.com", std::string(700, 'c'), "d.com", "", ""})).find("longer than 640") != std::string::npos);
  CHECK(reason(parseContactRow({"a", "b.com", "c", "d.com", std::string(1024, 'n'), ""})) == "Nickname is longer than 1023 characters");
  // characters, not bytes: 1023 two-byte characters fit
  std::string wide;
  for (int i = 0; i < 1023; ++i) wide += "\xc3\xa9";
  CHECK(reason(parseContactRow({"a", "b.com", "c", "d.com", wide, ""})).empty());
  CHECK(reason(parseContactRow({"a", "b.com", "c", "d.com", "", std::string(641, 'g')})) == "Group Name is longer than 640 characters");
}

TEST_CASE("a rename record is two bare addresses that differ") {
  auto ok = parseRenameRow({"John.Smith@Example.com", "jsmith@example.com"});
  REQUIRE(std::holds_alternative<RenameRow>(ok));
  CHECK(std::get<RenameRow>(ok).from == "john.smith@example.com");
  CHECK(std::get<RenameRow>(ok).to == "jsmith@example.com");
  CHECK(reason(parseRenameRow({"a@b.com"})) == "expected 2 columns, found 1");
  CHECK(reason(parseRenameRow({"nodomain", "a@b.com"})) == "Contact ID 'nodomain' is not user@domain");
  CHECK(reason(parseRenameRow({"a@b.com", "c@d.com/res"})) == "New Contact ID 'c@d.com/res' is not user@domain");
  CHECK(reason(parseRenameRow({"a b@b.com", "c@d.com"})).find("not a valid user part") != std::string::npos);
  CHECK(reason(parseRenameRow({"A@b.com", "a@B.com"})) == "Contact ID and New Contact ID are the same address");
}

TEST_CASE("kinds have the seed's target and transaction names") {
  CHECK(nameOf(JobKind::Import) == "import");
  CHECK(jobKindOf("rename") == JobKind::Rename);
  CHECK_FALSE(jobKindOf("export").has_value());
  CHECK(targetOf(JobKind::Import) == "Contact Lists");
  CHECK(transactionOf(JobKind::Rename) == "Rename Contacts \xe2\x80\x93 Custom File");
}
