#pragma once
// The two kinds of bulk file and what one row of each must say before any
// data is looked at (issue 18; MG-7 contact lists, MG-9 contact-ID renames).
//
//  import  target "Contact Lists", transaction "Import Users' Contacts –
//          Custom File": header User ID, User Domain, Contact ID, Contact
//          Domain, Nickname, Group Name; one contact per row.
//  rename  target "Contacts", transaction "Rename Contacts – Custom File":
//          header Contact ID, New Contact ID; one rename per row, each ID a
//          bare address (user@domain).
//
// Headers match without regard to case or spaces around names. Row checks
// give the reason a row is ignored, worded for the job's result log.
// Pure: no I/O, any thread.
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace imp::bat {

enum class JobKind { Import, Rename };
std::string_view nameOf(JobKind k);                 // "import" | "rename"
std::optional<JobKind> jobKindOf(std::string_view name);
std::string_view targetOf(JobKind k);               // "Contact Lists" | "Contacts"
std::string_view transactionOf(JobKind k);          // "Import Users' Contacts – Custom File" | ...
const std::vector<std::string>& headerOf(JobKind k);  // the column names, in order

// "" when `fields` is the header of a `kind` file, else why not (the job
// fails at once: without it the columns cannot be trusted).
std::string checkHeader(JobKind kind, const std::vector<std::string>& fields);

// Longest contact ID (the bare address), nickname and group name accepted:
// what the roster store holds (xcp-router).
inline constexpr std::size_t kMaxContactChars = 640;
inline constexpr std::size_t kMaxNicknameChars = 1023;
inline constexpr std::size_t kMaxGroupChars = 640;

struct ContactRow {
  std::string ownerId;      // as given (the directory decides)
  std::string ownerDomain;  // lower-case
  std::string contact;      // bare JID, prepared (RFC 7622)
  std::string nickname;
  std::string group;        // "" = none
};

struct RenameRow {
  std::string from;  // bare JIDs, prepared
  std::string to;
};

using ContactRowOr = std::variant<ContactRow, std::string>;
using RenameRowOr = std::variant<RenameRow, std::string>;

ContactRowOr parseContactRow(const std::vector<std::string>& fields);
RenameRowOr parseRenameRow(const std::vector<std::string>& fields);

}  // namespace imp::bat
