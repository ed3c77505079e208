#include "imp/bulk_provisioning/rows.h"

#include <imp/core/utf8.h>
#include <imp/directory/directory.h>
#include <imp/xmpp/jid.h>

#include <algorithm>
#include <cctype>


namespace imp::bat {

namespace {

std::string folded(std::string_view s) {
  std::string out;
  for (char c : s)
    if (c != ' ' && c != '\t') out += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string joined(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : ", ") + s;
  return out;
}

std::string columns(std::size_t want, std::size_t got) {
  return "expected " + std::to_string(want) + " columns, found " + std::to_string(got);
}

// A bare address from its two parts, prepared; "" with *why when invalid.
std::string bareAddress(std::string_view local, std::string_view domain, const std::string& what, std::string* why) {
  std::string reason;
  auto l = xmpp::normaliseLocalpart(local, &reason);
  if (!l) {
    *why = what + " '" + std::string(local) + "' is not a valid user part: " + reason;
    return {};
  }
  auto d = xmpp::normaliseDomainpart(domain, &reason);
  if (!d) {
    *why = what + " domain '" + std::string(domain) + "' is not a valid domain: " + reason;
    return {};
  }
  return *l + "@" + *d;
}

std::string bareAddress(std::string_view address, const std::string& what, std::string* why) {
  auto at = address.find('@');
  if (address.empty() || at == std::string_view::npos || address.find('/') != std::string_view::npos) {
    *why = what + " '" + std::string(address) + "' is not user@domain";
    return {};
  }
  return bareAddress(address.substr(0, at), address.substr(at + 1), what, why);
}

bool tooLong(const std::string& s, std::size_t max) { return core::utf8Chars(s) > max; }

}  // namespace

std::string_view nameOf(JobKind k) { return k == JobKind::Import ? "import" : "rename"; }

std::optional<JobKind> jobKindOf(std::string_view name) {
  if (name == "import") return JobKind::Import;
  if (name == "rename") return JobKind::Rename;
  return std::nullopt;
}

std::string_view targetOf(JobKind k) { return k == JobKind::Import ? "Contact Lists" : "Contacts"; }

std::string_view transactionOf(JobKind k) {
  return k == JobKind::Import ? "Import Users' Contacts \xe2\x80\x93 Custom File"
                              : "Rename Contacts \xe2\x80\x93 Custom File";
}

const std::vector<std::string>& headerOf(JobKind k) {
  static const std::vector<std::string> import{"User ID",        "User Domain", "Contact ID",
                                               "Contact Domain", "Nickname",    "Group Name"};
  static const std::vector<std::string> rename{"Contact ID", "New Contact ID"};
  return k == JobKind::Import ? import : rename;
}

std::string checkHeader(JobKind kind, const std::vector<std::string>& fields) {
  const auto& want = headerOf(kind);
  bool same = fields.size() == want.size();
  for (std::size_t i = 0; same && i < want.size(); ++i) same = folded(fields[i]) == folded(want[i]);
  if (same) return {};
  // The other kind's header: the usual mistake, named as such.
  const JobKind other = kind == JobKind::Import ? JobKind::Rename : JobKind::Import;
  const auto& theirs = headerOf(other);
  bool isOther = fields.size() == theirs.size();
  for (std::size_t i = 0; isOther && i < theirs.size(); ++i) isOther = folded(fields[i]) == folded(theirs[i]);
  if (isOther)
    return "the file is a " + std::string(transactionOf(other)) + " file (header '" + joined(fields) +
           "'), not a " + std::string(transactionOf(kind)) + " file";
  return "the first line must be the header '" + joined(want) + "'; it is '" + joined(fields) + "'";
}

ContactRowOr parseContactRow(const std::vector<std::string>& f) {
  if (f.size() != 6) return columns(6, f.size());
  if (f[0].empty()) return std::string("User ID is empty");
  if (f[2].empty()) return std::string("Contact ID is empty");
  if (f[3].empty()) return std::string("Contact Domain is empty");
  ContactRow r;
  r.ownerId = f[0];
  if (auto e = directory::checkUserId(r.ownerId); !e.empty()) return "User ID: " + e;
  std::string why;
  auto ownerDomain = xmpp::normaliseDomainpart(f[1], &why);
  if (!ownerDomain) return "User Domain '" + f[1] + "' is not a valid domain: " + why;
  r.ownerDomain = *ownerDomain;
  r.contact = bareAddress(f[2], f[3], "Contact ID", &why);
  if (r.contact.empty()) return why;
  if (tooLong(r.contact, kMaxContactChars))
    return "contact '" + r.contact + "' is longer than " + std::to_string(kMaxContactChars) + " characters";
  r.nickname = f[4];
  if (tooLong(r.nickname, kMaxNicknameChars))
    return "Nickname is longer than " + std::to_string(kMaxNicknameChars) + " characters";
  r.group = f[5];
  if (tooLong(r.group, kMaxGroupChars))
    return "Group Name is longer than " + std::to_string(kMaxGroupChars) + " characters";
  return r;
}

RenameRowOr parseRenameRow(const std::vector<std::string>& f) {
  if (f.size() != 2) return columns(2, f.size());
  std::string why;
  RenameRow r;
  r.from = bareAddress(f[0], "Contact ID", &why);
  if (r.from.empty()) return why;
  r.to = bareAddress(f[1], "New Contact ID", &why);
  if (r.to.empty()) return why;
  if (tooLong(r.to, kMaxContactChars))
    return "New Contact ID '" + r.to + "' is longer than " + std::to_string(kMaxContactChars) + " characters";
  if (r.from == r.to) return "Contact ID and New Contact ID are the same address";
  return r;
}


}  // namespace imp::bat
