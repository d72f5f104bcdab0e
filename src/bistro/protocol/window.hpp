// The window clock and where each window's objects live (docs/protocol.md, "Neurons").
//
// Protocol v2 timeline, window w = blocks [w bpw, (w + 1) bpw):
//   miners     theta_w = outer_step(theta_{w-1}, record(w-1)); AdamW steps from theta_w until
//              the deadline allows no more (at most max_inner_steps); upload update(w), due by
//              block (w + 1) bpw + grace.
//   validator  measures the updates as they land; closes window w when every committed miner
//              has uploaded update(w) (at the latest at the deadline); publishes record(w),
//              which takes theta_w to theta_{w+1}, as soon as the admitted updates are known
//              (trusted miners' updates enter on their trust and are measured after it); sets
//              weights; checkpoints theta every N windows.
// The outer step applies window w's updates to theta_w itself (no staleness: `experiment
// converge --outer-delay 1` measures what a one-window lag costs), and the record is out a
// moment after the last upload; a miner gathers its first step's gradients while it waits.
#pragma once

#include <cstdint>
#include <string>

namespace bistro {

struct NeuronHparams;

uint64_t window_of(uint64_t block, const NeuronHparams& h);
uint64_t window_start_block(uint64_t window, const NeuronHparams& h);
// Window w's deadline: the block its updates are due by, (w + 1) bpw + grace. The window closes
// at this block's time; record(w) is expected soon after, and a node waits for a late one until
// window_deadline_block(w + 1).
uint64_t window_deadline_block(uint64_t window, const NeuronHparams& h);

// A miner's update for a window, in its bucket.
std::string update_key(uint64_t window, uint16_t uid, const std::string& hotkey_ss58);
// In the validator's bucket: the record of window u, the accepted updates it mirrors (for nodes
// that cannot reach a miner's bucket, and for catch-up), and the shared-model checkpoints.
std::string record_key(uint64_t window);
std::string mirror_key(uint64_t window, uint16_t uid);
std::string checkpoint_key(uint64_t window, const std::string& file);  // theta at window start
inline constexpr const char* kLatestCheckpointKey = "checkpoints/latest.json";

}  // namespace bistro
