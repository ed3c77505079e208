// The bulk-provisioning module's registration (module.h): the service, its
// import-rate parameter (MG-3) and the `impctl bat ...` commands with their
// admin routes (issue 18 deliverables 1, 2, 6).
#include "imp/bulk_provisioning/module.h"

#include <imp/core/admin_http.h>
#include <imp/core/command_registry.h>
#include <imp/core/module_registry.h>
#include <imp/core/response_shape.h>
#include <imp/core/service_params.h>
#include <openssl/evp.h>
#include <unistd.h>
#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <memory>
#include <sstream>
#include <thread>

#include "imp/bulk_provisioning/rows.h"
#include "imp/bulk_provisioning/service.h"
#include "imp/bulk_provisioning/store.h"

namespace imp::bat {

using core::AdminError;
using core::Arg;
using core::Command;
using core::CommandArgs;
using core::Field;
using core::Reply;
using Obj = Poco::JSON::Object;

namespace {

// ---------------------------------------------------------------- shapes

struct FileShape : core::Shape {
  FileShape() : Shape("BulkFile", Layout::Table) {}
  const Field<std::string> name = text("name").column("NAME");
  const Field<std::string> type = text("type").column("TYPE");
  const Field<std::string> target = text("target").column("TARGET");
  const Field<std::string> transaction = text("transaction").column("TRANSACTION");
  const Field<std::int64_t> size = number("size").column("BYTES");
  const Field<std::int64_t> received = number("received");
  const Field<bool> complete = flag("complete").column("STATE").shows("complete", "uploading");
  const Field<std::string> sha256 = text("sha256");
  const Field<std::string> uploaded = text("uploaded_at").column("UPLOADED (UTC)");
};
struct FilesShape : core::Shape {
  FilesShape() : Shape("BulkFiles", Layout::Lines) {}
  const core::ListField files = list("files", core::shape<FileShape>()).ifEmpty("no bulk files uploaded\n");
};

struct JobShape : core::Shape {
  JobShape() : Shape("BulkJob", Layout::Table) {}
  const Field<std::int64_t> id = number("id").column("ID");
  const Field<std::string> type = same(core::shape<FileShape>().type).column("TYPE");
  const Field<std::string> file = text("file").column("FILE");
  const Field<std::string> status = text("status").column("STATUS");
  const Field<std::int64_t> rowsDone = number("rows_done");
  const Field<std::int64_t> rowsTotal = number("rows_total");
  const Field<std::string> progress = text("progress").column("PROGRESS");
  const Field<std::int64_t> rate = number("rows_per_second").column("ROWS/S");
  const Field<std::int64_t> eta = number("eta_seconds").column("ETA").duration();
  const Field<std::string> runAt = text("run_at").column("RUN AT (UTC)").orElse("now");
  const Field<std::string> created = text("created_at");
  const Field<std::string> started = text("started_at").column("STARTED (UTC)").orElse("-");
  const Field<std::string> ended = text("ended_at").column("ENDED (UTC)").orElse("-");
  const Field<std::string> node = text("node").orElse("-");
  const Field<std::string> detail = text("detail");
  const Field<std::int64_t> applied = number("applied");
  const Field<std::int64_t> ignored = number("ignored");
  const Field<std::int64_t> errors = number("internal_errors");
  const Field<std::int64_t> notProcessed = number("not_processed");
  const Field<std::int64_t> listsFailed = number("lists_failed");
  const Field<std::int64_t> retrieved = number("retrieved");
  const Field<std::int64_t> notified = number("users_notified");
  const Field<std::int64_t> notNotified = number("users_not_notified");
  const Field<bool> cancelRequested = flag("cancel_requested");
};
struct JobsShape : core::Shape {
  JobsShape() : Shape("BulkJobs", Layout::Lines) {}
  const core::ListField jobs = list("jobs", core::shape<JobShape>()).ifEmpty("no bulk jobs\n");
};
struct JobLogShape : core::Shape {
  JobLogShape() : Shape("BulkJobLog", Layout::Lines) {}
  const Field<std::int64_t> id = same(core::shape<JobShape>().id);
  const Field<std::string> log = text("log");
};

// ---------------------------------------------------------------- server side

Reply fileReply(const FileInfo& f) {
  const auto& s = core::shape<FileShape>();
  Reply r(s);
  r.set(s.name, f.name).set(s.type, std::string(nameOf(f.kind))).set(s.target, std::string(targetOf(f.kind)));
  r.set(s.transaction, std::string(transactionOf(f.kind))).set(s.size, static_cast<std::int64_t>(f.size));
  r.set(s.received, static_cast<std::int64_t>(f.received)).set(s.complete, f.complete).set(s.sha256, f.sha256);
  r.set(s.uploaded, f.uploadedAt);
  return r;
}

// Rows per second since the job started: a running job's only after half a
// second (an average of a few rows says nothing), an ended job's over its
// whole run however short.
double rateOf(const JobInfo& j) {
  const double from = j.status == JobStatus::Running ? 0.5 : 0.0;
  return j.elapsedSeconds > from ? static_cast<double>(j.rowsDone) / j.elapsedSeconds : 0.0;
}

Reply jobReply(const JobInfo& j) {
  const auto& s = core::shape<JobShape>();
  Reply r(s);
  const double rate = j.status == JobStatus::Pending ? 0.0 : rateOf(j);
  std::int64_t eta = 0;
  if (j.status == JobStatus::Running && rate > 0 && j.rowsTotal > j.rowsDone)
    eta = static_cast<std::int64_t>(std::ceil(static_cast<double>(j.rowsTotal - j.rowsDone) / rate));
  std::string progress = std::to_string(j.rowsDone) + "/" + std::to_string(j.rowsTotal);
  if (j.rowsTotal > 0)
    progress += " (" + std::to_string(j.rowsDone * 100 / j.rowsTotal) + "%)";
  auto n = [](std::uint64_t v) { return static_cast<std::int64_t>(v); };
  r.set(s.id, j.id).set(s.type, std::string(nameOf(j.kind))).set(s.file, j.fileName);
  r.set(s.status, std::string(nameOf(j.status))).set(s.rowsDone, n(j.rowsDone)).set(s.rowsTotal, n(j.rowsTotal));
  r.set(s.progress, progress).set(s.rate, static_cast<std::int64_t>(std::llround(rate))).set(s.eta, eta);
  r.set(s.runAt, j.runAt).set(s.created, j.createdAt).set(s.started, j.startedAt).set(s.ended, j.endedAt);
  r.set(s.node, j.nodeId).set(s.detail, j.detail).set(s.applied, n(j.counts.applied));
  r.set(s.ignored, n(j.counts.ignored)).set(s.errors, n(j.counts.internalErrors));
  r.set(s.notProcessed, n(j.counts.notProcessed)).set(s.listsFailed, n(j.counts.listsFailed));
  r.set(s.retrieved, n(j.counts.retrieved)).set(s.notified, n(j.counts.notified));
  r.set(s.notNotified, n(j.counts.notNotified)).set(s.cancelRequested, j.cancelRequested);
  return r;
}

std::int64_t jobId(const CommandArgs& a) { return *a.integer("id"); }

JobInfo needJob(JobStore& jobs, std::int64_t id) {
  auto j = jobs.get(id);
  if (!j) throw AdminError(404, "unknown_job", "no bulk job " + std::to_string(id) + " (impctl bat job list)");
  return *j;
}

// The result log (MG-7, MG-9): the counts first, the rows ignored with
// their reasons at the end.
std::string renderLog(const JobInfo& j, const std::vector<JobEntry>& entries) {
  std::ostringstream o;
  o << "Bulk job " << j.id << ": " << targetOf(j.kind) << " / " << transactionOf(j.kind) << "\n";
  o << "File:       " << j.fileName << "\n";
  o << "Status:     " << nameOf(j.status) << (j.detail.empty() ? "" : " (" + j.detail + ")") << "\n";
  o << "Scheduled:  " << (j.runAt.empty() ? "to run at once" : j.runAt + " UTC") << "\n";
  o << "Started:    " << (j.startedAt.empty() ? "-" : j.startedAt + " UTC on node " + j.nodeId) << "\n";
  o << "Ended:      " << (j.endedAt.empty() ? "-" : j.endedAt + " UTC") << "\n";
  o << "Rows:       " << j.rowsDone << " of " << j.rowsTotal << " processed\n\n";
  using Count = std::pair<const char*, std::uint64_t>;
  const auto& c = j.counts;
  const std::vector<Count> counts =
      j.kind == JobKind::Import
          ? std::vector<Count>{{"Contacts imported", c.applied},
                               {"Internal server errors", c.internalErrors},
                               {"Contacts ignored", c.ignored},
                               {"Contacts not processed (the job ended early)", c.notProcessed},
                               {"Users notified (online, roster push)", c.notified},
                               {"Users not notified (offline)", c.notNotified}}
          : std::vector<Count>{{"Contacts retrieved", c.retrieved},
                               {"Records processed (contact lists updated)", c.applied},
                               {"Records failed (contact lists not updated)", c.listsFailed},
                               {"Internal server errors", c.internalErrors},
                               {"Rename records ignored", c.ignored},
                               {"Records not processed (the job ended early)", c.notProcessed},
                               {"Users notified (online, roster push)", c.notified},
                               {"Users not notified (offline)", c.notNotified}};
  for (const auto& [label, n] : counts) o << std::left << std::setw(52) << std::string(label) + ":" << n << "\n";
  if (j.kind == JobKind::Rename) o << "(records count contact lists, not lines of the file)\n";
  std::vector<const JobEntry*> ignored, errors;
  for (const auto& e : entries) (e.kind == "error" ? errors : ignored).push_back(&e);
  if (!errors.empty()) {
    o << "\nInternal server errors:\n";
    for (const auto* e : errors) o << "  " << e->text << "\n";
  }
  if (!ignored.empty()) {
    o << "\n" << (j.kind == JobKind::Import ? "Contacts ignored" : "Ignored records") << ", with the reason:\n";
    for (const auto* e : ignored) o << "  " << e->text << "\n";
  }
  return o.str();
}

// ---------------------------------------------------------------- impctl side

// The request fields the client runners write and read (the commands' Args
// declare them; these are their names, not response fields).
namespace req {
constexpr const char* kName = "name";
constexpr const char* kType = "type";
constexpr const char* kSize = "size";
constexpr const char* kSha = "sha256";
constexpr const char* kReplace = "replace";
constexpr const char* kFile = "file";
}  // namespace req

std::string sha256File(const std::string& bytes) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned len = 0;
  EVP_Digest(bytes.data(), bytes.size(), md, &len, EVP_sha256(), nullptr);
  std::ostringstream o;
  for (unsigned i = 0; i < len; ++i) o << std::hex << std::setw(2) << std::setfill('0') << static_cast<int>(md[i]);
  return o.str();
}

std::string readLocal(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot open " + path);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string pathPart(const std::string& s) {
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      char b[4];
      std::snprintf(b, sizeof b, "%%%02X", c);
      out += b;
    }
  }
  return out;
}

