#pragma once
// XEP-0191 enforcement where stanzas pass (issue 16): the block lists of
// the users who log in on this node, in memory, so that the connection
// manager (on its loops) and the session manager can check every stanza
// to or from a user without asking the database.
//
//  - blocks(user, jid): `jid` matches an item of the user's list in one of
//    its XEP-0191 forms (blockMatchForms: full, bare, domain/resource,
//    domain). A user whose list was never loaded blocks nothing.
//  - Freshness: a user's list is loaded through the loader (the session
//    manager's, in the user's strand, after every block change queued
//    before it) before each of the user's resource bindings completes
//    (C2sStream::onBind), so a session never exists with a list older than
//    its login; afterwards the only writer of the list is the session
//    manager of the user's home node, which replaces it here after each
//    change (the blocking command, XEP-0191 §3.3-§3.5). Lists are kept
//    after the user's last session ends (empty ones are not kept): the
//    next login reloads them anyway.
//
// Thread-safe; the loader may run `done` on any thread.
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <vector>

namespace imp::xcp {

class BlockingRegistry {
 public:
  // Reads `bare`'s list, set()s it, then calls done(true); done(false)
  // when it cannot (database down, workers full).
  using Loader = std::function<void(const std::string& bare, std::function<void(bool ok)> done)>;
  void setLoader(Loader loader);
  // Loads `bare`'s list through the loader; without one, done(true) at once.
  void refresh(const std::string& bare, std::function<void(bool ok)> done);
  // Replaces `bare`'s list.
  void set(const std::string& bare, const std::vector<std::string>& items);
  bool blocks(const std::string& bare, const std::string& jid) const;

 private:
  mutable std::mutex mu_;
  Loader loader_;
  std::map<std::string, std::set<std::string>, std::less<>> lists_;
};

}  // namespace imp::xcp
