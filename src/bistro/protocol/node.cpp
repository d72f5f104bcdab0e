#include "bistro/protocol/node.hpp"

#include <fmt/format.h>

#include "bistro/chain/open_chain.hpp"
#include "bistro/identity/ss58.hpp"
#include "bistro/protocol/peers.hpp"

namespace bistro {

Node::Node(const NeuronArgs& a, const std::string& role, const std::string& commit_prefix,
           const std::string& bucket_required)
    : a_(a), compute_(parse_compute(a.device, a.dtype)) {
  chain_ = chain::open_chain(a.network);
  hot_ = load_hotkey(a);
  hotkey_ = ss58_encode(hot_->public_key());
  who_ = fmt::format("{} {}", role, hotkey_.substr(0, 8));
  metrics_server_ = start_metrics(a, metrics_, [&](const std::string& m) { log(1, m); });
  uid_ = ensure_registered(*chain_, a, *hot_);
  // Before anything is committed: a mechanism the subnet lacks stops the node here, by name.
  if (role == "validator") chain_->select_mechanism(a.netuid, static_cast<uint8_t>(a.mechid));
  check(bucket_required.empty() || !a.bucket.empty(), "{}", bucket_required);
  if (!a.bucket.empty()) bucket_ = commit_bucket(*chain_, a, *hot_, commit_prefix);
  state_dir_ = neuron_state_dir(a, role, hotkey_);
}

}  // namespace bistro
