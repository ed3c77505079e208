// libFuzzer target: the impd.conf parser must refuse any input with a
// ConfigError and never crash, hang or leak.
#include <imp/core/config.h>

#include <cstddef>
#include <cstdint>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto& schema = imp::core::coreSchema();
  try {
    auto cfg = imp::core::Config::parse(std::string_view(reinterpret_cast<const char*>(data), size), schema);
    // Accepted input must be readable through the typed getters.
    (void)cfg.getInt("admin", "port");
    (void)cfg.getBool("log", "console");
    (void)cfg.getString("node", "role");
  } catch (const imp::core::ConfigError&) {
  }
  return 0;
}
