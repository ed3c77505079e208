#include "imp/troubleshoot/module.h"

#include <imp/core/command_registry.h>
#include <imp/core/dns.h>
#include <imp/core/module_registry.h>
#include <imp/core/response_shape.h>

#include <Poco/JSON/Object.h>

#include <memory>
#include <ostream>
#include <stdexcept>

#include "imp/troubleshoot/checks.h"
#include "imp/troubleshoot/gather.h"

namespace imp::troubleshoot {

using core::Command;
using core::CommandArgs;
using core::Field;
using core::ListField;
using core::Reply;
using Obj = Poco::JSON::Object;

namespace {

// What the command's handler works on: where the facts come from.
struct TroubleshootContext {
  NodeSources sources;
};

// The node's resolver without its cache (RT-8: the check times the DNS as it
// is now), or the system's when the node has none.
std::shared_ptr<core::Resolver> uncached(const std::shared_ptr<core::Resolver>& r) {
  if (!r) return std::make_shared<core::SystemResolver>(2);
  if (auto* c = dynamic_cast<core::CachingResolver*>(r.get())) return c->inner();
  return r;
}

struct CheckShape : core::Shape {
  CheckShape() : Shape("TroubleshootCheck", Layout::Table) {}
  const Field<std::string> id = text("id").column("CHECK");
  const Field<std::string> result = text("result").column("RESULT");
  const Field<std::string> requirement = text("requirement").column("REQUIREMENT");
  const Field<std::string> detail = text("detail").column("DETAIL");
  const Field<std::string> fix = text("fix");
};

struct ReportShape : core::Shape {
  ReportShape() : Shape("Troubleshoot", Layout::Lines) {}
  const ListField checks = list("checks", core::shape<CheckShape>());
  const Field<std::int64_t> passed = number("pass");
  const Field<std::int64_t> warned = number("warn");
  const Field<std::int64_t> failed = number("fail");
  const Field<std::string> summaryLine = text("summary");
};

void printReport(std::ostream& out, const Obj::Ptr& o, int) {
  const auto& s = core::shape<ReportShape>();
  const auto& c = core::shape<CheckShape>();
  const auto checks = s.checks.get(o);
  std::vector<std::vector<std::string>> rows = {{"CHECK", "RESULT", "REQUIREMENT", "DETAIL"}};
  for (const auto& row : checks) rows.push_back({c.id.text(row), c.result.text(row), c.requirement.text(row), c.detail.text(row)});
  core::cli::table(out, rows);
  bool first = true;
  for (const auto& row : checks) {
    if (c.result.text(row) == "PASS") continue;
    if (first) out << "\n";
    first = false;
    out << "fix " << c.id.text(row) << ": " << c.fix.text(row) << "\n";
  }
  out << "\n" << s.summaryLine.text(o) << "\n";
}

}  // namespace

void registerModule(core::ModuleRegistry& registry) {
  auto state = std::make_shared<TroubleshootContext>();
  registry.addAdminRoutes([state](core::AdminRouter&, const core::NodeContext& node) {
    state->sources = NodeSources{node.database, node.host, node.certificate, node.nodeId, {}};
    state->sources.probe.resolver = uncached(node.resolver);
    if (!node.hostname.empty()) state->sources.probe.fromHost = node.hostname;
    if (!node.commands) throw std::logic_error("the troubleshooter's command needs the node's command registry");
    node.commands->provide(*state);
  });
  registry.addCommands([](core::CommandRegistry& reg) {
    reg.add(Command("troubleshoot", "GET", "/api/v1/troubleshoot")
                .help("Check this node's federation configuration and report what to fix (SV-6, TLS-5, TS-1..TS-11).")
                .describe(
                    "Runs the checks IMP can evaluate from its side: federation enabled (FED-1), routing mode (FED-6), "
                    "a static route for every presence domain (RT-1), the incoming ACL covering every route's next "
                    "hop (RT-7), each next hop resolving (A) and answering SIP OPTIONS over its route's transport, "
                    "with the round-trip time (RT-1, RT-10, TS-2), fast reverse DNS (PTR) for the ACL's and the next "
                    "hops' addresses (RT-8, TS-6), every node's host name resolving (RT-10, TS-4), the peer-auth TLS "
                    "listener on 5061 and the peer subjects selected by the peer-auth TLS context (TLS-2, TLS-3, "
                    "TLS-5), the certificate each TLS next hop presents (serverAuth and clientAuth, its CN a selected "
                    "peer subject; TLS-5), the node certificate (validity, serverAuth and clientAuth extended key "
                    "usage, chain to the trust store; TLS-4, TLS-5), the services federation needs running on this "
                    "node (SV-6), no user enabled on both systems where the directory can tell (FED-1: licensed on "
                    "IMP with a Microsoft SIP URI) and the contact-list limit against the node's capacity (HA-2). "
                    "Each check reports PASS, WARN or FAIL with its requirement, one line of detail and, unless it "
                    "passes, what to do. A check whose data cannot be read is a FAIL. The report is the answer: "
                    "impctl exits 0 whatever the checks find.")
                .example("troubleshoot", "the report as a table, with the fixes")
                .returns(core::shape<ReportShape>())
                .print(printReport)
                .handler<TroubleshootContext>([](TroubleshootContext& ctx, const CommandArgs&) {
                  const auto results = runChecks(gather(ctx.sources));
                  const auto& c = core::shape<CheckShape>();
                  std::vector<Reply> rows;
                  std::int64_t n[3] = {0, 0, 0};
                  for (const auto& r : results) {
                    ++n[static_cast<int>(r.status)];
                    Reply row(c);
                    row.set(c.id, r.id).set(c.result, std::string(nameOf(r.status))).set(c.requirement, r.requirement);
                    row.set(c.detail, r.detail).set(c.fix, r.fix);
                    rows.push_back(std::move(row));
                  }
                  const auto& s = core::shape<ReportShape>();
                  Reply out(s);
                  out.set(s.checks, rows).set(s.passed, n[0]).set(s.warned, n[1]).set(s.failed, n[2]);
                  out.set(s.summaryLine, summary(results));
                  return out.response();
                }));
  });
}

}  // namespace imp::troubleshoot
