#pragma once
// Availability translation between Microsoft Lync / OCS and IMP's XMPP
// clients (AV-4, AV-5). Both directions are data: one constexpr table each
// (kAv4Table, kAv5Table), looked up by small functions; the tests walk every
// row. Pure functions, no state: callable from any thread.
#include <array>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace imp::fcm {

// The states a Lync / Communicator user can be seen in.
enum class MsState {
  Available,
  AvailableIdle,  // Lync "Inactive": available, but away from the keyboard
  Busy,
  BusyIdle,
  DoNotDisturb,
  BeRightBack,
  Away,
  AppearOffline,  // never seen on the wire: Lync publishes it as Offline
  Offline,
};

// What one NOTIFY body said (pidf.h fills it). known=false: no usable body.
struct MicrosoftPresence {
  bool known = false;
  bool open = false;                     // PIDF <basic>open</basic>
  std::optional<int> availability;       // Lync availability number, if sent
  std::vector<std::string> activities;   // RPID activity tokens (local names)
  std::string note;                      // PIDF/data-model <note>
};

// The Lync state of a presence document. In order:
//  1. !known -> Offline.
//  2. A non-negative availability number decides by Lync's ranges:
//     0-4499 Available, 4500-5999 AvailableIdle, 6000-7499 Busy,
//     7500-8999 BusyIdle, 9000-11999 DoNotDisturb, 12000-14999 BeRightBack,
//     15000-17999 Away, >= 18000 Offline (MICROSOFT-SIP.md, Presence). It is
//     Lync's own, more precise word, so it wins over <basic> and activities.
//  3. closed -> Offline (activities of a closed document do not count:
//     "Offline: on the phone" is Offline, AV-5).
//  4. open: the first activity token found in kActivityTable, in document
//     order, gives the state; none -> Available.
MsState classify(const MicrosoftPresence& presence);

// RPID / Lync activity token -> state (used by classify, step 4).
struct ActivityRow {
  std::string_view token;
  MsState state;
};
inline constexpr std::array<ActivityRow, 11> kActivityTable{{
    {"busy", MsState::Busy},
    {"on-the-phone", MsState::Busy},
    {"in-a-meeting", MsState::Busy},
    {"meeting", MsState::Busy},
    {"in-a-conference", MsState::Busy},
    {"away", MsState::Away},
    {"vacation", MsState::Away},
    {"out-of-office", MsState::Away},
    {"be-right-back", MsState::BeRightBack},
    {"do-not-disturb", MsState::DoNotDisturb},
    {"urgent-interruptions-only", MsState::DoNotDisturb},
}};

// ---- AV-4: Microsoft -> IMP clients -----------------------------------------

// An XMPP presence: available=false is type='unavailable'; show is the
// RFC 6121 <show/> value, "" for none.
struct XmppShow {
  bool available;
  std::string_view show;
};

struct Av4Row {
  MsState state;
  XmppShow shown;
};

// AV-4 (same for Cisco Jabber, CUPC 8.x and third-party clients). XMPP has
// no "busy": Busy is `dnd`, as Cisco Jabber itself renders dnd as busy.
// AvailableIdle (Lync "Inactive") is shown as Away: the user is not at the
// keyboard, which is what XMPP `away` means; Lync's own contact list shows it
// yellow like Away. BusyIdle stays Busy (dnd): the user is still in a call or
// meeting. The rows follow the enum order.
inline constexpr std::array<Av4Row, 9> kAv4Table{{
    {MsState::Available, {true, ""}},
    {MsState::AvailableIdle, {true, "away"}},
    {MsState::Busy, {true, "dnd"}},
    {MsState::BusyIdle, {true, "dnd"}},
    {MsState::DoNotDisturb, {true, "dnd"}},
    {MsState::BeRightBack, {true, "away"}},
    {MsState::Away, {true, "away"}},
    {MsState::AppearOffline, {false, ""}},
    {MsState::Offline, {false, ""}},
}};

// The AV-4 row of `state`.
XmppShow toXmpp(MsState state);

// "Available", "Available - Idle", "Busy", "Busy - Idle", "Do Not Disturb",
// "Be Right Back", "Away", "Appear Offline", "Offline" (logs, status text).
std::string_view displayName(MsState state);

// ---- AV-5: IMP clients -> Microsoft -----------------------------------------

enum class ClientType { CiscoJabber, Cupc8, ThirdParty };

// Which AV-5 table applies to a client, from the XEP-0115 <c node=...> of its
// presence and/or its XEP-0092 software name (either may be empty). Matching
// is case-insensitive substring search:
//   Cupc8 when the node contains "cupc" or the name contains "cupc" or
//     "unified personal communicator" (check: CUPC 8.x caps node);
//   CiscoJabber when the node contains "cisco.com/jabber" or "jabber.cisco"
//     or the name contains "cisco jabber" (check: Jabber's node is
//     "http://cisco.com/jabber");
//   ThirdParty otherwise.
// CUPC is tested first: its names are the more specific.
ClientType recogniseClient(std::string_view capsNode, std::string_view softwareName);