// The kind a file's first line names (its header), if it names one.
std::optional<JobKind> kindOfContent(const std::string& bytes) {
  std::string first = bytes.substr(0, bytes.find_first_of("\r\n"));
  if (first.rfind("\xef\xbb\xbf", 0) == 0) first = first.substr(3);
  std::vector<std::string> fields;
  std::stringstream ss(first);
  for (std::string f; std::getline(ss, f, ',');) fields.push_back(f);
  for (auto k : {JobKind::Import, JobKind::Rename})
    if (checkHeader(k, fields).empty()) return k;
  return std::nullopt;
}

void printJson(std::ostream& out, const Obj::Ptr& o) {
  o->stringify(out, 2);
  out << "\n";
}

// Sends a local file in parts (the admin API takes 1 MiB per request);
// returns the stored file's answer.
Obj::Ptr upload(core::CommandClient& client, const std::string& path, const std::string& name, JobKind kind,
                bool replace) {
  const auto bytes = readLocal(path);
  Obj body;
  body.set(req::kName, name);
  body.set(req::kType, std::string(nameOf(kind)));
  body.set(req::kSize, static_cast<Poco::Int64>(bytes.size()));
  body.set(req::kSha, sha256File(bytes));
  body.set(req::kReplace, replace);
  std::ostringstream b;
  body.stringify(b);
  client.request("POST", "/api/v1/bat/files", b.str());
  const std::string base = "/api/v1/bat/files/" + pathPart(name);
  for (std::size_t off = 0, seq = 0; off < bytes.size(); off += kPartBytes, ++seq) {
    auto [status, answer] = client.raw("PUT", base + "/parts/" + std::to_string(seq),
                                       bytes.substr(off, kPartBytes), "application/octet-stream");
    if (status < 200 || status >= 300) throw std::runtime_error("part " + std::to_string(seq) + " refused: " + answer);
  }
  return client.request("POST", base + "/complete", "");
}

