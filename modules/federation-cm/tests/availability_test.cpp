// AV-4 / AV-5: every row of both tables, the Lync availability ranges and the
// activity tokens, client recognition and the fallbacks of toLync().
#include <imp/federation_cm/availability.h>

#include <doctest/doctest.h>

#include <set>
#include <string>

using namespace imp::fcm;

namespace {

MicrosoftPresence withNumber(int n) {
  MicrosoftPresence p;
  p.known = true;
  p.open = true;
  p.availability = n;
  return p;
}

MicrosoftPresence openWith(std::vector<std::string> activities) {
  MicrosoftPresence p;
  p.known = true;
  p.open = true;
  p.activities = std::move(activities);
  return p;
}

NativePresence native(ClientType c, bool available, std::string show, std::string activity = "") {
  return NativePresence{available, std::move(show), std::move(activity), c};
}

bool same(const LyncAvailability& a, const LyncAvailability& b) {
  return a.state == b.state && a.availability == b.availability && a.rpidActivity == b.rpidActivity;
}

std::string_view clientName(ClientType c) {
  switch (c) {
    case ClientType::Cupc8: return "CUPC 8.x";
    case ClientType::CiscoJabber: return "Cisco Jabber";
    case ClientType::ThirdParty: return "third-party";
  }
  return "?";
}

}  // namespace

// ---- classify ----------------------------------------------------------------

TEST_CASE("classify: the bounds of every Lync availability range") {
  struct Case {
    int number;
    MsState state;
  };
  const Case cases[] = {
      {0, MsState::Available},          {3500, MsState::Available},      {4499, MsState::Available},
      {4500, MsState::AvailableIdle},   {5999, MsState::AvailableIdle},  {6000, MsState::Busy},
      {6500, MsState::Busy},            {7499, MsState::Busy},           {7500, MsState::BusyIdle},
      {8999, MsState::BusyIdle},        {9000, MsState::DoNotDisturb},   {9500, MsState::DoNotDisturb},
      {11999, MsState::DoNotDisturb},   {12000, MsState::BeRightBack},   {12500, MsState::BeRightBack},
      {14999, MsState::BeRightBack},    {15000, MsState::Away},          {15500, MsState::Away},
      {17999, MsState::Away},           {18000, MsState::Offline},       {18500, MsState::Offline},
      {999999, MsState::Offline},
  };
  for (const auto& c : cases) {
    CAPTURE(c.number);
    CHECK(classify(withNumber(c.number)) == c.state);
  }
}

TEST_CASE("classify: the availability number wins over <basic> and activities") {
  auto p = withNumber(3500);
  p.open = false;
  p.activities = {"away"};
  CHECK(classify(p) == MsState::Available);
  auto q = withNumber(18500);
  CHECK(classify(q) == MsState::Offline);
}

TEST_CASE("classify: a negative availability number is ignored") {
  auto p = withNumber(-1);
  CHECK(classify(p) == MsState::Available);  // open, no activity
  p.open = false;
  CHECK(classify(p) == MsState::Offline);
}

TEST_CASE("classify: every activity token of the table, with basic open") {
  for (const auto& row : kActivityTable) {
    SUBCASE(std::string(row.token).c_str()) { CHECK(classify(openWith({std::string(row.token)})) == row.state); }
  }
}

TEST_CASE("classify: activity tokens of RPID and Lync") {
  CHECK(classify(openWith({"on-the-phone"})) == MsState::Busy);
  CHECK(classify(openWith({"in-a-meeting"})) == MsState::Busy);
  CHECK(classify(openWith({"meeting"})) == MsState::Busy);
  CHECK(classify(openWith({"in-a-conference"})) == MsState::Busy);
  CHECK(classify(openWith({"busy"})) == MsState::Busy);
  CHECK(classify(openWith({"away"})) == MsState::Away);
  CHECK(classify(openWith({"vacation"})) == MsState::Away);
  CHECK(classify(openWith({"out-of-office"})) == MsState::Away);
  CHECK(classify(openWith({"be-right-back"})) == MsState::BeRightBack);
  CHECK(classify(openWith({"do-not-disturb"})) == MsState::DoNotDisturb);
  CHECK(classify(openWith({"urgent-interruptions-only"})) == MsState::DoNotDisturb);
}

