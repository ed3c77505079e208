// Session-mode IM SDP (IM-2; MICROSOFT-SIP.md, Instant messaging).
#include <imp/federation_cm/sdp.h>

#include <doctest/doctest.h>

#include <string>

using namespace imp::fcm;

namespace {

// From tests/corpus/sip/lync/invite_session_im.dat.
constexpr std::string_view kLyncOffer =
    "v=0\r\no=- 0 0 IN IP4 192.0.2.10\r\ns=session\r\nc=IN IP4 192.0.2.10\r\nt=0 0\r\n"
    "m=message 5060 sip null\r\n"
    "a=accept-types:text/plain text/html multipart/alternative application/im-iscomposing+xml "
    "application/ms-imdn+xml\r\n";

}  // namespace

TEST_CASE("offersMessageMedia: message and x-ms-message lines, any port or protocol") {
  CHECK(offersMessageMedia(kLyncOffer));
  CHECK(offersMessageMedia("v=0\nm=x-ms-message 5060 sip null\n"));
  CHECK(offersMessageMedia("v=0\r\nm=message 5061 sip sip:bob@example.com\r\n"));
  CHECK(offersMessageMedia("m=message 0 TCP/MSRP *"));  // no line break at the end
  CHECK(offersMessageMedia("v=0\r\nm=audio 49170 RTP/AVP 0\r\nm=message 5060 sip null\r\n"));
}

TEST_CASE("offersMessageMedia: no IM media line") {
  CHECK_FALSE(offersMessageMedia(""));
  CHECK_FALSE(offersMessageMedia("v=0\r\nm=audio 49170 RTP/AVP 0\r\n"));
  CHECK_FALSE(offersMessageMedia("v=0\r\nm=messages 5060 sip null\r\n"));
  CHECK_FALSE(offersMessageMedia("v=0\r\nm=message\r\n"));
  CHECK_FALSE(offersMessageMedia("v=0\r\na=m=message 5060 sip null\r\n"));
  CHECK_FALSE(offersMessageMedia("v=0\r\n m=message 5060 sip null\r\n"));
  CHECK_FALSE(offersMessageMedia("v=0\r\nM=message 5060 sip null\r\n"));
}

TEST_CASE("buildImOffer: the lines of MICROSOFT-SIP.md") {
  const std::string offer = buildImOffer("imp.example.com");
  CHECK(offer ==
        "v=0\r\no=- 0 0 IN IP4 imp.example.com\r\ns=session\r\nc=IN IP4 imp.example.com\r\nt=0 0\r\n"
        "m=message 5060 sip null\r\n"
        "a=accept-types:text/plain text/html multipart/alternative application/im-iscomposing+xml "
        "application/ms-imdn+xml\r\n");
  CHECK(offersMessageMedia(offer));
  // Same as what Lync itself sends, but for the host.
  CHECK(buildImOffer("192.0.2.10") == kLyncOffer);
}

TEST_CASE("buildImOffer: IPv6 host") {
  const std::string offer = buildImOffer("2001:db8::1");
  CHECK(offer.find("o=- 0 0 IN IP6 2001:db8::1\r\n") != std::string::npos);
  CHECK(offer.find("c=IN IP6 2001:db8::1\r\n") != std::string::npos);
}

TEST_CASE("buildImAnswer: the same media name as the offer") {
  const std::string a = buildImAnswer(kLyncOffer, "imp.example.com");
  CHECK(a == buildImOffer("imp.example.com"));
  const std::string old = buildImAnswer("v=0\r\nm=x-ms-message 5060 sip null\r\n", "imp.example.com");
  CHECK(old.find("m=x-ms-message 5060 sip null\r\n") != std::string::npos);
  CHECK(old.find("m=message") == std::string::npos);
  CHECK(offersMessageMedia(old));
}

TEST_CASE("buildImAnswer: nothing to answer without IM media") {
  CHECK(buildImAnswer("v=0\r\nm=audio 49170 RTP/AVP 0\r\n", "imp.example.com").empty());
  CHECK(buildImAnswer("", "h").empty());
}