std::string fileNameArg(const core::CommandCall& call) {
  auto it = call.local.find(req::kFile);
  return it == call.local.end() ? std::string() : it->second;
}

// `bat import` / `bat rename`: a local file is uploaded first (under its
// base name; the same content already stored is used as it is).
int createJob(const core::CommandCall& call, core::CommandClient& client, std::ostream& out, JobKind kind) {
  Obj::Ptr body = new Obj;
  if (!call.body.empty()) body = Poco::JSON::Parser().parse(call.body).extract<Obj::Ptr>();
  const auto file = body->optValue<std::string>(req::kFile, "");
  std::string name = file;
  if (std::filesystem::is_regular_file(file)) {
    name = std::filesystem::path(file).filename().string();
    const auto& fs = core::shape<FileShape>();
    int status = 0;
    Obj::Ptr existing;
    try {
      existing = client.request("GET", "/api/v1/bat/files/" + pathPart(name), "", &status);
    } catch (...) {
      existing = nullptr;  // not stored yet
    }
    const auto digest = sha256File(readLocal(file));
    if (!existing || fs.sha256.text(existing) != digest || !fs.complete.get(existing)) {
      if (!client.json()) out << "uploading " << file << " as " << name << "\n";
      upload(client, file, name, kind, existing != nullptr);
    }
  }
  body->set(req::kFile, name);
  std::ostringstream b;
  body->stringify(b);
  int status = 0;
  auto job = client.request(call.method, call.target, b.str(), &status);
  if (client.json()) {
    printJson(out, job);
    return 0;
  }
  const auto& s = core::shape<JobShape>();
  out << "job " << s.id.text(job) << " (" << s.type.text(job) << " " << s.file.text(job) << ") "
      << (s.runAt.text(job).empty() ? "runs now" : "runs at " + s.runAt.text(job) + " UTC")
      << "; follow it with: impctl bat job wait " << s.id.text(job) << "\n";
  return 0;
}