TEST_CASE("classify: the first known token decides; unknown tokens are skipped") {
  CHECK(classify(openWith({"unknown", "lunch", "away", "busy"})) == MsState::Away);
  CHECK(classify(openWith({"busy", "away"})) == MsState::Busy);
  CHECK(classify(openWith({"unknown", "sleeping"})) == MsState::Available);
  CHECK(classify(openWith({})) == MsState::Available);
}

TEST_CASE("classify: closed is Offline whatever the activities") {
  auto p = openWith({"on-the-phone"});
  p.open = false;
  CHECK(classify(p) == MsState::Offline);
}

TEST_CASE("classify: an unknown presence is Offline") {
  MicrosoftPresence p;
  p.open = true;
  p.activities = {"busy"};
  CHECK(classify(p) == MsState::Offline);
}

// ---- AV-4 --------------------------------------------------------------------

TEST_CASE("AV-4 table: one row per state, in enum order") {
  std::set<int> seen;
  for (std::size_t i = 0; i < kAv4Table.size(); ++i) {
    CHECK(static_cast<std::size_t>(kAv4Table[i].state) == i);
    seen.insert(static_cast<int>(kAv4Table[i].state));
  }
  CHECK(seen.size() == 9);
}

TEST_CASE("AV-4: each Lync state as IMP clients see it") {
  auto check = [](MsState s, bool available, std::string_view show) {
    XmppShow x = toXmpp(s);
    CHECK(x.available == available);
    CHECK(x.show == show);
  };
  SUBCASE("Available -> Available") { check(MsState::Available, true, ""); }
  SUBCASE("Available-Idle (Inactive) -> Away") { check(MsState::AvailableIdle, true, "away"); }
  SUBCASE("Busy -> Busy") { check(MsState::Busy, true, "dnd"); }
  SUBCASE("Busy-Idle -> Busy") { check(MsState::BusyIdle, true, "dnd"); }
  SUBCASE("Do Not Disturb -> Busy") { check(MsState::DoNotDisturb, true, "dnd"); }
  SUBCASE("Be Right Back -> Away") { check(MsState::BeRightBack, true, "away"); }
  SUBCASE("Away -> Away") { check(MsState::Away, true, "away"); }
  SUBCASE("Appear Offline -> Offline") { check(MsState::AppearOffline, false, ""); }
  SUBCASE("Offline -> Offline") { check(MsState::Offline, false, ""); }
}

TEST_CASE("AV-4: the numbers Lync typically sends, end to end") {
  CHECK(toXmpp(classify(withNumber(3500))).show == "");
  CHECK(toXmpp(classify(withNumber(6500))).show == "dnd");
  CHECK(toXmpp(classify(withNumber(9500))).show == "dnd");
  CHECK(toXmpp(classify(withNumber(12500))).show == "away");
  CHECK(toXmpp(classify(withNumber(15500))).show == "away");
  CHECK_FALSE(toXmpp(classify(withNumber(18500))).available);
}

TEST_CASE("displayName names every state") {
  CHECK(displayName(MsState::Available) == "Available");
  CHECK(displayName(MsState::AvailableIdle) == "Available - Idle");
  CHECK(displayName(MsState::Busy) == "Busy");
  CHECK(displayName(MsState::BusyIdle) == "Busy - Idle");
  CHECK(displayName(MsState::DoNotDisturb) == "Do Not Disturb");
  CHECK(displayName(MsState::BeRightBack) == "Be Right Back");
  CHECK(displayName(MsState::Away) == "Away");
  CHECK(displayName(MsState::AppearOffline) == "Appear Offline");
  CHECK(displayName(MsState::Offline) == "Offline");
}

// ---- AV-5: client recognition -----------------------------------------------

TEST_CASE("recogniseClient: Cisco Jabber by caps node or software name") {
  CHECK(recogniseClient("http://cisco.com/jabber", "") == ClientType::CiscoJabber);
  CHECK(recogniseClient("HTTP://CISCO.COM/JABBER/caps", "") == ClientType::CiscoJabber);
  CHECK(recogniseClient("", "Cisco Jabber") == ClientType::CiscoJabber);
  CHECK(recogniseClient("http://jabber.cisco.com/caps", "") == ClientType::CiscoJabber);
}

