#include "bistro/validator/verdict.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace bistro {

Combined combined_evidence(const Observation& o, const GauntletParams& p, const Rating* past) {
  // This window's t counts in full now (a strong window passes whatever the past) and capped in
  // the sums the next windows read (it carries a miner that stops working only so far).
  const double t = o.own_margin.t() / std::max(1.0, p.null_spread);
  const double d = p.evidence_decay;
  const double past_sum = past ? d * past->evidence_sum : 0.0;
  Combined c;
  c.weight = (past ? d * d * past->evidence_weight : 0.0) + 1;
  c.z = (past_sum + t) / std::sqrt(c.weight);
  c.sum = past_sum + std::clamp(t, -kEvidenceCap, kEvidenceCap);
  return c;
}

bool losses_finite(const Observation& o) {
  return std::isfinite(o.d_own) && std::isfinite(o.d_random) && !std::isinf(o.d_cross);
}

bool has_evidence(const Observation& o) {
  return o.status == "ok" && o.own_margin.n >= 2 && std::isfinite(o.d_own);
}

std::string test_with(const Observation& o, const GauntletParams& p, bool trusted,
                      const Combined& c) {
  char buf[240];
  if (!losses_finite(o)) return "makes the loss non-finite";
  if (significantly_negative(o.random, o.d_random, p.harm_alpha)) {
    std::snprintf(buf, sizeof buf,
                  "raises the loss on random pages (by %.4g, %.1f standard errors, %zu sequences)",
                  -o.d_random, o.random.n ? -o.random.t() : 0.0, o.random.n);
    return buf;
  }
  const double alpha = trusted ? p.trust_alpha : p.evidence_alpha;
  const Evidence& e = o.own_margin;
  // Fewer than two sequences: the margin's sign alone (no t to combine).
  const double z = e.n < 2 ? 0.0 : c.z;
  const bool evident = e.n < 2 ? o.margin() > 0 : z > t_critical(alpha, e.n - 1);
  if (!evident) {
    std::snprintf(buf, sizeof buf,
                  "no evidence of training on its own pages (margin %.4g over other miners' "
                  "updates, %.1f standard errors, %.1f over its recent windows at the null's "
                  "spread %.2f, %zu sequences)",
                  o.margin(), e.n ? e.t() : 0.0, z, std::max(1.0, p.null_spread), e.n);
    return buf;
  }
  return "";
}

std::string test_update(const Observation& o, const GauntletParams& p, const Rating* past) {
  return test_with(o, p, past && past->trusted,
                   has_evidence(o) ? combined_evidence(o, p, past) : Combined{});
}

bool inconclusive(const Observation& o, const Combined& c, const GauntletParams& p) {
  return o.status == "ok" && has_evidence(o) && c.z > kRetryZ &&
         !significantly_negative(o.random, o.d_random, p.harm_alpha);
}

WindowEvidence read_evidence(const std::vector<Observation>& obs,
                             const std::map<std::string, Rating>& ratings,
                             const GauntletParams& p) {
  WindowEvidence ev{std::vector<std::string>(obs.size()), std::vector<Combined>(obs.size()), {}};
  for (size_t i = 0; i < obs.size(); ++i) {
    const auto it = ratings.find(obs[i].hotkey);
    const Rating* past = it == ratings.end() ? nullptr : &it->second;
    if (has_evidence(obs[i])) ev.combined[i] = combined_evidence(obs[i], p, past);
    if (obs[i].status == "ok" && obs[i].measured)
      ev.tests[i] = test_with(obs[i], p, past && past->trusted, ev.combined[i]);
    ev.index[obs[i].uid] = i;
  }
  return ev;
}

}  // namespace bistro
