// Certificate management (TLS-4): the service certificate `cup` of this node
// (a key and a signing request made here, the CA-signed certificate uploaded
// back) and the cluster-wide trust store `cup-trust` of CA certificates.
#include <imp/core/admin_http.h>
#include <imp/core/cert_store.h>
#include <imp/core/cert_tools.h>
#include <imp/core/certificates.h>
#include <imp/core/cluster_settings.h>
#include <imp/core/command_registry.h>
#include <imp/core/database.h>
#include <imp/core/response_shape.h>

#include <Poco/JSON/Object.h>

#include <algorithm>
#include <chrono>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <ostream>
#include <sstream>

#include "imp/serviceability/admin_api.h"

namespace imp::serviceability {

using core::AdminError;
using core::Arg;
using core::CertError;
using core::CertInfo;
using core::Command;
using core::CommandArgs;
using core::Field;
using core::ListField;
using core::Reply;
using Obj = Poco::JSON::Object;
namespace fs = std::filesystem;

namespace {

constexpr const char* kNodeCert = "cup";
constexpr const char* kTrustPrefix = "cup-trust/";

struct CertRowShape : core::Shape {
  CertRowShape() : Shape("CertificateRow", Layout::Table) {}
  const Field<std::string> cert = text("cert").column("NAME").describe("cup, or cup-trust/<SHA-256 fingerprint>");
  const Field<std::string> subjectCn = text("subject_cn").column("SUBJECT CN");
  const Field<std::string> issuer = text("issuer").column("ISSUER");
  const Field<std::string> notAfter = text("not_after").column("VALID UNTIL");
  const Field<std::vector<std::string>> eku =
      texts("eku").column("EKU").describe("serverAuth and/or clientAuth (TLS-5 needs both on the peers)");
};

struct CertListShape : core::Shape {
  CertListShape() : Shape("Certificates", Layout::Lines) {}
  const ListField certs = list("certs", core::shape<CertRowShape>());
};

struct CertDetailShape : core::Shape {
  CertDetailShape() : Shape("Certificate", Layout::Lines, true) {}
  const Field<std::string> cert = same(core::shape<CertRowShape>().cert).line("name");
  const Field<std::string> subjectCn = same(core::shape<CertRowShape>().subjectCn).line("subject CN");
  const Field<std::string> subject = text("subject").line("subject");
  const Field<std::string> issuer = same(core::shape<CertRowShape>().issuer).line("issuer");
  const Field<std::string> serial = text("serial").line("serial");
  const Field<std::string> notBefore = text("not_before").line("valid from");
  const Field<std::string> notAfter = same(core::shape<CertRowShape>().notAfter).line("valid until");
  const Field<std::string> sha256 = text("sha256").line("SHA-256");
  const Field<bool> isCa = flag("is_ca").shows("yes", "no").line("CA");
  const Field<std::vector<std::string>> eku = same(core::shape<CertRowShape>().eku).line("extended key usage");
  const Field<std::vector<std::string>> sanDns = texts("san_dns").line("SAN DNS");
  const Field<std::string> certFile =
      text("cert_file").orElse("-").describe("cup: the file the listeners read").line("file");
};

struct CsrShape : core::Shape {
  CsrShape() : Shape("CertificateRequest", Layout::Lines) {}
  const Field<std::string> subjectCn = same(core::shape<CertRowShape>().subjectCn).line("subject CN");
  const Field<std::vector<std::string>> sanDns = same(core::shape<CertDetailShape>().sanDns).line("SAN DNS");
  const Field<std::string> keyFile =
      text("key_file").describe("the pending key, kept on the node (mode 0600)").line("pending key");
  const Field<std::string> csr = text("csr").describe("the PKCS#10 request, PEM");
};

std::vector<std::string> ekuOf(const CertInfo& i) {
  std::vector<std::string> out;
  if (i.serverAuth) out.emplace_back("serverAuth");
  if (i.clientAuth) out.emplace_back("clientAuth");
  return out;
}

Reply rowOf(const std::string& name, const CertInfo& i) {
  const auto& r = core::shape<CertRowShape>();
  Reply row(r);
  row.set(r.cert, name).set(r.subjectCn, i.subjectCn).set(r.issuer, i.issuer).set(r.notAfter, i.notAfter);
  row.set(r.eku, ekuOf(i));
  return row;
}

Reply detailOf(const std::string& name, const CertInfo& i, const std::string& file) {
  const auto& d = core::shape<CertDetailShape>();
  Reply r(d);
  r.set(d.cert, name).set(d.subjectCn, i.subjectCn).set(d.subject, i.subject).set(d.issuer, i.issuer);
  r.set(d.serial, i.serial).set(d.notBefore, i.notBefore).set(d.notAfter, i.notAfter).set(d.sha256, i.sha256);
  r.set(d.isCa, i.isCa).set(d.eku, ekuOf(i)).set(d.sanDns, i.sanDns).set(d.certFile, file);
  return r;
}

std::string readFile(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  if (!in) throw AdminError(500, "cert_unreadable", "cannot read " + p.string());
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

const core::NodeCertificate& nodeCert(const AdminContext& c) {
  if (!c.certificate) throw AdminError(409, "no_node_certificate", "this node has no service certificate (cup)");
  return *c.certificate;
}

fs::path pendingKey(const AdminContext& c) { return core::pendingKeyFile(c.stateDir); }

CertInfo nodeCertInfo(const AdminContext& c) {
  try {
    return core::parseCertificate(readFile(nodeCert(c).certFile));
  } catch (const CertError& e) {
    throw AdminError(500, "cert_unreadable", nodeCert(c).certFile.string() + ": " + e.what());
  }
}

core::Database& database(const AdminContext& c) {
  if (!c.db) throw AdminError(503, "no_database", "the trust store needs the cluster database");
  return *c.db;
}

// "cup-trust/<key>" -> key; refuses other names.
std::string trustKey(const std::string& name) {
  if (!name.starts_with(kTrustPrefix) || name.size() == std::string(kTrustPrefix).size())
    throw AdminError(400, "bad_cert_name",
                     "'" + name + "' is not a trust-store certificate; name it cup-trust/<fingerprint or CN>");
  return name.substr(std::string(kTrustPrefix).size());
}

// Applies the bump now on this node, so the answer comes after the reload.
void applyHere(const AdminContext& c) {
  if (!c.settings || !c.db) return;
  auto r = c.db->query("SELECT generation FROM core_settings WHERE id = 1");
  if (!r.empty()) c.settings->applyNow(static_cast<std::uint64_t>(r.num(0, "generation")), std::chrono::seconds(10));
}

std::string localFile(const core::CommandCall& call) {
  auto it = call.local.find("file");
  if (it == call.local.end() || it->second.empty()) throw core::CommandUsageError("give the PEM file", call.command->usage());
  std::ifstream in(it->second, std::ios::binary);
  if (!in) throw std::runtime_error("cannot open " + it->second);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Sends the local FILE as the body's pem and prints the answer.
int sendPem(const core::CommandCall& call, core::CommandClient& client, std::ostream& out, const core::Shape& shape) {
  Obj body;
  body.set("pem", localFile(call));
  std::ostringstream ss;
  body.stringify(ss);
  auto answer = client.request(call.method, call.target, ss.str());
  if (client.json()) {
    answer->stringify(out, 2);
    out << "\n";
  } else {
    shape.print(out, answer);
  }
  return 0;
}

}  // namespace

void registerCertCommands(core::CommandRegistry& reg) {
  reg.add(Command("cert list", "GET", "/api/v1/certs")
              .help("The service certificate of this node (cup) and the trust store (cup-trust).")
              .describe("cup is the certificate the SIP proxy's TLS listeners and the XMPP client listener present; "
                        "cup-trust holds the CA certificates trusted cluster-wide to verify peers (TLS-4).")
              .example("cert list", "what this node presents and trusts")
              .returns(core::shape<CertListShape>())
              .handler<AdminContext>([](AdminContext& c, const CommandArgs&) {
                std::vector<Reply> rows;
                if (c.certificate) rows.push_back(rowOf(kNodeCert, nodeCertInfo(c)));
                if (c.db)
                  for (const auto& e : core::TrustStore(*c.db).list())
                    rows.push_back(rowOf(kTrustPrefix + e.info.sha256, e.info));
                const auto& s = core::shape<CertListShape>();
                return Reply(s).set(s.certs, rows).response();
              }));

  reg.add(Command("cert show", "GET", "/api/v1/certs/detail")
              .arg(Arg::string("cert").inQuery().required().positional("NAME").cliRequired().help(
                  "cup, or cup-trust/<fingerprint or subject CN>"))
              .help("Every detail of one certificate.")
              .example("cert show cup", "the service certificate of this node")
              .returns(core::shape<CertDetailShape>())
              .handler<AdminContext>([](AdminContext& c, const CommandArgs& a) {
                const auto& name = a.at("cert");
                if (name == kNodeCert) return detailOf(kNodeCert, nodeCertInfo(c), nodeCert(c).certFile.string()).response();
                try {
                  auto info = core::TrustStore(database(c)).find(trustKey(name));
                  return detailOf(kTrustPrefix + info.sha256, info, "").response();
                } catch (const CertError& e) {
                  throw AdminError(404, "unknown_cert", e.what());
                }
              }));

  reg.add(Command("cert upload-trust", "POST", "/api/v1/certs/trust")
              .arg(Arg::string("file").onClient().positional("FILE").cliRequired().help("a PEM file of one or more CA certificates"))
              .arg(Arg::string("pem").required().help("the PEM text"))
              .help("Add CA certificates to the trust store cup-trust (TLS-4), cluster-wide.")
              .describe("Each certificate must be a CA (basicConstraints CA:TRUE), valid now and not already "
                        "stored; otherwise nothing is added. Every node writes the trust store to "
                        "<state_dir>/tls/cup-trust.pem and its TLS listeners use it at once. Use the same CA on "
                        "both sides, or trust each side's root on the other.")
              .example("cert upload-trust ca.pem", "trust the enterprise root CA")
              .returns(core::shape<CertListShape>())
              .client([](const core::CommandCall& call, core::CommandClient& client, std::ostream& out) {
                return sendPem(call, client, out, core::shape<CertListShape>());
              })
              .handler<AdminContext>([](AdminContext& c, const CommandArgs& a) {
                std::vector<CertInfo> added;
                try {
                  added = core::TrustStore(database(c)).add(a.at("pem"), std::time(nullptr));
                } catch (const CertError& e) {
                  throw AdminError(422, "cert_refused", e.what());
                }
                applyHere(c);
                std::vector<Reply> rows;
                for (const auto& i : added) rows.push_back(rowOf(kTrustPrefix + i.sha256, i));
                const auto& s = core::shape<CertListShape>();
                return Reply(s).set(s.certs, rows).response(201);
              }));

  reg.add(Command("cert delete", "DELETE", "/api/v1/certs/trust")
              .arg(Arg::string("cert").inQuery().required().positional("NAME").cliRequired().help(
                  "cup-trust/<fingerprint or subject CN>"))
              .help("Remove a CA certificate from the trust store cup-trust.")
              .example("cert delete cup-trust/Example Root CA", "stop trusting a root")
              .returns(core::shape<core::DeletedShape>())
              .handler<AdminContext>([](AdminContext& c, const CommandArgs& a) {
                const auto& name = a.at("cert");
                if (name == kNodeCert)
                  throw AdminError(409, "cert_in_use", "the service certificate cup is replaced (cert upload), not deleted");
                CertInfo gone;
                try {
                  gone = core::TrustStore(database(c)).remove(trustKey(name));
                } catch (const CertError& e) {
                  throw AdminError(404, "unknown_cert", e.what());
                }
                applyHere(c);
                const auto& s = core::shape<core::DeletedShape>();
                return Reply(s).set(s.deleted, kTrustPrefix + gone.sha256).response();
              }));

  reg.add(Command("cert csr", "POST", "/api/v1/certs/csr")
              .arg(Arg::string("cn").option("cn", "FQDN").help("the subject CN (default: the node's host name)"))
              .arg(Arg::strings("san").option("san", "NAME").help("another subjectAltName DNS name (repeatable)"))
              .arg(Arg::string("out").onClient().option("out", "FILE").help("write the request there (default: stdout)"))
              .help("Make a new RSA 2048 key on this node and a certificate signing request for cup (TLS-4).")
              .describe("The key stays on the node in <state_dir>/tls/cup-pending.key (mode 0600) until the "
                        "CA-signed certificate is uploaded (cert upload); a new request replaces it. The request "
                        "(PKCS#10, SHA-256) has subject CN = FQDN and subjectAltName DNS = FQDN and the --san names, "
                        "and asks for serverAuth and clientAuth (mutual TLS with Lync needs both).")
              .example("cert csr --out imp1.csr", "a request for this node's host name")
              .returns(core::shape<CsrShape>())
              .client([](const core::CommandCall& call, core::CommandClient& client, std::ostream& out) {
                auto answer = client.request(call.method, call.target, call.body);
                const auto& s = core::shape<CsrShape>();
                if (client.json()) {
                  answer->stringify(out, 2);
                  out << "\n";
                  return 0;
                }
                auto it = call.local.find("out");
                if (it == call.local.end() || it->second.empty()) {
                  out << s.csr.text(answer);
                  return 0;
                }
                std::ofstream f(it->second, std::ios::binary | std::ios::trunc);
                f << s.csr.text(answer);
                if (!f.flush()) throw std::runtime_error("cannot write " + it->second);
                out << "wrote the request for " << s.subjectCn.text(answer) << " to " << it->second
                    << "; the key stays on the node: " << s.keyFile.text(answer) << "\n";
                return 0;
              })
              .handler<AdminContext>([](AdminContext& c, const CommandArgs& a) {
                const auto cn = a.str("cn").value_or(c.hostname);
                core::KeyAndCsr made;
                try {
                  made = core::generateKeyAndCsr(cn, a.strings("san").value_or(std::vector<std::string>{}));
                } catch (const CertError& e) {
                  throw AdminError(400, "bad_csr", e.what());
                }
                const auto key = pendingKey(c);
                std::error_code ec;
                fs::create_directories(key.parent_path(), ec);
                try {
                  core::writeFileAtomically(key, made.keyPem, 0600);
                } catch (const std::exception& e) {
                  throw AdminError(500, "cert_write_failed", e.what());
                }
                auto names = std::vector<std::string>{cn};
                for (const auto& n : a.strings("san").value_or(std::vector<std::string>{}))
                  if (std::find(names.begin(), names.end(), n) == names.end()) names.push_back(n);
                const auto& s = core::shape<CsrShape>();
                Reply r(s);
                r.set(s.subjectCn, cn).set(s.sanDns, names).set(s.keyFile, key.string()).set(s.csr, made.csrPem);
                return r.response(201);
              }));

  reg.add(Command("cert upload", "POST", "/api/v1/certs/cup")
              .arg(Arg::string("file").onClient().positional("FILE").cliRequired().help(
                  "the CA-signed certificate, PEM, optionally followed by its intermediates"))
              .arg(Arg::string("pem").required().help("the PEM text"))
              .help("Install the CA-signed service certificate cup on this node (TLS-4).")
              .describe("Refused unless the certificate is for the pending key (cert csr), has serverAuth and "
                        "clientAuth extended key usage (TLS-5) and chains to a CA in the trust store cup-trust now; each "
                        "refusal says why. The certificate, then the key replace the node certificate files (each "
                        "written to a temp file and renamed over it; impd finishes an upload stopped in between at its "
                        "next start) and the TLS "
                        "listeners present it without a restart.")
              .example("cert upload imp1.pem", "the certificate the CA signed for imp1.csr")
              .returns(core::shape<CertDetailShape>())
              .client([](const core::CommandCall& call, core::CommandClient& client, std::ostream& out) {
                return sendPem(call, client, out, core::shape<CertDetailShape>());
              })
              .handler<AdminContext>([](AdminContext& c, const CommandArgs& a) {
                const auto& node = nodeCert(c);
                const auto& pem = a.at("pem");
                std::vector<CertInfo> chain;
                try {
                  chain = core::parseCertificates(pem);
                } catch (const CertError& e) {
                  throw AdminError(422, "cert_refused", e.what());
                }
                const auto keyPath = pendingKey(c);
                if (!fs::exists(keyPath))
                  throw AdminError(409, "no_pending_key",
                                   "no pending key on this node (" + keyPath.string() + "): run impctl cert csr first");
                const auto key = readFile(keyPath);
                try {
                  if (!core::certificateMatchesKey(pem, key))
                    throw AdminError(422, "cert_refused",
                                     "the certificate (" + chain.front().subject + ") is not for the pending key of this "
                                     "node: upload the certificate signed for the latest impctl cert csr");
                } catch (const CertError& e) {
                  throw AdminError(422, "cert_refused", e.what());
                }
                // TLS-5: Lync's mutual TLS uses the node certificate both as a
                // server (peer-auth listener) and as a client (outgoing TLS).
                std::vector<std::string> missing;
                if (!chain.front().serverAuth) missing.emplace_back("serverAuth (1.3.6.1.5.5.7.3.1)");
                if (!chain.front().clientAuth) missing.emplace_back("clientAuth (1.3.6.1.5.5.7.3.2)");
                if (!missing.empty())
                  throw AdminError(422, "cert_refused",
                                   "the certificate's extended key usage lacks " + missing.front() +
                                       (missing.size() > 1 ? " and " + missing.back() : std::string()) +
                                       ": mutual TLS with Lync needs both; have the CA sign the request with serverAuth "
                                       "and clientAuth");
                std::vector<std::string> roots;
                for (const auto& e : core::TrustStore(database(c)).list()) roots.push_back(e.info.pem);
                if (roots.empty())
                  throw AdminError(422, "cert_refused",
                                   "the trust store cup-trust is empty: upload the CA root first (impctl cert upload-trust)");
                auto check = core::verifyCertificateChain(pem, roots, std::time(nullptr));
                if (!check.ok)
                  throw AdminError(422, "cert_refused", "the certificate does not chain to a CA in cup-trust: " + check.reason);
                std::string certText;
                for (const auto& i : chain) certText += i.pem;
                // The certificate first, then the key, then the pending key
                // goes: impd finishes an upload stopped in between at its
                // next start (ensureNodeCertificate). A failed key write puts
                // the old certificate back, so nothing is half applied.
                const auto oldCert = readFile(node.certFile);
                try {
                  core::writeFileAtomically(node.certFile, certText, 0644);
                } catch (const std::exception& e) {
                  throw AdminError(500, "cert_write_failed", e.what());
                }
                try {
                  core::writeFileAtomically(node.keyFile, key, 0600);
                } catch (const std::exception& e) {
                  std::string restored = "the previous certificate is back in place";
                  try {
                    core::writeFileAtomically(node.certFile, oldCert, 0644);
                  } catch (const std::exception& e2) {
                    restored = std::string("the previous certificate could not be put back (") + e2.what() +
                               "); impd installs the pending key at its next start";
                  }
                  throw AdminError(500, "cert_write_failed", std::string(e.what()) + "; " + restored);
                }
                std::error_code ec;
                fs::remove(keyPath, ec);
                database(c).transaction([](core::DbSession& s) { core::ClusterSettings::bump(s); });
                applyHere(c);
                return detailOf(kNodeCert, chain.front(), node.certFile.string()).response(201);
              }));
}

}  // namespace imp::serviceability
