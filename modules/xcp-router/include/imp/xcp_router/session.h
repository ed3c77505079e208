#pragma once
// The session manager (issue 16, deliverables 3-6): the Router's local
// handler for stanzas addressed to local users' bare JIDs, to resources they
// have not bound, and to the server on a user's behalf.
//
// Presence (RFC 6121 §4), kept in memory per bound resource:
//  - presence without 'to' reaches the router addressed to the user's own
//    bare JID (c2s.cpp). The first available one is initial presence (§4.2):
//    broadcast to the contacts with subscription from/both that are not
//    blocked (XEP-0191), to the user's own available resources, probes to
//    the contacts with to/both (§4.3); then the unanswered subscription
//    requests (§3.1.3) and the offline messages (IM-5, XEP-0203 delay) go to
//    the new resource. Later ones are broadcast the same way (§4.4);
//    unavailable (§4.5, also what c2s routes when a session ends) goes to
//    the subscribers and to everyone who got directed presence (§4.6.3).
//  - probes (§4.3.2) are answered from the last presence of each available
//    resource, to subscribers only; a blocked prober gets "unavailable".
//  - presence to a user's bare JID goes to the available resources
//    (§8.5.2.1.3).
//  - directed presence (§4.6.3) of a local session, whatever the recipient
//    (the router hands it here first): an available one to an entity that
//    is not subscribed to the user's presence (from/both) is recorded for
//    the sending resource, also when that resource is not available (rule
//    3); directed unavailable clears the record; then it is routed on.
// Subscriptions (RFC 6121 §3, Appendix A via applySubscriptionEvent): an
// outbound stanza of a local session, whatever the contact's domain (the
// router hands each one here first), is applied to the user's roster,
// pushed, and routed on with the user's bare JID (to a component, or
// bounced when nothing takes it); an inbound one is decided by the
// PrivacyPolicy (AV-1, PS-2): Approve answers "subscribed" on the user's
// behalf, Ask delivers it to the available resources (kept pending, sent
// again at next login), PoliteBlock shows nothing (the watcher sees the
// user offline, never an error).
// Roster iq (§2, versioning §2.6, pushes to the resources that asked for
// the roster), XEP-0191 blocking command (each change also replaces the
// user's list in the router's BlockingRegistry, which the session manager
// loads when a resource binds; a message from a blocked JID is answered
// service-unavailable, also for an offline user); PS-1 limits answered with the
// LimitError's condition, type and text.
// Messages (§8.5.2.1.1): a bare JID goes to the available resource(s) of
// the highest non-negative priority; with none, chat/normal is stored
// offline (quota: StorageFull -> resource-constraint back to the sender,
// IM-5), headline dropped (counted), groupchat service-unavailable.
//
// Threads: handle() runs on whichever thread the Router decided on (a loop
// or a worker) and never blocks: everything that reads or writes the
// database runs on the WorkerPool in a per-user strand (one job at a time
// per bare JID, in arrival order), so a user's presence, roster changes and
// offline messages keep their order. Without a pool the strands run inline
// (unit tests). A job that throws (the database failed) is logged and
// counted (failedJobs), and the stanza it was handling is answered
// internal-server-error, type wait (RFC 6120 §8.3.3.5; a StoreInputError
// with its own condition, type modify), unless it is an error or a result
// (§8.3.1). Without stores (SessionManagerData) only the in-memory parts
// work: presence tracking and delivery; offline messages are refused with
// service-unavailable.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "imp/xcp_router/router.h"

namespace spdlog {
class logger;
}

namespace imp::net {
class WorkerPool;
}

