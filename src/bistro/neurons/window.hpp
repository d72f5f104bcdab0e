// The window clock and where each window's objects live (docs/protocol.md, "Neurons").
//
// Protocol v2 timeline, window w = blocks [w bpw, (w + 1) bpw):
//   miners     start of w: theta_w = outer_step(theta_{w-1}, record(w-2)); H inner steps;
//              upload update(w) before the window ends.
//   validator  from block (w + 1) bpw + grace: gather and score update(w); publish record(w),
//              which takes theta_{w+1} to theta_{w+2}; checkpoint theta every N windows.
// The outer step lags one window behind the updates, so nobody waits: the validator scores window
// w while the miners train window w + 1.
#pragma once

#include <cstdint>
#include <string>

namespace bistro {

struct NeuronHparams;

uint64_t window_of(uint64_t block, const NeuronHparams& h);
uint64_t window_start_block(uint64_t window, const NeuronHparams& h);

// A miner's update for a window, in its bucket.
std::string update_key(uint64_t window, uint16_t uid, const std::string& hotkey_ss58);
// In the validator's bucket: the record of window u, the accepted updates it mirrors (for nodes
// that cannot reach a miner's bucket, and for catch-up), and the shared-model checkpoints.
std::string record_key(uint64_t window);
std::string mirror_key(uint64_t window, uint16_t uid);
std::string checkpoint_key(uint64_t window, const std::string& file);  // theta at window start
inline constexpr const char* kLatestCheckpointKey = "checkpoints/latest.json";

}  // namespace bistro
