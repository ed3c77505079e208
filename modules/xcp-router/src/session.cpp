// The session manager: dispatch, strands, messages and offline storage.
// Presence and subscriptions are in session_presence.cpp, the roster and
// blocking iqs in session_roster.cpp.
#include "imp/xcp_router/session.h"

#include <imp/net/worker_pool.h>
#include <imp/xmpp/ns.h>
#include <imp/xmpp/stanza.h>
#include <imp/xmpp/stream_parser.h>
#include <imp/xmpp/xml.h>
#include <spdlog/spdlog.h>

#include "imp/xcp_router/offline_store.h"
#include "imp/xcp_router/presence_settings.h"
#include "imp/xcp_router/privacy_store.h"
#include "imp/xcp_router/store_errors.h"
#include "session_util.h"

namespace imp::xcp {

namespace ns = xmpp::ns;

namespace {

// The error stanza answering `s` (RFC 6120 §8.3.1), from its recipient to its
// sender. An unknown condition name is undefined-condition; an empty or
// unknown type is the condition's default (§8.3.3).
RoutedStanza errorReply(const RoutedStanza& s, std::string_view condition, std::string_view type,
                        const std::string& text) {
  auto cond = xmpp::stanzaErrorFromName(condition).value_or(xmpp::StanzaErrorCondition::UndefinedCondition);
  xmpp::ErrorOptions o;
  o.text = text;
  RoutedStanza back;
  back.kind = s.kind;
  back.from = s.to;
  back.to = s.from;
  back.type = "error";
  back.element = std::make_shared<const xmpp::Element>(
      xmpp::makeError(*s.element, cond, xmpp::stanzaErrorTypeFromName(type).value_or(xmpp::defaultErrorType(cond)), o));
  return back;
}

}  // namespace

SessionManager::SessionManager(Router& router, std::shared_ptr<spdlog::logger> log)
    : router_(router), log_(std::move(log)) {}

SessionManager::SessionManager(Router& router, std::shared_ptr<spdlog::logger> log, net::WorkerPool* workers,
                               SessionManagerData data)
    : router_(router), log_(std::move(log)), workers_(workers), data_(std::move(data)) {
  stats_.offlineQueued = static_cast<std::int64_t>(data_.offlineQueued);
}

SessionManager::~SessionManager() = default;

void SessionManager::attach() {
  router_.setLocalHandler([this](RoutedStanza s) { handle(std::move(s)); });
  // XEP-0191: a user's block list, read in the user's strand (after every
  // change queued before it) when one of the user's resources binds.
  router_.blocking().setLoader([this](const std::string& bare, std::function<void(bool)> done) {
    if (!haveData()) return done(true);
    auto once = std::make_shared<std::function<void(bool)>>(std::move(done));
    inStrand(
        bare,
        [this, bare, once] {
          bool ok = true;
          try {
            auto userid = userOf(bare);
            router_.blocking().set(bare, userid ? data_.blocks->list(*userid) : std::vector<std::string>{});
          } catch (const std::exception& e) {
            ok = false;
            ++stats_.storeErrors;
            if (log_) log_->error("the block list of {} cannot be read: {}", bare, e.what());
          }
          (*once)(ok);
        },
        [once] { (*once)(false); });
  });
  router_.setBounceHandler(
      [this](RoutedStanza s, std::string_view condition, std::string text) { bounce(std::move(s), condition, std::move(text)); });
}

// ---------------- strands ----------------

void SessionManager::inStrand(const std::string& bare, std::function<void()> job, std::function<void()> onRefused) {
  enqueue(bare, Job{std::move(job), nullptr}, std::move(onRefused));
}

void SessionManager::inStrand(const std::string& bare, RoutedStanza stanza,
                              std::function<void(const RoutedStanza&)> handler, std::function<void()> onRefused) {
  auto s = std::make_shared<const RoutedStanza>(std::move(stanza));
  enqueue(bare, Job{[s, handler = std::move(handler)] { handler(*s); }, s}, std::move(onRefused));
}

void SessionManager::enqueue(const std::string& bare, Job job, std::function<void()> onRefused) {
  if (!workers_) {
    runJob(bare, job);
    return;
  }
  {
    std::lock_guard l(strandMu_);
    if (stopping_) {
      ++stats_.refusedJobs;
      if (log_) log_->warn("session manager work for {} refused: the router is stopping", bare);
      if (onRefused) onRefused();
      return;
    }
    auto& st = strands_[bare];
    st.jobs.push_back(std::move(job));
    if (st.busy) return;
    st.busy = true;  // queued in ready_ or being drained
    ready_.push_back(bare);
    if (drainers_ >= kDrainers) return;
    ++drainers_;
  }
  submitDrainer();
}

void SessionManager::submitDrainer() {
  // The job holds the manager only weakly: one that starts after the end
  // finds nothing (stop() emptied ready_), or no manager at all.
  std::weak_ptr<SessionManager> weak = weak_from_this();
  if (workers_->submit([weak] {
        if (auto self = weak.lock()) self->drainReady();
      }))
    return;
  // The pool is full (of other work) or stopping. The strands stay ready:
  // a running drainer takes them; with none left, the next inStrand()
  // submits one again. Nothing is dropped here.
  std::lock_guard l(strandMu_);
  --drainers_;
  if (log_) log_->warn("worker pool refused a session manager job; {} user(s) wait", ready_.size());
  if (drainers_ == 0) strandsIdle_.notify_all();
}

void SessionManager::drainReady() {
  constexpr int kBatch = 16;  // jobs of one strand before the next strand's turn
  for (;;) {
    std::string bare;
    std::vector<Job> batch;
    {
      std::lock_guard l(strandMu_);
      if (ready_.empty() || stopping_) {
        --drainers_;
        if (drainers_ == 0) strandsIdle_.notify_all();
        return;
      }
      bare = std::move(ready_.front());
      ready_.pop_front();
      auto it = strands_.find(bare);
      if (it == strands_.end()) continue;
      for (int i = 0; i < kBatch && !it->second.jobs.empty(); ++i) {
        batch.push_back(std::move(it->second.jobs.front()));
        it->second.jobs.pop_front();
      }
      ++running_;
    }
    for (const auto& job : batch) runJob(bare, job);
    std::lock_guard l(strandMu_);
    --running_;
    auto it = strands_.find(bare);
    if (it != strands_.end()) {
      if (it->second.jobs.empty())
        strands_.erase(it);  // idle: the next job makes it ready again
      else
        ready_.push_back(bare);  // more: after the strands waiting now
    }
    if (strands_.empty() || running_ == 0) strandsIdle_.notify_all();
  }
}

void SessionManager::runJob(const std::string& bare, const Job& job) {
  // RFC 6120 §8.3.3.5: the database failed; the sender may try again later.
  std::string condition = "internal-server-error", type = "wait",
              text = "the server could not process the stanza now; try again later";
  try {
    job.run();
    return;
  } catch (const std::exception& e) {
    // A database failure, or a refused input that escaped a handler: the
    // stanza's handler has not answered.
    ++stats_.storeErrors;
    ++stats_.failedJobs;
    if (log_) log_->error("session manager work for {} failed: {}", bare, e.what());
    if (const auto* input = dynamic_cast<const StoreInputError*>(&e)) {
      condition = input->condition();  // the sender's to correct, as where handlers catch it
      type = "modify";
      text = input->what();
    }
  }
  const RoutedStanza* s = job.stanza.get();
  // §8.3.1: an error is never answered with an error, and a result answers
  // a request of its own: neither gets one.
  if (!s || !s->element || s->type == "error" || s->type == "result") return;
  try {
    answerError(*s, condition, type, text);
    if (log_) log_->warn("{} from {} to {} answered {}", nameOf(s->kind), s->from.full(), s->to.full(), condition);
  } catch (const std::exception& e) {
    // Routing the answer may ask the directory, on the database that failed.
    if (log_) log_->error("the error for the failed {} from {} cannot be sent: {}", nameOf(s->kind), s->from.full(),
                          e.what());
  }
}

bool SessionManager::drain(std::chrono::milliseconds timeout) {
  std::unique_lock l(strandMu_);
  return strandsIdle_.wait_for(l, timeout, [this] { return strands_.empty() && running_ == 0; });
}

void SessionManager::stop() {
  std::unique_lock l(strandMu_);
  stopping_ = true;
  std::size_t dropped = 0;
  for (auto& [bare, st] : strands_) dropped += st.jobs.size();
  strands_.clear();
  ready_.clear();
  stats_.refusedJobs += dropped;
  if (dropped && log_) log_->error("the router stops with {} session manager job(s) not run", dropped);
  // Running jobs use the stores: they finish first (each is bounded by the
  // database's own timeouts). Drainers that have not started find ready_
  // empty, or no manager.
  strandsIdle_.wait(l, [this] { return running_ == 0; });
}

std::optional<std::string> SessionManager::userOf(const std::string& bare) {
  {
    std::lock_guard l(mu_);
    auto it = users_.find(bare);
    if (it != users_.end()) return it->second;
  }
  if (!data_.userOf) return std::nullopt;
  auto u = data_.userOf(bare);
  if (u) {
    std::lock_guard l(mu_);
    users_[bare] = *u;
  }
  return u;
}

// ---------------- helpers ----------------

std::vector<std::string> SessionManager::available(const std::string& bare) const {
  std::vector<std::string> v;
  std::lock_guard l(mu_);
  auto it = online_.find(bare);
  if (it == online_.end()) return v;
  for (const auto& [r, st] : it->second)
    if (st.available) v.push_back(r);
  return v;
}

std::map<std::string, int> SessionManager::availableResources(const std::string& bare) const {
  std::map<std::string, int> m;
  std::lock_guard l(mu_);
  auto it = online_.find(bare);
  if (it == online_.end()) return m;
  for (const auto& [r, st] : it->second)
    if (st.available) m[r] = st.priority;
  return m;
}

void SessionManager::toEveryResource(const RoutedStanza& stanza, const std::vector<std::string>& resources) {
  for (const auto& r : resources) {
    RoutedStanza copy = stanza;
    copy.to.resource = r;
    ++stats_.toResources;
    router_.deliverToSession(std::move(copy));
  }
}

void SessionManager::send(StanzaKind kind, const Address& from, const Address& to, xmpp::Element el) {
  el.setAttr("from", from.full());
  el.setAttr("to", to.full());
  RoutedStanza s;
  s.kind = kind;
  s.from = from;
  s.to = to;
  s.type = std::string(el.attrOr("type", ""));
  s.element = std::make_shared<const xmpp::Element>(std::move(el));
  s.outboundApplied = true;  // what the session manager sends is past its outbound rules
  router_.route(std::move(s));
}

void SessionManager::answerError(const RoutedStanza& s, std::string_view condition, std::string_view type,
                                 const std::string& text) {
  if (!s.element || s.type == "error") return;  // RFC 6120 §8.3.1
  auto back = errorReply(s, condition, type, text);
  ++stats_.bounced;
  router_.route(std::move(back));
}

// ---------------- dispatch ----------------

void SessionManager::handle(RoutedStanza s) {
  switch (s.kind) {
    case StanzaKind::Message: return onMessage(std::move(s));
    case StanzaKind::Presence: return onPresence(std::move(s));
    case StanzaKind::Iq: return onIq(std::move(s));
  }
}

void SessionManager::onMessage(RoutedStanza s) {
  const bool bare = s.to.isBare();
  // XEP-0191 §3.3: a message from a JID the user blocked reaches none of
  // the user's resources (nor their carbons, nor offline storage); the
  // sender gets service-unavailable, as from a user who is offline.
  if (!s.to.local.empty() && s.from.bare() != s.to.bare() &&
      router_.blocking().blocks(s.to.bare(), s.from.full())) {
    ++stats_.blocked;
    if (s.type == "error") return;
    return bounce(std::move(s), "service-unavailable", "");
  }
  if (!bare && s.type == "groupchat")
    return bounce(std::move(s), "service-unavailable", "no such resource (RFC 6121 §8.5.3.2.1)");
  if (s.to.local.empty()) return bounce(std::move(s), "service-unavailable", "the server takes no messages");
  if (s.type == "error") {
    // §8.5.2.2.1 / §8.5.3.2.1: an error to nobody available is dropped.
    auto targets = available(s.to.bare());
    if (targets.empty() || !bare) {
      ++stats_.droppedByRule;
      if (log_) log_->debug("error message to {} with no session dropped (RFC 6120 §8.3.1)", s.to.full());
      return;
    }
  }
  // §8.5.2.1.1: the available resources of the highest non-negative priority.
  std::vector<std::string> targets;
  {
    std::lock_guard l(mu_);
    auto it = online_.find(s.to.bare());
    int best = -1;
    if (it != online_.end())
      for (const auto& [r, st] : it->second) {
        if (!st.available || st.priority < 0) continue;
        if (st.priority > best) {
          best = st.priority;
          targets.clear();
        }
        if (st.priority == best) targets.push_back(r);
      }
  }
  if (!targets.empty()) {
    if (bare || s.type == "chat" || s.type == "normal" || s.type.empty()) {
      // XEP-0280 §6: the user's carbons-enabled resources that did not get
      // the original get a <received/> copy (a copy for a full JID is the
      // connection manager's, C2sStream::deliver).
      if (s.element && carbonEligible(*s.element)) router_.carbons().copy(*s.element, "received", s.to.bare(), targets);
      toEveryResource(s, targets);
      return;
    }
  }
  if (!bare && s.type == "headline") {
    ++stats_.droppedByRule;
    if (log_) log_->debug("headline to unbound {} dropped (RFC 6121 §8.5.3.2.1)", s.to.full());
    return;
  }
  if (s.type == "headline") {
    ++stats_.droppedByRule;  // §8.5.2.2.1: headlines are not stored
    if (log_) log_->debug("headline to {} with no available resource dropped (RFC 6121 §8.5.2.2.1)", s.to.bare());
    return;
  }
  if (s.type == "groupchat")
    return bounce(std::move(s), "service-unavailable", s.to.bare() + " has no available resource (RFC 6121 §8.5.2.2.1)");
  if (!haveData())
    return bounce(std::move(s), "service-unavailable",
                  s.to.bare() + " is offline and offline storage is not available");
  // chat/normal: offline storage (IM-5), in the recipient's strand so it is
  // ordered with the login that delivers it.
  auto key = s.to.bare();
  auto copy = s;
  inStrand(key, std::move(s), [this](const RoutedStanza& m) { storeOffline(m); },
           [this, copy]() mutable {
             bounce(std::move(copy), "resource-constraint", "the server is too busy to store the message");
           });
}

void SessionManager::storeOffline(const RoutedStanza& s) {
  auto owner = userOf(s.to.bare());
  if (!owner) return bounce(s, "service-unavailable", s.to.bare() + " is no user of this server (RFC 6121 §8.5.2.2.1)");
  // XEP-0191 §3.3 for a user whose list is not in memory (not logged in
  // on this node since it started): the store decides.
  bool blocked = false;
  try {
    blocked = data_.blocks->isBlocked(*owner, s.from.full());
  } catch (const std::exception& e) {
    ++stats_.storeErrors;
    if (log_) log_->error("offline message for {} not stored: the block list cannot be read: {}", s.to.bare(), e.what());
    return answerError(s, "internal-server-error", "wait", "the message could not be stored for the offline recipient");
  }
  if (blocked) {
    ++stats_.blocked;
    return answerError(s, "service-unavailable", "cancel", "");
  }
  // A resource may have become available while this waited in the strand.
  auto targets = available(s.to.bare());
  if (!targets.empty()) {
    RoutedStanza copy = s;
    copy.to.resource.clear();
    return onMessage(std::move(copy));
  }
  xmpp::Element el = *s.element;
  el.setAttr("to", s.to.bare());
  std::string xml = el.serialize(ns::kClient);
  std::uint32_t quota = data_.settings ? data_.settings->current().offlineQuota : 0;
  OfflineAppend r;
  try {
    r = data_.offline->append(*owner, s.from.full(), xml, quota);
  } catch (const StoreInputError& e) {
    return answerError(s, e.condition(), "modify", e.what());
  } catch (const std::exception& e) {
    ++stats_.storeErrors;
    if (log_) log_->error("offline message for {} not stored: {}", s.to.bare(), e.what());
    return answerError(s, "internal-server-error", "wait", "the message could not be stored for the offline recipient");
  }
  if (r.status == OfflineAppend::Status::StorageFull) {
    // IM-5: never dropped silently; RFC 6120 §8.3.3.18 type wait.
    return answerError(s, "resource-constraint", "wait", r.text);
  }
  ++stats_.offlineStored;
  ++stats_.offlineQueued;
  if (log_) log_->debug("message from {} stored for offline {} (#{}, {} queued)", s.from.full(), s.to.bare(), r.id,
                        r.queued);
}

void SessionManager::deliverOffline(const std::string& userid, const Address& full) {
  auto msgs = data_.offline->fetch(userid);
  if (msgs.empty()) return;
  std::vector<std::uint64_t> done;
  for (const auto& m : msgs) {
    auto el = sessionutil::parseStanza(m.stanza);
    if (!el) {
      ++stats_.storeErrors;
      if (log_) log_->error("stored message #{} for {} is not a stanza; removed", m.id, full.bare());
      done.push_back(m.id);
      continue;
    }
    // XEP-0203: when the server stored it. A message this server delivered
    // from storage before and got back (its session ended before the client
    // had it, IM-5) already carries the server's delay, stamped at its first
    // storage: that one stays, and no second is added.
    bool delayed = false;
    for (const auto* d : el->children("delay", ns::kDelay))
      if (d->attrOr("from", "") == full.domain) delayed = true;
    if (!delayed)
      el->addChild("delay", std::string(ns::kDelay)).setAttr("from", full.domain).setAttr("stamp", m.stamp).addText(
          "Offline Storage");
    el->setAttr("to", full.full());
    RoutedStanza s;
    s.kind = StanzaKind::Message;
    auto from = Address::split(m.from);
    s.from = from ? *from : Address{"", full.domain, ""};
    s.to = full;
    s.type = std::string(el->attrOr("type", ""));
    s.element = std::make_shared<const xmpp::Element>(std::move(*el));
    // Handed to the session's loop; a session gone meanwhile gives it back
    // to the router (c2s deliver()), which stores it again: never lost.
    router_.deliverToSession(std::move(s));
    done.push_back(m.id);
    ++stats_.offlineDelivered;
  }
  stats_.offlineQueued -= static_cast<std::int64_t>(data_.offline->remove(userid, done));
  if (log_) log_->debug("{} offline message(s) delivered to {}", done.size(), full.full());
}

void SessionManager::onIq(RoutedStanza s) {
  if (s.type == "result" || s.type == "error") {
    ++stats_.droppedByRule;  // RFC 6120 §8.2.3: answers nobody waits for (roster push results) are ignored
    return;
  }
  if (!s.to.isBare()) return bounce(std::move(s), "service-unavailable", "no such resource (RFC 6121 §8.5.3.2.3)");
  const xmpp::Element* payload = nullptr;
  if (s.element)
    for (const auto& n : s.element->nodes())
      if (n.isElement()) {
        payload = &n.element();
        break;
      }
  const bool own = !s.to.local.empty() && s.from.bare() == s.to.bare();
  if (own && payload && haveData() && (payload->is("query", ns::kRoster))) {
    auto key = s.to.bare();
    auto copy = s;
    return inStrand(key, std::move(s), [this](const RoutedStanza& iq) { rosterIq(iq); },
                    [this, copy] { answerError(copy, "resource-constraint", "wait", "the server is busy"); });
  }
  if (own && payload && haveData() && payload->ns() == ns::kBlocking) {
    auto key = s.to.bare();
    auto copy = s;
    return inStrand(key, std::move(s), [this](const RoutedStanza& iq) { blockingIq(iq); },
                    [this, copy] { answerError(copy, "resource-constraint", "wait", "the server is busy"); });
  }
  return bounce(std::move(s), "service-unavailable", "this request is not served for " + s.to.bare());
}

void SessionManager::bounce(RoutedStanza s, std::string_view condition, std::string text) {
  ++stats_.bounced;
  if (!s.element || s.type == "error" || s.kind == StanzaKind::Presence) {
    // §8.3.1: no error about an error; presence to nobody has no answer.
    if (log_) log_->debug("not answered ({} to {}): {} {}", nameOf(s.kind), s.to.full(), condition, text);
    return;
  }
  auto back = errorReply(s, condition, {}, text);
  if (log_) log_->debug("{} to {} answered {}: {}", nameOf(s.kind), s.to.full(), condition, text);
  router_.route(std::move(back));
}

}  // namespace imp::xcp
