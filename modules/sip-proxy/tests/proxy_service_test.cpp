// The sip-proxy service's lifecycle (core/service.h, issue 15 deliverable 2):
// configure() validates only; status() answers while reload() is blocked
// inside a directory call.
#include <doctest/doctest.h>
#include <imp/core/certificates.h>
#include <imp/core/config.h>
#include <imp/core/module_registry.h>

#include <atomic>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <latch>
#include <thread>

#include <unistd.h>

#include "imp/sip_proxy/module.h"
#include "imp/sip_proxy/proxy_service.h"
#include "imp/sip_proxy/routing.h"

namespace sp = imp::sip_proxy;
using imp::core::ServiceState;

namespace {

// A directory whose domain listing blocks, once armed, until the test
// releases it.
class BlockingLookup : public sp::DirectoryLookup {
 public:
  bool isLocalDomain(const std::string&) override { return false; }
  std::optional<std::string> licensedUserHome(const std::string&) override { return std::nullopt; }
  bool hasMicrosoftSipUri(const std::string&) override { return false; }
  std::optional<std::vector<std::string>> localDomains() override {
    if (armed.exchange(false)) {
      entered.count_down();
      release.wait();
    }
    return std::vector<std::string>{"example.com"};
  }

  std::atomic<bool> armed{false};
  std::latch entered{1};
  std::latch release{1};
};

imp::core::ConfigSchema proxySchema() {
  imp::core::ModuleRegistry modules;
  sp::registerModule(modules);
  return modules.configSchema();
}

}  // namespace

TEST_CASE("status() answers while reload() is blocked in a directory call") {
  auto schema = proxySchema();
  // Loopback, any free port: nothing outside the test is touched.
  auto cfg = imp::core::Config::parse("[sip-proxy]\nlisten_address = 127.0.0.1\ntcp_port = 0\n", schema);
  auto lookup = std::make_shared<BlockingLookup>();
  auto running = std::make_shared<sp::ProxyHandle>();
  auto svc = sp::makeSipProxyService(running, lookup);
  imp::core::ServiceContext ctx;
  ctx.nodeId = "imp1";
  ctx.config = &cfg;
  svc->configure(ctx);
  CHECK(svc->status().state == ServiceState::Stopped);
  CHECK_FALSE(running->stats().has_value());

  svc->start();
  auto before = svc->status();
  CHECK(before.state == ServiceState::Running);
  CHECK(before.detail.find("listening on TCP 127.0.0.1:") != std::string::npos);
  CHECK(running->stats().has_value());  // the module's admin routes see it

  lookup->armed = true;
  std::thread reloader([&] { svc->reload({1, 2}); });
  lookup->entered.wait();  // reload is now inside localDomains()
  auto during = svc->status();
  CHECK(during.state == ServiceState::Running);
  CHECK(during.detail == before.detail);  // the old state until reload publishes
  lookup->release.count_down();
  reloader.join();

  auto after = svc->status();
  CHECK(after.state == ServiceState::Running);
  CHECK(after.detail.find("settings generation 2") != std::string::npos);

  svc->stop();
  CHECK(svc->status().state == ServiceState::Stopped);
  CHECK_FALSE(running->stats().has_value());
}

TEST_CASE("configure() checks the certificate files are readable but does not load them") {
  auto dir = std::filesystem::temp_directory_path() / ("imp-proxy-service-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  auto garbage = dir / "cert.pem";
  std::ofstream(garbage) << "not a certificate\n";

  imp::core::NodeCertificate cert;
  cert.certFile = garbage;
  cert.keyFile = garbage;
  imp::core::ServiceContext ctx;
  ctx.nodeId = "imp1";
  ctx.certificate = &cert;
  // Readable: accepted, the content is only read by start().
  sp::makeSipProxyService()->configure(ctx);

  cert.keyFile = dir / "missing.key";
  CHECK_THROWS_WITH_AS(sp::makeSipProxyService()->configure(ctx),
                       ("in [tls]: key_file = " + cert.keyFile.string() + " is not readable by impd").c_str(),
                       imp::core::ConfigError);
  std::filesystem::remove_all(dir);
}