std::string bar(std::int64_t done, std::int64_t total, int width) {
  const int filled = total > 0 ? static_cast<int>(done * width / total) : 0;
  return "[" + std::string(static_cast<std::size_t>(filled), '#') + std::string(static_cast<std::size_t>(width - filled), '.') + "]";
}

std::string etaText(std::int64_t s) {
  if (s <= 0) return "-";
  std::ostringstream o;
  if (s >= 3600) o << s / 3600 << "h" << std::setw(2) << std::setfill('0') << (s % 3600) / 60 << "m";
  else if (s >= 60) o << s / 60 << "m" << std::setw(2) << std::setfill('0') << s % 60 << "s";
  else o << s << "s";
  return o.str();
}

// `bat job wait`: a progress bar on a terminal, plain lines otherwise; the
// exit code says how the job ended (0 completed, 1 failed or cancelled,
// 75 still running at --timeout).
int waitJob(const core::CommandCall& call, core::CommandClient& client, std::ostream& out) {
  const auto& s = core::shape<JobShape>();
  const bool tty = &out == &std::cout && isatty(STDOUT_FILENO);
  double timeout = 0;
  if (auto it = call.local.find("timeout"); it != call.local.end()) timeout = std::stod(it->second);
  const auto start = std::chrono::steady_clock::now();
  std::string lastLine;
  auto lastPrint = std::chrono::steady_clock::now() - std::chrono::hours(1);
  for (;;) {
    auto j = client.request("GET", call.target, "");
    const auto status = s.status.text(j);
    const bool ended = status == "completed" || status == "failed" || status == "cancelled";
    const auto done = s.rowsDone.get(j), total = s.rowsTotal.get(j);
    std::string line = "job " + s.id.text(j) + " " + status + " " + s.progress.text(j) + " rows, " +
                       s.rate.text(j) + " rows/s, ETA " + etaText(s.eta.get(j));
    if (client.json()) {
      if (ended) printJson(out, j);
    } else if (tty) {
      out << "\r" << bar(done, total, 30) << " " << line << "\033[K" << std::flush;
      if (ended) out << "\n";
    } else if (ended || (line != lastLine && std::chrono::steady_clock::now() - lastPrint > std::chrono::seconds(5))) {
      out << line << "\n" << std::flush;
      lastPrint = std::chrono::steady_clock::now();
    }
    lastLine = line;
    if (ended) {
      if (!client.json() && !s.detail.text(j).empty()) out << s.detail.text(j) << "\n";
      return status == "completed" ? 0 : 1;
    }
    if (timeout > 0 && std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() > timeout) {
      if (!client.json()) out << "still " << status << " after " << timeout << " s\n";
      return 75;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(tty ? 250 : 500));
  }
}

