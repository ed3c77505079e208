// libFuzzer target: database URL parsing refuses bad input with
// std::invalid_argument only.
#include <imp/core/database.h>

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  try {
    auto p = imp::core::parseDbUrl(std::string(reinterpret_cast<const char*>(data), size));
    (void)p.redacted();
  } catch (const std::invalid_argument&) {
  }
  return 0;
}
