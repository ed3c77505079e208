#pragma once
// The impd.conf schema: the core sections plus each module's own. impd and
// impctl read the same file, so both use this.
#include <imp/core/config.h>
#include <imp/sip_proxy/node_options.h>

namespace imp::apps {

inline const core::ConfigSchema& nodeSchema() {
  static const core::ConfigSchema s = [] {
    core::ConfigSchema sc;
    core::addCoreOptions(sc);
    sip_proxy::addNodeOptions(sc);
    return sc;
  }();
  return s;
}

}  // namespace imp::apps