namespace imp::xcp {

class BlockList;
class LivePresenceSettings;
class OfflineStore;
class PrivacyPolicy;
class RosterStore;
struct RosterItem;

// The stores the session manager works on; all must outlive it. `userOf`
// maps a local user's bare JID to its directory user id (nullopt: no such
// user); it blocks (database) and is only called on the worker pool.
struct SessionManagerData {
  RosterStore* roster = nullptr;
  BlockList* blocks = nullptr;
  PrivacyPolicy* policy = nullptr;
  OfflineStore* offline = nullptr;
  const LivePresenceSettings* settings = nullptr;
  std::function<std::optional<std::string>(const std::string& bareJid)> userOf;
  // Offline messages already stored for this node's users when the session
  // manager starts (OfflineStore::totalOnNode): the base of the gauge.
  std::uint64_t offlineQueued = 0;
};

struct SessionManagerStats {
  std::atomic<std::uint64_t> toResources{0}, bounced{0}, droppedByRule{0}, broadcasts{0}, probes{0},
      rosterPushes{0}, subscriptions{0}, politeBlocks{0}, offlineStored{0}, offlineDelivered{0}, storeErrors{0},
      refusedJobs{0};
  // XEP-0191: messages from a JID their recipient blocked, not delivered.
  std::atomic<std::uint64_t> blocked{0};
  // Strand jobs that threw (a database failure; counted in storeErrors
  // too): the stanza the job was handling is answered with an error (see
  // Threads).
  std::atomic<std::uint64_t> failedJobs{0};
  // Gauge: offline messages stored for this node's users (IM-5): the base
  // at start, plus what this session manager stores, minus what it
  // removes after delivery. Only the user's home node stores and delivers
  // them; messages removed behind its back (a user deleted from the
  // directory, a user moved to another node) are not seen until restart.
  std::atomic<std::int64_t> offlineQueued{0};
};

class SessionManager : public std::enable_shared_from_this<SessionManager> {
 public:
  // Memory only (see above): no stores, strands inline.
  SessionManager(Router& router, std::shared_ptr<spdlog::logger> log);
  // `workers` null: strands run inline on the caller's thread.
  SessionManager(Router& router, std::shared_ptr<spdlog::logger> log, net::WorkerPool* workers,
                 SessionManagerData data);
  ~SessionManager();
  // Installs handle() as the router's local handler and bounce() as its
  // bounce handler.
  void attach();
  void handle(RoutedStanza stanza);
  // An error stanza back to the sender (RFC 6120 §8.3); an error is never
  // answered with an error (§8.3.1), and presence errors are not sent
  // (RFC 6121 §4.3.2... counted instead).
  void bounce(RoutedStanza stanza, std::string_view condition, std::string text);
  const SessionManagerStats& stats() const { return stats_; }
  // Waits until no strand has work queued or running (the service's stop(),
  // before the stores go away); false when `timeout` passed first.
  bool drain(std::chrono::milliseconds timeout);
  // The end (the service's stop(), after drain()): work still queued is
  // dropped (counted in refusedJobs, logged), work running is waited for,
  // and nothing runs afterwards. The stores may go once it returns.
  void stop();
  // The available resources of a bare JID with their priorities.
  std::map<std::string, int> availableResources(const std::string& bareJid) const;

  // For roster changes written outside the session manager (the bulk jobs,
  // MG-7 / MG-9, through XcpRuntime), after their transaction committed.
  // Thread-safe; the work runs in `bare`'s strand, after what is queued
  // there.
  //
  // Roster pushes (RFC 6121 §2.1.6), one iq set per item (a removal as
  // subscription='remove'), to the user's resources that asked for the
  // roster, in version order. Each carries its item's version (`version`
  // for an item without one), or one less when the next push has the same
  // version: a client that keeps the 'ver' of the one it got and loses the
  // next gets both again from its next versioned get (§2.6.3). If the
  // user's roster has moved past `version` when the job runs (the user
  // changed it meanwhile), the pushes are the store's changes after the
  // oldest given item instead, so an item older than the stored one never
  // reaches the client. Returns whether the user had an interested
  // resource when called (false: nothing is queued; the next roster get
  // reads the store).
  bool pushRosterChanges(const std::string& bare, const std::vector<RosterItem>& items, std::uint64_t version);
  // The presence probe the user's initial presence sends to each contact
  // with "to" (RFC 6121 §4.2.2), from the user's bare JID to `contactBare`,
  // routed like that one: a local contact's session manager answers with
  // its presence (§4.3.2), a Microsoft contact's reaches federation-cm,
  // which subscribes on the user's behalf.
  void probeContact(const std::string& bare, const std::string& contactBare);
  // The subscriptions of an item that left the user's roster end, as a
  // roster removal ends them (RFC 6121 §2.5.2): `unsubscribe` to the
  // contact when `was` had "to" or a pending request, unavailable presence
  // and `unsubscribed` when it had "from". For the MG-9 rename, whose old
  // contact ID leaves every roster: a Microsoft contact's federation-cm
  // ends the outgoing SUBSCRIBE (Expires: 0).
  void endSubscriptions(const std::string& bare, const RosterItem& was);

