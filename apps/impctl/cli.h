#pragma once
// impctl's shared pieces: the admin API client, parsed arguments and table
// output. Each command family lives in its own file next to the others
// (status/service/trace/db in main.cpp, user/domain in
// directory_commands.cpp, federation/listener/tls/acl/route in
// proxy_commands.cpp, ...) and is called from dispatch() in main.cpp.
#include <imp/core/sysexits.h>

#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>

#include <boost/program_options.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace impctl {

namespace po = boost::program_options;
using Obj = Poco::JSON::Object;
using Arr = Poco::JSON::Array;
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
  std::pair<int, std::string> call(const std::string& method, const std::string& path, const std::string& body = "") const;
  // Returns the parsed object for 2xx; maps everything else to an Exit.
  Obj::Ptr request(const std::string& method, const std::string& path, const std::string& body, bool rawJson,
                   int* status = nullptr) const;
};

struct Args {
  const po::variables_map* vm = nullptr;  // every option, for command files
  std::string config = "/etc/imp/impd.conf";
  std::string url, tokenFile, node, level, imAddress, homeNode, msUri, domain, description;
  bool json = false, cluster = false, on = false, off = false, clearFlags = false, unlicensed = false;
  std::vector<std::string> flags, words;
};


// A string option, or "" if absent.
std::string opt(const Args& a, const char* name);
bool flag(const Args& a, const char* name);

Client makeClient(const Args& a, const po::variables_map& vm);

// Connects on first use, so usage errors are reported before config errors.
struct LazyClient {
  const Args& args;
  const po::variables_map& vm;
  mutable std::optional<Client> client;
  Obj::Ptr request(const std::string& method, const std::string& path, const std::string& body, bool rawJson,
                   int* status = nullptr) const;
};

std::string str(const Obj::Ptr& o, const std::string& k);
std::string duration(long long s);
void table(const std::vector<std::vector<std::string>>& rows);
std::string nodeQuery(const std::string& node);
std::string pathPart(const std::string& s);
std::string queryPart(const std::string& s);
std::string jsonBody(const Obj& o);

// Command families in other files.
int userCommand(const Args& a, const LazyClient& c);
int domainCommand(const Args& a, const LazyClient& c);
// federation / listener / tls / acl / route (proxy_commands.cpp).
int federationCommand(const Args& a, const LazyClient& c);
int listenerCommand(const Args& a, const LazyClient& c);
int tlsCommand(const Args& a, const LazyClient& c);
int aclCommand(const Args& a, const LazyClient& c);
int banCommand(const Args& a, const LazyClient& c);
int proxyCommand(const Args& a, const LazyClient& c);
int routeCommand(const Args& a, const LazyClient& c);

}  // namespace impctl
