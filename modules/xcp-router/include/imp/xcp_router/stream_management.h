#pragma once
// XEP-0198 stream management and the per-session abuse limits of client
// streams (issue 16, deliverable 2; IM-5; XEP-0205 in spirit). Plain values
// used by one C2sStream on its loop; no locks, no sockets.
//
// SmQueue: the stanzas a session wrote to its client and the counters of
// XEP-0198 §4. `sent` counts every stanza written since <enabled/> (h of
// the client reaches it once it has handled them all), modulo 2^32; an
// <a h='n'/> drops the entries up to n. Without stream management the same
// queue keeps only what the kernel has not yet accepted (pruneWritten with
// the connection's byte counters), so a dropped connection hands back
// exactly the stanzas queued but never written (IM-5).
//
// TokenBucket: a rate with a burst, on a caller-supplied clock. The stream
// throttles reading when a bucket runs dry (see c2s.cpp for why reading is
// throttled rather than the stream closed).
#include <chrono>
#include <cstdint>
#include <span>
#include <optional>
#include <string_view>
#include <vector>

#include "imp/xcp_router/router.h"

namespace imp::xcp {

// "h" of <a/>, <resume/> and <enabled/>: a decimal count of 0..2^32-1
// (XEP-0198 §4, xs:unsignedInt); nullopt for anything else.
std::optional<std::uint32_t> parseHandledCount(std::string_view text);

class SmQueue {
 public:
  struct Entry {
    RoutedStanza stanza;         // element set; from/to/kind as routed
    bool own = false;            // written by the server itself (an iq answer): replayed, never re-routed
    bool copy = false;           // an XEP-0280 carbon copy: replayed, never re-routed (the original went elsewhere)
    std::uint64_t endOffset = 0; // the connection's bytesQueuedTotal() right after it was written
  };

  // `start`: the count both sides have reached already (0 for a session;
  // other values let tests cross the 2^32 wrap).
  explicit SmQueue(std::uint32_t start = 0) : sent_(start), acked_(start) {}
  // One stanza written (or, while the connection is gone, queued for replay).
  void push(Entry e);
  enum class Ack : std::uint8_t { Ok, TooHigh };
  // The client has handled `h` stanzas in all (mod 2^32). TooHigh: h counts
  // more stanzas than were sent (XEP-0198 §4 handled-count-too-high); the
  // queue is left as it was.
  Ack ack(std::uint32_t h);
  // Without stream management: drops the entries the kernel has accepted.
  void pruneWritten(std::uint64_t bytesSent);

  std::uint32_t sent() const { return sent_; }
  std::uint32_t acked() const { return acked_; }
  std::size_t size() const { return q_.size() - head_; }
  bool empty() const { return size() == 0; }
  std::span<const Entry> entries() const { return std::span<const Entry>(q_).subspan(head_); }
  // Takes every entry out, oldest first; the counters stay.
  std::vector<Entry> take();
  // Starts XEP-0198 counting at zero (<enabled/>): what was queued before
  // is not counted by the client, so it is not kept either.
  void startCounting();
  // An empty queue gives its storage back (an idle session keeps no room
  // for its last burst); the next push allocates again.
  void shrink();
  std::size_t capacity() const { return q_.capacity(); }

 private:
  void dropFront(std::size_t n);
  // A vector with a moving head rather than a std::deque: libstdc++'s deque
  // allocates its first block when constructed, and every client session
  // holds one of these (IM-5 bookkeeping must not cost idle connections).
  std::vector<Entry> q_;
  std::size_t head_ = 0;
  std::uint32_t sent_ = 0, acked_ = 0;
};

class TokenBucket {
 public:
  using Clock = std::chrono::steady_clock;
  // `rate` tokens per second, at most `burst` saved; rate 0 = unlimited.
  TokenBucket(double rate = 0, double burst = 0, Clock::time_point now = Clock::now());
  bool unlimited() const { return rate_ <= 0; }
  // Takes n tokens (the balance may go negative: what was read is handled).
  void take(double n, Clock::time_point now);
  // How long until the balance is back at zero; zero when it is not negative.
  Clock::duration debtDuration(Clock::time_point now);
  double balance(Clock::time_point now);

 private:
  void refill(Clock::time_point now);
  double rate_, burst_, tokens_;
  Clock::time_point last_;
};

}  // namespace imp::xcp
