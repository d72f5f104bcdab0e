// Who publishes record(u): the lead, and in its stead the next validator in the failover order
// once the lead's turn is over (docs/protocol.md, Failover); a follower applies the lead's record.
#include "bistro/validator/stages.hpp"

namespace bistro::validator {

bool LocoValidator::leads() {
  const auto& m = sync_->master();
  return !m || m->hotkey_ss58 == hotkey_;
}

std::pair<uint64_t, uint64_t> LocoValidator::turn(uint64_t u) {
  const auto order = validator_order(*chain_, a_.netuid);
  const auto& lead = sync_->master();
  uint64_t rank = 0, candidates = 0;
  for (const auto& v : order) candidates += !lead || v.hotkey_ss58 != lead->hotkey_ss58;
  for (const auto& v : order) {
    if (lead && v.hotkey_ss58 == lead->hotkey_ss58) continue;
    ++rank;
    if (v.hotkey_ss58 == hotkey_) {
      self_ = v;
      const uint64_t from = failover_block(u, h_) + (rank - 1) * h_.failover_blocks + 1;
      return {from, rank == candidates ? UINT64_MAX : from + h_.failover_blocks};
    }
  }
  return {UINT64_MAX, UINT64_MAX};  // not in the order (no master: commitment)
}

bool LocoValidator::may_publish(uint64_t u) {
  // Past its deadline a lead publishes only when no other validator could have: a record(u) from
  // the next in the order may be out (docs/protocol.md, Failover).
  return chain_->block() <= failover_block(u, h_) ||
         validator_order(*chain_, a_.netuid).size() <= 1;
}

void LocoValidator::follow(Window& w) {
  w.base_hash = theta_hash_.empty() ? params_hash(params_) : theta_hash_;
  theta_hash_.clear();
  // A follower does not evaluate the held-out loss: the lead reports it, and the follower's
  // cores are better spent measuring (it must keep pace). It is evaluated when it takes over.
  last_eval_ = NAN;
  w.timer.lap("record");
  // The lead publishes record(u) soon after the close. It is waited for until this validator's
  // turn in the failover order, when it publishes record(u) itself from the same theta_u with
  // its own judgement; a validator without a turn waits until the next window's deadline. A
  // record that does not apply (a hash mismatch) resynchronises theta from the lead's checkpoint
  // and its records.
  // Once its turn has passed, it never publishes: the next one's record may be on its way.
  const auto [from, to] = turn(w.u);
  const uint64_t wait_until = window_start_block(w.u + 2, h_) + h_.grace_blocks;
  const uint64_t give_up = chain_->block() < to ? std::min(from, wait_until) : wait_until;
  auto lead_record = sync_->wait_record(w.u, give_up);
  const uint64_t now = chain_->block();
  if (!lead_record && now >= from && now < to) {
    log(0, fmt::format("window {}: no record from the lead {} by block {}: this validator "
                       "publishes it and leads from now on (failover)",
                       w.u, sync_->master() ? sync_->master()->hotkey_ss58 : "-", from - 1));
    lead_ = true;
    sync_->set_master(self_);
    record(w);
    return;
  }
  // The record's updates this validator holds already are not fetched again; a record that
  // does not apply (or none yet) goes through catch_up, which waits, resynchronises and replays.
  bool applied = false;
  if (lead_record) {
    std::map<uint16_t, std::pair<std::string, const Update*>> known;
    for (const auto& [uid, bytes] : w.files)
      if (w.updates.count(uid)) known[uid] = {sha256_hex(bytes), &w.updates.at(uid)};
    try {
      sync_->apply_record(*lead_record, params_, known);
      applied = true;
    } catch (const SyncError& e) {
      log(0,
          fmt::format("window {}: {}; resynchronising from the lead's checkpoint", w.u, e.what()));
    }
  }
  if (!applied) {
    const auto at = sync_->catch_up(theta_, w.u, w.u + 1, give_up);
    check(at && *at == w.u + 1, "window {}: the lead's record did not come by block {} (at {})",
          w.u, give_up, at ? std::to_string(*at) : "nothing");
    if (!lead_record) lead_record = sync_->fetch_record(w.u);
  }
  if (lead_record) w.record = *lead_record, w.record_sha256 = sync_->record_sha256(w.u);
  for (const auto& e : w.record.accepted) w.in_record.insert(e.uid);
  theta_hash_ = w.record.params_hash.empty() ? params_hash(params_) : w.record.params_hash;
  w.record.params_hash = theta_hash_;
  published_ = true;  // theta is theta_{u+1} now, as on every node
  w.published_ms = now_ms();
  // When the lead's record came out is not known here: the next window's early-upload check is
  // left to the lead (0: unknown).
  opened_ms_ = 0;
  record_block_ = chain_->block();
  w.timer.lap("follow");
}

}  // namespace bistro::validator
