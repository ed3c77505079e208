// libFuzzer target: the body parsers of modules/federation-cm (issue 17) —
// everything a Lync or SIMPLE peer can put in a NOTIFY, INFO, MESSAGE or
// INVITE. The first byte picks the parser (byte % 8, so the corpus files can
// start with a readable '0'..'7'):
//   0 parsePidf (+ classify, and a build/parse round trip of the note)
//   1 parseKeyboardActivity      2 parseIsComposing
//   3 decodeBody: "content-type\nbody"
//   4 parseMsTextFormat (+ decodeBody of the result, build/parse round trip)
//   5 offersMessageMedia / buildImAnswer
//   6 htmlToText                 7 parseMediaType / parseTypingBody
// Besides not crashing, the invariants checked: decoded text is valid UTF-8;
// what IMP builds it can parse back.
#include <imp/federation_cm/availability.h>
#include <imp/federation_cm/im_content.h>
#include <imp/federation_cm/media_type.h>
#include <imp/federation_cm/pidf.h>
#include <imp/federation_cm/sdp.h>
#include <imp/federation_cm/typing.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

using namespace imp::fcm;

namespace {

void checkText(const DecodedBody& d) {
  if (const auto* t = std::get_if<ImText>(&d); t && !validUtf8(t->text)) std::abort();
}

std::pair<std::string_view, std::string_view> splitLine(std::string_view in) {
  const auto nl = in.find('\n');
  if (nl == std::string_view::npos) return {in, {}};
  return {in.substr(0, nl), in.substr(nl + 1)};
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const unsigned selector = data[0] % 8;
  const std::string_view in(reinterpret_cast<const char*>(data) + 1, size - 1);
  switch (selector) {
    case 0: {
      std::string why;
      auto p = parsePidf(in, &why);
      if (!p) {
        if (why.empty()) std::abort();
        break;
      }
      const MsState s = classify(*p);
      (void)toXmpp(s);
      (void)displayName(s);
      auto back = parsePidf(buildPidf("sip:fuzz@example.com", kLyncBusy, p->note));
      if (!back || back->note != p->note || classify(*back) != MsState::Busy) std::abort();
      break;
    }
    case 1: {
      auto t = parseKeyboardActivity(in);
      if (t && parseKeyboardActivity(buildKeyboardActivity(*t)) != t) std::abort();
      break;
    }
    case 2: {
      auto t = parseIsComposing(in);
      if (t && parseIsComposing(buildIsComposing(*t)) != t) std::abort();
      break;
    }
    case 3: {
      auto [type, body] = splitLine(in);
      checkText(decodeBody(type, body));
      break;
    }
    case 4: {
      auto r = parseMsTextFormat(in);
      if (!r) break;
      checkText(decodeBody(r->first, r->second));
      auto again = parseMsTextFormat(buildMsTextFormat(r->second));
      if (!again || again->second != r->second) std::abort();
      break;
    }
    case 5: {
      const bool offers = offersMessageMedia(in);
      if (buildImAnswer(in, "imp.example.com").empty() == offers) std::abort();
      break;
    }
    case 6: {
      const std::string text = htmlToText(in);
      if (validUtf8(in) && !validUtf8(text)) std::abort();
      break;
    }
    case 7: {
      auto [type, body] = splitLine(in);
      if (auto m = parseMediaType(type); m && m->type.empty()) std::abort();
      (void)isPidfContentType(type);
      (void)parseTypingBody(type, body);
      break;
    }
  }
  return 0;
}