int download(const core::CommandCall& call, core::CommandClient& client, std::ostream& out) {
  auto info = client.request("GET", call.target, "");
  const auto& s = core::shape<FileShape>();
  auto it = call.local.find("output");
  std::ofstream file;
  std::ostream* dest = &out;
  if (it != call.local.end() && it->second != "-") {
    file.open(it->second, std::ios::binary | std::ios::trunc);
    if (!file) throw std::runtime_error("cannot write " + it->second);
    dest = &file;
  }
  std::int64_t written = 0;
  for (std::uint32_t seq = 0; written < s.size.get(info); ++seq) {
    auto [status, bytes] = client.raw("GET", call.target + "/parts/" + std::to_string(seq), "", "");
    if (status != 200) throw std::runtime_error("part " + std::to_string(seq) + ": HTTP " + std::to_string(status));
    if (bytes.empty()) break;
    dest->write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    written += static_cast<std::int64_t>(bytes.size());
  }
  if (file.is_open()) {
    file.close();
    std::cerr << "wrote " << written << " bytes of " << s.name.text(info) << " to " << it->second << "\n";
  }
  return 0;
}

// ---------------------------------------------------------------- commands

const char* kTypes =
    "import: target Contact Lists, transaction \"Import Users' Contacts - Custom File\" (MG-7), header User ID, "
    "User Domain, Contact ID, Contact Domain, Nickname, Group Name. rename: target Contacts, transaction \"Rename "
    "Contacts - Custom File\" (MG-9), header Contact ID, New Contact ID.";

