#include <imp/federation_cm/sdp.h>

#include <optional>

namespace imp::fcm {

namespace {

// The media name ("message" / "x-ms-message") of the first IM media line.
std::optional<std::string_view> imMediaName(std::string_view sdp) {
  std::size_t i = 0;
  while (i < sdp.size()) {
    std::size_t eol = sdp.find('\n', i);
    std::string_view line = sdp.substr(i, eol == std::string_view::npos ? std::string_view::npos : eol - i);
    i = eol == std::string_view::npos ? sdp.size() : eol + 1;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    for (std::string_view name : {std::string_view("message"), std::string_view("x-ms-message")}) {
      if (line.size() > 2 + name.size() && line.substr(0, 2) == "m=" && line.substr(2, name.size()) == name &&
          line[2 + name.size()] == ' ')
        return name;
    }
  }
  return std::nullopt;
}

std::string build(std::string_view mediaName, std::string_view host) {
  const std::string_view family = host.find(':') == std::string_view::npos ? "IP4" : "IP6";
  std::string out;
  out.reserve(256);
  out += "v=0\r\n";
  out += "o=- 0 0 IN " + std::string(family) + ' ' + std::string(host) + "\r\n";
  out += "s=session\r\n";
  out += "c=IN " + std::string(family) + ' ' + std::string(host) + "\r\n";
  out += "t=0 0\r\n";
  out += "m=" + std::string(mediaName) + " 5060 sip null\r\n";
  out += "a=accept-types:" + std::string(kImAcceptTypes) + "\r\n";
  return out;
}

}  // namespace

bool offersMessageMedia(std::string_view sdp) { return imMediaName(sdp).has_value(); }

std::string buildImOffer(std::string_view host) { return build("message", host); }

std::string buildImAnswer(std::string_view offer, std::string_view host) {
  auto name = imMediaName(offer);
  return name ? build(*name, host) : std::string();
}

}  // namespace imp::fcm
