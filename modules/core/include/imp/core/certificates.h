#pragma once
// The node certificate (TLS-1..3, until full certificate management): either
// files named in impd.conf [tls] (certificate chain, private key, trust
// store), or, when none are named, a self-signed certificate generated on
// first start under <state_dir>/tls (EC P-256, subject CN = node host name,
// subjectAltName DNS, serverAuth + clientAuth EKU as Lync requires for
// mutual TLS), kept across restarts.
#include <filesystem>
#include <string>
#include <vector>

namespace imp::core {

struct NodeCertificate {
  std::filesystem::path certFile;
  std::filesystem::path keyFile;
  std::filesystem::path caFile;  // trust store for peers; may be empty
  // <state_dir>/tls/cup-trust.pem: caFile's content and the trust store
  // cup-trust (TLS-4), written by the services that verify peers.
  std::filesystem::path trustBundle;
  std::string subjectCn;
  std::string notAfter;          // "2036-11-25T06:00:00Z"
  bool generated = false;
  bool uploadFinished = false;  // an interrupted upload was finished at start
};

// <state_dir>/tls/cup-pending.key: the key `impctl cert csr` made, kept
// until `impctl cert upload` has installed its certificate (TLS-4).
std::filesystem::path pendingKeyFile(const std::filesystem::path& stateDir);

// Uses the configured files (checked: readable, parse, key matches the
// certificate) or generates/reuses a self-signed one. Throws ConfigError
// "in [tls]: ..." on any problem. An upload interrupted between its two
// renames (the certificate is new, the key still the old one) is finished
// here: when the pending key matches the certificate it becomes the key.
NodeCertificate ensureNodeCertificate(const std::filesystem::path& stateDir, const std::string& certFile,
                                      const std::string& keyFile, const std::string& caFile,
                                      const std::string& hostName);

// What identifies the node certificate files as they are now: the
// certificate's SHA-256 fingerprint and a hash of the key file. The services
// compare it to rebuild their TLS contexts after `impctl cert upload`
// (TLS-4). Throws std::runtime_error when a file cannot be read or the
// certificate does not parse.
std::string certificateFilesKey(const std::filesystem::path& certFile, const std::filesystem::path& keyFile);

// Subject CN of a PEM certificate file ("" if none); throws std::runtime_error.
std::string certificateCommonName(const std::filesystem::path& pem);

}  // namespace imp::core