void registerFileCommands(core::CommandRegistry& reg) {
  reg.add(Command("bat file upload", "POST", "/api/v1/bat/files")
              .arg(Arg::string("file").onClient().positional("FILE").help("the local CSV file"))
              .arg(Arg::string("name").required().option("name", "NAME").help("the name it is stored under (default: the file's base name)"))
              .arg(Arg::enumeration("type", {"import", "rename"})
                       .required()
                       .option("type", "import|rename")
                       .help("the kind of job it is for (default: from its header line)"))
              .arg(Arg::integer("size", 0, 1LL << 40).required().help("its size in bytes"))
              .arg(Arg::string("sha256").required().help("the SHA-256 of its content, lower-case hex"))
              .arg(Arg::boolean("replace").help("replace a stored file of the same name"))
              .flag("replace", Arg::boolean("replace"), true, "replace a stored file of the same name")
              .help("Upload a CSV file for a bulk job.")
              .describe(std::string("The file is stored in the cluster database in parts of 1 MiB and checked against "
                                    "its SHA-256 once complete; any node can then run a job on it. ") +
                        kTypes)
              .example("bat file upload contacts.csv", "a contact list exported from Lync, for an import job")
              .returns(core::shape<FileShape>())
              .client([](const core::CommandCall& call, core::CommandClient& client, std::ostream& out) {
                const auto path = fileNameArg(call);
                const auto bytes = readLocal(path);
                Obj::Ptr body = new Obj;
                if (!call.body.empty()) body = Poco::JSON::Parser().parse(call.body).extract<Obj::Ptr>();
                std::optional<JobKind> kind;
                if (body->has(req::kType)) kind = jobKindOf(body->getValue<std::string>(req::kType));
                if (!kind) kind = kindOfContent(bytes);
                if (!kind)
                  throw core::CommandUsageError(path + " starts with no header this command knows; give --type import|rename");
                const auto name = body->has(req::kName) ? body->getValue<std::string>(req::kName)
                                                    : std::filesystem::path(path).filename().string();
                auto answer = upload(client, path, name, *kind, body->has(req::kReplace));
                if (client.json()) printJson(out, answer);
                else core::shape<FileShape>().table(out, {answer});
                return 0;
              })
              .handler<FileStore, BatRuntime>([](FileStore& files, BatRuntime&, const CommandArgs& a) {
                auto kind = jobKindOf(a.at("type"));
                auto f = files.begin(a.at("name"), *kind, static_cast<std::uint64_t>(*a.integer("size")), a.at("sha256"),
                                     a.boolean("replace").value_or(false));
                return fileReply(f).response(201);
              }));
  reg.add(Command("bat file list", "GET", "/api/v1/bat/files")
              .help("List the uploaded bulk files.")
              .describe(kTypes)
              .returns(core::shape<FilesShape>())
              .handler<FileStore>([](FileStore& files, const CommandArgs&) {
                std::vector<Reply> rows;
                for (const auto& f : files.list()) rows.push_back(fileReply(f));
                const auto& all = core::shape<FilesShape>();
                return Reply(all).set(all.files, rows).response();
              }));
  reg.add(Command("bat file download", "GET", "/api/v1/bat/files/{name}")
              .arg(Arg::string("name").inPath().positional("NAME").help("the stored file"))
              .arg(Arg::string("output").onClient().option("output", "PATH").help("where to write it (default: stdout)"))
              .help("Download an uploaded bulk file.")
              .describe("Writes the stored file, byte for byte, to PATH or to stdout. GET /api/v1/bat/files/{name} "
                        "answers the file's details; its content is at /api/v1/bat/files/{name}/parts/{n}.")
              .returns(core::shape<FileShape>())
              .client(download)
              .handler<FileStore>([](FileStore& files, const CommandArgs& a) {
                auto f = files.info(a.at("name"));
                if (!f) throw AdminError(404, "unknown_file", "no bulk file named '" + a.at("name") + "'");
                return fileReply(*f).response();
              }));
  reg.add(Command("bat file delete", "DELETE", "/api/v1/bat/files/{name}")
              .arg(Arg::string("name").inPath().positional("NAME").help("the stored file"))
              .help("Delete an uploaded bulk file.")
              .describe("Refused while a pending or running job uses it. Ended jobs keep its name in their log.")
              .returns(core::shape<core::DeletedShape>())
              .handler<FileStore>([](FileStore& files, const CommandArgs& a) {
                if (!files.remove(a.at("name")))
                  throw AdminError(404, "unknown_file", "no bulk file named '" + a.at("name") + "'");
                const auto& d = core::shape<core::DeletedShape>();
                return Reply(d).set(d.deleted, a.at("name")).response();
              }));
}