// A native user's presence as the XMPP side shows it.
//  available: false for type='unavailable'.
//  show: the <show/> value ("", "chat", "away", "xa", "dnd").
//  activity: what the user is doing, as one token: "on-the-phone",
//    "in-a-meeting", "out-of-office", "busy" (CUPC 8.x "Busy", which it
//    publishes as dnd with a busy activity (check)), or "" for none. The
//    caller takes it from an XEP-0108 user-activity child (talking/on_the_phone
//    -> on-the-phone, having_appointment/in_a_meeting -> in-a-meeting, ...)
//    or from the client's status text; this layer sees only the token.
//  client: recogniseClient()'s answer.
struct NativePresence {
  bool available = true;
  std::string show;
  std::string activity;
  ClientType client = ClientType::ThirdParty;
};

// What IMP publishes to Microsoft: the state, the Lync availability number
// (3500 Available, 6500 Busy, 15500 Away, 18500 Offline) and the RPID
// activity token for the PIDF person ("" = no <activities>).
struct LyncAvailability {
  MsState state;
  int availability;
  std::string_view rpidActivity;
};

inline constexpr LyncAvailability kLyncAvailable{MsState::Available, 3500, ""};
inline constexpr LyncAvailability kLyncBusy{MsState::Busy, 6500, "busy"};
inline constexpr LyncAvailability kLyncOnThePhone{MsState::Busy, 6500, "on-the-phone"};
inline constexpr LyncAvailability kLyncInAMeeting{MsState::Busy, 6500, "in-a-meeting"};
inline constexpr LyncAvailability kLyncAway{MsState::Away, 15500, "away"};
inline constexpr LyncAvailability kLyncOffline{MsState::Offline, 18500, ""};

// One AV-5 requirement row. show "*" matches any <show/>; "chat" is looked
// up as "" (XMPP chat is "available, eager to talk": Available everywhere).
struct Av5Row {
  ClientType client;
  std::string_view label;  // the requirement's wording of the native state
  bool available;
  std::string_view show;
  std::string_view activity;
  LyncAvailability lync;
};

// AV-5, the three requirement tables in order: CUPC 8.x (10 rows), Cisco
// Jabber (5), third-party XMPP (5).
inline constexpr std::array<Av5Row, 20> kAv5Table{{
    // Cisco Unified Personal Communicator 8.x
    {ClientType::Cupc8, "Available", true, "", "", kLyncAvailable},
    {ClientType::Cupc8, "Busy", true, "dnd", "busy", kLyncBusy},
    {ClientType::Cupc8, "On the phone", true, "*", "on-the-phone", kLyncOnThePhone},
    {ClientType::Cupc8, "In a meeting", true, "*", "in-a-meeting", kLyncInAMeeting},
    {ClientType::Cupc8, "Away", true, "away", "", kLyncAway},
    {ClientType::Cupc8, "Do Not Disturb", true, "dnd", "", kLyncBusy},
    {ClientType::Cupc8, "Offline", false, "*", "", kLyncOffline},
    {ClientType::Cupc8, "Offline: on the phone", false, "*", "on-the-phone", kLyncOffline},
    {ClientType::Cupc8, "Offline: in a meeting", false, "*", "in-a-meeting", kLyncOffline},
    {ClientType::Cupc8, "Offline: out of office", false, "*", "out-of-office", kLyncOffline},
    // Cisco Jabber
    {ClientType::CiscoJabber, "Available", true, "", "", kLyncAvailable},
    {ClientType::CiscoJabber, "Away", true, "away", "", kLyncAway},
    {ClientType::CiscoJabber, "Do Not Disturb", true, "dnd", "", kLyncBusy},
    {ClientType::CiscoJabber, "Not available / out", true, "xa", "", kLyncOffline},
    {ClientType::CiscoJabber, "Offline", false, "*", "", kLyncOffline},
    // Third-party XMPP
    {ClientType::ThirdParty, "available (no show / chat)", true, "", "", kLyncAvailable},
    {ClientType::ThirdParty, "away", true, "away", "", kLyncAway},
    {ClientType::ThirdParty, "xa (extended away)", true, "xa", "", kLyncAway},
    {ClientType::ThirdParty, "dnd", true, "dnd", "", kLyncBusy},
    {ClientType::ThirdParty, "unavailable", false, "*", "", kLyncOffline},
}};

// The AV-5 answer for a native presence:
//  1. the first row of the client's table matching (available, show,
//     activity) exactly, show "*" matching any show;
//  2. else the first row of the client's table with the same available and
//     show and no activity (an activity the client's table does not know,
//     e.g. Jabber "on-the-phone", is ignored);
//  3. else the third-party row for (available, show): a show outside RFC 6121's
//     four values counts as none.
// The third-party table covers every (available, show), so 3 always answers.
LyncAvailability toLync(const NativePresence& presence);

}  // namespace imp::fcm
