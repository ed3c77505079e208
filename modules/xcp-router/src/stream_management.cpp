#include "imp/xcp_router/stream_management.h"

#include <algorithm>
#include <charconv>

namespace imp::xcp {

std::optional<std::uint32_t> parseHandledCount(std::string_view text) {
  if (text.empty() || text.size() > 10) return std::nullopt;
  std::uint64_t v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || end != text.data() + text.size() || v > 0xffffffffULL) return std::nullopt;
  return static_cast<std::uint32_t>(v);
}

void SmQueue::push(Entry e) {
  q_.push_back(std::move(e));
  ++sent_;  // wraps at 2^32 as h does (XEP-0198 §4)
}

SmQueue::Ack SmQueue::ack(std::uint32_t h) {
  // Unsigned subtraction: the number handled since the last ack, across the
  // 2^32 wrap.
  std::uint32_t n = h - acked_;
  if (n > size()) return Ack::TooHigh;
  dropFront(n);
  acked_ = h;
  return Ack::Ok;
}

void SmQueue::dropFront(std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) q_[head_ + i].stanza = RoutedStanza();  // release the stanzas now
  head_ += n;
  if (head_ == q_.size()) {
    q_.clear();
    if (q_.capacity() > 16) q_.shrink_to_fit();  // a burst's room is not kept by an idle session
    head_ = 0;
  } else if (head_ >= 32 && head_ * 2 >= q_.size()) {
    q_.erase(q_.begin(), q_.begin() + static_cast<std::ptrdiff_t>(head_));
    head_ = 0;
  }
}

void SmQueue::pruneWritten(std::uint64_t bytesSent) {
  std::size_t n = 0;
  while (head_ + n < q_.size() && q_[head_ + n].endOffset <= bytesSent) ++n;
  if (n) dropFront(n);
}

std::vector<SmQueue::Entry> SmQueue::take() {
  std::vector<Entry> out;
  out.reserve(size());
  for (std::size_t i = head_; i < q_.size(); ++i) out.push_back(std::move(q_[i]));
  q_.clear();
  head_ = 0;
  return out;
}

void SmQueue::shrink() {
  if (!empty()) return;
  std::vector<Entry>().swap(q_);
  head_ = 0;
}

void SmQueue::startCounting() {
  q_.clear();
  head_ = 0;
  sent_ = acked_ = 0;
}

TokenBucket::TokenBucket(double rate, double burst, Clock::time_point now)
    : rate_(rate), burst_(std::max(burst, rate)), tokens_(std::max(burst, rate)), last_(now) {}

void TokenBucket::refill(Clock::time_point now) {
  if (now <= last_) return;
  double secs = std::chrono::duration<double>(now - last_).count();
  tokens_ = std::min(burst_, tokens_ + secs * rate_);
  last_ = now;
}

void TokenBucket::take(double n, Clock::time_point now) {
  if (unlimited()) return;
  refill(now);
  tokens_ -= n;
}

double TokenBucket::balance(Clock::time_point now) {
  refill(now);
  return tokens_;
}

TokenBucket::Clock::duration TokenBucket::debtDuration(Clock::time_point now) {
  if (unlimited()) return Clock::duration::zero();
  refill(now);
  if (tokens_ >= 0) return Clock::duration::zero();
  return std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(-tokens_ / rate_));
}

}  // namespace imp::xcp
