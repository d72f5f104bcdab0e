// The validator's attestation of the window's record (docs/protocol.md, "Attestations and
// finality"): after the record is out (its own, or the lead's it applied), the record's updates
// this validator holds are measured (whatever the budget: a record holds at most record_peers),
// then its signed statement goes to its bucket: it attests the record, or objects to the
// accepted updates whose measurement on its own random pages shows harm at harm_alpha.
#include "bistro/validator/stages.hpp"

namespace bistro::validator {

void LocoValidator::attest(Window& w) {
  if (!published_ || w.record_sha256.empty()) return;  // no record applied: nothing to attest
  Attestation a;
  a.window = w.u;
  a.record_sha256 = w.record_sha256;
  a.publisher = w.record.validator.empty() ? to_hex(hot_->public_key()) : w.record.validator;
  a.harm_alpha = gp_.harm_alpha;
  // An honest follower judges the record it applied; the lead stands by its own, and the
  // dishonest kinds measure nothing.
  if (!lead_ && behaviour_ == ValidatorBehaviour::Honest && !w.fallback) {
    bool measured = false;
    for (const auto& e : w.record.accepted) {
      const auto u = w.updates.find(e.uid);
      const auto f = w.files.find(e.uid);
      if (u == w.updates.end() || f == w.files.end() || sha256_hex(f->second) != e.sha256 ||
          w.scorer->has(e.uid))
        continue;  // not held (its measurement would need the bytes the record names), or done
      measure_one(w, e.uid, &u->second, !is_trusted(ratings_, e.hotkey));
      measured = true;
    }
    if (measured) observe(w);
    for (const auto& e : w.record.accepted) {
      const auto o = std::find_if(w.obs.begin(), w.obs.end(),
                                  [&](const Observation& x) { return x.uid == e.uid; });
      if (o == w.obs.end() || !w.scorer->has(e.uid) || o->random.n == 0 ||
          !significantly_negative(o->random, o->d_random, gp_.harm_alpha))
        continue;
      a.objections.push_back(
          {e.uid, e.sha256, o->random.t(), o->random.n,
           fmt::format("raises the loss on random pages by {:.4g} ({:.1f} standard errors, {} "
                       "sequences)",
                       -o->d_random, -o->random.t(), o->random.n)});
    }
    a.objects = !a.objections.empty();
  }
  try {
    bucket_->put(attestation_key(w.u), encode_attestation(a, *hot_));
    w.attested_ms = now_ms();
  } catch (const std::exception& e) {
    log(0, fmt::format("window {}: cannot publish the attestation: {}", w.u, error_line(e)));
  }
  for (const auto& o : a.objections) {
    w.objections.push_back({{"uid", o.uid}, {"reason", o.reason}});
    log(0, fmt::format("window {}: objects to uid {} in the record of {}: {}", w.u, o.uid,
                       a.publisher.substr(0, 16), o.reason));
  }
  w.timer.lap("attest");
}

}  // namespace bistro::validator