TEST_CASE("recogniseClient: CUPC 8.x by caps node or software name") {
  CHECK(recogniseClient("http://cisco.com/cupc", "") == ClientType::Cupc8);
  CHECK(recogniseClient("", "Cisco Unified Personal Communicator") == ClientType::Cupc8);
  CHECK(recogniseClient("", "CUPC 8.6") == ClientType::Cupc8);
}

TEST_CASE("recogniseClient: everything else is third-party") {
  CHECK(recogniseClient("", "") == ClientType::ThirdParty);
  CHECK(recogniseClient("http://pidgin.im/", "Pidgin") == ClientType::ThirdParty);
  CHECK(recogniseClient("https://gajim.org", "Gajim") == ClientType::ThirdParty);
  CHECK(recogniseClient("http://psi-im.org/caps", "Psi+ (jabber client)") == ClientType::ThirdParty);
}

// ---- AV-5: the table ------------------------------------------------------------

TEST_CASE("AV-5 table: 10 CUPC 8.x rows, 5 Jabber rows, 5 third-party rows") {
  int cupc = 0, jabber = 0, third = 0;
  for (const auto& r : kAv5Table) {
    cupc += r.client == ClientType::Cupc8;
    jabber += r.client == ClientType::CiscoJabber;
    third += r.client == ClientType::ThirdParty;
  }
  CHECK(cupc == 10);
  CHECK(jabber == 5);
  CHECK(third == 5);
}

TEST_CASE("AV-5 table: availability numbers match the states") {
  for (const auto& r : kAv5Table) {
    CAPTURE(r.label);
    switch (r.lync.state) {
      case MsState::Available: CHECK(r.lync.availability == 3500); break;
      case MsState::Busy: CHECK(r.lync.availability == 6500); break;
      case MsState::Away: CHECK(r.lync.availability == 15500); break;
      case MsState::Offline: CHECK(r.lync.availability == 18500); break;
      default: FAIL("AV-5 publishes only Available, Busy, Away, Offline");
    }
    // Whatever IMP publishes reads back as the same state (AV-4 direction).
    MicrosoftPresence back;
    back.known = true;
    back.open = r.lync.state != MsState::Offline;
    if (!r.lync.rpidActivity.empty()) back.activities.emplace_back(r.lync.rpidActivity);
    CHECK(classify(back) == r.lync.state);
    CHECK(classify(withNumber(r.lync.availability)) == r.lync.state);
  }
}

TEST_CASE("AV-5 table: each row is what toLync answers for it") {
  for (const auto& r : kAv5Table) {
    const std::string name = std::string(clientName(r.client)) + ": " + std::string(r.label);
    SUBCASE(name.c_str()) {
      NativePresence p = native(r.client, r.available, r.show == "*" ? "away" : std::string(r.show),
                                std::string(r.activity));
      CHECK(same(toLync(p), r.lync));
    }
  }
}

TEST_CASE("AV-5 CUPC 8.x: every requirement row") {
  auto c = [](bool available, std::string show, std::string activity = "") {
    return toLync(native(ClientType::Cupc8, available, std::move(show), std::move(activity)));
  };
  SUBCASE("Available -> Available") { CHECK(same(c(true, ""), kLyncAvailable)); }
  SUBCASE("Busy -> Busy") { CHECK(same(c(true, "dnd", "busy"), kLyncBusy)); }
  SUBCASE("On the phone -> Busy") {
    CHECK(c(true, "dnd", "on-the-phone").state == MsState::Busy);
    CHECK(c(true, "away", "on-the-phone").state == MsState::Busy);
    CHECK(c(true, "", "on-the-phone").rpidActivity == "on-the-phone");
  }
  SUBCASE("In a meeting -> Busy") {
    CHECK(c(true, "dnd", "in-a-meeting").state == MsState::Busy);
    CHECK(c(true, "", "in-a-meeting").rpidActivity == "in-a-meeting");
  }
  SUBCASE("Away -> Away") { CHECK(same(c(true, "away"), kLyncAway)); }
  SUBCASE("Do Not Disturb -> Busy") { CHECK(same(c(true, "dnd"), kLyncBusy)); }
  SUBCASE("Offline -> Offline") { CHECK(same(c(false, ""), kLyncOffline)); }
  SUBCASE("Offline: on the phone -> Offline") { CHECK(same(c(false, "", "on-the-phone"), kLyncOffline)); }
  SUBCASE("Offline: in a meeting -> Offline") { CHECK(same(c(false, "dnd", "in-a-meeting"), kLyncOffline)); }
  SUBCASE("Offline: out of office -> Offline") { CHECK(same(c(false, "xa", "out-of-office"), kLyncOffline)); }
}