void registerJobCommands(core::CommandRegistry& reg) {
  auto jobArgs = [](Command c, JobKind kind) {
    return std::move(c)
        .arg(Arg::string("file").required().positional("FILE").help("a stored bulk file, or a local CSV file (uploaded first)"))
        .arg(Arg::string("run_at").option("at", "'YYYY-MM-DD HH:MM'").help("run at this time (UTC) instead of now"))
        .fixed(Arg::enumeration("type", {"import", "rename"}), std::string(nameOf(kind)));
  };
  reg.add(jobArgs(Command("bat import", "POST", "/api/v1/bat/jobs"), JobKind::Import)
              .help("Import users' contact lists from a CSV file (a bulk job).")
              .describe("Contact List Import (MG-7): each row adds one contact to one user's contact list, checked "
                        "first (owner licensed and homed in this cluster, contact valid and reachable, no duplicate, "
                        "PS-1 limits); rows that fail a check are ignored with the reason in the job's log and the "
                        "job goes on. Online owners get roster pushes; Microsoft contacts get their availability "
                        "subscription through the federation connection manager, paced. Rate: impctl service param "
                        "set bulk-provisioning import-rate N.")
              .example("bat import contacts.csv", "upload contacts.csv and import it now")
              .example("bat import contacts.csv --at '2026-12-24 02:00'", "at 02:00 UTC")
              .returns(core::shape<JobShape>())
              .client([](const core::CommandCall& c, core::CommandClient& cl, std::ostream& o) {
                return createJob(c, cl, o, JobKind::Import);
              })
              .handler<JobStore, BatRuntime>([](JobStore& jobs, BatRuntime& rt, const CommandArgs& a) {
                auto kind = jobKindOf(a.at("type"));
                auto j = jobs.create(*kind, a.at("file"), a.str("run_at").value_or(""));
                rt.poke();
                return jobReply(j).response(201);
              }));
  reg.add(jobArgs(Command("bat rename", "POST", "/api/v1/bat/jobs"), JobKind::Rename)
              .help("Rename contact IDs in every contact list from a CSV file (a bulk job).")
              .describe("Contact ID Rename (MG-2, MG-9): each record 'Contact ID, New Contact ID' moves every "
                        "contact list entry (name, groups, subscription), privacy decision and block list entry of "
                        "the old ID to the new one. Records processed / failed count contact lists, not lines.")
              .example("bat rename renames.csv", "upload renames.csv and run it now")
              .returns(core::shape<JobShape>())
              .client([](const core::CommandCall& c, core::CommandClient& cl, std::ostream& o) {
                return createJob(c, cl, o, JobKind::Rename);
              }));
  reg.add(Command("bat job list", "GET", "/api/v1/bat/jobs")
              .help("List bulk jobs (newest first) with their status and progress.")
              .describe("Every node shows every job (MG-10). PROGRESS is rows done / rows; ROWS/S the average rate "
                        "since the job started; ETA the time left at that rate.")
              .returns(core::shape<JobsShape>())
              .handler<JobStore>([](JobStore& jobs, const CommandArgs&) {
                std::vector<Reply> rows;
                for (const auto& j : jobs.list()) rows.push_back(jobReply(j));
                const auto& all = core::shape<JobsShape>();
                return Reply(all).set(all.jobs, rows).response();
              }));
  auto idArg = Arg::integer("id", 1, 1LL << 53).inPath().positional("ID").help("the job id");
  reg.add(Command("bat job show", "GET", "/api/v1/bat/jobs/{id}")
              .arg(idArg)
              .help("Show a bulk job.")
              .returns(core::shape<JobShape>())
              .handler<JobStore>([](JobStore& jobs, const CommandArgs& a) { return jobReply(needJob(jobs, jobId(a))).response(); }));
  reg.add(Command("bat job wait", "GET", "/api/v1/bat/jobs/{id}")
              .arg(idArg)
              .arg(Arg::integer("timeout", 1, 1LL << 31).onClient().option("timeout", "SECONDS").help("give up waiting after this long (exit 75)"))
              .help("Follow a bulk job until it ends, with its progress.")
              .describe("A progress bar (rows, rate, ETA) on a terminal; a line every 5 s otherwise. Exits 0 when "
                        "the job completed, 1 when it failed or was cancelled.")
              .returns(core::shape<JobShape>())
              .client(waitJob));
  reg.add(Command("bat job cancel", "POST", "/api/v1/bat/jobs/{id}/cancel")
              .arg(idArg)
              .help("Cancel a bulk job.")
              .describe("A pending job ends at once; a running one after the batch in hand (rows already applied "
                        "stay applied; the rest are counted as not processed).")
              .returns(core::shape<JobShape>())
              .handler<JobStore, BatRuntime>([](JobStore& jobs, BatRuntime& rt, const CommandArgs& a) {
                auto j = jobs.cancel(jobId(a));
                rt.poke();
                return jobReply(j).response();
              }));
  reg.add(Command("bat job log", "GET", "/api/v1/bat/jobs/{id}/log")
              .arg(idArg)
              .help("Show a bulk job's result log.")
              .describe("The counts, then each row or record ignored with its line and reason. Readable from any "
                        "node while the job runs and after.")
              .returns(core::shape<JobLogShape>())
              .print([](std::ostream& out, const Obj::Ptr& o, int) { out << core::shape<JobLogShape>().log.text(o); })
              .handler<JobStore>([](JobStore& jobs, const CommandArgs& a) {
                auto j = needJob(jobs, jobId(a));
                const auto& s = core::shape<JobLogShape>();
                return Reply(s).set(s.id, j.id).set(s.log, renderLog(j, jobs.entries(j.id))).response();
              }));
}

