#include "bistro/validator/params.hpp"

#include "bistro/protocol/hparams.hpp"

namespace bistro {

GauntletParams gauntlet_params(const NeuronHparams& h) {
  GauntletParams p;
  p.copy_entries = h.copy_entries;
  p.copy_indices = h.copy_indices;
  p.upload_tolerance_ms = static_cast<int64_t>(h.upload_tolerance_ms);
  p.rating_ema = h.rating_ema;
  p.margin_floor = h.margin_floor;
  p.record_peers = h.record_peers;
  p.harm_alpha = h.harm_alpha;
  p.evidence_alpha = h.evidence_alpha;
  p.trust_alpha = h.trust_alpha;
  p.evidence_decay = h.evidence_decay;
  p.pay_prior = h.pay_prior;
  p.burn_uid = static_cast<int>(h.burn_uid);
  return p;
}

}  // namespace bistro