 private:
  struct ResourceState {
    bool available = false;
    int priority = 0;
    std::shared_ptr<const xmpp::Element> last;  // the last broadcast presence (for probes, §4.3.2)
    std::set<std::string> directed;             // non-subscribers given directed presence (§4.6.3)
    bool rosterRequested = false;               // "interested resource" (§2.1.6)
    bool blocklistRequested = false;            // XEP-0191 §3.2
  };
  struct Job {
    std::function<void()> run;
    // The stanza `run` processes, if any: when run throws, its sender gets
    // internal-server-error (runJob).
    std::shared_ptr<const RoutedStanza> stanza;
  };
  struct Strand {
    bool busy = false;
    std::deque<Job> jobs;
  };

  // The per-user strand (see Threads). `onRefused` runs when the pool
  // refuses the job (full), on the caller's thread.
  void inStrand(const std::string& bare, std::function<void()> job, std::function<void()> onRefused);
  // The same for the handling of `stanza`: `handler` gets it in the strand.
  void inStrand(const std::string& bare, RoutedStanza stanza, std::function<void(const RoutedStanza&)> handler,
                std::function<void()> onRefused);
  void enqueue(const std::string& bare, Job job, std::function<void()> onRefused);
  // Runs one job of `bare`'s strand; an exception is logged, counted and,
  // for a job with a stanza, answered (never rethrown: see WorkerPool).
  void runJob(const std::string& bare, const Job& job);

  void onMessage(RoutedStanza s);
  void onPresence(RoutedStanza s);
  void onIq(RoutedStanza s);
  // In the user's strand.
  void ownPresence(const RoutedStanza& s);
  void outboundSubscription(const RoutedStanza& s);
  void outboundDirected(const RoutedStanza& s);
  void inboundSubscription(const RoutedStanza& s);
  void answerProbe(const RoutedStanza& s);
  void rosterIq(const RoutedStanza& s);
  void blockingIq(const RoutedStanza& s);
  void storeOffline(const RoutedStanza& s);
  void deliverOffline(const std::string& userid, const Address& full);

  std::optional<std::string> userOf(const std::string& bare);
  bool haveData() const { return data_.roster != nullptr; }
  std::vector<std::string> available(const std::string& bare) const;
  void toEveryResource(const RoutedStanza& stanza, const std::vector<std::string>& resources);
  void send(StanzaKind kind, const Address& from, const Address& to, xmpp::Element el);
  void answerError(const RoutedStanza& s, std::string_view condition, std::string_view type, const std::string& text);
  void pushRoster(const std::string& bare, const RosterItem& item, std::uint64_t version);
  void sendProbe(const Address& own, const Address& contact);
  void presenceOfUserTo(const std::string& userBare, const Address& to, bool unavailable);
  // In the user's strand: what endSubscriptions() sends.
  void sendSubscriptionEnds(const std::string& bare, const Address& own, const Address& contact, const RosterItem& was);

  Router& router_;
  std::shared_ptr<spdlog::logger> log_;
  net::WorkerPool* workers_ = nullptr;
  SessionManagerData data_;
  SessionManagerStats stats_;
  mutable std::mutex mu_;  // online_, users_
  std::map<std::string, std::map<std::string, ResourceState>, std::less<>> online_;  // bare -> resource
  std::map<std::string, std::string, std::less<>> users_;  // bare -> userid (cache)
  // Strands with work, in the order they became ready, drained by at most
  // kDrainers jobs on the pool at once (so a burst of users, e.g. a mass
  // logout, takes kDrainers queue slots, not one per user).
  static constexpr std::size_t kDrainers = 4;
  void submitDrainer();
  void drainReady();
  std::mutex strandMu_;
  std::condition_variable strandsIdle_;
  std::map<std::string, Strand, std::less<>> strands_;
  std::deque<std::string> ready_;
  std::size_t drainers_ = 0;  // drainer jobs submitted and not finished
  std::size_t running_ = 0;   // jobs running now
  bool stopping_ = false;
  std::atomic<std::uint64_t> pushIds_{0};
};

}  // namespace imp::xcp