// The parts of a file travel as raw bytes, outside the command registry's
// JSON requests.
void addPartRoutes(core::AdminRouter& router, FileStore& files) {
  router.add("PUT", "/api/v1/bat/files/{name}/parts/{seq}", [&files](const core::AdminRequest& r) {
    const auto& seqText = r.params.at("seq");
    if (seqText.empty() || seqText.size() > 9 || seqText.find_first_not_of("0123456789") != std::string::npos)
      throw AdminError(400, "invalid_part", "part '" + seqText + "' is not a number");
    auto f = files.put(r.params.at("name"), static_cast<std::uint32_t>(std::stoul(seqText)), r.body);
    return fileReply(f).response();
  });
  router.add("GET", "/api/v1/bat/files/{name}/parts/{seq}", [&files](const core::AdminRequest& r) {
    const auto& seqText = r.params.at("seq");
    if (seqText.empty() || seqText.size() > 9 || seqText.find_first_not_of("0123456789") != std::string::npos)
      throw AdminError(400, "invalid_part", "part '" + seqText + "' is not a number");
    return core::AdminResponse::text(files.part(r.params.at("name"), static_cast<std::uint32_t>(std::stoul(seqText))),
                                     "application/octet-stream");
  });
  router.add("POST", "/api/v1/bat/files/{name}/complete",
             [&files](const core::AdminRequest& r) { return fileReply(files.finish(r.params.at("name"))).response(); });
}

}  // namespace

void registerModule(core::ModuleRegistry& registry, std::shared_ptr<xcp::XcpRuntime> xmpp) {
  auto runtime = std::make_shared<BatRuntime>();
  registry.addService({kService,
                       "Cisco Bulk Provisioning Service",
                       core::ServiceKind::Feature,
                       {"single", "publisher"},
                       {},
                       [xmpp, runtime] { return makeService(xmpp, runtime); }});
  core::ServiceParamInfo rate;
  rate.service = kService;
  rate.name = kImportRate;
  rate.defaultValue = 0;
  rate.min = 1;
  rate.max = 1000000;
  rate.unit = "rows/s";
  rate.help = "contact rows bulk jobs import per second (MG-3); raising it costs database CPU while a job runs";
  rate.zeroIsUnlimited = true;
  registry.addServiceParam(rate);
  registry.addConfig(addOptions);
  registry.addCommands([](core::CommandRegistry& r) {
    registerFileCommands(r);
    registerJobCommands(r);
  });
  struct Stores {
    std::unique_ptr<FileStore> files;
    std::unique_ptr<JobStore> jobs;
  };
  auto stores = std::make_shared<Stores>();
  registry.addAdminRoutes([runtime, stores](core::AdminRouter& router, const core::NodeContext& node) {
    if (!node.commands || !node.database)
      throw std::logic_error("the bulk-provisioning commands need the node's command registry and database");
    stores->files = std::make_unique<FileStore>(*node.database);
    stores->jobs = std::make_unique<JobStore>(*node.database);
    node.commands->provide(*runtime);
    node.commands->provide(*stores->files);
    node.commands->provide(*stores->jobs);
    addPartRoutes(router, *stores->files);
  });
}

}  // namespace imp::bat