TEST_CASE("AV-5 Cisco Jabber: every requirement row") {
  auto j = [](bool available, std::string show) { return toLync(native(ClientType::CiscoJabber, available, std::move(show))); };
  SUBCASE("Available -> Available") { CHECK(same(j(true, ""), kLyncAvailable)); }
  SUBCASE("Away -> Away") { CHECK(same(j(true, "away"), kLyncAway)); }
  SUBCASE("Do Not Disturb -> Busy") { CHECK(same(j(true, "dnd"), kLyncBusy)); }
  SUBCASE("Not available / out (xa) -> Offline") { CHECK(same(j(true, "xa"), kLyncOffline)); }
  SUBCASE("Offline -> Offline") { CHECK(same(j(false, ""), kLyncOffline)); }
}

TEST_CASE("AV-5 third-party XMPP: every requirement row") {
  auto t = [](bool available, std::string show) { return toLync(native(ClientType::ThirdParty, available, std::move(show))); };
  SUBCASE("no show -> Available") { CHECK(same(t(true, ""), kLyncAvailable)); }
  SUBCASE("chat -> Available") { CHECK(same(t(true, "chat"), kLyncAvailable)); }
  SUBCASE("away -> Away") { CHECK(same(t(true, "away"), kLyncAway)); }
  SUBCASE("xa -> Away") { CHECK(same(t(true, "xa"), kLyncAway)); }
  SUBCASE("dnd -> Busy") { CHECK(same(t(true, "dnd"), kLyncBusy)); }
  SUBCASE("unavailable -> Offline") { CHECK(same(t(false, ""), kLyncOffline)); }
}

TEST_CASE("AV-5: xa is Offline for Jabber but Away for third-party clients") {
  CHECK(toLync(native(ClientType::CiscoJabber, true, "xa")).state == MsState::Offline);
  CHECK(toLync(native(ClientType::ThirdParty, true, "xa")).state == MsState::Away);
}

TEST_CASE("AV-5 fallback: an activity the client's table lacks is ignored") {
  // Jabber has no activity rows: dnd + on-the-phone is Jabber's dnd.
  CHECK(same(toLync(native(ClientType::CiscoJabber, true, "dnd", "on-the-phone")), kLyncBusy));
  // Third-party: activities never matter.
  CHECK(same(toLync(native(ClientType::ThirdParty, true, "away", "in-a-meeting")), kLyncAway));
  // CUPC: an unlisted activity falls back to the show's row.
  CHECK(same(toLync(native(ClientType::Cupc8, true, "away", "out-of-office")), kLyncAway));
  CHECK(same(toLync(native(ClientType::Cupc8, false, "", "busy")), kLyncOffline));
}

TEST_CASE("AV-5 fallback: shows a client's table lacks go through the third-party rows") {
  // CUPC 8.x has no xa row: third-party xa -> Away.
  CHECK(same(toLync(native(ClientType::Cupc8, true, "xa")), kLyncAway));
  // chat is Available for every client.
  CHECK(same(toLync(native(ClientType::CiscoJabber, true, "chat")), kLyncAvailable));
  CHECK(same(toLync(native(ClientType::Cupc8, true, "chat")), kLyncAvailable));
}

TEST_CASE("AV-5 fallback: a show outside RFC 6121 counts as none") {
  CHECK(same(toLync(native(ClientType::ThirdParty, true, "busy")), kLyncAvailable));
  CHECK(same(toLync(native(ClientType::CiscoJabber, true, "DND")), kLyncAvailable));
  CHECK(same(toLync(native(ClientType::ThirdParty, false, "garbage")), kLyncOffline));
}
