#pragma once
// Per-source-IP flood limiter with temporary bans (RT-7; like Kamailio's
// pike + htable): more than `maxRequests` requests from one address within
// `window` bans that address for `banTime`; requests from a banned address
// are refused without further processing. Peers allowed by the incoming ACL
// (the configured Microsoft servers) bypass the limiter — the caller decides
// that before asking.
//
// Owned by one event-loop thread: no locking. Memory is bounded: idle
// entries are swept, and at `maxTracked` addresses the oldest window data is
// dropped (bans are kept).
#include <chrono>
#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

namespace imp::sip_proxy {

struct FloodConfig {
  std::uint32_t maxRequests = 200;                 // per window and address
  std::chrono::milliseconds window{2000};
  std::chrono::seconds banTime{300};
  std::size_t maxTracked = 100000;
};

struct Ban {
  std::string address;
  std::chrono::steady_clock::time_point until;
  std::uint64_t refused = 0;  // requests refused while banned
};

class FloodLimiter {
 public:
  using Clock = std::chrono::steady_clock;
  explicit FloodLimiter(FloodConfig config = {}) : config_(config) {}

  // True if the request may go on; false if the address is (now) banned.
  bool allow(const std::string& address, Clock::time_point now);
  std::vector<Ban> bans(Clock::time_point now) const;
  // Lifts one ban ("" = all); returns how many were lifted.
  std::size_t clear(const std::string& address = "");
  void setConfig(FloodConfig c) { config_ = c; }
  std::uint64_t bansIssued() const { return bansIssued_; }
  std::size_t tracked() const { return entries_.size(); }

 private:
  struct Entry {
    Clock::time_point windowStart{};
    std::uint32_t count = 0;
    Clock::time_point bannedUntil{};
    std::uint64_t refused = 0;
  };
  void sweep(Clock::time_point now);

  FloodConfig config_;
  std::unordered_map<std::string, Entry> entries_;
  Clock::time_point lastSweep_{};
  std::uint64_t bansIssued_ = 0;
};

}  // namespace imp::sip_proxy
