// AV-4 / AV-5: the lookups over the tables of availability.h. Everything that
// decides a mapping is in those tables; this file only searches them.
#include <imp/federation_cm/availability.h>

#include <algorithm>
#include <cstdlib>

namespace imp::fcm {

namespace {

// Lync availability ranges (MICROSOFT-SIP.md, Presence): lower bound -> state.
struct AvailabilityRange {
  int from;
  MsState state;
};
constexpr std::array<AvailabilityRange, 8> kRanges{{
    {0, MsState::Available},
    {4500, MsState::AvailableIdle},
    {6000, MsState::Busy},
    {7500, MsState::BusyIdle},
    {9000, MsState::DoNotDisturb},
    {12000, MsState::BeRightBack},
    {15000, MsState::Away},
    {18000, MsState::Offline},
}};

char lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

bool containsNoCase(std::string_view hay, std::string_view needle) {
  if (needle.size() > hay.size()) return false;
  for (std::size_t i = 0; i + needle.size() <= hay.size(); ++i) {
    bool match = true;
    for (std::size_t j = 0; j < needle.size() && match; ++j) match = lower(hay[i + j]) == lower(needle[j]);
    if (match) return true;
  }
  return false;
}

bool showMatches(std::string_view rowShow, std::string_view show) { return rowShow == "*" || rowShow == show; }

// RFC 6121 §4.7.2.1: "chat" is Available in every AV-5 table; values outside
// the four defined ones are treated as no <show/> at all.
std::string_view normaliseShow(std::string_view show) {
  if (show == "away" || show == "xa" || show == "dnd") return show;
  return "";
}

}  // namespace

MsState classify(const MicrosoftPresence& presence) {
  if (!presence.known) return MsState::Offline;
  if (presence.availability && *presence.availability >= 0) {
    MsState state = MsState::Available;
    for (const auto& r : kRanges)
      if (*presence.availability >= r.from) state = r.state;
    return state;
  }
  if (!presence.open) return MsState::Offline;
  for (const auto& token : presence.activities)
    for (const auto& row : kActivityTable)
      if (row.token == token) return row.state;
  return MsState::Available;
}

XmppShow toXmpp(MsState state) {
  for (const auto& row : kAv4Table)
    if (row.state == state) return row.shown;
  // Every enumerator has a row (tested); an out-of-range value is a bug.
  std::abort();
}

std::string_view displayName(MsState state) {
  switch (state) {
    case MsState::Available: return "Available";
    case MsState::AvailableIdle: return "Available - Idle";
    case MsState::Busy: return "Busy";
    case MsState::BusyIdle: return "Busy - Idle";
    case MsState::DoNotDisturb: return "Do Not Disturb";
    case MsState::BeRightBack: return "Be Right Back";
    case MsState::Away: return "Away";
    case MsState::AppearOffline: return "Appear Offline";
    case MsState::Offline: return "Offline";
  }
  return "Unknown";
}

ClientType recogniseClient(std::string_view capsNode, std::string_view softwareName) {
  if (containsNoCase(capsNode, "cupc") || containsNoCase(softwareName, "cupc") ||
      containsNoCase(softwareName, "unified personal communicator"))
    return ClientType::Cupc8;
  if (containsNoCase(capsNode, "cisco.com/jabber") || containsNoCase(capsNode, "jabber.cisco") ||
      containsNoCase(softwareName, "cisco jabber"))
    return ClientType::CiscoJabber;
  return ClientType::ThirdParty;
}

LyncAvailability toLync(const NativePresence& presence) {
  const std::string_view show = normaliseShow(presence.show);
  const std::string_view activity = presence.activity;
  auto find = [&](ClientType client, std::string_view act) -> const Av5Row* {
    auto it = std::find_if(kAv5Table.begin(), kAv5Table.end(), [&](const Av5Row& r) {
      return r.client == client && r.available == presence.available && showMatches(r.show, show) && r.activity == act;
    });
    return it == kAv5Table.end() ? nullptr : &*it;
  };
  if (const Av5Row* r = find(presence.client, activity)) return r->lync;
  if (const Av5Row* r = find(presence.client, "")) return r->lync;
  if (const Av5Row* r = find(ClientType::ThirdParty, "")) return r->lync;
  std::abort();  // the third-party table covers every (available, show): tested
}

}  // namespace imp::fcm
