// The validator's attestation of the window's record (docs/protocol.md, "Attestations and
// finality"): once a record of the window is out (its own, or another validator's it judges),
// the record's updates from miners this validator does not trust are measured (whatever the
// budget: a record holds at most record_peers; most were measured as they landed), then its signed
// statement goes to its bucket: it attests the record, or objects to the accepted updates whose
// measurement on its own random pages shows harm at harm_alpha. A trusted miner's update is
// attested on that trust, as the lead admits it, and measured after the record (judge).
#include "bistro/core/window_cache.hpp"
#include "bistro/validator/stages.hpp"

namespace bistro::validator {

bool LocoValidator::publish_attestation(uint64_t u, const std::string& record_sha256,
                                        const std::string& publisher,
                                        std::vector<Objection> objections,
                                        std::vector<Omission> omitted) {
  Attestation a;
  a.window = u;
  a.record_sha256 = record_sha256;
  a.publisher = publisher;
  a.objects = !objections.empty();
  a.objections = std::move(objections);
  if (!a.objects) a.omitted = std::move(omitted);  // an objection judges harm only
  a.harm_alpha = gp_.harm_alpha;
  // One statement per record; one record attested per window (attestation.hpp).
  auto& mine = statements_[u];
  std::erase_if(mine, [&](const Attestation& s) {
    return s.record_sha256 == a.record_sha256 || (!a.objects && !s.objects);
  });
  mine.push_back(std::move(a));
  if (mine.size() > kMaxStatements) mine.erase(mine.begin());
  trim_oldest(statements_, 4, u);
  try {
    bucket_->put(attestation_key(u), encode_attestation(mine, *hot_));
    return true;
  } catch (const std::exception& e) {
    log(0, fmt::format("window {}: cannot publish the attestation: {}", u, error_line(e)));
    return false;
  }
}

std::vector<Objection> LocoValidator::objections_to(Window& w, const WindowRecord& r) {
  std::vector<Objection> out;
  // The dishonest kinds measure nothing.
  if (!judges_honestly(behaviour_) || w.fallback) return out;
  bool measured = false;
  for (const auto& e : r.accepted) {
    const auto u = w.updates.find(e.uid);
    const auto f = w.files.find(e.uid);
    if (u == w.updates.end() || f == w.files.end() || sha256_hex(f->second) != e.sha256 ||
        w.scorer->has(e.uid) || is_trusted(ratings_, e.hotkey))
      continue;  // not held (its measurement would need the bytes the record names), done, or
                 // attested on trust as the lead admits it (measured after, in judge)
    measure_one(w, e.uid, &u->second, true);
    measured = true;
  }
  if (measured) observe(w);
  for (const auto& e : r.accepted) {
    const auto o = std::find_if(w.obs.begin(), w.obs.end(),
                                [&](const Observation& x) { return x.uid == e.uid; });
    if (o == w.obs.end() || !w.scorer->has(e.uid) || o->random.n == 0 ||
        !significantly_negative(o->random, o->d_random, gp_.harm_alpha))
      continue;
    out.push_back({e.uid, e.sha256, o->random.t(), o->random.n,
                   fmt::format("raises the loss on random pages by {:.4g} ({:.1f} standard "
                               "errors, {} sequences)",
                               -o->d_random, -o->random.t(), o->random.n)});
  }
  return out;
}

std::vector<Omission> LocoValidator::omissions_in(Window& w, const WindowRecord& r) {
  std::vector<Omission> out;
  if (!judges_honestly(behaviour_) || w.fallback) return out;
  std::set<uint16_t> held;
  for (const auto& e : r.accepted) held.insert(e.uid);
  // The updates left out that passed this validator's checks but were not measured yet (its
  // budget ran out) are measured now, as an untrusted miner's, and admission judged again:
  // otherwise what a censoring lead leaves out would be named only when the budget allowed.
  bool measured = false;
  for (const auto& [uid, update] : w.updates) {
    const auto st = w.status.find(uid);
    if (held.count(uid) || w.scorer->has(uid) || st == w.status.end() || st->second != "ok")
      continue;
    measure_one(w, uid, &update, true);
    measured = true;
  }
  if (measured) observe(w), admit(w);
  // The record's updates as this validator holds them (by the bytes the record names): with all
  // of them in hand it can ask what the lead's guard asked.
  std::vector<PeerUpdate> in_record;
  for (const auto& e : r.accepted) {
    const auto u = w.updates.find(e.uid);
    const auto f = w.files.find(e.uid);
    if (u != w.updates.end() && f != w.files.end() && sha256_hex(f->second) == e.sha256)
      in_record.push_back({e.uid, &u->second});
  }
  const bool can_guard = in_record.size() == r.accepted.size() && r.base_hash == w.base_hash;
  const auto [guard_batches, guard_base] =
      can_guard ? guard_sample(w) : std::pair<std::vector<Batch>, std::vector<double>>{};
  for (const auto& j : w.admission) {
    if (!j.admitted || held.count(j.uid)) continue;
    const auto o = std::find_if(w.obs.begin(), w.obs.end(),
                                [&](const Observation& x) { return x.uid == j.uid; });
    const auto f = w.files.find(j.uid);
    if (o == w.obs.end() || f == w.files.end() || !w.scorer->has(j.uid) || o->random.n == 0 ||
        !significantly_positive(o->random, o->d_random, gp_.harm_alpha))
      continue;
    // Named only on evidence that would admit an untrusted miner's update (evidence_alpha): a
    // lead that does not trust the miner asks that much, and this validator's trust at
    // trust_alpha named the updates of a subnet's first windows that an honest lead could not
    // yet admit, twice running, and passed it over as a censor.
    const auto rating = ratings_.find(o->hotkey);
    const Combined evidence =
        combined_evidence(*o, gp_, rating == ratings_.end() ? nullptr : &rating->second);
    if (!test_with(*o, gp_, /*trusted=*/false, evidence).empty()) continue;
    // The lead's guard may have cut it: the record with it rises past the guard on this
    // validator's own sample too, and then it is not named (an honest lead whose guard cut one
    // miner two windows running was passed over as a censor).
    if (can_guard) {
      auto peers = in_record;
      peers.push_back({j.uid, &w.updates.at(j.uid)});
      if (guard_refuses(theta_, peers, h_.outer_lr, guard_batches, guard_base, h_.record_guard,
                        h_.harm_alpha)) {
        log(0, fmt::format("window {}: the record leaves out uid {}, which this validator "
                           "admitted; with it the record rises past the guard here too: not "
                           "named",
                           w.u, j.uid));
        continue;
      }
    }
    out.push_back({j.uid, sha256_hex(f->second), o->random.t(), o->random.n});
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.uid < b.uid; });
  if (out.size() > kMaxOmissions) out.resize(kMaxOmissions);
  return out;
}

