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
  // The lead publishes record(u) soon after the close. This validator judges each record of u in
  // the failover order that is not refused (it attests it, or objects: attest.cpp) and applies
  // the one that becomes final (docs/protocol.md, "Attestations and finality"). It publishes
  // record(u) itself, from the same theta_u with its own judgement, when its turn in the
  // failover order comes with no record out, or at once when every validator before it in the
  // order published a record that was refused; a validator without a turn waits until the next
  // window's deadline. A final record that does not apply (a hash mismatch) resynchronises theta
  // from the lead's checkpoint and its records.
  const auto [from, to] = turn(w.u);
  const double poll = default_poll_interval(window_seconds());
  std::optional<WindowRecord> lead_record;
  std::string lead_sha, lead_publisher;
  std::set<std::string> judged;  // each record is judged once
  std::string attested;          // the record it attested without objecting
  // The validators before this one in the turn order (the current lead, then the others by
  // stake): read once, not at every poll (a chain read each). It waits until every turn had
  // its chance (record_wait_block), not only its own.
  std::vector<std::string> before;
  const auto& lead = sync_->master();
  if (lead && lead->hotkey_ss58 != hotkey_) before.push_back(lead->hotkey_ss58);
  uint64_t candidates = 0;
  bool self_passed = false;
  for (const auto& v : validator_order(*chain_, a_.netuid)) {
    candidates += !lead || v.hotkey_ss58 != lead->hotkey_ss58;
    self_passed = self_passed || v.hotkey_ss58 == hotkey_;
    if (!self_passed && std::find(before.begin(), before.end(), v.hotkey_ss58) == before.end())
      before.push_back(v.hotkey_ss58);
  }
  const uint64_t wait_until = record_wait_block(w.u, h_, candidates);
  while (true) {
    const auto records = sync_->records_of(w.u);
    for (const auto& r : records)
      if (r.finality.final)
        lead_record = r.record, lead_sha = r.sha256, lead_publisher = r.publisher_ss58;
    // Judge the first record in the order that is neither refused nor judged yet: the final one
    // too, whose attestation keeps this validator active.
    for (const auto& r : records) {
      if (r.finality.refused || judged.count(r.sha256)) continue;
      if (lead_record && r.sha256 != lead_sha) continue;
      // A record must start from the final theta_u: one that does not is not attested.
      if (r.record.base_hash != w.base_hash) {
        if (!lead_record) continue;
        log(0, fmt::format("window {}: the final record starts from theta {}, this validator "
                           "holds {}: it resynchronises",
                           w.u, r.record.base_hash.substr(0, 12), w.base_hash.substr(0, 12)));
        break;
      }
      w.record = r.record;
      w.record_sha256 = r.sha256;
      if (attest(w)) attested = r.sha256;
      judged.insert(r.sha256);
      break;
    }
    if (lead_record) break;
    // A record it attested and nobody refused holds its turn: its attestation may be what makes
    // that record final (a follower judging late reaches its turn with the lead's record out),
    // and a rival record of its own would split the window.
    const bool awaiting = std::any_of(records.begin(), records.end(), [&](const auto& r) {
      return r.sha256 == attested && !r.finality.refused;
    });
    // Every one of them published a record of u, and each was refused.
    bool refused_before = !before.empty();
    for (const auto& who : before) {
      bool refused = false;
      for (const auto& r : records)
        refused = refused || (r.publisher_ss58 == who && r.finality.refused);
      refused_before = refused_before && refused;
    }
    const uint64_t now = chain_->block();
    if (!awaiting && ((now >= from && now < to) || (refused_before && from != UINT64_MAX))) {
      log(0, fmt::format(
                 "window {}: {}: this validator publishes record({}) and leads from now on "
                 "(failover)",
                 w.u,
                 refused_before
                     ? "every record before its turn was refused"
                     : fmt::format("no final record from the lead {} by block {}",
                                   sync_->master() ? sync_->master()->hotkey_ss58 : "-", from - 1),
                 w.u));
      lead_ = true;
      sync_->pass_to(w.u, self_);
      w.record = {};
      w.in_record.clear();
      // After refusals it replaces them: it may hold only what every refused record held, less
      // what their objections named, so that their publishers are not active for it (they could
      // otherwise refuse every replacement: docs/protocol.md).
      w.replaces.reset();
      for (const auto& r : records) {
        if (!r.finality.refused || r.record.base_hash != w.base_hash) continue;
        auto allowed = replaceable_updates(r.record, r.finality);
        if (w.replaces)  // every refused record's: the intersection
          std::erase_if(allowed, [&](const auto& kv) {
            const auto it = w.replaces->find(kv.first);
            return it == w.replaces->end() || it->second != kv.second;
          });
        w.replaces = std::move(allowed);
      }
      record(w);
      return;
    }
    check(now < wait_until, "window {}: no final record(u) by block {}", w.u, wait_until);
    std::this_thread::sleep_for(std::chrono::duration<double>(poll));
  }
  // A slow machine (the test behaviour): done with the record at the next window's deadline.
  if (behaviour_ == ValidatorBehaviour::Slow)
    wait_for_block(*chain_, window_deadline_block(w.u + 1, h_), 0.05);
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
    const auto at = sync_->catch_up(theta_, w.u, w.u + 1, wait_until);
    check(at && *at == w.u + 1, "window {}: the lead's record did not come by block {} (at {})",
          w.u, wait_until, at ? std::to_string(*at) : "nothing");
    if (!lead_record) lead_record = sync_->fetch_record(w.u);
  }
  if (lead_record) w.record = *lead_record, w.record_sha256 = lead_sha;
  // Its publisher leads from now on; a lead it replaced was passed over (lead_return.hpp).
  if (!lead_publisher.empty()) sync_->pass_to(w.u, lead_publisher);
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
