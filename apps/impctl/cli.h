#pragma once
// impctl's admin API client. The commands themselves, their parsing, usage
// and output come from the command registry the modules fill (issue 15
// deliverable 4); this is only the HTTP side.
#include <imp/core/sysexits.h>

#include <Poco/JSON/Object.h>

#include <string>
#include <utility>

namespace impctl {

using Obj = Poco::JSON::Object;
using namespace imp::core::exitcode;
constexpr int kServerError = kSoftware;

// Thrown to end the command with an exit code and a message on stderr.
struct Exit {
  int code;
  std::string message;
};

struct Client {
  std::string url;
  std::string token;
  std::pair<int, std::string> call(const std::string& method, const std::string& target, const std::string& body,
                                   const std::string& contentType = "application/json") const;
  // Returns the parsed object for 2xx (printed as is with rawJson); maps
  // everything else to an Exit (401/403 -> 77, 5xx -> 70, other -> 1).
  Obj::Ptr request(const std::string& method, const std::string& target, const std::string& body, bool rawJson,
                   int* status) const;
};

// Reads a secret argument (Arg::secret): from a terminal on stdin, prompted
// on stderr without echo, twice, the two must match (else Exit 64); from
// stdin that is not a terminal, one line without its line ending. Never
// from the command line.
std::string readSecret(const std::string& prompt);

// The admin URL and token: --url and --token-file, else impd.conf's [admin]
// section (configDefaulted: -c was not given, for the hint on failure).
Client makeClient(const std::string& config, bool configDefaulted, const std::string& url, const std::string& tokenFile);

}  // namespace impctl