void LocoValidator::log_objections(Window& w, const std::string& publisher,
                                   const std::vector<Objection>& objections) {
  for (const auto& o : objections) {
    w.objections.push_back({{"uid", o.uid}, {"reason", o.reason}});
    log(0, fmt::format("window {}: objects to uid {} in the record of {}: {}", w.u, o.uid,
                       publisher.substr(0, 16), o.reason));
  }
}

bool LocoValidator::attest(Window& w) {
  const auto attests = [&] {
    return !w.record_sha256.empty() && w.attested_sha == w.record_sha256 && !w.attested_objecting;
  };
  // Nothing to attest, or attested already.
  if (w.record_sha256.empty() || w.attested_sha == w.record_sha256) return attests();
  const std::string publisher =
      w.record.validator.empty() ? to_hex(hot_->public_key()) : w.record.validator;
  // An honest follower judges the record it applied; the lead stands by its own.
  std::vector<Objection> objections;
  std::vector<Omission> omitted;
  if (!lead_) objections = objections_to(w, w.record);
  if (!lead_ && objections.empty()) omitted = omissions_in(w, w.record);
  if (publish_attestation(w.u, w.record_sha256, publisher, objections, omitted)) {
    w.attested_ms = now_ms();
    w.attested_sha = w.record_sha256;
    w.attested_objecting = !objections.empty();
  }
  log_objections(w, publisher, objections);
  for (const auto& o : omitted) {
    w.omitted.push_back({{"uid", o.uid}, {"z", o.z}, {"n", o.n}});
    log(0, fmt::format("window {}: the record of {} leaves out uid {}, which this validator "
                       "admitted and measured as helpful ({:.1f} standard errors, {} sequences)",
                       w.u, publisher.substr(0, 16), o.uid, o.z, o.n));
  }
  w.timer.lap("attest");
  return attests();
}

void LocoValidator::roll_back(Window& w) {
  copy_parameters(params_, w.theta_u);
  theta_hash_ = w.base_hash;
  lead_ = false;
  published_ = false;
  w.record = {};
  w.in_record.clear();
  w.timer.lap("finality");
}

void LocoValidator::await_finality(Window& w) {
  const std::string mine = w.record_sha256;
  const uint64_t until = failover_block(w.u, h_);
  const double poll = default_poll_interval(window_seconds());
  // At most a share of a window: the followers attest within a poll or two of the record when
  // they have measured its updates as they landed; a lead that waits longer falls behind the
  // next window. A refusal found later resynchronises it from the next lead's records.
  const double give_up_s = now_s() + kLeadFinalityWait * window_seconds();
  std::set<std::string> judged;
  while (true) {
    for (const auto& r : sync_->records_of(w.u)) {
      if (r.sha256 != mine && r.finality.final) {
        log(0, fmt::format("window {}: validator {}'s record is final, not this validator's: "
                           "theta goes back to theta_{} and it follows that record",
                           w.u, r.publisher_ss58, w.u));
        roll_back(w);
        follow(w);
        return;
      }
      if (r.sha256 != mine && !r.finality.refused && judged.insert(r.sha256).second) {
        // Another validator's record of this window (one that also believes it leads): its
        // harmful updates are objected to, so that it can be refused. Its attestation would not
        // count (a publisher attests its own record), and would move this one's.
        const auto objections = objections_to(w, r.record);
        if (!objections.empty()) {
          publish_attestation(w.u, r.sha256, r.record.validator, objections);
          log_objections(w, r.record.validator, objections);
        }
      }
      if (r.sha256 != mine) continue;
      if (r.finality.final) {
        settled_ = w.u;  // the next window's settle need not read it again
        w.timer.lap("finality");
        return;
      }
      if (r.finality.refused) {
        std::vector<std::string> why;
        for (const auto& [uid, reasons] : r.finality.objections)
          why.push_back(fmt::format("uid {}: {}", uid, reasons.front()));
        log(0, fmt::format("window {}: this validator's record was refused by validators holding "
                           "{:.0f} of {:.0f} active stake ({}); theta goes back to theta_{} and "
                           "it follows the next validator's record",
                           w.u, r.finality.objected, r.finality.active, fmt::join(why, "; "), w.u));
        roll_back(w);
        follow(w);
        return;
      }
    }
    if (chain_->block() >= until || now_s() >= give_up_s) {
      log(1, fmt::format("window {}: this validator's record is not final yet; going on", w.u));
      w.timer.lap("finality");
      return;
    }
    std::this_thread::sleep_for(std::chrono::duration<double>(poll));
  }
}

}  // namespace bistro::validator
