#include "imp/xcp_router/blocking.h"

#include "imp/xcp_router/privacy_store.h"

namespace imp::xcp {

void BlockingRegistry::setLoader(Loader loader) {
  std::lock_guard l(mu_);
  loader_ = std::move(loader);
}

void BlockingRegistry::refresh(const std::string& bare, std::function<void(bool ok)> done) {
  Loader loader;
  {
    std::lock_guard l(mu_);
    loader = loader_;
  }
  if (!loader) {
    done(true);
    return;
  }
  loader(bare, std::move(done));
}

void BlockingRegistry::set(const std::string& bare, const std::vector<std::string>& items) {
  std::lock_guard l(mu_);
  if (items.empty())
    lists_.erase(bare);
  else
    lists_[bare] = std::set<std::string>(items.begin(), items.end());
}

bool BlockingRegistry::blocks(const std::string& bare, const std::string& jid) const {
  std::lock_guard l(mu_);
  auto it = lists_.find(bare);
  if (it == lists_.end() || jid.empty()) return false;
  for (const auto& f : blockMatchForms(jid))
    if (it->second.count(f)) return true;
  return false;
}

}  // namespace imp::xcp
