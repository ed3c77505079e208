// The administrator's toolkit commands of issue 19 that need no other
// module: the capacity planner (HA-2) and access to the node's log files
// (SV-5).
#include <imp/core/admin_http.h>
#include <imp/core/command_registry.h>
#include <imp/core/logging.h>
#include <imp/core/response_shape.h>

#include <Poco/JSON/Object.h>

#include <algorithm>
#include <chrono>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <ostream>
#include <thread>

#include "imp/serviceability/admin_api.h"
#include "imp/serviceability/capacity.h"
#include "shared_fields.h"

namespace imp::serviceability {

using core::AdminError;
using core::Arg;
using core::Command;
using core::CommandArgs;
using core::Field;
using core::ListField;
using core::Reply;
using Obj = Poco::JSON::Object;
namespace fs = std::filesystem;

namespace {

// ---- capacity (HA-2) ----

struct CapacityRowShape : core::Shape {
  CapacityRowShape() : Shape("CapacityRow", Layout::Table) {}
  const Field<std::int64_t> avgContacts = number("avg_contacts").column("AVG CONTACTS");
  const Field<std::int64_t> maxUsers = number("max_users").column("MAX USERS (ORIGINAL LIMIT)");
  const Field<std::int64_t> impMaxUsers = number("imp_max_users").column("MAX USERS (IMP MEASURED)");
};

struct CapacityShape : core::Shape {
  CapacityShape() : Shape("Capacity", Layout::Lines) {}
  const Field<std::string> templateName = text("template");
  const Field<std::string> source = text("source");
  const Field<std::int64_t> threshold = number("threshold_contacts");
  const Field<std::int64_t> templateUsers = number("template_users");
  const Field<std::int64_t> impThreshold = number("imp_threshold_contacts");
  const Field<bool> ha = flag("ha");
  const ListField rows = list("rows", core::shape<CapacityRowShape>());
};

void printCapacity(std::ostream& out, const Obj::Ptr& o, int) {
  const auto& s = core::shape<CapacityShape>();
  const auto& r = core::shape<CapacityRowShape>();
  const bool ha = s.ha.get(o);
  out << "template " << s.templateName.text(o) << ": " << s.source.text(o) << "\n"
      << "original limit: " << s.threshold.text(o) << " SIP intradomain-federated contacts per node, at most "
      << s.templateUsers.text(o) << " users; IMP measured: " << s.impThreshold.text(o)
      << " (docs/BENCHMARKS.md, B-FED-SUBS)\n"
      << (ha ? "high availability: a node carries its peer's users too (limits halved, HA-1)\n"
             : "no high availability\n");
  std::vector<std::vector<std::string>> rows = {{"AVG CONTACTS", "MAX USERS (ORIGINAL LIMIT)", "MAX USERS (IMP MEASURED)"}};
  for (const auto& row : s.rows.get(o))
    rows.push_back({r.avgContacts.text(row), r.maxUsers.text(row), r.impMaxUsers.text(row)});
  core::cli::table(out, rows);
}

// ---- logs (SV-5) ----

struct LogFileShape : core::Shape {
  LogFileShape() : Shape("LogFile", Layout::Table) {}
  const Field<std::string> service = same(detail::sharedFields().service).column("SERVICE");
  const Field<std::string> file = text("file").column("FILE");
  const Field<std::int64_t> size = number("size_bytes").column("BYTES");
  const Field<std::string> modified = text("modified").column("MODIFIED");
  const Field<std::string> path = text("path").column("PATH");
};

struct LogListShape : core::Shape {
  LogListShape() : Shape("LogList", Layout::Lines) {}
  const Field<std::string> dir = text("log_dir");
  const ListField files = list("files", core::shape<LogFileShape>());
};

struct LogTailShape : core::Shape {
  LogTailShape() : Shape("LogTail", Layout::Lines) {}
  const Field<std::string> service = same(core::shape<LogFileShape>().service);
  const Field<std::string> path = same(core::shape<LogFileShape>().path);
  const Field<std::int64_t> size = same(core::shape<LogFileShape>().size);
  const Field<std::int64_t> nextOffset = number("next_offset");
  const Field<bool> rotated = flag("rotated");
  const Field<std::string> content = text("text");
};

constexpr std::uint64_t kMaxTailBytes = 1 << 20;  // per answer

std::string isoTime(fs::file_time_type t) {
  const auto sys = std::chrono::time_point_cast<std::chrono::seconds>(
      t - fs::file_time_type::clock::now() + std::chrono::system_clock::now());
  const std::time_t tt = std::chrono::system_clock::to_time_t(sys);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

// "sip-proxy.log" -> sip-proxy; "sip-proxy.2.log" (rotated) -> sip-proxy.
std::string serviceOf(const std::string& file) {
  auto dot = file.find('.');
  return file.substr(0, dot);
}

struct LogFile {
  std::string service, file;
  fs::path path;
};

std::vector<LogFile> logFiles(const AdminContext& c) {
  std::vector<LogFile> out;
  const auto& dir = c.logs->settings().dir;
  std::error_code ec;
  if (!dir.empty())
    for (const auto& e : fs::directory_iterator(dir, ec)) {
      if (!e.is_regular_file(ec) || e.path().extension() != ".log") continue;
      auto name = e.path().filename().string();
      out.push_back({serviceOf(name), name, e.path()});
    }
  std::sort(out.begin(), out.end(), [](const LogFile& a, const LogFile& b) {
    // the live file first, then the rotated ones by number
    auto rank = [](const LogFile& f) {
      auto inner = f.file.substr(f.service.size());
      return inner == ".log" || inner.empty() ? 0 : std::atoi(inner.c_str() + 1);
    };
    return a.service != b.service ? a.service < b.service : rank(a) < rank(b);
  });
  return out;
}

// The live file of `service`, or 404 naming those there are.
fs::path liveLog(const AdminContext& c, const std::string& service) {
  std::string known;
  for (const auto& f : logFiles(c)) {
    if (f.file != f.service + ".log") continue;  // rotated
    if (f.service == service) return f.path;
    known += " " + f.service + ",";
  }
  if (!known.empty()) known.pop_back();
  throw AdminError(404, "unknown_log", "no log file for '" + service + "' on this node; there are:" + known);
}

std::string readRange(const fs::path& p, std::uint64_t from, std::uint64_t to) {
  std::ifstream in(p, std::ios::binary);
  if (!in) throw AdminError(500, "log_unreadable", "cannot read " + p.string());
  in.seekg(static_cast<std::streamoff>(from));
  std::string s(to - from, '\0');
  in.read(s.data(), static_cast<std::streamsize>(s.size()));
  s.resize(static_cast<std::size_t>(in.gcount()));
  return s;
}

// The last `lines` lines of the file's first `size` bytes (at most
// kMaxTailBytes of them), and `size`.
std::pair<std::string, std::uint64_t> lastLines(const fs::path& p, std::uint64_t size, std::uint64_t lines) {
  std::uint64_t from = size;
  std::string text;
  auto newlines = [&] {  // a final newline ends the last line; it starts none
    auto n = static_cast<std::uint64_t>(std::count(text.begin(), text.end(), '\n'));
    return !text.empty() && text.back() == '\n' ? n - 1 : n;
  };
  while (from > 0 && size - from < kMaxTailBytes && newlines() < lines) {
    const std::uint64_t step = std::min<std::uint64_t>(from, 64 * 1024);
    from -= step;
    text = readRange(p, from, from + step) + text;
  }
  std::size_t pos = text.size();
  if (pos > 0 && text[pos - 1] == '\n') --pos;
  std::size_t start = 0;
  for (std::uint64_t k = 0; k < lines && pos > 0; ++k) {
    const auto nl = text.rfind('\n', pos - 1);
    if (nl == std::string::npos) {
      start = 0;
      break;
    }
    pos = nl;
    start = nl + 1;
  }
  text.erase(0, start);
  if (text.size() > kMaxTailBytes) text.erase(0, text.size() - kMaxTailBytes);
  return {text, size};
}

Obj::Ptr tailOnce(core::CommandClient& client, const std::string& target, std::ostream& out) {
  auto o = client.request("GET", target, "");
  out << core::shape<LogTailShape>().content.text(o) << std::flush;
  return o;
}

}  // namespace

void registerToolkitCommands(core::CommandRegistry& reg) {
  std::vector<std::string> templates = capacityTemplateNames();
  reg.add(Command("capacity", "GET", "/api/v1/capacity")
              .arg(Arg::integer("avg_contacts", 1, 100000).inQuery().option("avg-contacts", "N").help(
                  "average contact-list size of the users; without it, the rows of the seed's table for the "
                  "template (an unknown average: plan with 200)"))
              .flag("ha", Arg::boolean("ha").inQuery(), true,
                    "two-node sub-clusters in active/active: each node can carry its peer's users (HA-1)")
              .arg(Arg::enumeration("template", templates).inQuery().option("template", "T").help(
                  "the node's size: 1000, 5000 or 15000 users (default: the 130,000-contact rule on the 5,000-user "
                  "template)"))
              .help("Maximum users per node for a migration with partitioned intradomain federation (HA-2).")
              .describe(
                  "Maximum users = the node's limit of SIP intradomain-federated contacts / the average contact-list "
                  "size, halved with high availability, at most the users the template holds. Two columns: the "
                  "original product's limits (130,000 contacts per node; 90,000 on the 5,000-user template; 18,000 on "
                  "the 1,000-user template), and the limit IMP was measured to hold on one node (docs/BENCHMARKS.md, "
                  "B-FED-SUBS). The figures assume every contact is federated (the worst case); a migration plan "
                  "that keeps a node under the limit is needed beyond them.")
              .example("capacity", "the 130,000-contact table (seed table 9)")
              .example("capacity --avg-contacts 120 --ha --template 5000", "one row for this deployment")
              .returns(core::shape<CapacityShape>())
              .print(printCapacity)
              .handler<AdminContext>([](AdminContext&, const CommandArgs& a) {
                const auto t = *capacityTemplate(a.str("template").value_or("default"));
                const bool ha = a.boolean("ha").value_or(false);
                std::vector<std::uint64_t> avgs;
                if (auto n = a.integer("avg_contacts")) avgs.push_back(static_cast<std::uint64_t>(*n));
                else avgs = tableAverages(t);
                const auto& r = core::shape<CapacityRowShape>();
                std::vector<Reply> rows;
                for (auto avg : avgs) {
                  Reply row(r);
                  row.set(r.avgContacts, static_cast<std::int64_t>(avg))
                      .set(r.maxUsers, static_cast<std::int64_t>(maxUsers(t.threshold, t.maxUsers, avg, ha)))
                      .set(r.impMaxUsers,
                           static_cast<std::int64_t>(maxUsers(kImpMeasuredContacts, kImpMeasuredContacts, avg, ha)));
                  rows.push_back(std::move(row));
                }
                const auto& s = core::shape<CapacityShape>();
                Reply out(s);
                out.set(s.templateName, t.name).set(s.source, t.source);
                out.set(s.threshold, static_cast<std::int64_t>(t.threshold))
                    .set(s.templateUsers, static_cast<std::int64_t>(t.maxUsers));
                out.set(s.impThreshold, static_cast<std::int64_t>(kImpMeasuredContacts)).set(s.ha, ha).set(s.rows, rows);
                return out.response();
              }));

  reg.add(Command("log list", "GET", "/api/v1/logs")
              .help("This node's log files: each service's file, the rotated ones and the managed MariaDB's.")
              .describe("Every service writes its own file in [node] log_dir (impd(8), FILES): <service>.log, "
                        "rotated to <service>.1.log ... at [log] max_size; the managed MariaDB writes mariadb.log "
                        "there too.")
              .example("log list", "where the logs are and how big")
              .returns(core::shape<LogListShape>())
              .handler<AdminContext>([](AdminContext& c, const CommandArgs&) {
                const auto& f = core::shape<LogFileShape>();
                std::vector<Reply> files;
                for (const auto& lf : logFiles(c)) {
                  std::error_code ec;
                  Reply r(f);
                  r.set(f.service, lf.service).set(f.file, lf.file).set(f.path, lf.path.string());
                  r.set(f.size, static_cast<std::int64_t>(fs::file_size(lf.path, ec)));
                  auto mt = fs::last_write_time(lf.path, ec);
                  r.set(f.modified, ec ? std::string() : isoTime(mt));
                  files.push_back(std::move(r));
                }
                const auto& s = core::shape<LogListShape>();
                return Reply(s).set(s.dir, c.logs->settings().dir.string()).set(s.files, files).response();
              }));

  auto follow = [](const core::CommandCall& call, core::CommandClient& client, std::ostream& out) {
    auto o = tailOnce(client, call.target, out);
    const auto base = call.target.substr(0, call.target.find('?'));
    const auto& s = core::shape<LogTailShape>();
    for (;;) {  // like tail -f: until interrupted
      std::this_thread::sleep_for(std::chrono::milliseconds(500));
      o = tailOnce(client, base + "?from=" + std::to_string(s.nextOffset.get(o)), out);
      if (s.rotated.get(o)) out << "-- " << s.path.text(o) << " was rotated; reading the new file --\n" << std::flush;
    }
    return 0;
  };
  reg.add(Command("log tail", "GET", "/api/v1/logs/{service}")
              .arg(Arg::string("service").inPath().positional("SERVICE").help("a service name (log list shows them), or mariadb"))
              .arg(Arg::integer("lines", 1, 100000).inQuery().option("lines", "N").help("how many of the last lines (default 50)"))
              .arg(Arg::integer("from", 0, INT64_MAX).inQuery().help("byte offset: the text written from there on"))
              .flag("follow", Arg::boolean("follow").onClient(), true,
                    "after the last lines, keep printing what the service writes, until interrupted (as tail -f)")
              .alias('f')
              .help("The last lines of a service's log on this node, and with -f everything it writes from then on.")
              .example("log tail sip-proxy --lines 200", "the SIP proxy's last 200 lines")
              .example("log tail federation-cm -f", "watch the federation connection manager")
              .returns(core::shape<LogTailShape>())
              .print([](std::ostream& out, const Obj::Ptr& o, int) { out << core::shape<LogTailShape>().content.text(o); })
              .client([follow](const core::CommandCall& call, core::CommandClient& client, std::ostream& out) {
                auto f = call.local.find("follow");
                if (f != call.local.end() && f->second == "true") return follow(call, client, out);
                if (client.json()) {
                  auto o = client.request("GET", call.target, "");
                  o->stringify(out);
                  out << "\n";
                  return 0;
                }
                tailOnce(client, call.target, out);
                return 0;
              })
              .handler<AdminContext>([](AdminContext& c, const CommandArgs& a) {
                const auto path = liveLog(c, a.at("service"));
                std::error_code ec;
                const std::uint64_t size = fs::file_size(path, ec);
                const auto& s = core::shape<LogTailShape>();
                Reply r(s);
                r.set(s.service, a.at("service")).set(s.path, path.string()).set(s.size, static_cast<std::int64_t>(size));
                if (auto from = a.integer("from")) {
                  auto start = static_cast<std::uint64_t>(*from);
                  const bool rotated = start > size;  // a new, shorter file
                  if (rotated) start = 0;
                  const auto end = std::min(size, start + kMaxTailBytes);
                  r.set(s.content, readRange(path, start, end)).set(s.nextOffset, static_cast<std::int64_t>(end));
                  r.set(s.rotated, rotated);
                  return r.response();
                }
                auto [text, end] = lastLines(path, size, static_cast<std::uint64_t>(a.integer("lines").value_or(50)));
                r.set(s.content, text).set(s.nextOffset, static_cast<std::int64_t>(end)).set(s.rotated, false);
                return r.response();
              }));
}

}  // namespace imp::serviceability
